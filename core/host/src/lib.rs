//! berth-host: runs berth's plugins — storage drivers, image fetchers and
//! network plugins — as sandboxed WebAssembly components on wasmtime.
//!
//! One [`PluginHost`] owns the engine. Loading a plugin checks its ABI
//! version, takes its compiled form from the disk cache (built into berth for
//! the default plugins; otherwise compiled once, by a separate process when
//! configured), links only the interfaces its kind may use and
//! pre-instantiates it. Every call then runs in a fresh
//! instance with a deadline and a memory cap; a trap, timeout, out-of-memory
//! or policy violation fails that call with a [`HostError`] naming the plugin
//! and the call, and what the call created is rolled back.
//!
//! ```no_run
//! use berth_host::{Grants, HostConfig, PluginHost, PluginSpec, WasmSource};
//! # async fn demo() -> Result<(), berth_host::HostError> {
//! let host = PluginHost::new(HostConfig::new("/var/lib/berth/plugin-cache"))?;
//! let vfs = host.load_storage(PluginSpec {
//!     name: "storage-vfs".into(),
//!     wasm: WasmSource::File("/usr/lib/berth/storage-vfs.wasm".into()),
//!     grants: Grants::new("/var/lib/berth/storage/vfs"),
//! })?;
//! let tar = std::fs::File::open("layer.tar").expect("layer");
//! let stats = vfs.apply_layer("sha256:…", None, Box::new(tar)).await?;
//! println!("{} entries", stats.entries);
//! # Ok(()) }
//! ```

mod beneath;
mod bindings;
mod blobs;
mod cache;
mod call;
mod config;
mod engine_config;
mod error;
mod fetcher;
mod fsguard;
mod fsops;
mod host;
mod http;
mod journal;
mod layerfs;
mod login;
mod mounts;
pub mod net;
mod network;
mod state;
mod storage;
mod streams;
mod types;
mod version;
mod watch;

pub use blobs::{BlobIngest, ContentStore, PushLedger, PushOutcome};
pub use cache::{compile_to_file, Origin};
pub use config::{
    Builtin, Compiler, Credentials, Grants, HostConfig, HttpLimits, NetworkGrants, PluginSpec,
    WasmSource,
};
pub use engine_config::WASMTIME_VERSION;
pub use error::{CompileError, HostError, PluginError, PluginErrorKind, Refusal};
pub use fetcher::FetcherPlugin;
pub use host::{PluginHost, PluginInfo};
pub use login::{check_login, LoginError};
pub use net::{NetError, PlanViolation};
pub use network::{AttachRequest, Attachment, NetworkInfo, NetworkPlugin, NetworkSpec, Networking};
pub use storage::StoragePlugin;
pub use types::{ApplyStats, Descriptor, Mount, Platform, Resolved, Usage};
pub use version::{ABI_PACKAGE, ABI_VERSION};
pub use watch::{counting, CountingAlloc};
