//! Blocking adapters over wasi:io streams, splicing, and files opened as streams.
//!
//! Bulk bytes (layers, blobs) should move stream to stream on the host side
//! (`splice`) rather than through guest memory; these helpers do that.

use std::io;

use crate::wit::common::wasi::filesystem::{preopens, types as fs};
use crate::wit::common::wasi::io::streams::{InputStream, OutputStream, StreamError};

/// Turns a stream error into an `io::Error`; `Closed` becomes `UnexpectedEof`.
pub fn stream_error(e: StreamError) -> io::Error {
    match e {
        StreamError::Closed => io::ErrorKind::UnexpectedEof.into(),
        StreamError::LastOperationFailed(err) => io::Error::other(err.to_debug_string()),
    }
}

/// A [`crate::tar_read::TarSource`] (and `io::Read`) over a borrowed input
/// stream. It never reads ahead, so the host can read the same stream too.
#[derive(Debug)]
pub struct StreamSource<'a>(pub &'a InputStream);

impl io::Read for StreamSource<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match self.0.blocking_read(buf.len() as u64) {
            Ok(bytes) => {
                buf[..bytes.len()].copy_from_slice(&bytes);
                Ok(bytes.len())
            }
            Err(StreamError::Closed) => Ok(0),
            Err(e) => Err(stream_error(e)),
        }
    }
}

impl crate::tar_read::TarSource for StreamSource<'_> {
    fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        io::Read::read(self, buf)
    }
    fn skip(&mut self, mut n: u64) -> io::Result<()> {
        while n > 0 {
            n -= self.0.blocking_skip(n).map_err(stream_error)?;
        }
        Ok(())
    }
}

/// An `io::Write` over a borrowed output stream (blocking, flushed writes).
#[derive(Debug)]
pub struct StreamWriter<'a>(pub &'a OutputStream);

impl io::Write for StreamWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // blocking-write-and-flush takes at most 4096 bytes per call.
        let n = buf.len().min(4096);
        self.0
            .blocking_write_and_flush(&buf[..n])
            .map_err(stream_error)?;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.blocking_flush().map_err(stream_error)
    }
}

impl crate::diff::FileSink for StreamWriter<'_> {
    fn copy_file(&mut self, local: &std::path::Path, size: u64) -> io::Result<()> {
        let path = local
            .to_str()
            .ok_or_else(|| io::Error::other("path is not UTF-8"))?;
        let file = open_file_stream(path, 0)?;
        splice_exact(self.0, &file.stream, size)
    }
}

/// Splices exactly `n` bytes from `src` into `dst` on the host side.
pub fn splice_exact(dst: &OutputStream, src: &InputStream, n: u64) -> io::Result<()> {
    let mut left = n;
    while left > 0 {
        left -= dst.blocking_splice(src, left).map_err(stream_error)?;
    }
    Ok(())
}

/// Splices `src` into `dst` until `src` ends; returns the bytes moved. On a
/// failure the error comes with the count moved before it.
pub fn splice_all(dst: &OutputStream, src: &InputStream) -> Result<u64, (u64, io::Error)> {
    let mut total = 0u64;
    loop {
        match dst.blocking_splice(src, 1 << 20) {
            Ok(n) => total += n,
            Err(StreamError::Closed) => return Ok(total),
            Err(e) => return Err((total, stream_error(e))),
        }
    }
}

/// A file opened for reading as a wasi:io stream (keeps the descriptor alive).
#[derive(Debug)]
pub struct FileStream {
    /// The file's bytes from the requested offset.
    pub stream: InputStream,
    _file: fs::Descriptor,
}

/// Opens `path` (an absolute guest path beneath some preopened directory) as a
/// stream starting at `offset`.
pub fn open_file_stream(path: &str, offset: u64) -> io::Result<FileStream> {
    let (dir, rel) = find_preopen(path)?;
    let file = dir
        .open_at(
            fs::PathFlags::SYMLINK_FOLLOW,
            &rel,
            fs::OpenFlags::empty(),
            fs::DescriptorFlags::READ,
        )
        .map_err(|e| io::Error::other(format!("open {path}: {e:?}")))?;
    let stream = file
        .read_via_stream(offset)
        .map_err(|e| io::Error::other(format!("read {path}: {e:?}")))?;
    Ok(FileStream {
        stream,
        _file: file,
    })
}

/// The preopened directory with the longest guest path that contains `path`.
fn find_preopen(path: &str) -> io::Result<(fs::Descriptor, String)> {
    let mut best: Option<(fs::Descriptor, String)> = None;
    let mut best_len = 0;
    for (dir, guest) in preopens::get_directories() {
        let guest = guest.trim_end_matches('/');
        let rest = match path.strip_prefix(guest) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
            _ => continue,
        };
        if best.is_none() || guest.len() >= best_len {
            best_len = guest.len();
            let rel = rest.trim_start_matches('/');
            best = Some((
                dir,
                if rel.is_empty() {
                    ".".into()
                } else {
                    rel.to_string()
                },
            ));
        }
    }
    best.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{path} is not beneath a granted directory"),
        )
    })
}
