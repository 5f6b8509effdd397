//! A loaded storage driver and its verbs (containerd's snapshotter verbs).
//!
//! Each call gets a fresh instance; a failed call's `layer-fs` effects are
//! rolled back; the mounts a driver returns are checked and made absolute
//! before the core sees them.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use wasmtime::component::Resource;
use wasmtime::Store;
use wasmtime_wasi_io::streams::{DynInputStream, DynOutputStream};

use crate::bindings::storage::berth::plugin::types::{Error as WitError, Mount as WitMount};
use crate::bindings::storage::exports::berth::plugin::storage::Layer;
use crate::bindings::storage::StorageDriverPre;
use crate::call::Shared;
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
        store.data_mut().violation = Some(what.clone());
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

    /// Whether the layer `id` is unpacked.
    pub async fn has_layer(&self, id: &str) -> Result<bool, HostError> {
        let call = format!("has-layer {id}");
        let mut store = self.shared.store(&call, None)?;
        let out = self
            .shared
            .within(async {
                let b = self.pre.instantiate_async(&mut store).await?;
                b.berth_plugin_storage()
                    .call_has_layer(&mut store, id)
                    .await
                    .map(Ok)
            })
            .await;
        self.shared.finish(store, &call, out)
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
        let res = store
            .data_mut()
            .table
            .push(stream)
            .map_err(|e| self.shared.load_error(e))?;
        let rep = res.rep();
        store.data_mut().tar = Some((rep, reader));
        let layer = Layer {
            id: id.to_owned(),
            parent: parent.map(str::to_owned),
        };
        let out = self
            .shared
            .within(async {
                let b = self.pre.instantiate_async(&mut store).await?;
                let r = b
                    .berth_plugin_storage()
                    .call_apply_layer(&mut store, &layer, res)
                    .await?;
                Ok(r.map(|s| ApplyStats {
                    entries: s.entries,
                    bytes: s.bytes,
                }))
            })
            .await;
        let _ = store
            .data_mut()
            .table
            .delete(Resource::<DynInputStream>::new_own(rep));
        self.shared.finish(store, &call, out)
    }

    /// A writable snapshot `key` on `parent`; returns its (checked, absolute) mounts.
    pub async fn prepare(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>, HostError> {
        let call = format!("prepare {key}");
        let mut store = self.shared.store(&call, None)?;
        let out = self
            .shared
            .within(async {
                let b = self.pre.instantiate_async(&mut store).await?;
                let r = b
                    .berth_plugin_storage()
                    .call_prepare(&mut store, key, parent)
                    .await?;
                Ok(checked(&self.shared, &mut store, r))
            })
            .await;
        self.shared.finish(store, &call, out)
    }

    /// A read-only view `key` of the layer `parent`.
    pub async fn view(&self, key: &str, parent: &str) -> Result<Vec<Mount>, HostError> {
        let call = format!("view {key}");
        let mut store = self.shared.store(&call, None)?;
        let out = self
            .shared
            .within(async {
                let b = self.pre.instantiate_async(&mut store).await?;
                let r = b
                    .berth_plugin_storage()
                    .call_view(&mut store, key, parent)
                    .await?;
                Ok(checked(&self.shared, &mut store, r))
            })
            .await;
        self.shared.finish(store, &call, out)
    }

    /// The mounts of the existing snapshot `key`.
    pub async fn mounts(&self, key: &str) -> Result<Vec<Mount>, HostError> {
        let call = format!("mounts {key}");
        let mut store = self.shared.store(&call, None)?;
        let out = self
            .shared
            .within(async {
                let b = self.pre.instantiate_async(&mut store).await?;
                let r = b
                    .berth_plugin_storage()
                    .call_mounts(&mut store, key)
                    .await?;
                Ok(checked(&self.shared, &mut store, r))
            })
            .await;
        self.shared.finish(store, &call, out)
    }

    /// Turns the writable snapshot `key` into the layer `id`.
    pub async fn commit(&self, key: &str, id: &str) -> Result<(), HostError> {
        let call = format!("commit {key}");
        let mut store = self.shared.store(&call, None)?;
        let out = self
            .shared
            .within(async {
                let b = self.pre.instantiate_async(&mut store).await?;
                b.berth_plugin_storage()
                    .call_commit(&mut store, key, id)
                    .await
            })
            .await;
        self.shared.finish(store, &call, out)
    }

    /// Removes a snapshot or an unused layer.
    pub async fn remove(&self, key: &str) -> Result<(), HostError> {
        let call = format!("remove {key}");
        let mut store = self.shared.store(&call, None)?;
        let out = self
            .shared
            .within(async {
                let b = self.pre.instantiate_async(&mut store).await?;
                b.berth_plugin_storage().call_remove(&mut store, key).await
            })
            .await;
        self.shared.finish(store, &call, out)
    }

    /// Space used by a snapshot or layer.
    pub async fn usage(&self, key: &str) -> Result<Usage, HostError> {
        let call = format!("usage {key}");
        let mut store = self.shared.store(&call, None)?;
        let out = self
            .shared
            .within(async {
                let b = self.pre.instantiate_async(&mut store).await?;
                let r = b.berth_plugin_storage().call_usage(&mut store, key).await?;
                Ok(r.map(|u| Usage {
                    size: u.size,
                    inodes: u.inodes,
                }))
            })
            .await;
        self.shared.finish(store, &call, out)
    }

    /// Writes the changes of snapshot `key` as an uncompressed layer tar to `out`.
    pub async fn diff(&self, key: &str, out: Box<dyn Write + Send>) -> Result<(), HostError> {
        let call = format!("diff {key}");
        let mut store = self.shared.store(&call, None)?;
        let sink = Arc::new(Mutex::new(Some(out)));
        let stream: DynOutputStream = Box::new(WriteStream::new(sink.clone()));
        let res = store
            .data_mut()
            .table
            .push(stream)
            .map_err(|e| self.shared.load_error(e))?;
        let rep = res.rep();
        let result = self
            .shared
            .within(async {
                let b = self.pre.instantiate_async(&mut store).await?;
                b.berth_plugin_storage()
                    .call_diff(&mut store, key, res)
                    .await
            })
            .await;
        let _ = store
            .data_mut()
            .table
            .delete(Resource::<DynOutputStream>::new_own(rep));
        self.shared.finish(store, &call, result)?;
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
        let call = "gc".to_owned();
        let mut store = self.shared.store(&call, None)?;
        let out = self
            .shared
            .within(async {
                let b = self.pre.instantiate_async(&mut store).await?;
                b.berth_plugin_storage().call_gc(&mut store, keep).await
            })
            .await;
        self.shared.finish(store, &call, out)
    }
}
