//! For image fetchers: the `image-fetcher` world's types, the export macro's
//! trait, and helpers to put blobs into the host's content store.

use std::io::Write;

pub use crate::wit::common::berth::plugin::types::{Descriptor, Error};
pub use crate::wit::common::wasi::io::streams::{InputStream, OutputStream};
pub use crate::wit::fetcher::berth::plugin::blobs::{self, BlobReader, BlobWriter};
pub use crate::wit::fetcher::exports::berth::plugin::fetcher::{
    Guest as ImageFetcher, Platform, Resolved,
};
pub use crate::wit::fetcher::wasi::http;

use crate::io::{stream_error, StreamWriter};
use crate::oci;

impl From<&oci::Descriptor> for Descriptor {
    fn from(d: &oci::Descriptor) -> Self {
        Descriptor {
            media_type: d.media_type.clone(),
            digest: d.digest.clone(),
            size: d.size,
        }
    }
}

impl From<&Descriptor> for oci::Descriptor {
    fn from(d: &Descriptor) -> Self {
        oci::Descriptor::new(&d.media_type, d.digest.clone(), d.size)
    }
}

impl From<&Platform> for oci::Platform {
    fn from(p: &Platform) -> Self {
        oci::Platform {
            os: p.os.clone(),
            architecture: p.architecture.clone(),
            variant: p.variant.clone(),
        }
    }
}

/// Fills `sink` through `fill`, then has the host verify and publish the blob.
pub fn fill_blob(
    sink: &BlobWriter,
    fill: impl FnOnce(&OutputStream) -> Result<(), Error>,
) -> Result<(), Error> {
    let stream = sink.stream()?;
    let filled =
        fill(&stream).and_then(|()| stream.blocking_flush().map_err(|e| stream_error(e).into()));
    // The stream is a child of the writer: it must go before `finish`.
    drop(stream);
    filled?;
    sink.finish()
}

/// Stores `data` (a manifest, an index, a config made by the plugin) as the
/// blob `desc`, unless the store already has it.
pub fn store_bytes(desc: &Descriptor, data: &[u8]) -> Result<(), Error> {
    if blobs::has(&desc.digest) {
        return Ok(());
    }
    let writer = blobs::writer(desc)?;
    fill_blob(&writer, |out| {
        StreamWriter(out).write_all(data).map_err(Error::from)
    })
}

/// Reads a whole (small) blob from the store, at most `max` bytes.
pub fn read_blob(digest: &str, max: u64) -> Result<Vec<u8>, Error> {
    read_all(&blobs::reader(digest)?, max)
        .map_err(|e| crate::error::context(e, &format!("blob {digest}")))
}

/// Reads everything `reader` holds, at most `max` bytes.
pub fn read_all(reader: &BlobReader, max: u64) -> Result<Vec<u8>, Error> {
    let stream = reader.stream()?;
    let mut out = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => out.extend_from_slice(&chunk),
            Err(crate::wit::common::wasi::io::streams::StreamError::Closed) => break,
            Err(e) => return Err(stream_error(e).into()),
        }
        if out.len() as u64 > max {
            return Err(Error::Invalid(format!("larger than {max} bytes")));
        }
    }
    Ok(out)
}

/// Exports a type implementing [`ImageFetcher`] as the plugin's `fetcher` interface.
#[macro_export]
macro_rules! export_fetcher {
    ($ty:ident) => {
        // Only a wasm component exports the ABI; native builds (tests) skip it.
        #[cfg(target_arch = "wasm32")]
        $crate::wit::fetcher::__export_image_fetcher!($ty with_types_in $crate::wit::fetcher);
    };
}
