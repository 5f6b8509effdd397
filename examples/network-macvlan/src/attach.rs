//! `add`, `del`, `check` and `gc`: a container's lease on a network and the
//! plan that puts it on the LAN — a macvlan on the parent link, moved into
//! the container as its interface, the container's address, and a default
//! route when the network has a router.

use std::net::Ipv4Addr;
use std::path::Path;

use berth_sdk::error::context;
use berth_sdk::ipam::{self, IpamError};
use berth_sdk::links::{check_ifname, mac_from_ipv4, veth_name};
use berth_sdk::network::{
    Address, AttachRequest, Attachment, Error, Link, LinkKind, Macvlan, NetworkSpec, Plan, Route,
    Side,
};

use crate::state::{self, NetworkState};

/// The host-side name of the macvlan that attaches `container_id` to
/// `network_id`: `mv` and 11 hex digits (the same digits sdk's `veth_name`
/// uses), 13 bytes. The link carries it only until the host moves it into
/// the container and renames it.
pub fn link_name(network_id: &str, container_id: &str) -> String {
    format!("mv{}", &veth_name(network_id, container_id)["veth".len()..])
}

/// Attaches `req.container_id` to its network: leases an address, records
/// it, and plans the macvlan.
pub fn add(root: &Path, req: &AttachRequest) -> Result<Attachment, Error> {
    let mut s = existing(root, &req.network)?;
    let (name, cid) = (s.name.clone(), &req.container_id);
    let whose = format!("attaching container {cid} to network {name}");
    check_ifname(&req.ifname).map_err(|e| context(e.into(), &whose))?;
    if req.bandwidth > 0 {
        return Err(Error::Invalid(format!(
            "{whose}: macvlan networks cannot limit bandwidth (--network-bandwidth): \
             no host-side link carries the container's traffic"
        )));
    }
    if let Some(addr) = s.leases.get(cid) {
        return Err(Error::AlreadyExists(format!(
            "container {cid} is already attached to network {name} with address {addr}"
        )));
    }
    let pool = s.pool()?;
    let ip = if req.address.is_empty() {
        s.leases.allocate(cid, &pool).map_err(|e| match e {
            IpamError::Exhausted(range) => Error::Other(format!(
                "no free address left in {range} (network {name}); remove a container from it"
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
    // On disk before the host acts: a crash after the host applied the plan
    // must not hand the address out twice.
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
            s.name
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
            "network {} (ID {}) is not known to network-macvlan; create it first",
            spec.name, spec.id
        ))
    })
}

/// The attachment of `req` with address `ip`.
fn attachment(s: &NetworkState, req: &AttachRequest, ip: Ipv4Addr) -> Attachment {
    let cidr = ipam::format_cidr(ip, s.subnet.prefix_len());
    let (gateway, routes) = if s.default_route {
        let route = Route {
            side: Side::Container,
            destination: "default".into(),
            gateway: s.gateway.to_string(),
            link: req.ifname.clone(),
        };
        (s.gateway.to_string(), vec![route])
    } else {
        (String::new(), Vec::new())
    };
    Attachment {
        address: cidr.clone(),
        gateway,
        mac: mac_from_ipv4(ip),
        plan: Plan {
            links: vec![Link {
                name: link_name(&s.id, &req.container_id),
                kind: LinkKind::Macvlan(Macvlan {
                    parent: s.parent.clone(),
                    mode: s.mode.clone(),
                    container_name: req.ifname.clone(),
                }),
                mtu: 0,
                master: String::new(),
            }],
            addresses: vec![Address {
                side: Side::Container,
                link: req.ifname.clone(),
                cidr,
            }],
            routes,
            ..Plan::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::create::create_network;
    use crate::create::tests::spec;

    fn cid(n: u8) -> String {
        format!("{n:02x}").repeat(32)
    }

    fn req(spec: &NetworkSpec, container: &str) -> AttachRequest {
        AttachRequest {
            network: spec.clone(),
            container_id: container.into(),
            ifname: "eth0".into(),
            address: String::new(),
            ports: Vec::new(),
            bandwidth: 0,
        }
    }

    fn lan(gateway: &str) -> NetworkSpec {
        let mut s = spec(
            "lan",
            "10.99.0.0/24",
            &[("parent", "eth0"), ("macvlan_mode", "vepa")],
        );
        s.gateway = gateway.into();
        s
    }

    #[test]
    fn link_names_fit_and_are_stable() {
        let n = link_name("net", "ctr");
        assert_eq!(n.len(), 13);
        assert!(n.starts_with("mv"));
        assert_eq!(n, link_name("net", "ctr"));
        assert_ne!(n, link_name("net", "ctr2"));
        check_ifname(&n).unwrap();
    }

    #[test]
    fn add_leases_an_address_and_plans_the_macvlan() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let s = lan("");
        create_network(root, &s).unwrap();
        let a = add(root, &req(&s, &cid(1))).unwrap();
        assert_eq!(a.address, "10.99.0.2/24");
        assert_eq!(a.gateway, "");
        assert_eq!(a.mac, "02:42:0a:63:00:02");
        assert_eq!(
            a.plan,
            Plan {
                links: vec![Link {
                    name: link_name(&s.id, &cid(1)),
                    kind: LinkKind::Macvlan(Macvlan {
                        parent: "eth0".into(),
                        mode: "vepa".into(),
                        container_name: "eth0".into(),
                    }),
                    mtu: 0,
                    master: String::new(),
                }],
                addresses: vec![Address {
                    side: Side::Container,
                    link: "eth0".into(),
                    cidr: "10.99.0.2/24".into(),
                }],
                ..Plan::default()
            }
        );
        check(root, &s, &cid(1)).unwrap();
        assert_eq!(
            add(root, &req(&s, &cid(2))).unwrap().address,
            "10.99.0.3/24"
        );
    }

    #[test]
    fn a_given_gateway_becomes_the_default_route() {
        let tmp = tempfile::tempdir().unwrap();
        let s = lan("10.99.0.254");
        create_network(tmp.path(), &s).unwrap();
        let a = add(tmp.path(), &req(&s, &cid(1))).unwrap();
        assert_eq!(a.gateway, "10.99.0.254");
        assert_eq!(
            a.plan.routes,
            [Route {
                side: Side::Container,
                destination: "default".into(),
                gateway: "10.99.0.254".into(),
                link: "eth0".into(),
            }]
        );
        // The first host is free for containers then.
        assert_eq!(a.address, "10.99.0.1/24");
    }

    #[test]
    fn refusals() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let s = lan("");
        assert!(matches!(
            add(root, &req(&s, &cid(1))),
            Err(Error::NotFound(_))
        ));
        create_network(root, &s).unwrap();

        let mut r = req(&s, &cid(1));
        r.bandwidth = 1_000_000;
        match add(root, &r) {
            Err(Error::Invalid(m)) => assert!(m.contains("--network-bandwidth"), "{m}"),
            other => panic!("{other:?}"),
        }
        let mut r = req(&s, &cid(1));
        r.address = "10.99.0.1".into();
        match add(root, &r) {
            Err(Error::Invalid(m)) => assert!(m.contains("gateway"), "{m}"),
            other => panic!("{other:?}"),
        }
        r.address = "10.99.0.7".into();
        add(root, &r).unwrap();
        match add(root, &r) {
            Err(Error::AlreadyExists(m)) => assert!(m.contains("10.99.0.7"), "{m}"),
            other => panic!("{other:?}"),
        }
        let mut r = req(&s, &cid(2));
        r.address = "10.99.0.7".into();
        assert!(matches!(add(root, &r), Err(Error::AlreadyExists(_))));
    }

    #[test]
    fn del_check_and_gc() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let s = lan("");
        del(root, &s, &cid(1)).unwrap();
        assert!(gc(root, &s, &[]).unwrap().is_empty());
        create_network(root, &s).unwrap();
        for n in 1..=3 {
            add(root, &req(&s, &cid(n))).unwrap();
        }
        del(root, &s, &cid(1)).unwrap();
        del(root, &s, &cid(1)).unwrap();
        assert!(matches!(check(root, &s, &cid(1)), Err(Error::NotFound(_))));
        assert_eq!(gc(root, &s, &[cid(2)]).unwrap(), [cid(3)]);
        check(root, &s, &cid(2)).unwrap();
        assert!(check(root, &s, &cid(3)).is_err());
    }
}
