//! `berth.toml`: which plugins to use and what each may touch. Grants are
//! data, not code (as extism's manifests): a root directory per plugin, the
//! registries a fetcher may reach, limits per call.
//!
//! ```toml
//! storage-driver = "overlay"          # or "vfs", or a plugin named below
//!
//! [plugin.my-driver]                   # an external plugin
//! kind = "storage"                     # or "fetcher", "network"
//! wasm = "/opt/berth/my-driver.wasm"
//! memory-limit-mib = 256
//! timeout-secs = 600
//! device-nodes = false                 # may it make device nodes (built-in drivers: yes)
//! link-prefixes = ["bst"]              # network plugins: host link names they may create
//! pools = ["10.99.0.0/16"]             # network plugins: where their addresses must lie
//! macvlan-parents = ["eth0"]           # network plugins: links they may put macvlans on
//!
//! [network]
//! default-driver = "bridge"            # `network create` without --driver
//! bridge-subnet = "172.17.0.0/16"      # the default `bridge` network
//! bridge-name = "berth0"
//! dns = ["192.0.2.53"]                 # upstreams of the embedded DNS (default: /etc/resolv.conf)
//!
//! [registry."registry.example:5000"]
//! insecure = true                      # plain HTTP (loopback registries are insecure by default)
//! username = "me"
//! password = "secret"
//! mirrors = ["mirror.example:5000", "http://10.0.0.2:5000"]  # tried in order, pulls only
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::builtins::Builtins;
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
    /// Container log defaults (docker's `log-opts`): `max-size`, `max-file`;
    /// a container's own `--log-opt` wins.
    #[serde(default)]
    pub logs: BTreeMap<String, String>,
    #[serde(default)]
    pub network: NetworkConfig,
    #[serde(default)]
    pub daemon: DaemonConfig,
    /// `[[trust]]`: which images must be signed, by which keys.
    #[serde(default)]
    pub trust: Vec<crate::trust::TrustConfig>,
}

/// `[daemon]`: how the daemon serves its API.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DaemonConfig {
    /// The group the API socket belongs to (`root:GROUP 0660`, docker's
    /// `-G`); `--group` wins. Without one the socket is root's alone.
    pub group: Option<String>,
    /// TLS on the TCP listeners (`--tls`).
    #[serde(default)]
    pub tls: bool,
    /// TLS, and clients must show a certificate `tlscacert` signed
    /// (`--tlsverify`).
    #[serde(default)]
    pub tlsverify: bool,
    /// The CA clients' certificates are checked against (`--tlscacert`).
    pub tlscacert: Option<PathBuf>,
    /// The daemon's certificate (`--tlscert`).
    pub tlscert: Option<PathBuf>,
    /// The daemon's key (`--tlskey`).
    pub tlskey: Option<PathBuf>,
    /// Containers run in a user namespace mapping their ids to a range of
    /// /etc/subuid and /etc/subgid: `default` (the `berth` entries, added
    /// when missing) or `USER[:GROUP]`; `--userns=host` opts a container out.
    pub userns_remap: Option<String>,
}

/// `[network]`: the default network and the embedded DNS.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NetworkConfig {
    /// The driver `network create` uses without `--driver` (default `bridge`).
    pub default_driver: Option<String>,
    /// The subnet of the default `bridge` network (default: the plugin's first free pool).
    pub bridge_subnet: Option<String>,
    /// The name of its Linux bridge (default `berth0`).
    pub bridge_name: Option<String>,
    /// Resolvers the embedded DNS forwards to (default: the host's /etc/resolv.conf).
    pub dns: Option<Vec<String>>,
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
    /// Network plugins: host link name prefixes they may create.
    #[serde(default)]
    pub link_prefixes: Vec<String>,
    /// Network plugins: address pools (CIDRs) their addresses must lie in.
    #[serde(default)]
    pub pools: Vec<String>,
    /// Network plugins: host links they may put macvlans on.
    #[serde(default)]
    pub macvlan_parents: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    Storage,
    Fetcher,
    Network,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RegistryConfig {
    #[serde(default)]
    pub insecure: bool,
    pub username: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    /// Mirrors tried in order before this registry when pulling:
    /// `host[:port]` (https; plain http for loopback or insecure ones) or
    /// `http://host[:port]` / `https://host[:port]`.
    #[serde(default)]
    pub mirrors: Vec<String>,
}

/// A mirror's `host[:port]`, and whether it is named with `http://`.
pub fn mirror_authority(mirror: &str) -> Result<(String, bool)> {
    let (rest, http) = if let Some(r) = mirror.strip_prefix("http://") {
        (r, true)
    } else if let Some(r) = mirror.strip_prefix("https://") {
        (r, false)
    } else {
        (mirror, false)
    };
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains(['/', '@', '?', '#', ' ']) {
        return Err(EngineError::Config {
            path: PathBuf::from("berth.toml"),
            reason: format!(
                "registry mirror {mirror:?} is not host[:port] or http(s)://host[:port]"
            ),
        });
    }
    Ok((authority.to_owned(), http))
}

impl Config {
    /// Reads the file; a missing file is the default configuration.
    /// `builtins` are the plugins a `[plugin.NAME]` section without `wasm`
    /// may name.
    pub fn load(path: &Path, builtins: &Builtins) -> Result<Config> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => return Err(EngineError::io("reading", path, e)),
        };
        let config: Config = toml::from_str(&text).map_err(|e| EngineError::Config {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        config
            .check(builtins)
            .map_err(|reason| EngineError::Config {
                path: path.to_path_buf(),
                reason,
            })?;
        Ok(config)
    }

    /// Refuses what parses but cannot be meant: a `[plugin.NAME]` section
    /// without `wasm` for a name that is not a built-in plugin of its kind
    /// (a typo would otherwise be ignored silently), and malformed mirrors.
    fn check(&self, builtins: &Builtins) -> std::result::Result<(), String> {
        for (name, p) in &self.plugin {
            if p.wasm.is_none() && builtins.get(p.kind, name).is_none() {
                return Err(format!(
                    "[plugin.{name}] has no `wasm` and {name:?} is not a built-in {} plugin ({})",
                    p.kind.as_str(),
                    builtins.names(p.kind).collect::<Vec<_>>().join(", ")
                ));
            }
        }
        crate::trust::check(&self.trust)?;
        crate::containers::logs::Rotation::from_opts("json-file", &self.logs)
            .map_err(|e| format!("[logs]: {e}"))?;
        for r in self.registry.values() {
            for m in &r.mirrors {
                mirror_authority(m).map_err(|e| match e {
                    EngineError::Config { reason, .. } => reason,
                    other => other.to_string(),
                })?;
            }
        }
        Ok(())
    }
}

impl PluginKind {
    /// The kind as berth.toml spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Storage => "storage",
            PluginKind::Fetcher => "fetcher",
            PluginKind::Network => "network",
        }
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

    #[test]
    fn a_plugin_section_must_name_a_builtin_or_a_component() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.toml");
        let load = |text: &str| {
            std::fs::write(&path, text).unwrap();
            Config::load(&path, &crate::builtins::tests::named())
        };
        assert!(load("[plugin.registry]\nkind = \"fetcher\"\ntimeout-secs = 3\n").is_ok());
        assert!(load("[plugin.mine]\nkind = \"storage\"\nwasm = \"/x.wasm\"\n").is_ok());
        let e = load("[plugin.fetch-registry]\nkind = \"fetcher\"\ntimeout-secs = 3\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[plugin.fetch-registry]") && e.contains("registry, archive"),
            "{e}"
        );
        let e = load("[registry.\"r\"]\nmirrors = [\"a/b\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"a/b\""), "{e}");
    }

    #[test]
    fn mirrors_name_an_authority() {
        let c: Config = toml::from_str(
            "[registry.\"docker.io\"]\nmirrors = [\"m:5000\", \"http://127.0.0.1:5001/\"]\n",
        )
        .unwrap();
        assert_eq!(c.registry["docker.io"].mirrors.len(), 2);
        assert_eq!(
            mirror_authority("m:5000").unwrap(),
            ("m:5000".into(), false)
        );
        assert_eq!(
            mirror_authority("http://127.0.0.1:5001/").unwrap(),
            ("127.0.0.1:5001".into(), true)
        );
        assert_eq!(mirror_authority("https://m").unwrap(), ("m".into(), false));
        for bad in ["", "http://", "m/v2/x", "user@m", "https://m/path"] {
            let e = mirror_authority(bad).unwrap_err().to_string();
            assert!(e.contains("mirror"), "{bad:?}: {e}");
        }
    }
}
