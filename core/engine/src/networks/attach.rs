//! A container on a network: attaching it (address, published ports, its
//! names in the embedded DNS), re-adopting it after a daemon restart,
//! detaching it, and releasing what no container owns after a crash.

use std::net::Ipv4Addr;
use std::os::fd::BorrowedFd;

use berth_host::AttachRequest;

use super::{parse_servers, proxy, random_id, Attachee, Endpoint, NetworkRecord, Networks};
use crate::error::{EngineError, Result};

impl Networks {
    /// Attaches a container (whose network namespace is `netns`) to `network`.
    pub async fn attach(
        &self,
        network: &NetworkRecord,
        who: &Attachee<'_>,
        netns: BorrowedFd<'_>,
    ) -> Result<Endpoint> {
        let started = std::time::Instant::now();
        let plugin = self.plugin(&network.driver)?;
        let endpoint_id = random_id()?;
        let address = if who.config.ipv4_address.is_empty() {
            None
        } else {
            Some(who.config.ipv4_address.parse::<Ipv4Addr>().map_err(|_| {
                EngineError::invalid(
                    "IPv4 address",
                    &who.config.ipv4_address,
                    format!(
                        "invalid IPv4 address: {} (network {})",
                        who.config.ipv4_address, network.name
                    ),
                )
            })?)
        };
        // Host ports are taken now: one in use fails here, before anything is made.
        let bound = proxy::bind(who.ports).map_err(|reason| EngineError::Start {
            id: who.id.to_string(),
            reason,
        })?;
        let ports = bound
            .iter()
            .map(|b| {
                let m = b.map();
                let host_ip: Ipv4Addr = m.host_ip.parse().unwrap_or(Ipv4Addr::UNSPECIFIED);
                berth_host::net::plan::PortForward {
                    protocol: if m.proto == "udp" {
                        berth_host::net::plan::Protocol::Udp
                    } else {
                        berth_host::net::plan::Protocol::Tcp
                    },
                    host_ip: (!host_ip.is_unspecified()).then_some(host_ip),
                    host_port: m.host_port,
                    container_ip: Ipv4Addr::UNSPECIFIED,
                    container_port: m.container_port,
                }
            })
            .collect();
        let maps: Vec<proxy::PortMap> = bound.iter().map(|b| b.map().clone()).collect();
        let req = AttachRequest {
            network: network.spec(Vec::new()),
            container_id: who.id.to_string(),
            ifname: who.ifname.to_string(),
            address,
            ports,
            bandwidth: who.bandwidth,
            default_route: who.default_route,
        };
        let att = plugin.add(&req, netns).await?;
        let ip = att.address.addr();
        self.proxies.start(&network.id, who.id, bound, ip);
        // bench/net.sh reads these lines.
        tracing::debug!(
            container = who.id,
            network = %network.name,
            micros = started.elapsed().as_micros() as u64,
            "attached"
        );
        let mut names = vec![
            who.name.to_string(),
            who.id[..12.min(who.id.len())].to_string(),
        ];
        if !who.hostname.is_empty() && !names.iter().any(|n| n == who.hostname) {
            names.push(who.hostname.to_string());
        }
        names.extend(who.config.aliases.iter().cloned());
        self.dns
            .add(&network.id, who.id, &names, ip, parse_servers(who.dns));
        Ok(Endpoint {
            network_id: network.id.clone(),
            endpoint_id,
            ip_address: ip.to_string(),
            prefix_len: att.address.prefix_len(),
            gateway: att.gateway.map(|g| g.to_string()).unwrap_or_default(),
            // The host set it on the container's interface (empty: the kernel chose).
            mac_address: att.mac,
            aliases: who.config.aliases.clone(),
            ifname: who.ifname.to_string(),
            ports: maps,
        })
    }

    /// Re-registers a running container's names (after a daemon restart).
    pub fn readopt(&self, container_id: &str, names: &[String], ep: &Endpoint, dns: &[String]) {
        if let Ok(ip) = ep.ip_address.parse::<Ipv4Addr>() {
            let reqs: Vec<proxy::PortRequest> = ep
                .ports
                .iter()
                .map(|m| proxy::PortRequest {
                    proto: m.proto.clone(),
                    host_ip: m.host_ip.parse().unwrap_or(Ipv4Addr::UNSPECIFIED),
                    host_ports: (m.host_port, m.host_port),
                    container_port: m.container_port,
                })
                .collect();
            match proxy::bind(&reqs) {
                Ok(bound) => self.proxies.start(&ep.network_id, container_id, bound, ip),
                Err(e) => tracing::warn!("container {container_id}: published ports: {e}"),
            }
            let mut names = names.to_vec();
            names.extend(ep.aliases.iter().cloned());
            self.dns
                .add(&ep.network_id, container_id, &names, ip, parse_servers(dns));
        }
    }

    /// Detaches a container from a network: undoes what was applied and
    /// releases its address. Safe to call again.
    pub async fn detach(
        &self,
        network_id: &str,
        container_id: &str,
        netns: Option<BorrowedFd<'_>>,
    ) -> Result<()> {
        self.detach_as(network_id, container_id, netns, false).await
    }

    /// Detaches a container that has ended (its namespace is going away):
    /// the host side of its links is deleted in the background.
    pub async fn detach_exited(&self, network_id: &str, container_id: &str) -> Result<()> {
        self.detach_as(network_id, container_id, None, true).await
    }

    /// Waits for background work (link deletions) before the daemon exits.
    pub async fn settle(&self) {
        self.net.settle().await;
    }

    async fn detach_as(
        &self,
        network_id: &str,
        container_id: &str,
        netns: Option<BorrowedFd<'_>>,
        exited: bool,
    ) -> Result<()> {
        self.dns.remove(network_id, container_id);
        self.proxies.stop(network_id, container_id);
        let Some(r) = self.find(network_id) else {
            return Ok(());
        };
        if !r.is_plugin() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let plugin = self.plugin(&r.driver)?;
        if exited {
            plugin.del_exited(&r.spec(Vec::new()), container_id).await?;
        } else {
            plugin.del(&r.spec(Vec::new()), container_id, netns).await?;
        }
        tracing::debug!(
            container = container_id,
            network = %r.name,
            micros = started.elapsed().as_micros() as u64,
            "detached"
        );
        Ok(())
    }

    /// Releases every attachment whose container is not in `keep` (after a
    /// crash: links, rules and leases nothing owns).
    pub async fn gc(&self, keep: &[String]) -> Vec<String> {
        let mut gone = Vec::new();
        for r in self.list().into_iter().filter(|r| r.is_plugin()) {
            match self.plugin(&r.driver) {
                Ok(p) => match p.gc(&r.spec(Vec::new()), keep).await {
                    Ok(ids) => gone.extend(ids),
                    Err(e) => tracing::warn!("network {}: gc: {e}", r.name),
                },
                Err(e) => tracing::warn!("network {}: {e}", r.name),
            }
        }
        gone
    }
}
