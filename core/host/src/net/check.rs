//! Parses a network plugin's WIT plan into the host's types and checks it
//! against the plugin's grants: link names within its prefixes, addresses
//! within its pools, container-side steps only where a container was
//! handed over, published ports only those the host chose.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::plan::{
    Address, Link, LinkKind, Plan, PortForward, Protocol, Route, Rules, Shaping, Side,
};
use super::violation::PlanViolation;
use crate::bindings::network::exports::berth::plugin::network as wit;
use crate::config::NetworkGrants;

/// What the verb being checked allows besides the grants.
#[derive(Debug, Default)]
pub(crate) struct Allowed<'a> {
    /// Whether a container namespace was handed over (only `add`).
    pub container: bool,
    /// The ports the host chose for this attachment.
    pub ports: &'a [PortForward],
}

/// Whether `name` may be a Linux interface name.
pub(crate) fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

pub(crate) fn parse_cidr(s: &str, what: &'static str) -> Result<Ipv4Net, PlanViolation> {
    s.parse::<Ipv4Net>().map_err(|_| PlanViolation::NotACidr {
        what,
        value: s.to_owned(),
    })
}

pub(crate) fn parse_ip(s: &str, what: &'static str) -> Result<Ipv4Addr, PlanViolation> {
    s.parse::<Ipv4Addr>()
        .map_err(|_| PlanViolation::NotAnAddress {
            what,
            value: s.to_owned(),
        })
}

fn side(s: wit::Side) -> Side {
    match s {
        wit::Side::Host => Side::Host,
        wit::Side::Container => Side::Container,
    }
}

pub(crate) fn protocol(s: &str) -> Result<Protocol, PlanViolation> {
    match s {
        "tcp" => Ok(Protocol::Tcp),
        "udp" => Ok(Protocol::Udp),
        other => Err(PlanViolation::UnknownProtocol {
            protocol: other.to_owned(),
        }),
    }
}

pub(crate) fn port_from_wit(p: &wit::PortForward) -> Result<PortForward, PlanViolation> {
    Ok(PortForward {
        protocol: protocol(&p.protocol)?,
        host_ip: if p.host_ip.is_empty() {
            None
        } else {
            Some(parse_ip(&p.host_ip, "host address")?)
        },
        host_port: p.host_port,
        container_ip: parse_ip(&p.container_ip, "container address")?,
        container_port: p.container_port,
    })
}

pub(crate) fn port_to_wit(p: &PortForward) -> wit::PortForward {
    wit::PortForward {
        protocol: p.protocol.as_str().into(),
        host_ip: p.host_ip.map(|i| i.to_string()).unwrap_or_default(),
        host_port: p.host_port,
        container_ip: p.container_ip.to_string(),
        container_port: p.container_port,
    }
}

/// Fails unless `net` lies in one of the granted pools.
pub(crate) fn check_net_in_pools(
    net: &Ipv4Net,
    g: &NetworkGrants,
    what: &str,
) -> Result<(), PlanViolation> {
    if g.pools.iter().any(|p| p.contains(net)) {
        Ok(())
    } else {
        Err(PlanViolation::OutsidePools {
            what: what.to_owned(),
            net: *net,
            pools: g.pools.clone(),
        })
    }
}

/// Fails unless `ip` lies in one of the granted pools.
pub(crate) fn check_in_pools(
    ip: Ipv4Addr,
    g: &NetworkGrants,
    what: &str,
) -> Result<(), PlanViolation> {
    check_net_in_pools(&Ipv4Net::from(ip), g, what)
}

/// Parses the WIT plan (syntax only).
pub(crate) fn from_wit(p: &wit::Plan) -> Result<Plan, PlanViolation> {
    let links = p
        .links
        .iter()
        .map(|l| {
            Ok(Link {
                name: l.name.clone(),
                kind: match &l.kind {
                    wit::LinkKind::Bridge => LinkKind::Bridge,
                    wit::LinkKind::Veth(peer) => LinkKind::Veth { peer: peer.clone() },
                    wit::LinkKind::Macvlan(m) => LinkKind::Macvlan {
                        parent: m.parent.clone(),
                        mode: m.mode.clone(),
                        container_name: m.container_name.clone(),
                    },
                },
                mtu: l.mtu,
                master: (!l.master.is_empty()).then(|| l.master.clone()),
            })
        })
        .collect::<Result<Vec<_>, PlanViolation>>()?;
    let addresses = p
        .addresses
        .iter()
        .map(|a| {
            Ok(Address {
                side: side(a.side),
                link: a.link.clone(),
                addr: parse_cidr(&a.cidr, "address")?,
            })
        })
        .collect::<Result<Vec<_>, PlanViolation>>()?;
    let routes = p
        .routes
        .iter()
        .map(|r| {
            Ok(Route {
                side: side(r.side),
                destination: match r.destination.as_str() {
                    "default" | "0.0.0.0/0" => None,
                    d => Some(parse_cidr(d, "route destination")?),
                },
                gateway: if r.gateway.is_empty() {
                    None
                } else {
                    Some(parse_ip(&r.gateway, "route gateway")?)
                },
                link: r.link.clone(),
            })
        })
        .collect::<Result<Vec<_>, PlanViolation>>()?;
    let rules = Rules {
        masquerade: p
            .rules
            .masquerade
            .iter()
            .map(|(s, b)| Ok((parse_cidr(s, "masquerade subnet")?.trunc(), b.clone())))
            .collect::<Result<Vec<_>, PlanViolation>>()?,
        forward: p.rules.forward.clone(),
        isolate: p.rules.isolate.clone(),
        ports: p
            .rules
            .ports
            .iter()
            .map(port_from_wit)
            .collect::<Result<Vec<_>, PlanViolation>>()?,
    };
    let shaping = p
        .shaping
        .iter()
        .map(|s| Shaping {
            side: side(s.side),
            link: s.link.clone(),
            rate: s.rate,
        })
        .collect();
    Ok(Plan {
        links,
        addresses,
        routes,
        rules,
        shaping,
    })
}

/// Checks a parsed plan against the grants; the error names what is refused.
pub(crate) fn check(
    plan: &Plan,
    g: &NetworkGrants,
    allowed: &Allowed<'_>,
) -> Result<(), PlanViolation> {
    let host_link = |name: &str, what: &str| -> Result<(), PlanViolation> {
        if !valid_ifname(name) {
            return Err(PlanViolation::BadLinkName {
                what: what.to_owned(),
                name: name.to_owned(),
            });
        }
        if !g.link_prefixes.iter().any(|p| name.starts_with(p.as_str())) {
            return Err(PlanViolation::LinkOutsidePrefixes {
                what: what.to_owned(),
                name: name.to_owned(),
                prefixes: g.link_prefixes.clone(),
            });
        }
        Ok(())
    };
    let in_pool = |net: &Ipv4Net, what: &str| check_net_in_pools(net, g, what);
    let ip_in_pool = |ip: Ipv4Addr, what: &str| check_in_pools(ip, g, what);
    let container = |what: &str| -> Result<(), PlanViolation> {
        if allowed.container {
            Ok(())
        } else {
            Err(PlanViolation::NoContainer {
                what: what.to_owned(),
            })
        }
    };

    let mut host_links: HashSet<&str> = HashSet::new();
    let mut container_links: HashSet<&str> = HashSet::new();
    for l in &plan.links {
        host_link(&l.name, "link")?;
        if !host_links.insert(&l.name) {
            return Err(PlanViolation::LinkPlannedTwice {
                name: l.name.clone(),
            });
        }
        if let Some(m) = &l.master {
            host_link(m, "master bridge")?;
        }
        match &l.kind {
            LinkKind::Bridge => {}
            LinkKind::Veth { peer }
            | LinkKind::Macvlan {
                container_name: peer,
                ..
            } => {
                container(&format!("link {}", l.name))?;
                if !valid_ifname(peer) {
                    return Err(PlanViolation::BadContainerIfname { name: peer.clone() });
                }
                if !container_links.insert(peer) {
                    return Err(PlanViolation::ContainerIfnamePlannedTwice { name: peer.clone() });
                }
            }
        }
        if let LinkKind::Macvlan { parent, mode, .. } = &l.kind {
            if !g.macvlan_parents.iter().any(|p| p == parent) {
                return Err(PlanViolation::MacvlanParentNotGranted {
                    parent: parent.clone(),
                    granted: g.macvlan_parents.clone(),
                });
            }
            if !["bridge", "private", "vepa", "passthru"].contains(&mode.as_str()) {
                return Err(PlanViolation::BadMacvlanMode { mode: mode.clone() });
            }
        }
        if l.mtu != 0 && !(68..=65535).contains(&l.mtu) {
            return Err(PlanViolation::MtuOutOfRange {
                link: l.name.clone(),
                mtu: l.mtu,
            });
        }
    }
    let on_side = |side: Side, link: &str, what: &str| -> Result<(), PlanViolation> {
        match side {
            Side::Host => host_link(link, what),
            Side::Container => {
                container(what)?;
                if container_links.contains(link) || link == "lo" {
                    Ok(())
                } else {
                    Err(PlanViolation::UnplannedContainerIfname {
                        what: what.to_owned(),
                        link: link.to_owned(),
                    })
                }
            }
        }
    };
    for a in &plan.addresses {
        on_side(a.side, &a.link, &format!("address {}", a.addr))?;
        in_pool(&a.addr.trunc(), &format!("address {}", a.addr))?;
    }
    for r in &plan.routes {
        let what = format!(
            "route to {}",
            r.destination
                .map_or("default".to_string(), |d| d.to_string())
        );
        on_side(r.side, &r.link, &what)?;
        if let Some(gw) = r.gateway {
            ip_in_pool(gw, &format!("{what}: gateway"))?;
        }
        match (r.side, r.destination) {
            (Side::Host, None) => return Err(PlanViolation::HostDefaultRoute { what }),
            (Side::Host, Some(d)) => in_pool(&d, &what)?,
            (Side::Container, _) => {}
        }
    }
    for (subnet, bridge) in &plan.rules.masquerade {
        in_pool(subnet, "masqueraded subnet")?;
        host_link(bridge, "masquerade bridge")?;
    }
    for b in plan.rules.forward.iter().chain(&plan.rules.isolate) {
        host_link(b, "forwarding rule's bridge")?;
    }
    for p in &plan.rules.ports {
        // The host chose the host side; the plugin fills in the container's address.
        let asked = allowed.ports.iter().any(|a| {
            (a.protocol, a.host_ip, a.host_port, a.container_port)
                == (p.protocol, p.host_ip, p.host_port, p.container_port)
        });
        if !asked {
            return Err(PlanViolation::PortNotAsked { port: p.clone() });
        }
        ip_in_pool(p.container_ip, "published port's container address")?;
    }
    for s in &plan.shaping {
        on_side(s.side, &s.link, &format!("bandwidth limit on {}", s.link))?;
        if s.side == Side::Host && !host_links.contains(s.link.as_str()) {
            return Err(PlanViolation::ShapingOnUnplannedLink {
                link: s.link.clone(),
            });
        }
        if s.rate == 0 {
            return Err(PlanViolation::ZeroBandwidth {
                link: s.link.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
