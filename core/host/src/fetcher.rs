//! A loaded image fetcher and its verbs: resolve, fetch, push.
//!
//! Blobs go through the host's verifying writer into the engine's content
//! store; the plugin reaches only the registries it was granted, and never
//! sees the credentials the host adds.

use std::sync::Arc;

use wasmtime::component::Resource;

use crate::bindings::fetcher::exports::berth::plugin::fetcher::Platform as WitPlatform;
use crate::bindings::fetcher::ImageFetcherPre;
use crate::bindings::storage::berth::plugin::types::Descriptor as WitDescriptor;
use crate::blobs::{descriptor, wit_error, BlobReader, BlobWriter, ContentStore, Verifier};
use crate::call::Shared;
use crate::error::{HostError, PluginError};
use crate::host::PluginInfo;
use crate::state::State;
use crate::types::{Descriptor, Platform, Resolved};

/// An image fetcher plugin. Cheap to clone; calls may run concurrently.
#[derive(Clone)]
pub struct FetcherPlugin {
    shared: Shared,
    pre: ImageFetcherPre<State>,
}

impl std::fmt::Debug for FetcherPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetcherPlugin")
            .field("info", &self.shared.info)
            .finish_non_exhaustive()
    }
}

fn wit_desc(d: &Descriptor) -> WitDescriptor {
    WitDescriptor {
        media_type: d.media_type.clone(),
        digest: d.digest.clone(),
        size: d.size,
    }
}

impl FetcherPlugin {
    pub(crate) fn new(shared: Shared, pre: ImageFetcherPre<State>) -> FetcherPlugin {
        FetcherPlugin { shared, pre }
    }

    /// The plugin's name, root and where its compiled code came from.
    pub fn info(&self) -> &PluginInfo {
        &self.shared.info
    }

    /// Resolves `reference` for `platform`; the manifest (and index) end up in `store`.
    pub async fn resolve(
        &self,
        reference: &str,
        platform: &Platform,
        store: Arc<dyn ContentStore>,
    ) -> Result<Resolved, HostError> {
        let call = format!("resolve {reference}");
        let mut s = self.shared.store(&call, Some(store))?;
        let p = WitPlatform {
            os: platform.os.clone(),
            architecture: platform.architecture.clone(),
            variant: platform.variant.clone(),
        };
        let out = self
            .shared
            .within(async {
                let b = self.pre.instantiate_async(&mut s).await?;
                let r = b
                    .berth_plugin_fetcher()
                    .call_resolve(&mut s, reference, &p)
                    .await?;
                Ok(r.map(|r| Resolved {
                    name: r.name,
                    manifest: descriptor(r.manifest),
                }))
            })
            .await;
        self.shared.finish(s, &call, out)
    }

    /// Fetches `blob` of `reference` into `store`, verified against its digest and size.
    pub async fn fetch(
        &self,
        reference: &str,
        blob: &Descriptor,
        store: Arc<dyn ContentStore>,
    ) -> Result<(), HostError> {
        let call = format!("fetch {}", blob.digest);
        let verifier =
            Verifier::start(store.as_ref(), blob.clone()).map_err(|(kind, message)| {
                HostError::Plugin {
                    plugin: self.shared.plugin.to_string(),
                    call: call.clone(),
                    error: PluginError { kind, message },
                }
            })?;
        let mut s = self.shared.store(&call, Some(store))?;
        let res = s
            .data_mut()
            .table
            .push(BlobWriter::new(verifier))
            .map_err(|e| self.shared.load_error(e))?;
        let rep = res.rep();
        let d = wit_desc(blob);
        let out = self
            .shared
            .within(async {
                let b = self.pre.instantiate_async(&mut s).await?;
                let r = b
                    .berth_plugin_fetcher()
                    .call_fetch(&mut s, reference, &d, res)
                    .await?;
                if r.is_err() {
                    return Ok(r);
                }
                // The plugin may leave finishing to the host: verify now.
                let w = s
                    .data_mut()
                    .table
                    .get(&Resource::<BlobWriter>::new_own(rep))?;
                Ok(w.finish().map_err(|(k, m)| wit_error(k, m)))
            })
            .await;
        let _ = s
            .data_mut()
            .table
            .delete(Resource::<BlobWriter>::new_own(rep));
        self.shared.finish(s, &call, out)
    }

    /// Pushes `blob` (from `store`) for `reference`.
    pub async fn push(
        &self,
        reference: &str,
        blob: &Descriptor,
        store: Arc<dyn ContentStore>,
    ) -> Result<(), HostError> {
        let call = format!("push {}", blob.digest);
        let file = store.open(&blob.digest).map_err(|e| HostError::Io {
            plugin: self.shared.plugin.to_string(),
            call: call.clone(),
            path: blob.digest.clone().into(),
            source: e,
        })?;
        let mut s = self.shared.store(&call, Some(store))?;
        let res = s
            .data_mut()
            .table
            .push(BlobReader::new(file))
            .map_err(|e| self.shared.load_error(e))?;
        let rep = res.rep();
        let d = wit_desc(blob);
        let out = self
            .shared
            .within(async {
                let b = self.pre.instantiate_async(&mut s).await?;
                b.berth_plugin_fetcher()
                    .call_push(&mut s, reference, &d, res)
                    .await
            })
            .await;
        let _ = s
            .data_mut()
            .table
            .delete(Resource::<BlobReader>::new_own(rep));
        self.shared.finish(s, &call, out)
    }
}
