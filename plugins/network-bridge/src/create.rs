//! `create-network` and `remove-network`: choosing a network's subnet,
//! gateway, bridge and MTU, and the plan that builds it on the host (a
//! bridge holding the gateway address, with NAT or isolation).

use std::path::Path;

use berth_sdk::error::context;
use berth_sdk::ipam::{self, IpamError, Ipv4Net, Leases, Pool};
use berth_sdk::links::check_ifname;
use berth_sdk::network::{
    Address, Error, Link, LinkKind, NetworkInfo, NetworkSpec, Plan, Rules, Side,
};

use crate::state::{self, NetworkState, SpecRecord};

/// Driver options that name the bridge.
pub const BRIDGE_NAME_OPTIONS: [&str; 2] = ["com.docker.network.bridge.name", "bridge-name"];
/// Driver options that set the MTU.
pub const MTU_OPTIONS: [&str; 2] = ["com.docker.network.driver.mtu", "mtu"];
/// The bridge of the network named `bridge` (docker's `docker0`).
pub const DEFAULT_BRIDGE: &str = "berth0";
/// The longest prefix a network may have: room for a gateway and one container.
pub const MAX_PREFIX_LEN: u8 = 30;

/// Creates network `spec` under `root`, or returns what an earlier call for
/// the same ID decided.
pub fn create_network(root: &Path, spec: &NetworkSpec) -> Result<NetworkInfo, Error> {
    if let Some(existing) = state::load(root, &spec.id)? {
        return Ok(info(&existing));
    }
    let state = decide(spec)?;
    if let Some(other) = state::all(root)?
        .into_iter()
        .find(|o| o.bridge == state.bridge && o.spec.id != spec.id)
    {
        return Err(Error::AlreadyExists(format!(
            "network {}: bridge {} is already used by network {}; choose another with -o {}=NAME",
            spec.name,
            state.bridge,
            other.name(),
            BRIDGE_NAME_OPTIONS[0]
        )));
    }
    state::save(root, &state)?;
    Ok(info(&state))
}

/// Forgets network `spec` (its plan was undone by the host already).
pub fn remove_network(root: &Path, spec: &NetworkSpec) -> Result<(), Error> {
    state::remove(root, &spec.id)
}

/// The network's state as `spec` asks, before any container joins.
pub fn decide(spec: &NetworkSpec) -> Result<NetworkState, Error> {
    let name = &spec.name;
    let bad = |e: IpamError| context(e.into(), &format!("network {name}"));
    let subnet = subnet(spec)?;
    let gateway = match spec.gateway.as_str() {
        "" => ipam::first_host(&subnet),
        g => ipam::parse_addr("gateway", g).map_err(bad)?,
    };
    let ip_range = match spec.ip_range.as_str() {
        "" => None,
        r => Some(ipam::parse_subnet("ip-range", r).map_err(bad)?),
    };
    Pool::new(subnet, ip_range, Some(gateway)).map_err(bad)?;
    Ok(NetworkState {
        spec: SpecRecord::from(spec),
        subnet,
        gateway,
        bridge: bridge_name(spec)?,
        ip_range,
        internal: spec.internal,
        mtu: mtu(spec)?,
        leases: Leases::default(),
    })
}

/// The subnet asked for (checked against the other networks'), or the first
/// of docker's default pools that no other network overlaps.
fn subnet(spec: &NetworkSpec) -> Result<Ipv4Net, Error> {
    let name = &spec.name;
    let taken = taken(spec)?;
    if spec.subnet.is_empty() {
        return ipam::first_free_subnet(ipam::default_pools(), &taken).ok_or_else(|| {
            Error::Other(format!(
                "no free subnet left in the default pools (172.17.0.0/16 to 172.31.0.0/16, \
                 192.168.0.0/20 to 192.168.240.0/20) for network {name}; give one with --subnet"
            ))
        });
    }
    let subnet = ipam::parse_subnet("subnet", &spec.subnet)
        .map_err(|e| context(e.into(), &format!("network {name}")))?;
    if subnet.prefix_len() > MAX_PREFIX_LEN {
        return Err(Error::Invalid(format!(
            "network {name}: subnet {subnet} is too small: the prefix length must be at most \
             /{MAX_PREFIX_LEN} (room for a gateway and a container)"
        )));
    }
    if let Some(other) = ipam::first_overlap(&subnet, &taken) {
        return Err(Error::AlreadyExists(format!(
            "subnet {subnet} overlaps {other} (network {name}), which another network uses; \
             choose a subnet that overlaps no other network"
        )));
    }
    Ok(subnet)
}

/// The other networks' IPv4 subnets (IPv6 ones cannot overlap ours).
fn taken(spec: &NetworkSpec) -> Result<Vec<Ipv4Net>, Error> {
    let mut out = Vec::new();
    for t in &spec.taken {
        match ipam::parse_cidr("taken subnet", t) {
            Ok(net) => out.push(net.trunc()),
            Err(IpamError::Ipv6 { .. }) => {}
            Err(e) => return Err(context(e.into(), &format!("network {}", spec.name))),
        }
    }
    Ok(out)
}

/// The bridge's name: the operator's, `berth0` for the network named
/// `bridge`, else `br-` and the ID's first 12 characters (as docker).
fn bridge_name(spec: &NetworkSpec) -> Result<String, Error> {
    if let Some(name) = BRIDGE_NAME_OPTIONS.iter().find_map(|k| spec.option(k)) {
        check_ifname(name).map_err(|e| context(e.into(), &format!("network {}", spec.name)))?;
        return Ok(name.to_string());
    }
    if spec.name == "bridge" {
        return Ok(DEFAULT_BRIDGE.to_string());
    }
    let short: String = spec.id.chars().take(12).collect();
    Ok(format!("br-{short}"))
}

/// The MTU option; 0 (the kernel's default) when none is given.
fn mtu(spec: &NetworkSpec) -> Result<u32, Error> {
    let Some((key, value)) = MTU_OPTIONS
        .iter()
        .find_map(|k| spec.option(k).map(|v| (*k, v)))
    else {
        return Ok(0);
    };
    match value.parse::<u32>() {
        Ok(m) if m == 0 || (68..=65535).contains(&m) => Ok(m),
        _ => Err(Error::Invalid(format!(
            "network {}: option {key}={value} is not an MTU: want 68 to 65535, or 0 for the default",
            spec.name
        ))),
    }
}

/// What `create-network` returns for a network's state.
pub fn info(s: &NetworkState) -> NetworkInfo {
    NetworkInfo {
        subnet: s.subnet.to_string(),
        gateway: s.gateway.to_string(),
        plan: plan(s),
    }
}

/// The bridge with the gateway address, and NAT (or isolation).
fn plan(s: &NetworkState) -> Plan {
    let rules = if s.internal {
        Rules {
            isolate: vec![s.bridge.clone()],
            ..Rules::default()
        }
    } else {
        Rules {
            masquerade: vec![(s.subnet.to_string(), s.bridge.clone())],
            forward: vec![s.bridge.clone()],
            ..Rules::default()
        }
    };
    Plan {
        links: vec![Link {
            name: s.bridge.clone(),
            kind: LinkKind::Bridge,
            mtu: s.mtu,
            master: String::new(),
        }],
        addresses: vec![Address {
            side: Side::Host,
            link: s.bridge.clone(),
            cidr: ipam::format_cidr(s.gateway, s.subnet.prefix_len()),
        }],
        rules,
        ..Plan::default()
    }
}

#[cfg(test)]
#[path = "create_tests.rs"]
pub(crate) mod tests;
