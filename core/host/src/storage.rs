//! A loaded storage driver and its verbs (containerd's snapshotter verbs).
//!
//! Each call gets a fresh instance; a failed call's `layer-fs` effects are
//! rolled back; the mounts a driver returns are checked and made absolute
//! before the core sees them.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use wasmtime::Store;
use wasmtime_wasi_io::streams::{DynInputStream, DynOutputStream};

use crate::bindings::storage::berth::plugin::types::{Error as WitError, Mount as WitMount};
use crate::bindings::storage::exports::berth::plugin::storage::{Guest, Layer};
use crate::bindings::storage::StorageDriverPre;
use crate::call::{Lent, Shared};
use crate::error::HostError;
use crate::host::PluginInfo;
use crate::mounts;
use crate::state::State;
use crate::streams::{lock, ReadStream, SharedReader, WriteStream};
use crate::types::{ApplyStats, Mount, Usage};

/// A storage driver plugin. Cheap to clone; calls may run concurrently,
/// each in its own instance.
#[derive(Clone)]
pub struct StoragePlugin {
    shared: Shared,
    pre: StorageDriverPre<State>,
}

impl std::fmt::Debug for StoragePlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoragePlugin")
            .field("info", &self.shared.info)
            .finish_non_exhaustive()
    }
}

/// Checks a plugin's mounts inside the call, so a refusal fails (and rolls
/// back) the call like any other violation.
fn checked(
    shared: &Shared,
    store: &mut Store<State>,
    r: Result<Vec<WitMount>, WitError>,
) -> Result<Vec<Mount>, WitError> {
    let m = r?;
    mounts::translate(&shared.root, m).map_err(|what| {
        store.data_mut().violation = Some(crate::error::Refusal::Mount(what.clone()));
        WitError::Denied(what)
    })
}

impl StoragePlugin {
    pub(crate) fn new(shared: Shared, pre: StorageDriverPre<State>) -> StoragePlugin {
        StoragePlugin { shared, pre }
    }

    /// The plugin's name, root and where its compiled code came from.
    pub fn info(&self) -> &PluginInfo {
        &self.shared.info
    }

    /// Runs the export `f` calls on a fresh instance, in a fresh store.
    async fn call<T>(
        &self,
        call: &str,
        f: impl AsyncFnOnce(&Guest, &mut Store<State>) -> wasmtime::Result<Result<T, WitError>>,
    ) -> Result<T, HostError> {
        let store = self.shared.store(call, None)?;
        self.call_in(call, store, None, f).await
    }

    /// Runs the export `f` calls on a fresh instance in `store`, which may
    /// hold a resource `lent` to the guest for the call.
    async fn call_in<T>(
        &self,
        call: &str,
        store: Store<State>,
        lent: Option<Lent>,
        f: impl AsyncFnOnce(&Guest, &mut Store<State>) -> wasmtime::Result<Result<T, WitError>>,
    ) -> Result<T, HostError> {
        let run = async |store: &mut Store<State>| {
            let b = self.pre.instantiate_async(&mut *store).await?;
            f(b.berth_plugin_storage(), store).await
        };
        self.shared.run(call, store, lent, run).await
    }

    /// Whether the layer `id` is unpacked.
    pub async fn has_layer(&self, id: &str) -> Result<bool, HostError> {
        self.call(&format!("has-layer {id}"), async |g, s| {
            g.call_has_layer(s, id).await.map(Ok)
        })
        .await
    }

    /// Unpacks the (already decompressed) layer `tar` as `id` on top of
    /// `parent`. The guest reads it as a `wasi:io` input stream; file
    /// contents go from `tar` to disk in the host (`layer-fs.write-file`).
    pub async fn apply_layer(
        &self,
        id: &str,
        parent: Option<&str>,
        tar: Box<dyn Read + Send>,
    ) -> Result<ApplyStats, HostError> {
        let call = format!("apply-layer {id}");
        let mut store = self.shared.store(&call, None)?;
        let reader: SharedReader = Arc::new(Mutex::new(tar));
        let stream: DynInputStream = Box::new(ReadStream::new(reader.clone()));
        let (res, lent) = self.shared.lend(&mut store, stream)?;
        store.data_mut().tar = Some((res.rep(), reader));
        let layer = Layer {
            id: id.to_owned(),
            parent: parent.map(str::to_owned),
        };
        self.call_in(&call, store, Some(lent), async |g, s| {
            let r = g.call_apply_layer(s, &layer, res).await?;
            Ok(r.map(|s| ApplyStats {
                entries: s.entries,
                bytes: s.bytes,
            }))
        })
        .await
    }

    /// A writable snapshot `key` on `parent`; returns its (checked, absolute) mounts.
    pub async fn prepare(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>, HostError> {
        self.call(&format!("prepare {key}"), async |g, s| {
            let r = g.call_prepare(&mut *s, key, parent).await?;
            Ok(checked(&self.shared, s, r))
        })
        .await
    }

    /// A read-only view `key` of the layer `parent`.
    pub async fn view(&self, key: &str, parent: &str) -> Result<Vec<Mount>, HostError> {
        self.call(&format!("view {key}"), async |g, s| {
            let r = g.call_view(&mut *s, key, parent).await?;
            Ok(checked(&self.shared, s, r))
        })
        .await
    }

    /// The mounts of the existing snapshot `key`.
    pub async fn mounts(&self, key: &str) -> Result<Vec<Mount>, HostError> {
        self.call(&format!("mounts {key}"), async |g, s| {
            let r = g.call_mounts(&mut *s, key).await?;
            Ok(checked(&self.shared, s, r))
        })
        .await
    }

    /// Turns the writable snapshot `key` into the layer `id`.
    pub async fn commit(&self, key: &str, id: &str) -> Result<(), HostError> {
        self.call(&format!("commit {key}"), async |g, s| {
            g.call_commit(s, key, id).await
        })
        .await
    }

    /// Removes a snapshot or an unused layer.
    pub async fn remove(&self, key: &str) -> Result<(), HostError> {
        self.call(&format!("remove {key}"), async |g, s| {
            g.call_remove(s, key).await
        })
        .await
    }

    /// Space used by a snapshot or layer.
    pub async fn usage(&self, key: &str) -> Result<Usage, HostError> {
        self.call(&format!("usage {key}"), async |g, s| {
            let r = g.call_usage(s, key).await?;
            Ok(r.map(|u| Usage {
                size: u.size,
                inodes: u.inodes,
            }))
        })
        .await
    }

    /// Writes the changes of snapshot `key` as an uncompressed layer tar to `out`.
    pub async fn diff(&self, key: &str, out: Box<dyn Write + Send>) -> Result<(), HostError> {
        let call = format!("diff {key}");
        let mut store = self.shared.store(&call, None)?;
        let sink = Arc::new(Mutex::new(Some(out)));
        let stream: DynOutputStream = Box::new(WriteStream::new(sink.clone()));
        let (res, lent) = self.shared.lend(&mut store, stream)?;
        self.call_in(&call, store, Some(lent), async |g, s| {
            g.call_diff(s, key, res).await
        })
        .await?;
        if let Some(mut w) = lock(&sink).take() {
            w.flush().map_err(|e| HostError::Io {
                plugin: self.shared.plugin.to_string(),
                call: call.clone(),
                path: "(diff output)".into(),
                source: e,
            })?;
        }
        Ok(())
    }

    /// Removes every layer and snapshot not in `keep`; returns what was removed.
    pub async fn gc(&self, keep: &[String]) -> Result<Vec<String>, HostError> {
        self.call("gc", async |g, s| g.call_gc(s, keep).await).await
    }
}
