//! The plugin host: one wasmtime engine (pooling allocator, epoch
//! interruption driven by a ticker thread) that loads plugins.
//!
//! Loading takes the compiled code from the disk cache (installing there
//! what berth's build compiled, or compiling once), checks the ABI version,
//! links exactly the interfaces the plugin's kind may use and
//! pre-instantiates it. Calls then instantiate from that `InstancePre` in
//! microseconds.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::Engine;

use crate::beneath::Root;
use crate::bindings::{fetcher as fb, network as nb, storage as sb};
use crate::cache::{Cache, Origin, Source};
use crate::call::Shared;
use crate::config::{HostConfig, PluginSpec, WasmSource};
use crate::engine_config;
use crate::error::HostError;
use crate::fetcher::FetcherPlugin;
use crate::http::HttpGrants;
use crate::network::{NetworkPlugin, Networking};
use crate::state::State;
use crate::storage::StoragePlugin;
use crate::version;

/// The epoch ticker: it ticks only while a call runs (an idle daemon is not
/// woken a hundred times a second), and stops when the last user of the
/// engine is gone.
#[derive(Debug)]
pub(crate) struct Ticker {
    stop: Arc<AtomicBool>,
    active: Arc<std::sync::atomic::AtomicUsize>,
    thread: std::thread::Thread,
}

/// Keeps the ticker ticking while a call runs.
#[derive(Debug)]
pub(crate) struct Busy(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Ticker {
    pub(crate) fn busy(&self) -> Busy {
        if self.active.fetch_add(1, Ordering::SeqCst) == 0 {
            self.thread.unpark();
        }
        Busy(self.active.clone())
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.unpark();
    }
}

/// Runs plugins: one engine shared by all of them.
#[derive(Clone)]
pub struct PluginHost {
    engine: Engine,
    cfg: Arc<HostConfig>,
    cache: Arc<Cache>,
    ticker: Arc<Ticker>,
}

impl std::fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHost")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// What a loaded plugin is, for `berth plugin ls`.
#[derive(Debug, Clone)]
pub struct PluginInfo {
    /// The plugin's name.
    pub name: String,
    /// The compiled component's cache file.
    pub cache_file: std::path::PathBuf,
    /// Whether this load compiled the component or took it from the cache.
    pub origin: Origin,
    /// The plugin's root directory (absolute).
    pub root: std::path::PathBuf,
}

/// The interfaces (without versions) each kind may import.
const COMMON: &[&str] = &[
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "berth:plugin/log",
    "berth:plugin/types",
];
const STORAGE: &[&str] = &["berth:plugin/layer-fs"];
const FETCHER: &[&str] = &[
    "berth:plugin/blobs",
    "wasi:http/types",
    "wasi:http/outgoing-handler",
];

/// Which kind of plugin is being loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Storage,
    Fetcher,
    Network,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Storage => "storage driver",
            Kind::Fetcher => "image fetcher",
            Kind::Network => "network plugin",
        }
    }

    fn allows(self, import: &str) -> bool {
        let iface = import.split('@').next().unwrap_or(import);
        let extra = match self {
            Kind::Storage => STORAGE,
            Kind::Fetcher => FETCHER,
            Kind::Network => &[],
        };
        COMMON.contains(&iface) || extra.contains(&iface)
    }
}

impl PluginHost {
    /// Creates the engine and starts its epoch ticker.
    pub fn new(cfg: HostConfig) -> Result<PluginHost, HostError> {
        let load_err = |reason: String| HostError::Load {
            plugin: "(host)".into(),
            reason,
        };
        let pool = engine_config::Pool {
            max_instances: cfg.max_instances,
            max_memory: cfg.max_memory,
        };
        let engine = engine_config::config(&target_lexicon::HOST.to_string(), Some(pool))
            .and_then(|c| Engine::new(&c))
            .map_err(|e| load_err(format!("cannot create the wasmtime engine: {e}")))?;
        std::fs::create_dir_all(&cfg.cache_dir)
            .map_err(|e| load_err(format!("cannot create {}: {e}", cfg.cache_dir.display())))?;

        crate::watch::install_handler()
            .map_err(|e| load_err(format!("cannot install the call interrupt's handler: {e}")))?;
        if !crate::watch::counting() {
            tracing::warn!(
                "berth_host::CountingAlloc is not the global allocator: host-side memory of \
                 plugin calls is not counted against their memory caps"
            );
        }
        let stop = Arc::new(AtomicBool::new(false));
        let active = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (e, s, a, tick) = (engine.clone(), stop.clone(), active.clone(), cfg.tick);
        let handle = std::thread::Builder::new()
            .name("berth-epoch".into())
            .spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    if a.load(Ordering::SeqCst) == 0 {
                        // An unpark before this park makes it return at once.
                        std::thread::park();
                        continue;
                    }
                    std::thread::sleep(tick);
                    e.increment_epoch();
                    // A call blocked in a system call past its deadline
                    // never sees the epoch: interrupt it.
                    crate::watch::interrupt_overdue();
                }
            })
            .map_err(|e| load_err(format!("cannot start the epoch ticker: {e}")))?;
        let cache = Cache::new(cfg.cache_dir.clone(), &engine, cfg.compiler.clone());
        Ok(PluginHost {
            engine,
            cache: Arc::new(cache),
            cfg: Arc::new(cfg),
            ticker: Arc::new(Ticker {
                stop,
                active,
                thread: handle.thread().clone(),
            }),
        })
    }

    /// Loads a storage driver.
    pub fn load_storage(&self, spec: PluginSpec) -> Result<StoragePlugin, HostError> {
        let (shared, component) = self.prepare(&spec, Kind::Storage)?;
        let mut linker = Linker::<State>::new(&self.engine);
        link_common(&mut linker).map_err(|e| shared.load_error(e))?;
        sb::berth::plugin::layer_fs::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)
            .map_err(|e| shared.load_error(e))?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| shared.load_error(format!("cannot link: {e}")))?;
        let pre = sb::StorageDriverPre::new(pre)
            .map_err(|e| shared.load_error(format!("not a storage driver: {e}")))?;
        Ok(StoragePlugin::new(shared, pre))
    }

    /// Loads an image fetcher.
    pub fn load_fetcher(&self, spec: PluginSpec) -> Result<FetcherPlugin, HostError> {
        let (shared, component) = self.prepare(&spec, Kind::Fetcher)?;
        let mut linker = Linker::<State>::new(&self.engine);
        link_common(&mut linker).map_err(|e| shared.load_error(e))?;
        fb::berth::plugin::blobs::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)
            .map_err(|e| shared.load_error(e))?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|e| shared.load_error(e))?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| shared.load_error(format!("cannot link: {e}")))?;
        let pre = fb::ImageFetcherPre::new(pre)
            .map_err(|e| shared.load_error(format!("not an image fetcher: {e}")))?;
        Ok(FetcherPlugin::new(shared, pre))
    }

    /// Loads a network plugin; it plans, and `net` applies its plans.
    pub fn load_network(
        &self,
        spec: PluginSpec,
        net: &Networking,
    ) -> Result<NetworkPlugin, HostError> {
        let (shared, component) = self.prepare(&spec, Kind::Network)?;
        let mut linker = Linker::<State>::new(&self.engine);
        link_common(&mut linker).map_err(|e| shared.load_error(e))?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| shared.load_error(format!("cannot link: {e}")))?;
        let pre = nb::NetworkPluginPre::new(pre)
            .map_err(|e| shared.load_error(format!("not a network plugin: {e}")))?;
        Ok(NetworkPlugin::new(shared, pre, net.clone()))
    }

    /// Loads the compiled plugin (see [`Cache::load`]), checks its version
    /// and imports; opens its root.
    fn prepare(&self, spec: &PluginSpec, kind: Kind) -> Result<(Shared, Component), HostError> {
        let plugin = spec.name.clone();
        let load = |reason: String| HostError::Load {
            plugin: plugin.clone(),
            reason,
        };
        let read;
        let source = match &spec.wasm {
            WasmSource::Builtin(b) => Source::Builtin(b),
            WasmSource::Bytes(b) => Source::Wasm(b),
            WasmSource::File(p) => {
                read = std::fs::read(p)
                    .map_err(|e| load(format!("cannot read {}: {e}", p.display())))?;
                Source::Wasm(&read)
            }
        };
        let (component, origin, cache_file) = self
            .cache
            .load(&self.engine, &plugin, source)
            .map_err(load)?;
        let ty = component.component_type();
        let imports: Vec<String> = ty
            .imports(&self.engine)
            .map(|(n, _)| n.to_string())
            .collect();
        let exports: Vec<String> = ty
            .exports(&self.engine)
            .map(|(n, _)| n.to_string())
            .collect();
        version::check(&plugin, imports.iter().chain(&exports).map(String::as_str))?;
        if let Some(bad) = imports.iter().find(|i| !kind.allows(i)) {
            return Err(load(format!(
                "it imports `{bad}`, which a {} may not use; only WASI cli, clocks, filesystem, random and io{} are linked",
                kind.name(),
                match kind {
                    Kind::Storage => ", berth:plugin/log and berth:plugin/layer-fs",
                    Kind::Fetcher => ", wasi:http, berth:plugin/log and berth:plugin/blobs",
                    Kind::Network => " and berth:plugin/log",
                }
            )));
        }
        if spec.grants.memory_limit > self.cfg.max_memory {
            return Err(load(format!(
                "its memory limit {} exceeds the host's maximum {}",
                spec.grants.memory_limit, self.cfg.max_memory
            )));
        }
        if spec.grants.root.as_os_str().is_empty() {
            return Err(load("its grants name no root directory".into()));
        }
        let root = Root::open(&spec.grants.root).map_err(|e| HostError::Io {
            plugin: plugin.clone(),
            call: "load".into(),
            path: spec.grants.root.clone(),
            source: e,
        })?;
        let info = PluginInfo {
            name: plugin.clone(),
            cache_file,
            origin,
            root: root.path().to_owned(),
        };
        tracing::debug!(plugin, ?origin, "loaded plugin");
        let shared = Shared {
            engine: self.engine.clone(),
            plugin: plugin.as_str().into(),
            grants: Arc::new(spec.grants.clone()),
            http: Arc::new(HttpGrants::new(&spec.grants)),
            learned: Arc::new(Mutex::new(Default::default())),
            root: Arc::new(root),
            info: Arc::new(info),
            ticker: self.ticker.clone(),
        };
        Ok((shared, component))
    }

    /// How many components this host compiled (in this process or a
    /// separate one); those built into berth and those found in the cache
    /// are not counted.
    pub fn compiled(&self) -> u64 {
        self.cache.compiled()
    }

    /// The engine's epoch tick.
    pub fn tick(&self) -> Duration {
        self.cfg.tick
    }
}

/// Links what every kind gets: WASI cli, clocks, filesystem, random and io
/// (no sockets), and `berth:plugin/log`.
fn link_common(l: &mut Linker<State>) -> wasmtime::Result<()> {
    use wasmtime_wasi::cli::WasiCli;
    use wasmtime_wasi::clocks::WasiClocks;
    use wasmtime_wasi::filesystem::WasiFilesystem;
    use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, random};
    use wasmtime_wasi::random::WasiRandom;

    wasmtime_wasi_io::add_to_linker_async(l)?;
    clocks::wall_clock::add_to_linker::<State, WasiClocks>(
        l,
        <State as wasmtime_wasi::clocks::WasiClocksView>::clocks,
    )?;
    clocks::monotonic_clock::add_to_linker::<State, WasiClocks>(
        l,
        <State as wasmtime_wasi::clocks::WasiClocksView>::clocks,
    )?;
    filesystem::types::add_to_linker::<State, WasiFilesystem>(
        l,
        <State as wasmtime_wasi::filesystem::WasiFilesystemView>::filesystem,
    )?;
    filesystem::preopens::add_to_linker::<State, WasiFilesystem>(
        l,
        <State as wasmtime_wasi::filesystem::WasiFilesystemView>::filesystem,
    )?;
    crate::fsguard::link(l)?;
    random::random::add_to_linker::<State, WasiRandom>(
        l,
        <State as wasmtime_wasi::random::WasiRandomView>::random,
    )?;
    random::insecure::add_to_linker::<State, WasiRandom>(
        l,
        <State as wasmtime_wasi::random::WasiRandomView>::random,
    )?;
    random::insecure_seed::add_to_linker::<State, WasiRandom>(
        l,
        <State as wasmtime_wasi::random::WasiRandomView>::random,
    )?;
    let cv = <State as wasmtime_wasi::cli::WasiCliView>::cli;
    cli::exit::add_to_linker::<State, WasiCli>(l, cv)?;
    cli::environment::add_to_linker::<State, WasiCli>(l, cv)?;
    cli::stdin::add_to_linker::<State, WasiCli>(l, cv)?;
    cli::stdout::add_to_linker::<State, WasiCli>(l, cv)?;
    cli::stderr::add_to_linker::<State, WasiCli>(l, cv)?;
    cli::terminal_input::add_to_linker::<State, WasiCli>(l, cv)?;
    cli::terminal_output::add_to_linker::<State, WasiCli>(l, cv)?;
    cli::terminal_stdin::add_to_linker::<State, WasiCli>(l, cv)?;
    cli::terminal_stdout::add_to_linker::<State, WasiCli>(l, cv)?;
    cli::terminal_stderr::add_to_linker::<State, WasiCli>(l, cv)?;
    sb::berth::plugin::log::add_to_linker::<State, HasSelf<State>>(l, |s| s)?;
    Ok(())
}
