//! IPv4 address management for network plugins: parsing and formatting
//! CIDRs, choosing a subnet that overlaps no other network, and a lease table
//! that hands out a network's addresses to containers.
//!
//! Everything here is pure data; a plugin persists a [`Leases`] table in its
//! own state (it serializes as `{"leases": {container: address}, "cursor": address}`).
//!
//! ```
//! use berth_sdk::ipam::{first_host, parse_subnet, Leases, Pool};
//!
//! let subnet = parse_subnet("subnet", "172.18.0.0/16").unwrap();
//! let pool = Pool::new(subnet, None, Some(first_host(&subnet))).unwrap();
//! let mut leases = Leases::default();
//! // The network address and the gateway (the first host) are skipped.
//! assert_eq!(leases.allocate("web", &pool).unwrap().to_string(), "172.18.0.2");
//! assert_eq!(leases.allocate("db", &pool).unwrap().to_string(), "172.18.0.3");
//! ```

use std::collections::{BTreeMap, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr};

pub use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::error::PluginError;

/// Why an address, a subnet or a lease was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    /// An IPv6 address or subnet where only IPv4 is supported.
    #[error("{what} {value} is IPv6, but only IPv4 is supported; give an IPv4 {what}")]
    Ipv6 {
        /// What was parsed (`subnet`, `gateway`, `ip-range`, `address`).
        what: String,
        /// The value as given.
        value: String,
    },
    /// A value that is not an IPv4 address or CIDR.
    #[error("invalid {what} {value:?}: {reason}")]
    Malformed {
        /// What was parsed.
        what: String,
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A subnet written with host bits set (`172.18.0.1/16`).
    #[error("invalid {what} {given}: host bits are set; did you mean {network}?")]
    HostBits {
        /// What was parsed.
        what: String,
        /// The value as given.
        given: String,
        /// The subnet it lies in.
        network: Ipv4Net,
    },
    /// An address or subnet outside the subnet (or range) it must lie in.
    #[error("{what} {value} is outside {outer}")]
    Outside {
        /// What was checked (`gateway`, `ip-range`, `address`).
        what: String,
        /// The address or subnet.
        value: String,
        /// Where it must lie.
        outer: Ipv4Net,
    },
    /// An address that no container may have: the subnet's network or
    /// broadcast address, or the gateway.
    #[error("{what} {addr} is the {role} address of {subnet}")]
    Reserved {
        /// What was checked.
        what: String,
        /// The address.
        addr: Ipv4Addr,
        /// `network`, `broadcast` or `gateway`.
        role: &'static str,
        /// The subnet.
        subnet: Ipv4Net,
    },
    /// An address leased to another holder.
    #[error("address {addr} is already leased to {holder}")]
    Taken {
        /// The address.
        addr: Ipv4Addr,
        /// Who holds it.
        holder: String,
    },
    /// A holder that already has a lease.
    #[error("{holder} already holds address {addr}")]
    AlreadyLeased {
        /// Who asked.
        holder: String,
        /// The address it holds.
        addr: Ipv4Addr,
    },
    /// Every usable address of the range is leased.
    #[error("no free address left in {0}")]
    Exhausted(Ipv4Net),
}

impl From<IpamError> for PluginError {
    fn from(e: IpamError) -> Self {
        let msg = e.to_string();
        match e {
            IpamError::Taken { .. } | IpamError::AlreadyLeased { .. } => {
                PluginError::AlreadyExists(msg)
            }
            IpamError::Exhausted(_) => PluginError::Other(msg),
            _ => PluginError::Invalid(msg),
        }
    }
}

/// Parses an IPv4 address; `what` names it in errors (`gateway`).
pub fn parse_addr(what: &str, value: &str) -> Result<Ipv4Addr, IpamError> {
    value.parse::<Ipv4Addr>().map_err(|_| {
        if value.parse::<Ipv6Addr>().is_ok() {
            IpamError::Ipv6 {
                what: what.into(),
                value: value.into(),
            }
        } else {
            malformed(what, value, "not an IPv4 address")
        }
    })
}

/// Parses `address/prefix-length` as written on an interface
/// (`172.18.0.2/16`): host bits may be set.
pub fn parse_cidr(what: &str, value: &str) -> Result<Ipv4Net, IpamError> {
    let Some((addr, len)) = value.split_once('/') else {
        if value.parse::<Ipv6Addr>().is_ok() {
            return Err(IpamError::Ipv6 {
                what: what.into(),
                value: value.into(),
            });
        }
        return Err(malformed(what, value, "missing the prefix length (`/16`)"));
    };
    let addr = parse_addr(what, addr).map_err(|e| match e {
        IpamError::Ipv6 { .. } => IpamError::Ipv6 {
            what: what.into(),
            value: value.into(),
        },
        _ => malformed(what, value, "not an IPv4 CIDR (`172.18.0.0/16`)"),
    })?;
    let len = len
        .parse::<u8>()
        .ok()
        .filter(|l| *l <= 32 && !len.starts_with('+'))
        .ok_or_else(|| malformed(what, value, "the prefix length must be 0 to 32"))?;
    Ok(Ipv4Net::new(addr, len).expect("prefix length checked"))
}

/// Parses a subnet (`172.18.0.0/16`): host bits must be clear.
pub fn parse_subnet(what: &str, value: &str) -> Result<Ipv4Net, IpamError> {
    let net = parse_cidr(what, value)?;
    if net.addr() != net.network() {
        return Err(IpamError::HostBits {
            what: what.into(),
            given: value.into(),
            network: net.trunc(),
        });
    }
    Ok(net)
}

/// `addr/prefix_len` (`172.18.0.2/16`), as an interface address is written.
pub fn format_cidr(addr: Ipv4Addr, prefix_len: u8) -> String {
    format!("{addr}/{prefix_len}")
}

/// Whether two subnets share an address.
pub fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The first of `taken` that `subnet` overlaps.
pub fn first_overlap<'a>(
    subnet: &Ipv4Net,
    taken: impl IntoIterator<Item = &'a Ipv4Net>,
) -> Option<Ipv4Net> {
    taken.into_iter().find(|t| overlaps(subnet, t)).copied()
}

/// Docker's default address pools, in the order docker uses them:
/// 172.17.0.0/16 to 172.31.0.0/16, then 192.168.0.0/20 to 192.168.240.0/20.
pub fn default_pools() -> impl Iterator<Item = Ipv4Net> {
    let wide = (17..=31).map(|b| Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16));
    let narrow = (0..16).map(|i| Ipv4Net::new(Ipv4Addr::new(192, 168, i * 16, 0), 20));
    wide.chain(narrow).map(|n| n.expect("valid prefix length"))
}

/// The first of `candidates` that overlaps none of `taken`.
pub fn first_free_subnet(
    candidates: impl IntoIterator<Item = Ipv4Net>,
    taken: &[Ipv4Net],
) -> Option<Ipv4Net> {
    candidates
        .into_iter()
        .find(|c| first_overlap(c, taken).is_none())
}

/// The first host address of `subnet`, the default gateway.
pub fn first_host(subnet: &Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(subnet.network()).wrapping_add(1))
}

/// Where a network's container addresses come from: a subnet, optionally a
/// range inside it, and the gateway no container may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    subnet: Ipv4Net,
    range: Ipv4Net,
    gateway: Option<Ipv4Addr>,
}

impl Pool {
    /// A pool over `subnet`, allocating from `range` (the whole subnet when
    /// `None`). Fails when the range is not inside the subnet, or the
    /// gateway is outside it or is its network or broadcast address.
    pub fn new(
        subnet: Ipv4Net,
        range: Option<Ipv4Net>,
        gateway: Option<Ipv4Addr>,
    ) -> Result<Pool, IpamError> {
        let subnet = subnet.trunc();
        let range = range.map_or(subnet, |r| r.trunc());
        if !subnet.contains(&range) {
            return Err(IpamError::Outside {
                what: "ip-range".into(),
                value: range.to_string(),
                outer: subnet,
            });
        }
        let pool = Pool {
            subnet,
            range,
            gateway: None,
        };
        if let Some(gw) = gateway {
            pool.check_in_subnet("gateway", gw)?;
        }
        Ok(Pool { gateway, ..pool })
    }

    /// The subnet.
    pub fn subnet(&self) -> Ipv4Net {
        self.subnet
    }

    /// The range addresses are allocated from (the subnet when none was given).
    pub fn range(&self) -> Ipv4Net {
        self.range
    }

    /// The gateway.
    pub fn gateway(&self) -> Option<Ipv4Addr> {
        self.gateway
    }

    /// Checks that a container may have `addr`: inside the range, and not
    /// the subnet's network, broadcast or gateway address.
    pub fn check_usable(&self, addr: Ipv4Addr) -> Result<(), IpamError> {
        self.check_in_subnet("address", addr)?;
        if !self.range.contains(&addr) {
            return Err(IpamError::Outside {
                what: "address".into(),
                value: addr.to_string(),
                outer: self.range,
            });
        }
        if Some(addr) == self.gateway {
            return Err(self.reserved("address", addr, "gateway"));
        }
        Ok(())
    }

    fn check_in_subnet(&self, what: &str, addr: Ipv4Addr) -> Result<(), IpamError> {
        if !self.subnet.contains(&addr) {
            return Err(IpamError::Outside {
                what: what.into(),
                value: addr.to_string(),
                outer: self.subnet,
            });
        }
        if addr == self.subnet.network() {
            return Err(self.reserved(what, addr, "network"));
        }
        if addr == self.subnet.broadcast() {
            return Err(self.reserved(what, addr, "broadcast"));
        }
        Ok(())
    }

    fn reserved(&self, what: &str, addr: Ipv4Addr, role: &'static str) -> IpamError {
        IpamError::Reserved {
            what: what.into(),
            addr,
            role,
            subnet: self.subnet,
        }
    }
}

/// A network's leases: which holder (a container id) has which address,
/// and where the next allocation starts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leases {
    /// Holder → address.
    #[serde(default)]
    leases: BTreeMap<String, Ipv4Addr>,
    /// The address allocated last; the next search starts after it, so a
    /// just-released address is not handed out again at once (a stale ARP
    /// entry or connection elsewhere may still point at it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cursor: Option<Ipv4Addr>,
}

impl Leases {
    /// The address `holder` holds.
    pub fn get(&self, holder: &str) -> Option<Ipv4Addr> {
        self.leases.get(holder).copied()
    }

    /// Who holds `addr`.
    pub fn holder(&self, addr: Ipv4Addr) -> Option<&str> {
        self.leases
            .iter()
            .find(|(_, a)| **a == addr)
            .map(|(h, _)| h.as_str())
    }

    /// Every lease, by holder.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Ipv4Addr)> {
        self.leases.iter().map(|(h, a)| (h.as_str(), *a))
    }

    /// How many leases there are.
    pub fn len(&self) -> usize {
        self.leases.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }

    /// The address allocated last.
    pub fn cursor(&self) -> Option<Ipv4Addr> {
        self.cursor
    }

    /// Leases `addr` (one the operator chose) to `holder`. The cursor does
    /// not move.
    pub fn reserve(
        &mut self,
        holder: &str,
        addr: Ipv4Addr,
        pool: &Pool,
    ) -> Result<Ipv4Addr, IpamError> {
        self.check_unleased(holder)?;
        pool.check_usable(addr)?;
        if let Some(other) = self.holder(addr) {
            return Err(IpamError::Taken {
                addr,
                holder: other.to_string(),
            });
        }
        self.leases.insert(holder.to_string(), addr);
        Ok(addr)
    }

    /// Leases the next free address of the pool's range after the cursor
    /// (wrapping around) to `holder`.
    pub fn allocate(&mut self, holder: &str, pool: &Pool) -> Result<Ipv4Addr, IpamError> {
        self.check_unleased(holder)?;
        let range = pool.range();
        let lo = u64::from(u32::from(range.network()));
        let size = u64::from(u32::from(range.broadcast())) - lo + 1;
        let start = match self.cursor.map(|c| u64::from(u32::from(c))) {
            Some(c) if c >= lo && c - lo < size => c - lo + 1,
            _ => 0,
        };
        let leased: HashSet<Ipv4Addr> = self.leases.values().copied().collect();
        let found = (0..size)
            .map(|i| Ipv4Addr::from(u32::try_from(lo + (start + i) % size).expect("in range")))
            .find(|a| !leased.contains(a) && pool.check_usable(*a).is_ok())
            .ok_or(IpamError::Exhausted(range))?;
        self.leases.insert(holder.to_string(), found);
        self.cursor = Some(found);
        Ok(found)
    }

    /// Releases `holder`'s lease; returns the address it had.
    pub fn release(&mut self, holder: &str) -> Option<Ipv4Addr> {
        self.leases.remove(holder)
    }

    /// Releases every lease whose holder is not in `keep`; returns those
    /// holders, sorted.
    pub fn retain(&mut self, keep: &[String]) -> Vec<String> {
        let keep: HashSet<&str> = keep.iter().map(String::as_str).collect();
        let gone: Vec<String> = self
            .leases
            .keys()
            .filter(|h| !keep.contains(h.as_str()))
            .cloned()
            .collect();
        for h in &gone {
            self.leases.remove(h);
        }
        gone
    }

    fn check_unleased(&self, holder: &str) -> Result<(), IpamError> {
        match self.get(holder) {
            Some(addr) => Err(IpamError::AlreadyLeased {
                holder: holder.to_string(),
                addr,
            }),
            None => Ok(()),
        }
    }
}

fn malformed(what: &str, value: &str, reason: &str) -> IpamError {
    IpamError::Malformed {
        what: what.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

#[cfg(test)]
#[path = "ipam_tests.rs"]
mod tests;
