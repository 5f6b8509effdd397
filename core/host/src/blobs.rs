//! The content store as a fetcher sees it (`berth:plugin/blobs`): every blob
//! is hashed and counted as it is written, and only a blob whose digest and
//! size match its descriptor is committed. Anything else is discarded and
//! never becomes visible.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256, Sha512};
use wasmtime::component::Resource;
use wasmtime_wasi_io::streams::{DynInputStream, DynOutputStream};

use crate::bindings::fetcher::berth::plugin::blobs;
use crate::bindings::storage::berth::plugin::types::{
    Descriptor as WitDescriptor, Error as WitError,
};
use crate::error::PluginErrorKind;
use crate::state::State;
use crate::streams::{lock, ReadStream, SharedWriter, WriteStream};
use crate::types::Descriptor;

/// The engine's content store, as the host needs it for fetchers.
pub trait ContentStore: Send + Sync + 'static {
    /// Whether the store has the blob.
    fn has(&self, digest: &str) -> bool;
    /// Starts writing a blob; nothing is visible until [`BlobIngest::commit`].
    fn ingest(&self, desc: &Descriptor) -> io::Result<Box<dyn BlobIngest>>;
    /// Opens a blob the store has.
    fn open(&self, digest: &str) -> io::Result<std::fs::File>;
}

/// What the engine learns from a push, and tells it: where blobs are known
/// to be (for cross-repository mounts), how each blob's push ended, and how
/// far its bytes have been read.
pub trait PushLedger: Send + Sync + 'static {
    /// Repositories (names without the registry) of the registry being
    /// pushed to that are known to hold `digest`.
    fn sources(&self, digest: &str) -> Vec<String>;
    /// The plugin says how the push of `digest` ended.
    fn pushed(&self, digest: &str, outcome: PushOutcome);
    /// The plugin has read `digest` up to byte `position` (it moves back
    /// when an upload resumes from an earlier byte).
    fn read_to(&self, digest: &str, position: u64);
}

/// How the push of one blob ended, as the plugin reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// Its bytes were sent.
    Uploaded,
    /// The registry had it.
    Existed,
    /// Mounted from this repository of the same registry.
    Mounted(String),
}

/// A blob being written. Dropping it without `commit` discards it.
pub trait BlobIngest: Write + Send {
    /// Makes the blob visible under its digest (the host has verified it).
    fn commit(self: Box<Self>) -> io::Result<()>;
}

enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

/// Parses `sha256:<64 hex>` / `sha512:<128 hex>` into a hasher and the expected bytes.
fn parse_digest(digest: &str) -> Result<(Hasher, Vec<u8>), String> {
    let (alg, hex_part) = digest
        .split_once(':')
        .ok_or_else(|| format!("digest {digest:?} has no algorithm"))?;
    let (hasher, len) = match alg {
        "sha256" => (Hasher::Sha256(Sha256::new()), 32),
        "sha512" => (Hasher::Sha512(Sha512::new()), 64),
        _ => return Err(format!("digest {digest:?}: unsupported algorithm {alg:?}")),
    };
    if hex_part.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!("digest {digest:?} is not lowercase hex"));
    }
    let bytes = hex::decode(hex_part).map_err(|_| format!("digest {digest:?} is not hex"))?;
    if bytes.len() != len {
        return Err(format!("digest {digest:?} has the wrong length"));
    }
    Ok((hasher, bytes))
}

/// Hashes and counts what passes to an ingest; commits only a matching blob.
pub(crate) struct Verifier {
    ingest: Box<dyn BlobIngest>,
    hasher: Hasher,
    expected: Vec<u8>,
    desc: Descriptor,
    written: u64,
}

impl Verifier {
    /// Checks the descriptor's digest syntax and starts an ingest.
    pub(crate) fn start(
        store: &dyn ContentStore,
        desc: Descriptor,
    ) -> Result<Verifier, (PluginErrorKind, String)> {
        let (hasher, expected) =
            parse_digest(&desc.digest).map_err(|m| (PluginErrorKind::Invalid, m))?;
        let ingest = store.ingest(&desc).map_err(|e| {
            (
                PluginErrorKind::Other,
                format!("cannot store blob {}: {e}", desc.digest),
            )
        })?;
        Ok(Verifier {
            ingest,
            hasher,
            expected,
            desc,
            written: 0,
        })
    }

    /// Verifies size and digest, then commits; on a mismatch the ingest is
    /// dropped (discarded).
    pub(crate) fn finish(self) -> Result<(), (PluginErrorKind, String)> {
        let d = &self.desc;
        if self.written != d.size {
            return Err((
                PluginErrorKind::Invalid,
                format!(
                    "blob {}: got {} bytes, the descriptor says {}",
                    d.digest, self.written, d.size
                ),
            ));
        }
        let actual = match self.hasher {
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
        };
        if actual != self.expected {
            let alg = d.digest.split(':').next().unwrap_or("sha256");
            return Err((
                PluginErrorKind::Invalid,
                format!(
                    "blob {}: content has digest {alg}:{}; discarded",
                    d.digest,
                    hex::encode(actual)
                ),
            ));
        }
        self.ingest.commit().map_err(|e| {
            (
                PluginErrorKind::Other,
                format!("cannot commit blob {}: {e}", d.digest),
            )
        })
    }
}

impl Write for Verifier {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len() as u64;
        if self.written + n > self.desc.size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "blob {} is longer than its descriptor's {} bytes",
                    self.desc.digest, self.desc.size
                ),
            ));
        }
        self.ingest.write_all(buf)?;
        match &mut self.hasher {
            Hasher::Sha256(h) => h.update(buf),
            Hasher::Sha512(h) => h.update(buf),
        }
        self.written += n;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.ingest.flush()
    }
}

/// The `blob-writer` resource.
pub struct BlobWriter {
    pub(crate) shared: SharedWriter<Verifier>,
    pub(crate) digest: String,
}

impl BlobWriter {
    pub(crate) fn new(v: Verifier) -> BlobWriter {
        BlobWriter {
            digest: v.desc.digest.clone(),
            shared: Arc::new(Mutex::new(Some(v))),
        }
    }

    /// Finishes the blob unless it was finished already.
    pub(crate) fn finish(&self) -> Result<(), (PluginErrorKind, String)> {
        match lock(&self.shared).take() {
            Some(v) => v.finish(),
            None => Ok(()),
        }
    }
}

/// The `blob-reader` resource.
pub struct BlobReader {
    digest: String,
    file: Option<std::fs::File>,
}

impl BlobReader {
    pub(crate) fn new(digest: &str, file: std::fs::File) -> BlobReader {
        BlobReader {
            digest: digest.to_owned(),
            file: Some(file),
        }
    }
}

/// A blob's bytes, telling the push ledger how far they have been read.
struct Counted {
    file: std::fs::File,
    position: u64,
    digest: String,
    ledger: Option<Arc<dyn PushLedger>>,
}

impl io::Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.position += n as u64;
        if let Some(l) = &self.ledger {
            l.read_to(&self.digest, self.position);
        }
        Ok(n)
    }
}

pub(crate) fn wit_error(kind: PluginErrorKind, m: String) -> WitError {
    match kind {
        PluginErrorKind::NotFound => WitError::NotFound(m),
        PluginErrorKind::AlreadyExists => WitError::AlreadyExists(m),
        PluginErrorKind::Invalid => WitError::Invalid(m),
        PluginErrorKind::Denied => WitError::Denied(m),
        PluginErrorKind::Unavailable => WitError::Unavailable(m),
        PluginErrorKind::Unauthorized => WitError::Unauthorized(m),
        PluginErrorKind::Other => WitError::Other(m),
    }
}

pub(crate) fn descriptor(d: WitDescriptor) -> Descriptor {
    Descriptor {
        media_type: d.media_type,
        digest: d.digest,
        size: d.size,
    }
}

impl State {
    /// A stream of `file` (at `position`) as a child of reader `r`.
    fn reader_stream(
        &mut self,
        r: Resource<BlobReader>,
        digest: String,
        file: std::fs::File,
        position: u64,
    ) -> wasmtime::Result<Result<Resource<DynInputStream>, WitError>> {
        let src: Box<dyn io::Read + Send> = Box::new(Counted {
            file,
            position,
            digest,
            ledger: self.push.clone(),
        });
        let stream: DynInputStream = Box::new(ReadStream::new(Arc::new(Mutex::new(src))));
        Ok(Ok(self.table.push_child(stream, &r)?))
    }

    fn store(&mut self) -> wasmtime::Result<Arc<dyn ContentStore>> {
        self.blobs
            .clone()
            .ok_or_else(|| wasmtime::format_err!("no content store in this call"))
    }
}

impl blobs::Host for State {
    async fn has(&mut self, digest: String) -> wasmtime::Result<bool> {
        Ok(self.store()?.has(&digest))
    }

    async fn writer(
        &mut self,
        blob: WitDescriptor,
    ) -> wasmtime::Result<Result<Resource<BlobWriter>, WitError>> {
        let store = self.store()?;
        if store.has(&blob.digest) {
            return Ok(Err(WitError::AlreadyExists(blob.digest)));
        }
        match Verifier::start(store.as_ref(), descriptor(blob)) {
            Ok(v) => Ok(Ok(self.table.push(BlobWriter::new(v))?)),
            Err((k, m)) => Ok(Err(wit_error(k, m))),
        }
    }

    async fn reader(
        &mut self,
        digest: String,
    ) -> wasmtime::Result<Result<Resource<BlobReader>, WitError>> {
        match self.store()?.open(&digest) {
            Ok(file) => Ok(Ok(self.table.push(BlobReader::new(&digest, file))?)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Err(WitError::NotFound(digest))),
            Err(e) => Ok(Err(WitError::Other(format!("blob {digest}: {e}")))),
        }
    }

    async fn known_sources(&mut self, digest: String) -> wasmtime::Result<Vec<String>> {
        Ok(match &self.push {
            Some(l) => l.sources(&digest),
            None => Vec::new(),
        })
    }

    async fn pushed(
        &mut self,
        digest: String,
        outcome: blobs::PushOutcome,
    ) -> wasmtime::Result<()> {
        if let Some(l) = &self.push {
            l.pushed(
                &digest,
                match outcome {
                    blobs::PushOutcome::Uploaded => PushOutcome::Uploaded,
                    blobs::PushOutcome::Existed => PushOutcome::Existed,
                    blobs::PushOutcome::Mounted(from) => PushOutcome::Mounted(from),
                },
            );
        }
        Ok(())
    }
}

impl blobs::HostBlobWriter for State {
    async fn stream(
        &mut self,
        w: Resource<BlobWriter>,
    ) -> wasmtime::Result<Result<Resource<DynOutputStream>, WitError>> {
        let shared = self.table.get(&w)?.shared.clone();
        let stream: DynOutputStream = Box::new(WriteStream::new(shared));
        Ok(Ok(self.table.push_child(stream, &w)?))
    }

    async fn finish(&mut self, w: Resource<BlobWriter>) -> wasmtime::Result<Result<(), WitError>> {
        let writer = self.table.get(&w)?;
        let digest = writer.digest.clone();
        Ok(writer.finish().map_err(|(k, m)| {
            tracing::warn!(plugin = %self.plugin, digest, "blob refused: {m}");
            wit_error(k, m)
        }))
    }

    async fn drop(&mut self, w: Resource<BlobWriter>) -> wasmtime::Result<()> {
        // Dropping an unfinished writer drops its ingest: the blob is discarded.
        self.table.delete(w)?;
        Ok(())
    }
}

impl blobs::HostBlobReader for State {
    async fn stream(
        &mut self,
        r: Resource<BlobReader>,
    ) -> wasmtime::Result<Result<Resource<DynInputStream>, WitError>> {
        let reader = self.table.get_mut(&r)?;
        let Some(file) = reader.file.take() else {
            return Ok(Err(WitError::Invalid(
                "the blob's stream was already taken".into(),
            )));
        };
        let digest = reader.digest.clone();
        self.reader_stream(r, digest, file, 0)
    }

    async fn stream_at(
        &mut self,
        r: Resource<BlobReader>,
        offset: u64,
    ) -> wasmtime::Result<Result<Resource<DynInputStream>, WitError>> {
        let digest = self.table.get(&r)?.digest.clone();
        let opened = self.store()?.open(&digest).and_then(|mut f| {
            use std::io::Seek;
            let len = f.metadata()?.len();
            if offset > len {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("offset {offset} is past the blob's end ({len} bytes)"),
                ));
            }
            f.seek(io::SeekFrom::Start(offset))?;
            Ok(f)
        });
        match opened {
            Ok(file) => self.reader_stream(r, digest, file, offset),
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                Ok(Err(WitError::Invalid(format!("blob {digest}: {e}"))))
            }
            Err(e) => Ok(Err(WitError::Other(format!("blob {digest}: {e}")))),
        }
    }

    async fn drop(&mut self, r: Resource<BlobReader>) -> wasmtime::Result<()> {
        self.table.delete(r)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An in-memory store recording what was committed.
    #[derive(Default)]
    pub(crate) struct MemStore {
        pub committed: Mutex<Vec<(String, Vec<u8>)>>,
    }

    struct MemIngest {
        digest: String,
        data: Vec<u8>,
        store: Arc<MemStore>,
    }

    impl Write for MemIngest {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.data.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl BlobIngest for MemIngest {
        fn commit(self: Box<Self>) -> io::Result<()> {
            lock(&self.store.committed).push((self.digest, self.data));
            Ok(())
        }
    }

    struct Handle(Arc<MemStore>);

    impl ContentStore for Handle {
        fn has(&self, _: &str) -> bool {
            false
        }
        fn ingest(&self, d: &Descriptor) -> io::Result<Box<dyn BlobIngest>> {
            Ok(Box::new(MemIngest {
                digest: d.digest.clone(),
                data: Vec::new(),
                store: self.0.clone(),
            }))
        }
        fn open(&self, _: &str) -> io::Result<std::fs::File> {
            Err(io::ErrorKind::NotFound.into())
        }
    }

    fn desc(data: &[u8]) -> Descriptor {
        Descriptor {
            media_type: "application/octet-stream".into(),
            digest: format!("sha256:{}", hex::encode(Sha256::digest(data))),
            size: data.len() as u64,
        }
    }

    #[test]
    fn a_matching_blob_is_committed() {
        let mem = Arc::new(MemStore::default());
        let mut v = Verifier::start(&Handle(mem.clone()), desc(b"hello")).unwrap();
        v.write_all(b"hel").unwrap();
        v.write_all(b"lo").unwrap();
        v.finish().unwrap();
        assert_eq!(lock(&mem.committed)[0].1, b"hello");
    }

    #[test]
    fn a_wrong_digest_is_discarded() {
        let mem = Arc::new(MemStore::default());
        let mut d = desc(b"hello");
        d.digest = desc(b"HELLO").digest;
        let mut v = Verifier::start(&Handle(mem.clone()), d).unwrap();
        v.write_all(b"hello").unwrap();
        let (kind, msg) = v.finish().unwrap_err();
        assert_eq!(kind, PluginErrorKind::Invalid);
        assert!(msg.contains("discarded"), "{msg}");
        assert!(lock(&mem.committed).is_empty());
    }

    #[test]
    fn too_many_or_too_few_bytes_fail() {
        let mem = Arc::new(MemStore::default());
        let mut v = Verifier::start(&Handle(mem.clone()), desc(b"hello")).unwrap();
        assert!(v.write_all(b"hello!").is_err());
        let mut v = Verifier::start(&Handle(mem.clone()), desc(b"hello")).unwrap();
        v.write_all(b"hell").unwrap();
        assert_eq!(v.finish().unwrap_err().0, PluginErrorKind::Invalid);
        assert!(lock(&mem.committed).is_empty());
    }

    #[test]
    fn bad_digests_are_invalid() {
        let mem = Arc::new(MemStore::default());
        for d in [
            "md5:abcd",
            "sha256:xyz",
            "sha256:ABCD",
            "nodigest",
            "sha256:abcd",
        ] {
            let mut desc = desc(b"x");
            desc.digest = d.into();
            let err = Verifier::start(&Handle(mem.clone()), desc).err().unwrap();
            assert_eq!(err.0, PluginErrorKind::Invalid, "{d}");
        }
    }

    #[test]
    fn an_unfinished_writer_discards() {
        let mem = Arc::new(MemStore::default());
        let v = Verifier::start(&Handle(mem.clone()), desc(b"hello")).unwrap();
        let w = BlobWriter::new(v);
        drop(w);
        assert!(lock(&mem.committed).is_empty());
    }
}
