//! A loaded image fetcher and its verbs: resolve, fetch, push.
//!
//! Blobs go through the host's verifying writer into the engine's content
//! store; the plugin reaches only the registries it was granted, and never
//! sees the credentials the host adds.

use std::sync::Arc;

use wasmtime::component::Resource;
use wasmtime::Store;

use crate::bindings::fetcher::exports::berth::plugin::fetcher::{Guest, Platform as WitPlatform};
use crate::bindings::fetcher::ImageFetcherPre;
use crate::bindings::storage::berth::plugin::types::{
    Descriptor as WitDescriptor, Error as WitError,
};
use crate::blobs::{
    descriptor, wit_error, BlobReader, BlobWriter, ContentStore, PushLedger, Verifier,
};
use crate::call::{Lent, Shared};
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

    /// Runs the export `f` calls on a fresh instance in `store`, which may
    /// hold a resource `lent` to the guest for the call.
    async fn call<T>(
        &self,
        call: &str,
        store: Store<State>,
        lent: Option<Lent>,
        f: impl AsyncFnOnce(&Guest, &mut Store<State>) -> wasmtime::Result<Result<T, WitError>>,
    ) -> Result<T, HostError> {
        let run = async |store: &mut Store<State>| {
            let b = self.pre.instantiate_async(&mut *store).await?;
            f(b.berth_plugin_fetcher(), store).await
        };
        self.shared.run(call, store, lent, run).await
    }

    /// Resolves `reference` for `platform`; the manifest (and index) end up in `store`.
    pub async fn resolve(
        &self,
        reference: &str,
        platform: &Platform,
        store: Arc<dyn ContentStore>,
    ) -> Result<Resolved, HostError> {
        let call = format!("resolve {reference}");
        let s = self.shared.store(&call, Some(store))?;
        let p = WitPlatform {
            os: platform.os.clone(),
            architecture: platform.architecture.clone(),
            variant: platform.variant.clone(),
        };
        self.call(&call, s, None, async |g, s| {
            let r = g.call_resolve(s, reference, &p).await?;
            Ok(r.map(|r| Resolved {
                name: r.name,
                manifest: descriptor(r.manifest),
            }))
        })
        .await
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
        let (res, lent) = self.shared.lend(&mut s, BlobWriter::new(verifier))?;
        let rep = res.rep();
        let d = wit_desc(blob);
        self.call(&call, s, Some(lent), async |g, s| {
            let r = g.call_fetch(&mut *s, reference, &d, res).await?;
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
        .await
    }

    /// Pushes `blob` (from `store`) for `reference`; the plugin learns
    /// known sources from, and reports to, `ledger`.
    pub async fn push(
        &self,
        reference: &str,
        blob: &Descriptor,
        store: Arc<dyn ContentStore>,
        ledger: Arc<dyn PushLedger>,
    ) -> Result<(), HostError> {
        let call = format!("push {}", blob.digest);
        let file = store.open(&blob.digest).map_err(|e| HostError::Io {
            plugin: self.shared.plugin.to_string(),
            call: call.clone(),
            path: blob.digest.clone().into(),
            source: e,
        })?;
        let mut s = self.shared.store(&call, Some(store))?;
        s.data_mut().push = Some(ledger);
        let (res, lent) = self
            .shared
            .lend(&mut s, BlobReader::new(&blob.digest, file))?;
        let d = wit_desc(blob);
        self.call(&call, s, Some(lent), async |g, s| {
            g.call_push(s, reference, &d, res).await
        })
        .await
    }
}
