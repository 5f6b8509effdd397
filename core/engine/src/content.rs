//! The content store: `blobs/sha256/<hex>` under the engine root. A blob is
//! written to a temporary file, fsynced, its digest and size verified, then
//! renamed into place, so a blob that is visible is always whole and correct.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{EngineError, Result};

/// Blobs by digest.
#[derive(Debug, Clone)]
pub struct ContentStore {
    dir: PathBuf,
}

/// Splits `sha256:<hex>` and checks it (the SDK's one digest rule, which
/// the fetcher plugins use too).
pub fn parse_digest(digest: &str) -> Result<&str> {
    berth_sdk::digest::validate(digest).map_err(|_| EngineError::Blob {
        digest: digest.into(),
        reason: "not a sha256 digest (sha256:<64 lowercase hex digits>)".into(),
    })
}

impl ContentStore {
    pub fn open(root: &Path) -> Result<ContentStore> {
        let dir = root.join("blobs/sha256");
        std::fs::create_dir_all(dir.join(".ingest"))
            .map_err(|e| EngineError::io("creating", &dir, e))?;
        Ok(ContentStore { dir })
    }

    pub fn path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self.dir.join(parse_digest(digest)?))
    }

    pub fn has(&self, digest: &str) -> bool {
        self.path(digest).map(|p| p.exists()).unwrap_or(false)
    }

    pub fn read(&self, digest: &str) -> Result<Vec<u8>> {
        let p = self.path(digest)?;
        std::fs::read(&p).map_err(|e| EngineError::io("reading blob", p, e))
    }

    pub fn open_blob(&self, digest: &str) -> Result<File> {
        let p = self.path(digest)?;
        File::open(&p).map_err(|e| EngineError::io("opening blob", p, e))
    }

    /// Starts writing a blob that must have `digest` and `size`; the bytes
    /// are hashed as they are written and checked at `commit`.
    pub fn ingest(&self, digest: &str, size: Option<u64>) -> Result<Ingest> {
        self.start_ingest(digest, size, true)
    }

    /// Starts writing a blob for a writer that hashes and checks the bytes
    /// itself before it commits (the plugin host's verifier, through which
    /// every pulled blob passes): each blob is hashed once on its way in.
    /// The size is still enforced here.
    pub fn ingest_verified_by_writer(&self, digest: &str, size: u64) -> Result<Ingest> {
        self.start_ingest(digest, Some(size), false)
    }

    fn start_ingest(&self, digest: &str, size: Option<u64>, hash: bool) -> Result<Ingest> {
        let hex = parse_digest(digest)?.to_string();
        let tmp = tempfile::NamedTempFile::new_in(self.dir.join(".ingest")).map_err(|e| {
            EngineError::io("creating a temporary blob in", self.dir.join(".ingest"), e)
        })?;
        Ok(Ingest {
            tmp: Some(tmp),
            hasher: hash.then(Sha256::new),
            written: 0,
            hex,
            size,
            dest: self.dir.clone(),
        })
    }

    /// Starts writing a blob whose digest is learned from what is written
    /// (a layer berth makes itself).
    pub fn ingest_new(&self) -> Result<NewBlob> {
        let tmp = tempfile::NamedTempFile::new_in(self.dir.join(".ingest")).map_err(|e| {
            EngineError::io("creating a temporary blob in", self.dir.join(".ingest"), e)
        })?;
        Ok(NewBlob {
            tmp,
            hasher: Sha256::new(),
            written: 0,
            dest: self.dir.clone(),
        })
    }

    /// Writes a whole blob from memory (manifests, configs).
    pub fn put(&self, data: &[u8]) -> Result<String> {
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(data)));
        if !self.has(&digest) {
            let mut w = self.ingest(&digest, Some(data.len() as u64))?;
            w.write_all(data)
                .map_err(|e| EngineError::io("writing blob", self.dir.join(&digest[7..]), e))?;
            w.commit()?;
        }
        Ok(digest)
    }

    /// Every blob digest in the store.
    pub fn list(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir)
            .map_err(|e| EngineError::io("listing", &self.dir, e))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.len() == 64 {
                out.push(format!("sha256:{name}"));
            }
        }
        Ok(out)
    }

    pub fn remove(&self, digest: &str) -> Result<()> {
        let p = self.path(digest)?;
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(EngineError::io("removing blob", p, e))
            }
            _ => Ok(()),
        }
    }
}

/// A blob being written; dropped without `commit` it leaves nothing.
#[derive(Debug)]
pub struct Ingest {
    tmp: Option<tempfile::NamedTempFile>,
    /// `None` when the writer verifies the digest itself.
    hasher: Option<Sha256>,
    written: u64,
    hex: String,
    size: Option<u64>,
    dest: PathBuf,
}

impl Write for Ingest {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(size) = self.size {
            if self.written + buf.len() as u64 > size {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "blob sha256:{} is larger than its descriptor's {size} bytes",
                        self.hex
                    ),
                ));
            }
        }
        let n = self.tmp.as_mut().expect("open until commit").write(buf)?;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.tmp.as_mut().expect("open until commit").flush()
    }
}

impl Ingest {
    /// Verifies size and digest, fsyncs and renames into place.
    pub fn commit(mut self) -> Result<()> {
        let digest = format!("sha256:{}", self.hex);
        if let Some(size) = self.size {
            if size != self.written {
                return Err(EngineError::Blob {
                    digest,
                    reason: format!("truncated: {} of {size} bytes", self.written),
                });
            }
        }
        if let Some(h) = self.hasher.take() {
            let got = hex::encode(h.finalize());
            if got != self.hex {
                return Err(EngineError::Blob {
                    digest,
                    reason: format!("digest mismatch: the content hashes to sha256:{got}"),
                });
            }
        }
        let tmp = self.tmp.take().expect("open until commit");
        tmp.as_file()
            .sync_all()
            .map_err(|e| EngineError::io("syncing blob", tmp.path(), e))?;
        let dest = self.dest.join(&self.hex);
        tmp.persist(&dest)
            .map_err(|e| EngineError::io("storing blob", &dest, e.error))?;
        Ok(())
    }
}

/// A blob being written whose digest is what its content hashes to;
/// dropped without `commit` it leaves nothing.
#[derive(Debug)]
pub struct NewBlob {
    tmp: tempfile::NamedTempFile,
    hasher: Sha256,
    written: u64,
    dest: PathBuf,
}

impl Write for NewBlob {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.tmp.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.tmp.flush()
    }
}

impl NewBlob {
    /// Fsyncs and renames into place; returns the digest and size.
    pub fn commit(self) -> Result<(String, u64)> {
        let hex = hex::encode(self.hasher.finalize());
        let digest = format!("sha256:{hex}");
        self.tmp
            .as_file()
            .sync_all()
            .map_err(|e| EngineError::io("syncing blob", self.tmp.path(), e))?;
        let dest = self.dest.join(&hex);
        self.tmp
            .persist(&dest)
            .map_err(|e| EngineError::io("storing blob", &dest, e.error))?;
        Ok((digest, self.written))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_blob_is_named_by_its_content() {
        let t = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(t.path()).unwrap();
        let mut b = cs.ingest_new().unwrap();
        b.write_all(b"hello").unwrap();
        let (d, size) = b.commit().unwrap();
        assert_eq!(d, cs.put(b"hello").unwrap());
        assert_eq!((size, cs.read(&d).unwrap()), (5, b"hello".to_vec()));
        let dropped = cs.ingest_new().unwrap();
        drop(dropped);
        assert_eq!(cs.list().unwrap(), vec![d]);
    }

    #[test]
    fn a_blob_is_visible_only_when_whole_and_correct() {
        let t = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(t.path()).unwrap();
        let d = cs.put(b"hello").unwrap();
        assert!(cs.has(&d));
        assert_eq!(cs.read(&d).unwrap(), b"hello");

        let wrong = format!("sha256:{}", "0".repeat(64));
        let mut w = cs.ingest(&wrong, Some(5)).unwrap();
        w.write_all(b"hello").unwrap();
        assert!(w
            .commit()
            .unwrap_err()
            .to_string()
            .contains("digest mismatch"));
        assert!(!cs.has(&wrong));

        let mut w = cs.ingest(&d, Some(5)).unwrap();
        w.write_all(b"hel").unwrap();
        assert!(w.commit().unwrap_err().to_string().contains("truncated"));

        let mut w = cs.ingest(&d, Some(3)).unwrap();
        assert!(w.write_all(b"hello").is_err());
        drop(w);
        assert_eq!(
            std::fs::read_dir(t.path().join("blobs/sha256/.ingest"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn digests_are_checked() {
        assert!(parse_digest("sha256:abc").is_err());
        assert!(parse_digest("md5:00").is_err());
        assert!(parse_digest(&format!("sha256:{}", "a".repeat(64))).is_ok());
    }

    #[test]
    fn a_writer_that_verifies_gets_the_size_checked_here() {
        let t = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(t.path()).unwrap();
        let d = berth_sdk::digest::sha256(b"hello");
        let mut w = cs.ingest_verified_by_writer(&d, 5).unwrap();
        w.write_all(b"hello").unwrap();
        w.commit().unwrap();
        assert_eq!(cs.read(&d).unwrap(), b"hello");
        let d2 = berth_sdk::digest::sha256(b"other");
        let mut w = cs.ingest_verified_by_writer(&d2, 3).unwrap();
        assert!(w.write_all(b"other").is_err(), "larger than its descriptor");
        let mut w = cs.ingest_verified_by_writer(&d2, 5).unwrap();
        w.write_all(b"oth").unwrap();
        assert!(w.commit().is_err(), "truncated");
        assert!(!cs.has(&d2));
    }
}
