//! The network glue of a container's life: attaching it to its networks at
//! start and detaching it, its /etc files (hosts, hostname, resolv.conf),
//! connecting and disconnecting it live (`network connect` / `disconnect`),
//! its published ports, and who uses a network.

use std::collections::BTreeMap;
use std::os::fd::AsFd as _;
use std::sync::Arc;

use super::create::hostname;
use super::{Containers, Record, Status};
use crate::error::{EngineError, Result};
use crate::networks::{files, Attachee, Endpoint, EndpointConfig, NetworkRecord};

impl Containers {
    /// The containers attached to network `id` right now: (id, name, endpoint).
    pub fn network_users(&self, id: &str) -> Vec<(String, String, crate::networks::Endpoint)> {
        self.list()
            .into_iter()
            .flat_map(|r| {
                r.endpoints
                    .values()
                    .filter(|e| e.network_id == id)
                    .map(|e| (r.id.clone(), r.name.clone(), e.clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Whether any container (running or not) is configured for network `name`.
    pub fn network_configured(&self, name: &str) -> Vec<String> {
        self.list()
            .into_iter()
            .filter(|r| r.networks.contains_key(name))
            .map(|r| r.name)
            .collect()
    }

    /// Connects a container to a network; a running one is attached at once.
    pub async fn connect(
        self: &Arc<Self>,
        key: &str,
        net: &NetworkRecord,
        cfg: EndpointConfig,
    ) -> Result<()> {
        let e = self.entry(key)?;
        let _op = e.op.lock().await;
        let rec = e.get();
        let mode = rec.host_config.network_mode.as_str();
        if mode == "host" || !net.is_plugin() {
            return Err(EngineError::invalid(
                "network",
                &net.name,
                format!(
                    "container {} cannot be connected to network {}: host and none networks are exclusive",
                    rec.name, net.name
                ),
            ));
        }
        if rec.networks.contains_key(&net.name) {
            return Err(EngineError::AlreadyConnected {
                container: rec.name,
                network: net.name.clone(),
            });
        }
        if net.name == "bridge" && !cfg.ipv4_address.is_empty() {
            return Err(EngineError::invalid(
                "--ip",
                &cfg.ipv4_address,
                "user specified IP address is supported on user defined networks only",
            ));
        }
        let running = matches!(rec.status, Status::Running | Status::Paused) && rec.pid > 0;
        let mut endpoint = None;
        if running {
            let path = format!("/proc/{}/ns/net", rec.pid);
            let ns =
                std::fs::File::open(&path).map_err(|err| EngineError::io("opening", &path, err))?;
            let ifname = (0..)
                .map(|i| format!("eth{i}"))
                .find(|n| !rec.endpoints.values().any(|e| &e.ifname == n))
                .expect("an unused interface name");
            let host = hostname(&rec);
            let who = Attachee {
                id: &rec.id,
                name: &rec.name,
                hostname: &host,
                config: &cfg,
                ifname: &ifname,
                bandwidth: rec.host_config.network_bandwidth.max(0) as u64,
                dns: &rec.host_config.dns,
                default_route: rec.endpoints.is_empty(),
                ports: &[],
            };
            endpoint = Some(self.networks.attach(net, &who, ns.as_fd()).await?);
        }
        let name = net.name.clone();
        let updated = self.update(&e, |r| {
            if mode == "none" {
                r.host_config.network_mode = name.clone();
            }
            r.networks.insert(name.clone(), cfg);
            if let Some(ep) = endpoint.clone() {
                r.endpoints.insert(name.clone(), ep);
            }
        });
        match updated {
            Ok(r) => {
                if running {
                    self.write_etc(&r, &r.endpoints)?;
                }
                Ok(())
            }
            Err(err) => {
                if endpoint.is_some() {
                    let _ = self.networks.detach(&net.id, &rec.id, None).await;
                }
                Err(err)
            }
        }
    }

    /// Disconnects a container from a network.
    pub async fn disconnect(
        self: &Arc<Self>,
        key: &str,
        net: &NetworkRecord,
        _force: bool,
    ) -> Result<()> {
        let e = self.entry(key)?;
        let _op = e.op.lock().await;
        let rec = e.get();
        if !rec.networks.contains_key(&net.name) {
            return Err(EngineError::NotConnected {
                container: rec.name,
                network: net.name.clone(),
            });
        }
        if let Some(ep) = rec.endpoints.get(&net.name) {
            self.networks.detach(&ep.network_id, &rec.id, None).await?;
        }
        let name = net.name.clone();
        let r = self.update(&e, |r| {
            r.networks.remove(&name);
            r.endpoints.remove(&name);
            if r.networks.is_empty() && r.host_config.network_mode == name {
                r.host_config.network_mode = "none".into();
            }
        })?;
        if matches!(r.status, Status::Running | Status::Paused) {
            self.write_etc(&r, &r.endpoints)?;
        }
        Ok(())
    }
}

/// `80/tcp` → (80, "tcp").
fn port_key(key: &str) -> Result<(u16, String)> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let p: u16 = port.parse().ok().filter(|p| *p > 0).ok_or_else(|| {
        EngineError::invalid(
            "port",
            key,
            format!("invalid container port {key:?}: ports are 1-65535"),
        )
    })?;
    match proto {
        "tcp" | "udp" => Ok((p, proto.to_string())),
        "sctp" => Err(EngineError::invalid(
            "port",
            key,
            format!("publishing {key}: sctp is not supported by berth"),
        )),
        other => Err(EngineError::invalid(
            "port",
            key,
            format!("invalid protocol {other:?} in port {key:?}"),
        )),
    }
}

/// The ports to publish for a container: its `-p` bindings, and with `-P`
/// every port it or its image exposes (on a host port the daemon chooses).
pub(crate) fn port_requests(
    h: &super::config::HostConfig,
    exposed: impl IntoIterator<Item = String>,
) -> Result<Vec<crate::networks::proxy::PortRequest>> {
    use crate::networks::proxy::PortRequest;
    let mut out = Vec::new();
    for (key, bindings) in &h.port_bindings {
        let (cport, proto) = port_key(key)?;
        let bindings = if bindings.is_empty() {
            vec![Default::default()]
        } else {
            bindings.clone()
        };
        for b in bindings {
            let host_ip: std::net::Ipv4Addr = if b.host_ip.is_empty() {
                std::net::Ipv4Addr::UNSPECIFIED
            } else {
                b.host_ip.parse().map_err(|_| {
                    EngineError::invalid(
                        "host address",
                        &b.host_ip,
                        format!(
                            "invalid host address {:?} for port {key}: berth publishes on IPv4 addresses",
                            b.host_ip
                        ),
                    )
                })?
            };
            let bad = || {
                EngineError::invalid(
                    "host port",
                    &b.host_port,
                    format!("invalid host port {:?} for port {key}", b.host_port),
                )
            };
            let num = |s: &str| s.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(bad);
            let host_ports = match b.host_port.as_str() {
                "" | "0" => (0, 0),
                r => match r.split_once('-') {
                    Some((a, z)) => {
                        let (a, z) = (num(a)?, num(z)?);
                        if a > z {
                            return Err(bad());
                        }
                        (a, z)
                    }
                    None => {
                        let p = num(r)?;
                        (p, p)
                    }
                },
            };
            out.push(PortRequest {
                proto: proto.clone(),
                host_ip,
                host_ports,
                container_port: cport,
            });
        }
    }
    if h.publish_all_ports {
        for key in exposed {
            let (cport, proto) = port_key(&key)?;
            if !out
                .iter()
                .any(|r| r.container_port == cport && r.proto == proto)
            {
                out.push(PortRequest {
                    proto,
                    host_ip: std::net::Ipv4Addr::UNSPECIFIED,
                    host_ports: (0, 0),
                    container_port: cport,
                });
            }
        }
    }
    Ok(out)
}

/// Network glue of the lifecycle: attach at start, detach, /etc files.
impl Containers {
    /// Attaches a created (not yet started) container, whose init is `pid`,
    /// to its networks, and writes its /etc files. On failure nothing stays
    /// attached.
    pub(super) async fn attach_networks(
        &self,
        rec: &Record,
        pid: i32,
    ) -> Result<BTreeMap<String, Endpoint>> {
        use std::os::fd::AsFd as _;
        let mut eps = BTreeMap::new();
        if !rec.networks.is_empty() {
            let path = format!("/proc/{pid}/ns/net");
            let ns =
                std::fs::File::open(&path).map_err(|e| EngineError::io("opening", &path, e))?;
            let hostname = hostname(rec);
            let exposed = self
                .image_config(&rec.id)
                .and_then(|i| i.config().clone())
                .and_then(|c| c.exposed_ports().clone())
                .unwrap_or_default();
            let ports = port_requests(
                &rec.host_config,
                rec.config.exposed_ports.keys().cloned().chain(exposed),
            )?;
            for (i, (name, cfg)) in rec.networks.iter().enumerate() {
                let ifname = format!("eth{i}");
                let who = Attachee {
                    id: &rec.id,
                    name: &rec.name,
                    hostname: &hostname,
                    config: cfg,
                    ifname: &ifname,
                    bandwidth: rec.host_config.network_bandwidth.max(0) as u64,
                    dns: &rec.host_config.dns,
                    default_route: i == 0,
                    ports: if i == 0 { &ports } else { &[] },
                };
                let r = match self.networks.get(name) {
                    Ok(net) => self.networks.attach(&net, &who, ns.as_fd()).await,
                    Err(e) => Err(e),
                };
                match r {
                    Ok(ep) => {
                        eps.insert(name.clone(), ep);
                    }
                    Err(e) => {
                        self.detach_networks(&rec.id, &eps).await;
                        return Err(e);
                    }
                }
            }
        }
        if let Err(e) = self.write_etc(rec, &eps) {
            self.detach_networks(&rec.id, &eps).await;
            return Err(e);
        }
        Ok(eps)
    }

    /// Detaches a container from every network of `eps` (its namespace may
    /// be gone already).
    pub(super) async fn detach_networks(&self, id: &str, eps: &BTreeMap<String, Endpoint>) {
        for (name, ep) in eps {
            if let Err(e) = self.networks.detach(&ep.network_id, id, None).await {
                tracing::warn!("detaching container {id} from network {name}: {e}");
            }
        }
    }

    /// Writes the container's /etc/hosts, /etc/hostname and /etc/resolv.conf.
    pub(super) fn write_etc(&self, rec: &Record, eps: &BTreeMap<String, Endpoint>) -> Result<()> {
        if rec.host_config.network_mode == "host" {
            return Ok(());
        }
        let cdir = self.cdir(&rec.id);
        let hostname = hostname(rec);
        let primary = eps
            .values()
            .find(|e| e.ifname == "eth0")
            .or_else(|| eps.values().next());
        let gateway = primary.map(|e| e.gateway.clone()).filter(|g| !g.is_empty());
        let resolver = primary
            .filter(|e| self.networks.resolves(&e.network_id))
            .map(|e| e.gateway.clone())
            .filter(|g| !g.is_empty());
        let nameservers = match &resolver {
            // The embedded DNS answers on the gateway and forwards the rest.
            Some(gw) => vec![gw.clone()],
            None if !rec.host_config.dns.is_empty() => rec.host_config.dns.clone(),
            None => crate::networks::dns::Dns::host_upstreams(
                &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
            )
            .iter()
            .map(|a| a.ip().to_string())
            .collect(),
        };
        files::write(
            &cdir,
            &files::EtcFiles {
                hostname: &hostname,
                addresses: eps.values().map(|e| e.ip_address.clone()).collect(),
                extra_hosts: &rec.host_config.extra_hosts,
                nameservers,
                search: &rec.host_config.dns_search,
                options: &rec.host_config.dns_options,
                gateway,
            },
        )
        .map_err(|reason| EngineError::Start {
            id: rec.id.clone(),
            reason,
        })?;
        match self.remap_of(&rec.host_config) {
            // The remapped root may change them, as docker's.
            Some(r) => crate::userns::give_etc(&r, &cdir),
            None => Ok(()),
        }
    }
}
