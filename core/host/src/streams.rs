//! `wasi:io` streams over the host's `std::io` readers and writers: the layer
//! tar handed to `apply-layer`, the writer `diff` fills, blob streams.
//!
//! Reads and writes are plain blocking calls: they touch local files or a
//! decompressor fed from one, so they are as short as the guest's own work
//! between epoch checks.

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use wasmtime_wasi_io::async_trait;
use wasmtime_wasi_io::poll::Pollable;
use wasmtime_wasi_io::streams::{InputStream, OutputStream, StreamError, StreamResult};

/// Largest chunk handed to the guest per read.
const READ_CHUNK: usize = 256 << 10;
/// How much the guest may write per `write` call.
const WRITE_BUDGET: usize = 1 << 20;

/// A reader shared between its stream resource and host primitives
/// (`layer-fs.write-file` reads the tar directly, never through the guest).
pub(crate) type SharedReader = Arc<Mutex<Box<dyn Read + Send>>>;

/// A shared writer; `None` once closed (a blob writer after `finish`).
pub(crate) type SharedWriter<W> = Arc<Mutex<Option<W>>>;

pub(crate) fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn failed(e: io::Error) -> StreamError {
    StreamError::LastOperationFailed(wasmtime::Error::new(e))
}

/// An input stream reading from a [`SharedReader`].
pub(crate) struct ReadStream {
    src: SharedReader,
}

impl ReadStream {
    pub(crate) fn new(src: SharedReader) -> ReadStream {
        ReadStream { src }
    }
}

#[async_trait]
impl Pollable for ReadStream {
    async fn ready(&mut self) {}
}

#[async_trait]
impl InputStream for ReadStream {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        if size == 0 {
            return Ok(Bytes::new());
        }
        let mut buf = BytesMut::zeroed(size.min(READ_CHUNK));
        let n = loop {
            match lock(&self.src).read(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r.map_err(failed)?,
            }
        };
        if n == 0 {
            return Err(StreamError::Closed);
        }
        buf.truncate(n);
        Ok(buf.freeze())
    }
}

/// Copies exactly `size` bytes from `src` to `dst`; fewer is an error naming
/// how many arrived.
pub(crate) fn copy_exact(src: &mut dyn Read, dst: &mut dyn Write, size: u64) -> io::Result<()> {
    // Larger than io::copy's 8 KiB: fewer write syscalls for big layer files.
    let mut buf = vec![0u8; (size as usize).min(READ_CHUNK)];
    let mut copied = 0u64;
    while copied < size {
        let want = (size - copied).min(buf.len() as u64) as usize;
        let n = match src.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        dst.write_all(&buf[..n])?;
        copied += n as u64;
    }
    if copied != size {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the stream ended after {copied} of {size} bytes"),
        ));
    }
    Ok(())
}

/// An output stream writing to a [`SharedWriter`].
pub(crate) struct WriteStream<W: Write + Send + 'static> {
    dst: SharedWriter<W>,
}

impl<W: Write + Send + 'static> WriteStream<W> {
    pub(crate) fn new(dst: SharedWriter<W>) -> WriteStream<W> {
        WriteStream { dst }
    }
}

#[async_trait]
impl<W: Write + Send + 'static> Pollable for WriteStream<W> {
    async fn ready(&mut self) {}
}

#[async_trait]
impl<W: Write + Send + 'static> OutputStream for WriteStream<W> {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        match lock(&self.dst).as_mut() {
            Some(w) => w.write_all(&bytes).map_err(failed),
            None => Err(StreamError::Closed),
        }
    }

    fn flush(&mut self) -> StreamResult<()> {
        match lock(&self.dst).as_mut() {
            Some(w) => w.flush().map_err(failed),
            None => Err(StreamError::Closed),
        }
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        match lock(&self.dst).as_ref() {
            Some(_) => Ok(WRITE_BUDGET),
            None => Err(StreamError::Closed),
        }
    }
}
