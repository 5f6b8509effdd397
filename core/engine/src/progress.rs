//! Progress of long work (pull, load): the [`Progress`] sink callers give the
//! engine, and the byte counters that feed it while a blob is downloaded
//! (a content store wrapper) and while a layer is extracted (a reader wrapper).

use std::io::{self, Read, Write};
use std::sync::Arc;

/// Where long work reports what it does (per-layer progress on pull).
pub trait Progress: Send + Sync {
    /// `id` is a short layer or blob id; `status` as docker says it
    /// ("Pulling fs layer", "Downloading", "Download complete", "Extracting",
    /// "Pull complete", "Already exists").
    fn status(&self, id: &str, status: &str);
    /// `done` of `total` bytes of the current step of `id` ("Downloading" or
    /// "Extracting") are through.
    fn bytes(&self, _id: &str, _done: u64, _total: u64) {}
}

/// No progress output.
#[derive(Debug)]
pub struct Quiet;
impl Progress for Quiet {
    fn status(&self, _: &str, _: &str) {}
}

/// Reports every `STEP` bytes at most, and at the end (keeps the sink's lock
/// out of the byte path).
const STEP: u64 = 256 * 1024;

/// Counts bytes for one id and reports them in steps of [`STEP`].
struct Counter {
    progress: Arc<dyn Progress>,
    id: String,
    total: u64,
    done: u64,
    reported: u64,
}

impl Counter {
    fn new(progress: Arc<dyn Progress>, id: &str, total: u64) -> Counter {
        Counter {
            progress,
            id: id.to_owned(),
            total,
            done: 0,
            reported: 0,
        }
    }

    fn add(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        self.done += n as u64;
        if self.done - self.reported >= STEP || self.done == self.total {
            self.reported = self.done;
            self.progress.bytes(&self.id, self.done, self.total);
        }
    }
}

/// A content store that reports the bytes written into each blob it ingests.
/// The host's verifier sits in front of it, so only checked bytes count.
pub(crate) struct CountingStore {
    inner: Arc<dyn berth_host::ContentStore>,
    progress: Arc<dyn Progress>,
    id: String,
}

impl CountingStore {
    /// Reports bytes of blobs written to `inner` as progress of `id`.
    pub(crate) fn new(
        inner: Arc<dyn berth_host::ContentStore>,
        progress: Arc<dyn Progress>,
        id: &str,
    ) -> CountingStore {
        CountingStore {
            inner,
            progress,
            id: id.to_owned(),
        }
    }
}

struct CountingIngest {
    inner: Box<dyn berth_host::BlobIngest>,
    counter: Counter,
}

impl Write for CountingIngest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.counter.add(n);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl berth_host::BlobIngest for CountingIngest {
    fn commit(self: Box<Self>) -> io::Result<()> {
        self.inner.commit()
    }
}

impl berth_host::ContentStore for CountingStore {
    fn has(&self, digest: &str) -> bool {
        self.inner.has(digest)
    }
    fn ingest(&self, desc: &berth_host::Descriptor) -> io::Result<Box<dyn berth_host::BlobIngest>> {
        let inner = self.inner.ingest(desc)?;
        Ok(Box::new(CountingIngest {
            inner,
            counter: Counter::new(self.progress.clone(), &self.id, desc.size),
        }))
    }
    fn open(&self, digest: &str) -> io::Result<std::fs::File> {
        self.inner.open(digest)
    }
}

/// A reader that reports how much of a `total`-byte source has been read.
pub(crate) struct CountingReader<R> {
    inner: R,
    counter: Counter,
}

impl<R: Read> CountingReader<R> {
    /// Reports reads of `inner` (`total` bytes long) as progress of `id`.
    pub(crate) fn new(inner: R, progress: Arc<dyn Progress>, id: &str, total: u64) -> Self {
        CountingReader {
            inner,
            counter: Counter::new(progress, id, total),
        }
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.add(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Log(Mutex<Vec<(String, u64, u64)>>);
    impl Progress for Log {
        fn status(&self, _: &str, _: &str) {}
        fn bytes(&self, id: &str, done: u64, total: u64) {
            self.0.lock().unwrap().push((id.into(), done, total));
        }
    }

    /// A store that keeps blobs in memory.
    #[derive(Default)]
    struct Mem(Mutex<Vec<Vec<u8>>>);
    struct MemIngest<'a>(&'a Mem, Vec<u8>);
    impl Write for MemIngest<'static> {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.1.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    impl berth_host::BlobIngest for MemIngest<'static> {
        fn commit(self: Box<Self>) -> io::Result<()> {
            self.0 .0.lock().unwrap().push(self.1);
            Ok(())
        }
    }
    impl berth_host::ContentStore for &'static Mem {
        fn has(&self, _: &str) -> bool {
            false
        }
        fn ingest(
            &self,
            _: &berth_host::Descriptor,
        ) -> io::Result<Box<dyn berth_host::BlobIngest>> {
            Ok(Box::new(MemIngest(self, Vec::new())))
        }
        fn open(&self, _: &str) -> io::Result<std::fs::File> {
            Err(io::ErrorKind::NotFound.into())
        }
    }

    #[test]
    fn store_reports_the_bytes_written_into_a_blob() {
        let mem: &'static Mem = Box::leak(Box::default());
        let log = Arc::new(Log::default());
        let store = CountingStore::new(Arc::new(mem), log.clone(), "layer1");
        let desc = berth_host::Descriptor {
            media_type: "application/octet-stream".into(),
            digest: "sha256:00".into(),
            size: STEP + 5,
        };
        let mut w = berth_host::ContentStore::ingest(&store, &desc).unwrap();
        w.write_all(&vec![1u8; STEP as usize - 1]).unwrap();
        w.write_all(&[2u8; 6]).unwrap();
        w.commit().unwrap();
        assert_eq!(mem.0.lock().unwrap()[0].len() as u64, STEP + 5);
        assert_eq!(
            log.0.lock().unwrap().clone(),
            vec![("layer1".into(), STEP + 5, STEP + 5)]
        );
    }

    #[test]
    fn reader_reports_in_steps_and_at_the_end() {
        let data = vec![7u8; (STEP * 2 + 10) as usize];
        let log = Arc::new(Log::default());
        let mut r = CountingReader::new(&data[..], log.clone(), "abc", data.len() as u64);
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out, data);
        let seen = log.0.lock().unwrap().clone();
        let total = data.len() as u64;
        assert_eq!(
            seen,
            vec![
                ("abc".into(), STEP, total),
                ("abc".into(), STEP * 2, total),
                ("abc".into(), total, total),
            ]
        );
    }
}
