//! The names of one network's containers: who holds each name, each
//! container's own resolvers, and the lookup keys of names and queries.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, PoisonError, RwLock};

use hickory_proto::rr::Name;

pub(super) fn read(table: &RwLock<Table>) -> std::sync::RwLockReadGuard<'_, Table> {
    table.read().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn write(table: &RwLock<Table>) -> std::sync::RwLockWriteGuard<'_, Table> {
    table.write().unwrap_or_else(PoisonError::into_inner)
}

/// The containers holding one name: (container id, address).
type Holders = Vec<(Box<str>, Ipv4Addr)>;

/// The names of one network's containers.
#[derive(Debug, Default)]
pub(super) struct Table {
    /// A lowercase name without trailing dot → the containers holding it.
    pub(super) names: HashMap<Box<[u8]>, Holders>,
    pub(super) containers: HashMap<Box<str>, Container>,
    /// A container's address → its id, to find the upstreams of a query's sender.
    by_ip: HashMap<Ipv4Addr, Box<str>>,
}

#[derive(Debug)]
pub(super) struct Container {
    names: Vec<Box<[u8]>>,
    ip: Ipv4Addr,
    /// The container's own resolvers; `None` means the global ones.
    upstreams: Option<Arc<[SocketAddr]>>,
}

impl Table {
    pub(super) fn insert(
        &mut self,
        id: &str,
        names: &[String],
        ip: Ipv4Addr,
        upstreams: Vec<SocketAddr>,
    ) {
        self.remove(id);
        let mut keys: Vec<Box<[u8]>> = Vec::with_capacity(names.len());
        for key in names.iter().filter_map(|n| name_key(n)) {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        for key in &keys {
            self.names
                .entry(key.clone())
                .or_default()
                .push((id.into(), ip));
        }
        self.by_ip.insert(ip, id.into());
        let upstreams = (!upstreams.is_empty()).then(|| upstreams.into());
        self.containers.insert(
            id.into(),
            Container {
                names: keys,
                ip,
                upstreams,
            },
        );
    }

    pub(super) fn remove(&mut self, id: &str) {
        let Some(container) = self.containers.remove(id) else {
            return;
        };
        for key in container.names {
            if let Some(holders) = self.names.get_mut(&key) {
                holders.retain(|(holder, _)| &**holder != id);
                if holders.is_empty() {
                    self.names.remove(&key);
                }
            }
        }
        if self
            .by_ip
            .get(&container.ip)
            .is_some_and(|holder| &**holder == id)
        {
            self.by_ip.remove(&container.ip);
        }
    }

    /// The id of the container at `ip` on this network.
    pub(super) fn id_at(&self, ip: IpAddr) -> Option<&str> {
        let IpAddr::V4(ip) = ip.to_canonical() else {
            return None;
        };
        self.by_ip.get(&ip).map(|id| &**id)
    }

    /// The own resolvers of the container at `ip`, if it has some.
    pub(super) fn upstreams_of(&self, ip: IpAddr) -> Option<Arc<[SocketAddr]>> {
        let IpAddr::V4(ip) = ip.to_canonical() else {
            return None;
        };
        let id = self.by_ip.get(&ip)?;
        self.containers.get(id)?.upstreams.clone()
    }
}

/// The lookup key of a container name: lowercase, without docker's leading `/` and the trailing dot.
pub(super) fn name_key(name: &str) -> Option<Box<[u8]>> {
    let name = name.strip_prefix('/').unwrap_or(name);
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return None;
    }
    Some(name.to_ascii_lowercase().into_bytes().into())
}

/// The lookup key of a queried name, written into `buf` (no allocation).
pub(super) fn query_key<'b>(name: &Name, buf: &'b mut [u8; 256]) -> Option<&'b [u8]> {
    let mut len = 0;
    for (i, label) in name.iter().enumerate() {
        if label.contains(&b'.') {
            return None; // an escaped dot inside a label is no container name
        }
        if i > 0 {
            *buf.get_mut(len)? = b'.';
            len += 1;
        }
        let dst = buf.get_mut(len..len + label.len())?;
        for (d, s) in dst.iter_mut().zip(label) {
            *d = s.to_ascii_lowercase();
        }
        len += label.len();
    }
    buf.get(..len)
}
