//! One plugin call: a fresh store with its limits, the deadline, and turning
//! the outcome into a `HostError` that names the plugin, the call and the
//! cause — rolling back what a failed call created.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use wasmtime::component::{Resource, ResourceTable};
use wasmtime::{Engine, Store, Trap, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};
use wasmtime_wasi_http::WasiHttpCtx;

use crate::beneath::Root;
use crate::bindings::storage::berth::plugin::types::Error as WitError;
use crate::blobs::ContentStore;
use crate::config::Grants;
use crate::error::{HostError, PluginError, PluginErrorKind};
use crate::host::{PluginInfo, Ticker};
use crate::http::{HttpGrants, HttpPolicy, Learned};
use crate::journal::Journal;
use crate::state::{Limiter, OutputLog, State};
use crate::streams::lock;
use crate::watch::Watch;

/// What every call of one plugin shares.
#[derive(Clone)]
pub(crate) struct Shared {
    pub engine: Engine,
    pub plugin: Arc<str>,
    pub grants: Arc<Grants>,
    pub http: Arc<HttpGrants>,
    pub learned: Arc<Mutex<Learned>>,
    pub root: Arc<Root>,
    pub info: Arc<PluginInfo>,
    pub ticker: Arc<Ticker>,
}

/// A resource in a call's table that the host lent the guest for the call.
pub(crate) struct Lent {
    rep: u32,
    remove: fn(&mut ResourceTable, u32),
}

/// The outcome of running a call's future under its deadline.
type Outcome<T> = Result<wasmtime::Result<Result<T, WitError>>, tokio::time::error::Elapsed>;

impl Shared {
    pub(crate) fn load_error(&self, e: impl std::fmt::Display) -> HostError {
        HostError::Load {
            plugin: self.plugin.to_string(),
            reason: e.to_string(),
        }
    }

    /// A fresh store for one call: WASI with the root preopened as `/` (and
    /// read paths read-only), the memory cap, and an epoch deadline checked
    /// every tick, yielding to the executor in between.
    pub(crate) fn store(
        &self,
        call: &str,
        blobs: Option<Arc<dyn ContentStore>>,
    ) -> Result<Store<State>, HostError> {
        let io_err = |path: &std::path::Path, e: wasmtime::Error| HostError::Io {
            plugin: self.plugin.to_string(),
            call: call.to_owned(),
            path: path.to_owned(),
            source: std::io::Error::other(e.to_string()),
        };
        let stderr = OutputLog::new(self.plugin.clone(), "stderr");
        let mut b = WasiCtxBuilder::new();
        b.stdout(OutputLog::new(self.plugin.clone(), "stdout"))
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            // A plugin's filesystem calls are short and local: doing them on
            // this thread instead of hopping to tokio's blocking pool makes an
            // instantiate + call ~3x cheaper (bench/plugin.sh).
            .allow_blocking_current_thread(true);
        b.preopened_dir(self.root.path(), "/", FsPerms::ReadWrite)
            .map_err(|e| io_err(self.root.path(), e))?;
        for p in &self.grants.read_paths {
            // A file is reached through its directory (preopens are directories).
            let dir = if p.is_dir() {
                p.as_path()
            } else {
                p.parent().unwrap_or(p)
            };
            let guest = dir.to_string_lossy();
            b.preopened_dir(dir, guest.as_ref(), FsPerms::ReadOnly)
                .map_err(|e| io_err(dir, e))?;
        }
        let timeout = self.grants.timeout;
        let deadline = Instant::now() + timeout;
        let state = State {
            plugin: self.plugin.clone(),
            wasi: b.build(),
            table: ResourceTable::new(),
            limiter: Limiter {
                limit: self.grants.memory_limit,
                hit: false,
                guest: 0,
                watch: Watch::start(deadline),
            },
            deadline,
            violation: None,
            root: self.root.clone(),
            journal: Journal::default(),
            devices_granted: self.grants.device_nodes,
            tar: None,
            http_ctx: WasiHttpCtx::new(),
            http: HttpPolicy::new(self.plugin.clone(), self.http.clone(), self.learned.clone()),
            blobs,
            push: None,
            stderr,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(1);
        // At every tick: past the deadline, past the memory cap (host-side
        // objects included), or after a refused request, the call ends.
        store.epoch_deadline_callback(|mut cx| {
            let s = cx.data_mut();
            let refused = s.violation.is_some() || lock(&s.http.denied).is_some();
            if refused || s.limiter.over() || Instant::now() >= s.deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        Ok(store)
    }

    /// Puts `value` (a stream or blob handle the guest gets for one call) in
    /// the store's table; [`Shared::run`] removes it again after the call.
    pub(crate) fn lend<R: Send + 'static>(
        &self,
        store: &mut Store<State>,
        value: R,
    ) -> Result<(Resource<R>, Lent), HostError> {
        let res = store
            .data_mut()
            .table
            .push(value)
            .map_err(|e| self.load_error(e))?;
        let lent = Lent {
            rep: res.rep(),
            remove: |table, rep| {
                let _ = table.delete(Resource::<R>::new_own(rep));
            },
        };
        Ok((res, lent))
    }

    /// One call from start to end: runs `f` (instantiate + call) on `store`
    /// under the call's deadline, removes what was lent to the guest, and
    /// turns the outcome into the API's result with [`Shared::finish`].
    pub(crate) async fn run<T>(
        &self,
        call: &str,
        mut store: Store<State>,
        lent: Option<Lent>,
        f: impl AsyncFnOnce(&mut Store<State>) -> wasmtime::Result<Result<T, WitError>>,
    ) -> Result<T, HostError> {
        let _busy = self.ticker.busy();
        let watch = store.data().limiter.watch.clone();
        let fut = tokio::time::timeout(self.grants.timeout, watch.watched(f(&mut store)));
        let out = off_the_workers(fut).await;
        if let Some(l) = lent {
            (l.remove)(&mut store.data_mut().table, l.rep);
        }
        self.finish(store, call, out)
    }

    /// Turns a call's outcome into the API's result; on any failure, rolls
    /// back what the call created. The store is dropped here in every case.
    fn finish<T>(
        &self,
        mut store: Store<State>,
        call: &str,
        outcome: Outcome<T>,
    ) -> Result<T, HostError> {
        let plugin = self.plugin.to_string();
        let call = call.to_owned();
        let state = store.data_mut();
        let http_denied = lock(&state.http.denied).take();
        let denied = state
            .violation
            .take()
            .or(http_denied.map(crate::error::Refusal::Http))
            .map(Box::new);
        let result = match outcome {
            // A violation ends the call even if the plugin went on to succeed.
            Ok(Ok(Ok(_))) if denied.is_some() => HostError::Denied {
                plugin,
                call,
                what: denied.expect("checked"),
            },
            Ok(Ok(Ok(v))) => {
                state.journal.commit();
                return Ok(v);
            }
            Ok(Ok(Err(e))) => match denied {
                Some(what) => HostError::Denied { plugin, call, what },
                None => HostError::Plugin {
                    plugin,
                    call,
                    error: plugin_error(e),
                },
            },
            Err(_elapsed) => HostError::Timeout {
                plugin,
                call,
                after: self.grants.timeout,
            },
            Ok(Err(trap)) => {
                if let Some(what) = denied {
                    HostError::Denied { plugin, call, what }
                } else if state.limiter.hit {
                    HostError::OutOfMemory {
                        plugin,
                        call,
                        limit: state.limiter.limit,
                    }
                } else if matches!(trap.downcast_ref::<Trap>(), Some(Trap::Interrupt))
                    || Instant::now() >= state.deadline
                {
                    HostError::Timeout {
                        plugin,
                        call,
                        after: self.grants.timeout,
                    }
                } else {
                    let tail = state.stderr.tail();
                    let mut cause = format!("{trap:?}");
                    if !tail.is_empty() {
                        cause.push_str("\nplugin stderr:\n");
                        cause.push_str(&tail);
                    }
                    HostError::Trap {
                        plugin,
                        call,
                        cause,
                    }
                }
            }
        };
        let undone = state.journal.len();
        state.journal.rollback(&state.root, &state.plugin);
        tracing::warn!(plugin = %state.plugin, undone, "{result}");
        Err(result)
    }
}

/// Runs a call where its blocking cannot stall the executor. A plugin's WASI
/// calls run on the thread that polls the call (cheaper than a hop to the
/// blocking pool for each), so on a multi-thread runtime the thread leaves
/// the worker pool for the call (`block_in_place`): a call stuck in a system
/// call until the watchdog interrupts it at its deadline holds up no other
/// task. A current-thread runtime (a test's) runs it in place.
async fn off_the_workers<F: std::future::Future>(fut: F) -> F::Output {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| h.block_on(fut))
        }
        _ => fut.await,
    }
}

fn plugin_error(e: WitError) -> PluginError {
    let (kind, message) = match e {
        WitError::NotFound(m) => (PluginErrorKind::NotFound, m),
        WitError::AlreadyExists(m) => (PluginErrorKind::AlreadyExists, m),
        WitError::Invalid(m) => (PluginErrorKind::Invalid, m),
        WitError::Denied(m) => (PluginErrorKind::Denied, m),
        WitError::Unavailable(m) => (PluginErrorKind::Unavailable, m),
        WitError::Unauthorized(m) => (PluginErrorKind::Unauthorized, m),
        WitError::Other(m) => (PluginErrorKind::Other, m),
    };
    PluginError { kind, message }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::blobs::ContentStore;
    use crate::{Descriptor, FetcherPlugin, Platform, StoragePlugin};

    fn send<T: Send>(_: T) {}

    /// Every call's future is `Send`, so an embedder may spawn it. This only
    /// has to compile; it is never run.
    #[allow(dead_code)]
    fn call_futures_are_send(
        s: &StoragePlugin,
        f: &FetcherPlugin,
        cs: Arc<dyn ContentStore>,
        l: Arc<dyn crate::PushLedger>,
        d: &Descriptor,
        p: &Platform,
    ) {
        send(s.has_layer("id"));
        send(s.apply_layer("id", None, Box::new(std::io::empty())));
        send(s.prepare("key", None));
        send(s.view("key", "id"));
        send(s.mounts("key"));
        send(s.commit("key", "id"));
        send(s.remove("key"));
        send(s.usage("key"));
        send(s.diff("key", Box::new(std::io::sink())));
        send(s.gc(&[]));
        send(f.resolve("ref", p, cs.clone()));
        send(f.fetch("ref", d, cs.clone()));
        send(f.push("ref", d, cs, l));
    }
}
