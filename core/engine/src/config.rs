//! `berth.toml`: which plugins to use and what each may touch. Grants are
//! data, not code (as extism's manifests): a root directory per plugin, the
//! registries a fetcher may reach, limits per call.
//!
//! ```toml
//! storage-driver = "overlay"          # or "vfs", or a plugin named below
//!
//! [plugin.my-driver]                   # an external plugin
//! kind = "storage"                     # or "fetcher"
//! wasm = "/opt/berth/my-driver.wasm"
//! memory-limit-mib = 256
//! timeout-secs = 600
//! device-nodes = false                 # may it make device nodes (built-in drivers: yes)
//!
//! [registry."registry.example:5000"]
//! insecure = true                      # plain HTTP (loopback registries are insecure by default)
//! username = "me"
//! password = "secret"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{EngineError, Result};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    /// The storage driver: `overlay` (default), `vfs`, or a plugin name.
    pub storage_driver: Option<String>,
    #[serde(default)]
    pub plugin: BTreeMap<String, PluginConfig>,
    #[serde(default)]
    pub registry: BTreeMap<String, RegistryConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PluginConfig {
    pub kind: PluginKind,
    /// The component; absent for a built-in plugin whose grants are changed.
    pub wasm: Option<PathBuf>,
    pub memory_limit_mib: Option<usize>,
    pub timeout_secs: Option<u64>,
    /// May a storage driver make block and character device nodes? (Default:
    /// yes for the built-in drivers, no for external ones.)
    pub device_nodes: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    Storage,
    Fetcher,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RegistryConfig {
    #[serde(default)]
    pub insecure: bool,
    pub username: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
}

impl Config {
    /// Reads the file; a missing file is the default configuration.
    pub fn load(path: &Path) -> Result<Config> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => return Err(EngineError::io("reading", path, e)),
        };
        toml::from_str(&text).map_err(|e| EngineError::Config {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses_unknown_keys() {
        let c: Config = toml::from_str(
            "storage-driver = \"vfs\"\n[plugin.x]\nkind = \"storage\"\nwasm = \"/x.wasm\"\n[registry.\"r:5000\"]\ninsecure = true\n",
        )
        .unwrap();
        assert_eq!(c.storage_driver.as_deref(), Some("vfs"));
        assert_eq!(c.plugin["x"].kind, PluginKind::Storage);
        assert!(c.registry["r:5000"].insecure);
        assert!(toml::from_str::<Config>("storge-driver = 1").is_err());
    }
}
