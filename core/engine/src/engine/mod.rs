//! The engine: pull, load, save, tag, remove and run images, with the
//! storage driver and image fetchers as plugins and the runtime underneath.
//!
//! This module holds the [`Engine`] itself (opening it, its accessors) and
//! the platform helpers; `pull` gets images in (pull, load), `push` sends
//! them to registries, `image_ops`
//! works on the images already here (inspect, tag, remove, save), and
//! `plugins` makes the specs the plugins are loaded from.

mod commit;
mod image_ops;
mod plugins;
mod pull;
mod push;
mod verify;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_host::{Compiler, Platform, PluginHost, StoragePlugin};

use crate::builtins::Builtins;
use crate::config::{Config, PluginKind};
use crate::content::ContentStore;
use crate::error::{EngineError, Result};
use crate::images::ImageStore;
use crate::sources::BlobSources;

pub use commit::{Change, ChangeKind, CommitMeta};
pub use image_ops::{HistoryEntry, ImageSummary, ImageUsage};
use plugins::plugin_spec;
pub use push::{registry_of, Pushed};

/// The engine over one root directory.
pub struct Engine {
    root: PathBuf,
    content: Arc<ContentStore>,
    images: ImageStore,
    host: PluginHost,
    storage: StoragePlugin,
    config: Config,
    builtins: Builtins,
    sources: Arc<BlobSources>,
    /// `userns-remap`, resolved at open.
    remap: Option<Arc<crate::userns::Remap>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("root", &self.root).finish()
    }
}

/// The platform of this machine, in OCI terms.
pub fn host_platform() -> Platform {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        other => other,
    };
    Platform {
        os: "linux".into(),
        architecture: arch.into(),
        variant: if arch == "arm64" {
            "v8".into()
        } else {
            String::new()
        },
    }
}

/// Parses `os/arch[/variant]`.
pub fn parse_platform(s: &str) -> Result<Platform> {
    let parts: Vec<&str> = s.split('/').collect();
    match parts.as_slice() {
        [os, arch] => Ok(Platform {
            os: os.to_string(),
            architecture: arch.to_string(),
            variant: String::new(),
        }),
        [os, arch, v] => Ok(Platform {
            os: os.to_string(),
            architecture: arch.to_string(),
            variant: v.to_string(),
        }),
        _ => Err(EngineError::Reference {
            reference: s.into(),
            reason: "a platform is os/arch[/variant], e.g. linux/amd64".into(),
        }),
    }
}

impl Engine {
    /// Opens (or creates) the engine's state under `root`, with `berth.toml`
    /// from `config_path`; components that are neither built in nor in the
    /// compile cache are compiled by `compiler`.
    pub fn open(
        root: &Path,
        config_path: &Path,
        builtins: Builtins,
        compiler: Compiler,
    ) -> Result<Engine> {
        std::fs::create_dir_all(root).map_err(|e| EngineError::io("creating", root, e))?;
        let config = Config::load(config_path, &builtins)?;
        let remap = match &config.daemon.userns_remap {
            Some(s) => Some(Arc::new(crate::userns::Remap::resolve(s)?)),
            None => None,
        };
        let content = Arc::new(ContentStore::open(root)?);
        let host = PluginHost::new(berth_host::HostConfig {
            // Compiled plugins may be shared between roots (the tests do):
            // entries are keyed by component digest and engine settings.
            cache_dir: std::env::var_os("BERTH_PLUGIN_CACHE")
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join("plugin-cache")),
            compiler,
            ..Default::default()
        })?;
        let driver = config
            .storage_driver
            .clone()
            .unwrap_or_else(|| "overlay".into());
        let storage = host.load_storage(plugin_spec(
            root,
            &config,
            &driver,
            PluginKind::Storage,
            &builtins,
        )?)?;
        Ok(Engine {
            root: root.to_path_buf(),
            content,
            images: ImageStore::open(root),
            host,
            storage,
            config,
            builtins,
            sources: Arc::new(BlobSources::open(root)),
            remap,
        })
    }

    pub fn runtime(&self) -> berth_runtime::Runtime {
        berth_runtime::Runtime::new(self.root.join("runtime"))
    }

    pub(crate) fn content(&self) -> &ContentStore {
        &self.content
    }

    pub(crate) fn storage(&self) -> &StoragePlugin {
        &self.storage
    }

    /// The user-namespace remapping of containers (`userns-remap`).
    pub fn remap(&self) -> Option<&Arc<crate::userns::Remap>> {
        self.remap.as_ref()
    }

    /// The configuration (`berth.toml`).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// berth's state root (`--root`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The storage driver's name (docker's `Driver`).
    pub fn storage_driver(&self) -> &str {
        &self.storage.info().name
    }
}
