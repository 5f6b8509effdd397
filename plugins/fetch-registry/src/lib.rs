//! fetch-registry: pulls and pushes images over the OCI distribution protocol
//! (wasi:http): OCI and Docker schema-2 manifests, indexes with platform
//! selection, anonymous and Bearer token auth, bounded retries, mirrors.
//!
//! Loopback registries are spoken to over `http`, others over `https` first.
//! Basic credentials are added by the host; the plugin never sees them.

pub mod auth;
pub mod client;
pub mod config;
pub mod ops;
pub mod upload;
pub mod url;
pub mod wasi_http;

use berth_sdk::error::{context, PluginError};
use berth_sdk::fetcher::{
    self as f, BlobReader, BlobWriter, Descriptor, ImageFetcher, Platform, Resolved,
};
use berth_sdk::io::splice_all;
use berth_sdk::oci;
use berth_sdk::reference::Reference;

use client::{Client, ATTEMPTS};
use upload::{Outcome, Source};
use wasi_http::WasiHttp;

/// Where the host shows the plugin root.
const CONFIG: &str = "/config.json";

/// The exported fetcher.
#[derive(Debug)]
pub struct Plugin;

fn client(reference: &str, push: bool) -> Result<Client<WasiHttp>, PluginError> {
    let r = Reference::parse(reference)?;
    let config = config::Config::load(CONFIG);
    let mirrors = config.mirrors(&r.registry).to_vec();
    Ok(Client::new(WasiHttp, r, &mirrors, push))
}

impl ImageFetcher for Plugin {
    fn resolve(reference: String, platform: Platform) -> Result<Resolved, PluginError> {
        let mut c = client(&reference, false)?;
        if platform.os.is_empty() {
            // No platform: what the reference names, as it is (signatures,
            // referrers, the index a signature covers).
            let doc = ops::fetch_raw(&mut c)
                .map_err(|e| context(e, &format!("resolving {reference}")))?;
            let manifest: Descriptor = (&doc.desc).into();
            f::store_bytes(&manifest, &doc.bytes)?;
            return Ok(Resolved {
                name: c.reference.to_string(),
                manifest,
            });
        }
        let res = ops::resolve(&mut c, &(&platform).into())
            .map_err(|e| context(e, &format!("resolving {reference}")))?;
        if let Some(index) = &res.index {
            f::store_bytes(&(&index.desc).into(), &index.bytes)?;
        }
        let manifest: Descriptor = (&res.manifest.desc).into();
        f::store_bytes(&manifest, &res.manifest.bytes)?;
        Ok(Resolved {
            name: c.reference.to_string(),
            manifest,
        })
    }

    fn fetch(reference: String, blob: Descriptor, sink: &BlobWriter) -> Result<(), PluginError> {
        let mut c = client(&reference, false)?;
        let what = format!("fetching {} of {reference}", blob.digest);
        f::fill_blob(sink, |out| {
            // A broken download resumes where it stopped (HTTP Range), a bounded number of times.
            let (mut written, mut attempt) = (0u64, 1);
            loop {
                let resp = ops::open_blob(&mut c, &blob.digest, written)?;
                match splice_all(out, &resp.body.stream) {
                    Ok(n) => {
                        written += n;
                        break;
                    }
                    Err((n, e)) if attempt < ATTEMPTS => {
                        berth_sdk::log::warn(&format!(
                            "{what}: {e} after {} bytes, resuming",
                            written + n
                        ));
                        written += n;
                        attempt += 1;
                    }
                    Err((_, e)) => return Err(PluginError::Unavailable(e.to_string())),
                }
            }
            if written != blob.size {
                return Err(PluginError::Invalid(format!(
                    "got {written} bytes, the manifest says {}",
                    blob.size
                )));
            }
            Ok(())
        })
        .map_err(|e| context(e, &what))
    }

    fn push(reference: String, blob: Descriptor, source: &BlobReader) -> Result<(), PluginError> {
        let mut c = client(&reference, true)?;
        let what = format!("pushing {} to {reference}", blob.digest);
        let pushed = if oci::is_manifest(&blob.media_type) || oci::is_index(&blob.media_type) {
            let bytes = f::read_all(source, ops::MAX_MANIFEST)?;
            let tag = c
                .reference
                .tag
                .clone()
                .unwrap_or_else(|| blob.digest.clone());
            ops::put_manifest(&mut c, &tag, &blob.media_type, &bytes)
        } else {
            let desc: oci::Descriptor = (&blob).into();
            let sources = f::blobs::known_sources(&blob.digest);
            upload::push_blob(&mut c, &desc, &sources, &Reader(source), upload::CHUNK).map(
                |outcome| {
                    f::blobs::pushed(
                        &blob.digest,
                        &match outcome {
                            Outcome::Uploaded => f::blobs::PushOutcome::Uploaded,
                            Outcome::Existed => f::blobs::PushOutcome::Existed,
                            Outcome::Mounted(from) => f::blobs::PushOutcome::Mounted(from),
                        },
                    )
                },
            )
        };
        pushed.map_err(|e| context(e, &what))
    }
}

/// The blob being pushed, readable from any byte (a resumed upload).
struct Reader<'a>(&'a BlobReader);

impl Source<f::InputStream> for Reader<'_> {
    fn stream_at(&self, offset: u64) -> Result<f::InputStream, PluginError> {
        self.0.stream_at(offset)
    }
}

berth_sdk::export_fetcher!(Plugin);
