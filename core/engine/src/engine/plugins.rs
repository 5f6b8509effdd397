//! Plugin specs: which component a plugin name stands for (built in or from
//! berth.toml) and what it is granted; loading the network plugins.

use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_host::{Grants, PluginSpec, WasmSource};

use super::Engine;
use crate::builtins::Builtins;
use crate::config::{Config, PluginKind};
use crate::error::{EngineError, Result};

impl Engine {
    /// Loads the network plugin `name` (built-in or from berth.toml).
    pub(crate) fn load_network(
        &self,
        name: &str,
        net: &berth_host::Networking,
    ) -> Result<berth_host::NetworkPlugin> {
        let spec = plugin_spec(
            &self.root,
            &self.config,
            name,
            PluginKind::Network,
            &self.builtins,
        )?;
        Ok(self.host.load_network(spec, net)?)
    }
}

/// The spec of a plugin: built-in or from `berth.toml`, with its grants.
pub(super) fn plugin_spec(
    root: &Path,
    config: &Config,
    name: &str,
    kind: PluginKind,
    builtins: &Builtins,
) -> Result<PluginSpec> {
    let builtin = builtins.get(kind, name);
    let pc = config.plugin.get(name);
    if let Some(pc) = pc {
        if pc.kind != kind {
            return Err(EngineError::Config {
                path: PathBuf::from("berth.toml"),
                reason: format!(
                    "plugin {name} is a {:?} plugin, but is used as a {kind:?} plugin",
                    pc.kind
                ),
            });
        }
    }
    let wasm = match (pc.and_then(|p| p.wasm.clone()), builtin) {
        (Some(path), _) => WasmSource::File(path),
        (None, Some(builtin)) => WasmSource::Builtin(builtin),
        (None, None) => {
            return Err(EngineError::Config {
                path: PathBuf::from("berth.toml"),
                reason: format!(
                    "no plugin named {name:?}: built-in ones are {}; others need [plugin.{name}] with wasm = \"…\"",
                    builtins.describe()
                ),
            })
        }
    };
    let mut grants = Grants {
        root: root.join("plugins").join(name),
        // Real images carry device nodes (debootstrap's /dev/console, …). The
        // built-in drivers are ours and may make them; an external plugin only
        // when berth.toml grants it (it could open a node it made in its root).
        device_nodes: kind == PluginKind::Storage && pc.and_then(|p| p.wasm.as_ref()).is_none(),
        ..Default::default()
    };
    if let Some(pc) = pc {
        if let Some(d) = pc.device_nodes {
            grants.device_nodes = d;
        }
        if let Some(m) = pc.memory_limit_mib {
            grants.memory_limit = m << 20;
        }
        if let Some(t) = pc.timeout_secs {
            grants.timeout = Duration::from_secs(t);
        }
    }
    if kind == PluginKind::Network && builtin.is_some() && pc.is_none_or(|p| p.wasm.is_none()) {
        // The built-in bridge plugin: its own link names and the private
        // ranges, unless berth.toml says otherwise.
        grants.network.link_prefixes = vec!["berth".into(), "br-".into(), "veth".into()];
        grants.network.pools = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
            .iter()
            .map(|p| p.parse().expect("a valid CIDR"))
            .collect();
    }
    if let Some(pc) = pc {
        if !pc.link_prefixes.is_empty() {
            grants.network.link_prefixes = pc.link_prefixes.clone();
        }
        if !pc.macvlan_parents.is_empty() {
            grants.network.macvlan_parents = pc.macvlan_parents.clone();
        }
        if !pc.pools.is_empty() {
            grants.network.pools = pc
                .pools
                .iter()
                .map(|p| {
                    p.parse().map_err(|_| EngineError::Config {
                        path: PathBuf::from("berth.toml"),
                        reason: format!("[plugin.{name}] pools: {p:?} is not an IPv4 CIDR"),
                    })
                })
                .collect::<Result<_>>()?;
        }
    }
    Ok(PluginSpec {
        name: name.to_string(),
        wasm,
        grants,
    })
}
