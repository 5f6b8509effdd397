//! `add`, `del`, `check` and `gc`: a container's lease on a network and the
//! plan that plugs it into the bridge (a veth pair, its address, the default
//! route, published ports and bandwidth limits).

use std::net::Ipv4Addr;
use std::path::Path;

use berth_sdk::error::context;
use berth_sdk::ipam::{self, IpamError};
use berth_sdk::links::{check_ifname, mac_from_ipv4, veth_name};
use berth_sdk::network::{
    Address, AttachRequest, Attachment, Error, Link, LinkKind, NetworkSpec, Plan, PortForward,
    Route, Rules, Shaping, Side,
};

use crate::state::{self, NetworkState};

/// Attaches `req.container_id` to its network: leases an address, records
/// it, and plans the links.
pub fn add(root: &Path, req: &AttachRequest) -> Result<Attachment, Error> {
    let mut s = existing(root, &req.network)?;
    let name = s.name().to_string();
    let cid = &req.container_id;
    check_ifname(&req.ifname).map_err(|e| {
        context(
            e.into(),
            &format!("attaching container {cid} to network {name}"),
        )
    })?;
    if let Some(addr) = s.leases.get(cid) {
        return Err(Error::AlreadyExists(format!(
            "container {cid} is already attached to network {name} with address {addr}"
        )));
    }
    let pool = s.pool()?;
    let ip = if req.address.is_empty() {
        s.leases.allocate(cid, &pool).map_err(|e| match e {
            IpamError::Exhausted(range) => Error::Other(format!(
                "no free address left in {range} (network {name}); remove a container from it \
                 or create a network with a larger subnet"
            )),
            e => context(e.into(), &format!("network {name}")),
        })?
    } else {
        let wanted = ipam::parse_addr("address", &req.address)
            .map_err(|e| context(e.into(), &format!("network {name}")))?;
        s.leases.reserve(cid, wanted, &pool).map_err(|e| match e {
            IpamError::Taken { addr, holder } => Error::AlreadyExists(format!(
                "address {addr} is already used by container {holder} on network {name}"
            )),
            e => context(e.into(), &format!("network {name}")),
        })?
    };
    // The lease must be on disk before the host acts on it: a crash after
    // the host applied the plan must not hand the address out twice.
    state::save(root, &s)?;
    Ok(attachment(&s, req, ip))
}

/// Releases `container_id`'s lease on network `spec`; Ok when there is none.
pub fn del(root: &Path, spec: &NetworkSpec, container_id: &str) -> Result<(), Error> {
    let Some(mut s) = state::load(root, &spec.id)? else {
        return Ok(());
    };
    if s.leases.release(container_id).is_some() {
        state::save(root, &s)?;
    }
    Ok(())
}

/// Checks that `container_id` holds a lease on network `spec`.
pub fn check(root: &Path, spec: &NetworkSpec, container_id: &str) -> Result<(), Error> {
    let s = existing(root, spec)?;
    match s.leases.get(container_id) {
        Some(_) => Ok(()),
        None => Err(Error::NotFound(format!(
            "container {container_id} has no address on network {}",
            s.name()
        ))),
    }
}

/// Releases the leases of network `spec` whose container is not in `keep`;
/// returns those containers.
pub fn gc(root: &Path, spec: &NetworkSpec, keep: &[String]) -> Result<Vec<String>, Error> {
    let Some(mut s) = state::load(root, &spec.id)? else {
        return Ok(Vec::new());
    };
    let gone = s.leases.retain(keep);
    if !gone.is_empty() {
        state::save(root, &s)?;
    }
    Ok(gone)
}

fn existing(root: &Path, spec: &NetworkSpec) -> Result<NetworkState, Error> {
    state::load(root, &spec.id)?.ok_or_else(|| {
        Error::NotFound(format!(
            "network {} (ID {}) is not known to network-bridge; create it first",
            spec.name, spec.id
        ))
    })
}

/// The attachment of `req` with address `ip`.
fn attachment(s: &NetworkState, req: &AttachRequest, ip: Ipv4Addr) -> Attachment {
    let veth = veth_name(&s.spec.id, &req.container_id);
    let cidr = ipam::format_cidr(ip, s.subnet.prefix_len());
    let routes = if s.internal {
        Vec::new()
    } else {
        vec![Route {
            side: Side::Container,
            destination: "default".into(),
            gateway: s.gateway.to_string(),
            link: req.ifname.clone(),
        }]
    };
    let ports = req
        .ports
        .iter()
        .map(|p| PortForward {
            container_ip: ip.to_string(),
            ..p.clone()
        })
        .collect();
    let shaping = if req.bandwidth > 0 {
        vec![
            Shaping {
                side: Side::Host,
                link: veth.clone(),
                rate: req.bandwidth,
            },
            Shaping {
                side: Side::Container,
                link: req.ifname.clone(),
                rate: req.bandwidth,
            },
        ]
    } else {
        Vec::new()
    };
    Attachment {
        address: cidr.clone(),
        // Kept for internal networks too: DNS answers there.
        gateway: s.gateway.to_string(),
        mac: mac_from_ipv4(ip),
        plan: Plan {
            links: vec![Link {
                name: veth,
                kind: LinkKind::Veth(req.ifname.clone()),
                mtu: s.mtu,
                master: s.bridge.clone(),
            }],
            addresses: vec![Address {
                side: Side::Container,
                link: req.ifname.clone(),
                cidr,
            }],
            routes,
            rules: Rules {
                ports,
                ..Rules::default()
            },
            shaping,
        },
    }
}

#[cfg(test)]
#[path = "attach_tests.rs"]
mod tests;
