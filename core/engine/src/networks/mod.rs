//! Networks — docker's network objects — over network plugins: their records
//! (`<root>/networks/<id>.json`), the predefined `bridge`, `host` and `none`,
//! attaching and detaching containers, the embedded DNS that lets containers
//! find each other by name, and the /etc/hosts and /etc/resolv.conf a
//! container sees.
//!
//! This module opens, creates, finds and removes networks; `types` holds the
//! records and requests, `attach` what happens to a container on a network.

mod attach;
pub mod dns;
pub mod files;
pub mod proxy;
mod types;

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_host::{NetworkPlugin, Networking};

use crate::config::NetworkConfig;
use crate::engine::Engine;
use crate::error::{EngineError, NetworkOp, Result};
use crate::store::write_json;

pub use types::{Attachee, CreateNetwork, Endpoint, EndpointConfig, NetworkRecord};

/// The networks every engine has; they cannot be removed.
pub const PREDEFINED: &[&str] = &["bridge", "host", "none"];

/// The name of the nftables table (`ip berth`) the host keeps its rules in.
const TABLE: &str = "berth";

/// Loads the network plugin a driver names (the engine's plugins).
pub type PluginLoader = Box<dyn Fn(&str, &Networking) -> Result<NetworkPlugin> + Send + Sync>;

/// Every network of one engine.
pub struct Networks {
    /// berth.toml's `[network]`.
    settings: NetworkConfig,
    load: PluginLoader,
    dir: PathBuf,
    net: Networking,
    plugins: Mutex<HashMap<String, NetworkPlugin>>,
    records: Mutex<BTreeMap<String, NetworkRecord>>,
    /// Serializes create and remove (names and subnets must stay unique).
    ops: tokio::sync::Mutex<()>,
    /// The embedded resolver.
    pub dns: dns::Dns,
    /// The userland side of published ports.
    proxies: proxy::Proxies,
    /// The networks whose gateway the embedded DNS answers on.
    resolving: Mutex<std::collections::HashSet<String>>,
}

impl std::fmt::Debug for Networks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Networks").field("dir", &self.dir).finish()
    }
}

fn not_found(name: &str) -> EngineError {
    EngineError::NotFound {
        what: "network",
        name: name.to_string(),
    }
}

fn random_id() -> Result<String> {
    crate::store::new_id()
}

/// The upstream resolvers for the embedded DNS: `[network] dns` or the host's.
fn upstreams(settings: &NetworkConfig) -> Vec<SocketAddr> {
    match &settings.dns {
        Some(list) => parse_servers(list),
        None => {
            let read =
                |p: &str| dns::Dns::host_upstreams(&std::fs::read_to_string(p).unwrap_or_default());
            // With systemd-resolved, /etc/resolv.conf names only its stub
            // on 127.0.0.53; the real servers are in its own file.
            let list = read("/etc/resolv.conf");
            if list.is_empty() {
                read("/run/systemd/resolve/resolv.conf")
            } else {
                list
            }
        }
    }
}

/// `--dns` values as socket addresses (port 53).
pub fn parse_servers(list: &[String]) -> Vec<SocketAddr> {
    list.iter()
        .filter_map(|s| s.parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

impl Networks {
    /// Opens the networks under the engine's root: re-creates what a reboot
    /// removed (bridges, rules), restarts the resolvers, and makes the
    /// predefined networks.
    pub async fn open(engine: Arc<Engine>) -> Result<Arc<Networks>> {
        let root = engine.root().to_path_buf();
        let settings = engine.config().network.clone();
        let load: PluginLoader = Box::new(move |driver, net| engine.load_network(driver, net));
        Networks::open_with(&root, settings, load, true).await
    }

    /// Opens the networks under `root` with the plugins `load` gives. With
    /// `bring_up` false nothing on the host is touched — no rules restored,
    /// no bridge made or rebuilt, no resolver started: the records are
    /// read, and `host` and `none` are what containers can use (the
    /// daemonless mode, whose containers have no network of a plugin, and
    /// the lifecycle's unit tests).
    pub async fn open_with(
        root: &std::path::Path,
        settings: NetworkConfig,
        load: PluginLoader,
        bring_up: bool,
    ) -> Result<Arc<Networks>> {
        let dir = root.join("networks");
        std::fs::create_dir_all(&dir).map_err(|e| EngineError::io("creating", &dir, e))?;
        let state = root.join("net");
        let net =
            Networking::new(&state, TABLE).map_err(|e| EngineError::io("creating", &state, e))?;
        let dns = dns::Dns::new(upstreams(&settings));
        let n = Arc::new(Networks {
            settings,
            load,
            dir,
            net,
            plugins: Mutex::new(HashMap::new()),
            records: Mutex::new(BTreeMap::new()),
            ops: tokio::sync::Mutex::new(()),
            dns,
            proxies: proxy::Proxies::default(),
            resolving: Mutex::new(Default::default()),
        });
        let rd = std::fs::read_dir(&n.dir).map_err(|e| EngineError::io("listing", &n.dir, e))?;
        for d in rd.flatten() {
            let p = d.path();
            if p.extension().is_some_and(|e| e == "json") {
                match std::fs::read(&p)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<NetworkRecord>(&b).ok())
                {
                    Some(r) => {
                        n.records.lock().expect("records").insert(r.id.clone(), r);
                    }
                    None => tracing::warn!("ignoring unreadable network record {}", p.display()),
                }
            }
        }
        for (name, driver) in [("host", "host"), ("none", "null")] {
            if n.find(name).is_none() {
                n.save_new(NetworkRecord {
                    id: random_id()?,
                    name: name.into(),
                    driver: driver.into(),
                    created: crate::store::now(),
                    ..Default::default()
                })?;
            }
        }
        if !bring_up {
            return Ok(n);
        }
        if let Err(e) = n.net.restore_rules() {
            tracing::warn!("restoring the network rules: {e}");
        }
        // Rebuild what a reboot took (idempotent when all is there). The
        // default bridge must come up; a user network that cannot (its
        // plugin gone from berth.toml, say) is reported, and its containers
        // fail to start naming it, but the daemon serves the rest.
        for r in n.list() {
            if r.is_plugin() {
                let rebuilt = match n.plugin(&r.driver) {
                    Ok(plugin) => plugin
                        .create_network(&r.spec(n.taken(&r.id)))
                        .await
                        .map_err(EngineError::from),
                    Err(e) => Err(e),
                };
                match rebuilt {
                    Ok(_) => n.serve_dns(&r).await,
                    Err(e) if r.name == "bridge" => return Err(e),
                    Err(e) => tracing::warn!("network {} cannot be brought up: {e}", r.name),
                }
            }
        }
        if n.find("bridge").is_none() {
            let cfg = &n.settings;
            let mut options = BTreeMap::new();
            options.insert(
                "com.docker.network.bridge.name".to_string(),
                cfg.bridge_name.clone().unwrap_or_else(|| "berth0".into()),
            );
            options.insert(
                "com.docker.network.bridge.default_bridge".to_string(),
                "true".into(),
            );
            n.create_locked(CreateNetwork {
                name: "bridge".into(),
                driver: Some("bridge".into()),
                subnet: cfg.bridge_subnet.clone().unwrap_or_default(),
                options,
                ..Default::default()
            })
            .await?;
        }
        Ok(n)
    }

    fn plugin(&self, driver: &str) -> Result<NetworkPlugin> {
        if let Some(p) = self.plugins.lock().expect("plugins").get(driver) {
            return Ok(p.clone());
        }
        let p = (self.load)(driver, &self.net)?;
        self.plugins
            .lock()
            .expect("plugins")
            .insert(driver.to_string(), p.clone());
        Ok(p)
    }

    async fn serve_dns(&self, r: &NetworkRecord) {
        let Ok(gw) = r.gateway.parse::<Ipv4Addr>() else {
            return;
        };
        match self.dns.serve(&r.id, SocketAddr::new(gw.into(), 53)).await {
            Ok(()) => {
                self.resolving
                    .lock()
                    .expect("resolving")
                    .insert(r.id.clone());
            }
            // A gateway that is not an address of this host (a macvlan
            // network's router): containers use their --dns or the host's.
            Err(e) => tracing::info!(
                "network {}: no embedded DNS on {gw}:53 ({e}); containers get the host's resolvers",
                r.name
            ),
        }
    }

    /// Whether the embedded DNS answers on network `id`'s gateway.
    pub fn resolves(&self, id: &str) -> bool {
        self.resolving.lock().expect("resolving").contains(id)
    }

    fn save_new(&self, r: NetworkRecord) -> Result<()> {
        write_json(&self.dir.join(format!("{}.json", r.id)), &r)?;
        self.records
            .lock()
            .expect("records")
            .insert(r.id.clone(), r);
        Ok(())
    }

    fn find(&self, key: &str) -> Option<NetworkRecord> {
        let t = self.records.lock().expect("records");
        if let Some(r) = t.get(key) {
            return Some(r.clone());
        }
        if let Some(r) = t.values().find(|r| r.name == key) {
            return Some(r.clone());
        }
        let mut hits = t.values().filter(|r| r.id.starts_with(key));
        match (hits.next(), hits.next()) {
            (Some(r), None) if !key.is_empty() => Some(r.clone()),
            _ => None,
        }
    }

    /// A network by ID, name or unique ID prefix.
    pub fn get(&self, key: &str) -> Result<NetworkRecord> {
        self.find(key).ok_or_else(|| not_found(key))
    }

    /// Every network, by name.
    pub fn list(&self) -> Vec<NetworkRecord> {
        let mut v: Vec<_> = self
            .records
            .lock()
            .expect("records")
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// The subnets of every network but `except`.
    fn taken(&self, except: &str) -> Vec<String> {
        self.records
            .lock()
            .expect("records")
            .values()
            .filter(|r| r.id != except && !r.subnet.is_empty())
            .map(|r| r.subnet.clone())
            .collect()
    }

    /// Creates a network (`network create`).
    pub async fn create(&self, req: CreateNetwork) -> Result<NetworkRecord> {
        if PREDEFINED.contains(&req.name.as_str()) {
            return Err(EngineError::PredefinedNetwork {
                name: req.name,
                op: NetworkOp::Create,
            });
        }
        self.create_locked(req).await
    }

    async fn create_locked(&self, req: CreateNetwork) -> Result<NetworkRecord> {
        let _op = self.ops.lock().await;
        let name = req.name.clone();
        check_name(&name)?;
        if self.find(&name).is_some_and(|r| r.name == name) {
            return Err(EngineError::NetworkNameInUse { name });
        }
        let driver = req
            .driver
            .filter(|d| !d.is_empty())
            .or_else(|| self.settings.default_driver.clone())
            .unwrap_or_else(|| "bridge".into());
        if driver == "host" || driver == "null" {
            return Err(EngineError::invalid(
                "network driver",
                &driver,
                format!("only one instance of \"{driver}\" network is allowed"),
            ));
        }
        let plugin = self.plugin(&driver)?;
        let mut rec = NetworkRecord {
            id: random_id()?,
            name,
            driver,
            created: crate::store::now(),
            subnet: req.subnet,
            gateway: req.gateway,
            ip_range: req.ip_range,
            internal: req.internal,
            options: req.options,
            labels: req.labels,
            links: Vec::new(),
        };
        let spec = rec.spec(self.taken(&rec.id));
        let info = plugin.create_network(&spec).await?;
        rec.subnet = info.subnet.to_string();
        rec.gateway = info.gateway.map(|g| g.to_string()).unwrap_or_default();
        rec.links = info.links;
        if let Err(e) = self.save_new(rec.clone()) {
            let _ = plugin.remove_network(&rec.spec(Vec::new())).await;
            return Err(e);
        }
        self.serve_dns(&rec).await;
        Ok(rec)
    }

    /// Removes a network; `users` are the containers attached to it.
    pub async fn remove(&self, key: &str, users: &[String]) -> Result<()> {
        let _op = self.ops.lock().await;
        let r = self.get(key)?;
        if PREDEFINED.contains(&r.name.as_str()) {
            return Err(EngineError::PredefinedNetwork {
                name: r.name,
                op: NetworkOp::Remove,
            });
        }
        if !users.is_empty() {
            return Err(EngineError::NetworkInUse {
                name: r.name,
                id: r.id,
                containers: users.to_vec(),
            });
        }
        self.dns.stop(&r.id);
        self.resolving.lock().expect("resolving").remove(&r.id);
        let plugin = self.plugin(&r.driver)?;
        plugin.remove_network(&r.spec(Vec::new())).await?;
        let path = self.dir.join(format!("{}.json", r.id));
        std::fs::remove_file(&path).map_err(|e| EngineError::io("removing", &path, e))?;
        self.records.lock().expect("records").remove(&r.id);
        Ok(())
    }
}

/// docker's rule for network names.
fn check_name(name: &str) -> Result<()> {
    if crate::store::valid_name(name, 1) {
        Ok(())
    } else {
        Err(EngineError::invalid(
            "network name",
            name,
            format!("invalid network name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"),
        ))
    }
}
