//! Layer arithmetic and byte-moving that stays native: chain ids (the
//! storage driver's layer names), decompression by media type, and a reader
//! that checks a layer's uncompressed digest (its diff id) as it streams.

use std::io::Read;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::error::{EngineError, Result};

/// Chain ids from diff ids: chain(0) = diff(0); chain(n) = sha256(chain(n-1) + " " + diff(n)).
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => format!(
                "sha256:{}",
                hex::encode(Sha256::digest(format!("{prev} {d}").as_bytes()))
            ),
        };
        out.push(next);
    }
    out
}

/// How a layer blob is compressed, from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

pub fn compression(media_type: &str) -> Result<Compression> {
    let m = media_type;
    if m.ends_with("tar+gzip") || m == "application/vnd.docker.image.rootfs.diff.tar.gzip" {
        Ok(Compression::Gzip)
    } else if m.ends_with("tar+zstd") {
        Ok(Compression::Zstd)
    } else if m.ends_with(".tar") || m == "application/vnd.oci.image.layer.v1.tar" {
        Ok(Compression::None)
    } else {
        Err(EngineError::Image {
            name: String::new(),
            reason: format!("unsupported layer media type {m}"),
        })
    }
}

/// A decompressing reader over a layer blob.
pub fn decompress<R: Read + Send + 'static>(
    blob: R,
    c: Compression,
) -> Result<Box<dyn Read + Send>> {
    let buf = std::io::BufReader::with_capacity(256 << 10, blob);
    Ok(match c {
        Compression::None => Box::new(buf),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buf)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(buf)
                .map_err(|e| EngineError::io("starting zstd decompression", "layer", e))?,
        ),
    })
}

/// Hashes what passes through; the result is read after the stream ends.
pub struct DigestReader<R> {
    inner: R,
    state: Arc<Mutex<(Sha256, u64)>>,
}

impl<R> std::fmt::Debug for DigestReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DigestReader")
    }
}

/// The digest of what a `DigestReader` has read so far.
#[derive(Debug, Clone)]
pub struct DigestHandle(Arc<Mutex<(Sha256, u64)>>);

impl DigestHandle {
    pub fn digest(&self) -> String {
        let g = self.0.lock().expect("digest lock");
        format!("sha256:{}", hex::encode(g.0.clone().finalize()))
    }
    pub fn bytes(&self) -> u64 {
        self.0.lock().expect("digest lock").1
    }
}

impl<R: Read> DigestReader<R> {
    pub fn new(inner: R) -> (Self, DigestHandle) {
        let state = Arc::new(Mutex::new((Sha256::new(), 0)));
        (
            DigestReader {
                inner,
                state: state.clone(),
            },
            DigestHandle(state),
        )
    }
}

impl<R: Read> Read for DigestReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut g = self.state.lock().expect("digest lock");
        g.0.update(&buf[..n]);
        g.1 += n as u64;
        Ok(n)
    }
}

/// Reads a stream to its end (so the digest covers the whole layer even if
/// the driver stopped at the tar's end-of-archive blocks).
pub fn drain(mut r: impl Read) -> std::io::Result<u64> {
    std::io::copy(&mut r, &mut std::io::sink())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_oci_rule() {
        let a = format!("sha256:{}", "a".repeat(64));
        let b = format!("sha256:{}", "b".repeat(64));
        let c = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(c[0], a);
        let want = format!(
            "sha256:{}",
            hex::encode(Sha256::digest(format!("{a} {b}").as_bytes()))
        );
        assert_eq!(c[1], want);
    }

    #[test]
    fn media_types_map_to_compression() {
        assert_eq!(
            compression("application/vnd.oci.image.layer.v1.tar+gzip").unwrap(),
            Compression::Gzip
        );
        assert_eq!(
            compression("application/vnd.docker.image.rootfs.diff.tar.gzip").unwrap(),
            Compression::Gzip
        );
        assert_eq!(
            compression("application/vnd.oci.image.layer.v1.tar+zstd").unwrap(),
            Compression::Zstd
        );
        assert_eq!(
            compression("application/vnd.oci.image.layer.v1.tar").unwrap(),
            Compression::None
        );
        assert!(compression("text/plain").is_err());
    }

    #[test]
    fn digest_reader_hashes_what_it_reads() {
        let (mut r, h) = DigestReader::new(&b"hello"[..]);
        drain(&mut r).unwrap();
        assert_eq!(h.bytes(), 5);
        assert_eq!(
            h.digest(),
            format!("sha256:{}", hex::encode(Sha256::digest(b"hello")))
        );
    }
}
