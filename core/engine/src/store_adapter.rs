//! The content store as the plugin host sees it: the host verifies digests
//! itself (its blob writer hashes every byte a fetcher writes), so this only
//! moves bytes into `blobs/` and checks their size — each blob is hashed
//! once.

use std::io::Write;

use crate::content::{ContentStore, Ingest};

struct HostIngest(Ingest);

impl Write for HostIngest {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl berth_host::BlobIngest for HostIngest {
    fn commit(self: Box<Self>) -> std::io::Result<()> {
        self.0
            .commit()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
    }
}

impl berth_host::ContentStore for ContentStore {
    fn has(&self, digest: &str) -> bool {
        ContentStore::has(self, digest)
    }
    fn ingest(
        &self,
        desc: &berth_host::Descriptor,
    ) -> std::io::Result<Box<dyn berth_host::BlobIngest>> {
        let i = ContentStore::ingest_verified_by_writer(self, &desc.digest, desc.size)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        Ok(Box::new(HostIngest(i)))
    }
    fn open(&self, digest: &str) -> std::io::Result<std::fs::File> {
        self.open_blob(digest)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::NotFound, e.to_string()))
    }
}
