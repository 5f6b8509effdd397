//! fetch-archive: images from OCI image layouts (`oci:/dir[:tag]`), OCI
//! archives (`oci-archive:/file.tar[:tag]`) and `docker save` tarballs
//! (`docker-archive:/file.tar[:name:tag]`), for air-gapped machines.
//!
//! The host preopens each granted path at the same guest path. Blobs are
//! spliced from the file into the content store on the host side.

pub mod docker;
pub mod image;
pub mod refs;
pub mod source;

use berth_sdk::error::{context, PluginError};
use berth_sdk::fetcher::{
    self as f, BlobReader, BlobWriter, Descriptor, ImageFetcher, Platform, Resolved,
};
use berth_sdk::io::{open_file_stream, splice_exact};

use refs::ArchiveRef;

/// The exported fetcher.
#[derive(Debug)]
pub struct Plugin;

impl ImageFetcher for Plugin {
    fn resolve(reference: String, platform: Platform) -> Result<Resolved, PluginError> {
        let r = ArchiveRef::parse(&reference)?;
        let src = image::open(&r)?;
        let res = image::resolve(&r, &src, &(&platform).into(), &reference)
            .map_err(|e| context(e, &format!("resolving {reference}")))?;
        if let Some((index, bytes)) = &res.index {
            f::store_bytes(&index.into(), bytes)?;
        }
        let manifest: Descriptor = (&res.manifest).into();
        f::store_bytes(&manifest, &res.manifest_json)?;
        Ok(Resolved {
            name: res.name,
            manifest,
        })
    }

    fn fetch(reference: String, blob: Descriptor, sink: &BlobWriter) -> Result<(), PluginError> {
        let r = ArchiveRef::parse(&reference)?;
        let src = image::open(&r)?;
        let loc = image::locate_blob(&r, &src, &blob.digest)?;
        if loc.size != blob.size {
            return Err(PluginError::Invalid(format!(
                "blob {} is {} bytes in {}, the manifest says {}",
                blob.digest, loc.size, r.path, blob.size
            )));
        }
        let path = loc
            .file
            .to_str()
            .ok_or_else(|| PluginError::Invalid("path is not UTF-8".into()))?;
        let file = open_file_stream(path, loc.offset)?;
        f::fill_blob(sink, |out| Ok(splice_exact(out, &file.stream, loc.size)?))
            .map_err(|e| context(e, &format!("fetching {} from {}", blob.digest, r.path)))
    }

    fn push(reference: String, _blob: Descriptor, _source: &BlobReader) -> Result<(), PluginError> {
        Err(PluginError::Other(format!(
            "{reference}: fetch-archive cannot push; use `berth save` to write archives"
        )))
    }
}

berth_sdk::export_fetcher!(Plugin);
