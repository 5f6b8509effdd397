//! The embedded DNS server of user networks: containers resolve each other by name, every other query goes upstream.
//!
//! One [`Dns`] holds every network. For each network it answers on the
//! network's gateway address (UDP and TCP, port 53, in the daemon's network
//! namespace):
//!
//! - A queries for the names of the network's containers (name, aliases,
//!   short id, hostname; case-insensitive, with or without the trailing dot)
//!   with all the addresses that hold the name, TTL 600 — and, for a
//!   container that asks (known by its source address), the names of every
//!   other network it is on too (this network's first, then the others by
//!   id), so one resolver serves a container on several networks; names of
//!   networks it is not on stay unknown;
//! - any other type for such a name with NOERROR and no answer (NODATA), so
//!   clients fall back to A at once;
//! - everything else by forwarding the query unchanged to the upstream
//!   resolvers, in order, 2 s each, and relaying the answer as it came (a
//!   truncated UDP answer included: the client then asks again over TCP,
//!   which is forwarded over TCP). The upstreams are those of the container
//!   that asks (by source address) if it has its own, else the global ones;
//!   with none, or none answering, the client gets SERVFAIL, as from docker.
//!
//! Names and servers have separate lifetimes: `add`/`remove` may come before
//! `serve` or after `stop`. Malformed packets are dropped.
//!
//! This module holds [`Dns`] (serving, stopping, adding and removing names);
//! `table` the names of one network, `answer` what a query gets, `server`
//! the sockets and their tasks.

mod answer;
mod server;
mod table;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use hickory_proto::serialize::binary::DecodeError;
use hickory_proto::ProtoError;
use tokio::sync::Semaphore;
use tracing::debug;

use answer::Ctx;
use server::{bind, Server};
use table::{read, write, Table};

/// How long one upstream resolver has to answer.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// UDP queries being forwarded at once per network; more are dropped.
const MAX_FORWARDS: usize = 256;
/// The largest DNS message.
const MAX_MESSAGE: usize = u16::MAX as usize;
/// How often, and how far apart, `serve` retries a bind whose address is
/// still held by a server that was just stopped.
const BIND_ATTEMPTS: u32 = 20;
const BIND_RETRY: Duration = Duration::from_millis(50);

/// Why one query went unanswered (logged, never returned: DNS clients retry).
#[derive(Debug, thiserror::Error)]
enum QueryError {
    #[error("decoding the query from {from}: {source}")]
    Decode {
        from: SocketAddr,
        source: DecodeError,
    },
    #[error("encoding the answer to {from}: {source}")]
    Encode {
        from: SocketAddr,
        source: ProtoError,
    },
    #[error("asking upstream {upstream}: {source}")]
    Upstream {
        upstream: SocketAddr,
        source: io::Error,
    },
    #[error("upstream {upstream} did not answer within {UPSTREAM_TIMEOUT:?}")]
    UpstreamTimeout { upstream: SocketAddr },
    #[error("sending the answer to {to}: {source}")]
    Reply { to: SocketAddr, source: io::Error },
}

/// The resolver of every network. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Dns {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    upstreams: Arc<[SocketAddr]>,
    networks: Mutex<HashMap<String, Network>>,
    /// Each network's table, for the servers (kept with `networks`).
    tables: answer::Tables,
}

/// The names of one network and its server, if it is served.
#[derive(Debug, Default)]
struct Network {
    table: Arc<RwLock<Table>>,
    server: Option<Server>,
}

impl Dns {
    /// `upstreams`: the resolvers other names go to (the host's, from
    /// /etc/resolv.conf; see [`Dns::host_upstreams`]).
    pub fn new(upstreams: Vec<SocketAddr>) -> Dns {
        Dns {
            inner: Arc::new(Inner {
                upstreams: upstreams.into(),
                networks: Mutex::new(HashMap::new()),
                tables: Arc::default(),
            }),
        }
    }

    /// The nameservers of a resolv.conf text, skipping loopback ones
    /// (127.0.0.0/8, ::1 — unreachable from a container, and from the daemon
    /// they would loop); port 53.
    pub fn host_upstreams(resolv_conf: &str) -> Vec<SocketAddr> {
        resolv_conf
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                if words.next()? != "nameserver" {
                    return None;
                }
                // A zoned IPv6 address (fe80::1%eth0) does not parse and is skipped.
                let ip = words.next()?.parse::<IpAddr>().ok()?.to_canonical();
                (!ip.is_loopback() && !ip.is_unspecified()).then_some(SocketAddr::new(ip, 53))
            })
            .collect()
    }

    /// Starts answering for `network_id` on `addr` (UDP and TCP; port 53 in
    /// production, any port in tests). Idempotent per network id (a second
    /// call with the same id and addr is a no-op; a different addr restarts
    /// it).
    ///
    /// Port 0 binds UDP on a free port and TCP on the same one. A port still
    /// held (by a server just stopped) is retried for about a second before
    /// the error is returned.
    pub async fn serve(&self, network_id: &str, addr: SocketAddr) -> io::Result<()> {
        let old = {
            let mut networks = self.networks();
            let network = self.entry(&mut networks, network_id);
            if network.server.as_ref().is_some_and(|s| s.addr == addr) {
                return Ok(());
            }
            network.server.take()
        };
        if let Some(old) = old {
            // Wait until the old sockets are closed, in case the new address is the same port.
            for task in old.stop() {
                let _ = task.await;
            }
        }
        let mut attempt = 1;
        loop {
            {
                let mut networks = self.networks();
                let network = self.entry(&mut networks, network_id);
                if network.server.as_ref().is_some_and(|s| s.addr == addr) {
                    return Ok(()); // a concurrent call won
                }
                match bind(addr) {
                    Ok((udp, tcp)) => {
                        let ctx = Ctx {
                            table: Arc::clone(&network.table),
                            tables: Arc::clone(&self.inner.tables),
                            upstreams: Arc::clone(&self.inner.upstreams),
                            forwards: Arc::new(Semaphore::new(MAX_FORWARDS)),
                        };
                        network.server = Some(Server::start(addr, udp, tcp, ctx)?);
                        debug!(network = network_id, %addr, "DNS server started");
                        return Ok(());
                    }
                    Err(e) if e.kind() == io::ErrorKind::AddrInUse && attempt < BIND_ATTEMPTS => {}
                    Err(e) => {
                        if network.server.is_none() && network.table_is_empty() {
                            self.forget(&mut networks, network_id);
                        }
                        return Err(io::Error::new(
                            e.kind(),
                            format!(
                                "binding the DNS server of network {network_id} on {addr}: {e}"
                            ),
                        ));
                    }
                }
            }
            attempt += 1;
            tokio::time::sleep(BIND_RETRY).await;
        }
    }

    /// Stops answering for the network (its sockets close).
    ///
    /// The network's names stay until they are removed.
    pub fn stop(&self, network_id: &str) {
        let mut networks = self.networks();
        let Some(network) = networks.get_mut(network_id) else {
            return;
        };
        if let Some(server) = network.server.take() {
            debug!(network = network_id, addr = %server.addr, "DNS server stopped");
            drop(server.stop());
        }
        if network.table_is_empty() {
            self.forget(&mut networks, network_id);
        }
    }

    /// Makes `names` resolve to `ip` on `network_id` for `container_id`;
    /// `upstreams` (the container's --dns servers, port 53) override the global
    /// ones for queries coming FROM `ip` (empty = the global ones).
    ///
    /// A second call for the same container replaces the first. A leading
    /// `/` (docker's name form) and a trailing dot are ignored.
    pub fn add(
        &self,
        network_id: &str,
        container_id: &str,
        names: &[String],
        ip: Ipv4Addr,
        upstreams: Vec<SocketAddr>,
    ) {
        let mut networks = self.networks();
        let network = self.entry(&mut networks, network_id);
        write(&network.table).insert(container_id, names, ip, upstreams);
    }

    /// Forgets a container on a network.
    pub fn remove(&self, network_id: &str, container_id: &str) {
        let mut networks = self.networks();
        let Some(network) = networks.get_mut(network_id) else {
            return;
        };
        write(&network.table).remove(container_id);
        if network.server.is_none() && network.table_is_empty() {
            self.forget(&mut networks, network_id);
        }
    }

    /// The network `id`, made (and its table shared with the servers) if new.
    fn entry<'a>(&self, networks: &'a mut HashMap<String, Network>, id: &str) -> &'a mut Network {
        networks.entry(id.to_owned()).or_insert_with(|| {
            let network = Network::default();
            self.inner
                .tables
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(id.to_owned(), Arc::clone(&network.table));
            network
        })
    }

    /// Drops network `id` and its table.
    fn forget(&self, networks: &mut HashMap<String, Network>, id: &str) {
        networks.remove(id);
        self.inner
            .tables
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }

    fn networks(&self) -> MutexGuard<'_, HashMap<String, Network>> {
        self.inner
            .networks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Network {
    fn table_is_empty(&self) -> bool {
        read(&self.table).containers.is_empty()
    }
}

#[cfg(test)]
mod tests;
