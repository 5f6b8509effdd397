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

pub(crate) fn parse_cidr(s: &str, what: &str) -> Result<Ipv4Net, String> {
    s.parse::<Ipv4Net>()
        .map_err(|_| format!("{what} {s:?} is not an IPv4 address with a prefix length"))
}

pub(crate) fn parse_ip(s: &str, what: &str) -> Result<Ipv4Addr, String> {
    s.parse::<Ipv4Addr>()
        .map_err(|_| format!("{what} {s:?} is not an IPv4 address"))
}

fn side(s: wit::Side) -> Side {
    match s {
        wit::Side::Host => Side::Host,
        wit::Side::Container => Side::Container,
    }
}

pub(crate) fn protocol(s: &str) -> Result<Protocol, String> {
    match s {
        "tcp" => Ok(Protocol::Tcp),
        "udp" => Ok(Protocol::Udp),
        other => Err(format!("protocol {other:?} is neither tcp nor udp")),
    }
}

pub(crate) fn port_from_wit(p: &wit::PortForward) -> Result<PortForward, String> {
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
) -> Result<(), String> {
    if g.pools.iter().any(|p| p.contains(net)) {
        Ok(())
    } else {
        Err(format!(
            "{what} {net} is outside the plugin's granted address pools {:?}",
            g.pools.iter().map(|p| p.to_string()).collect::<Vec<_>>()
        ))
    }
}

/// Fails unless `ip` lies in one of the granted pools.
pub(crate) fn check_in_pools(ip: Ipv4Addr, g: &NetworkGrants, what: &str) -> Result<(), String> {
    check_net_in_pools(&Ipv4Net::from(ip), g, what)
}

/// Parses the WIT plan (syntax only).
pub(crate) fn from_wit(p: &wit::Plan) -> Result<Plan, String> {
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
        .collect::<Result<Vec<_>, String>>()?;
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
        .collect::<Result<Vec<_>, String>>()?;
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
        .collect::<Result<Vec<_>, String>>()?;
    let rules = Rules {
        masquerade: p
            .rules
            .masquerade
            .iter()
            .map(|(s, b)| Ok((parse_cidr(s, "masquerade subnet")?.trunc(), b.clone())))
            .collect::<Result<Vec<_>, String>>()?,
        forward: p.rules.forward.clone(),
        isolate: p.rules.isolate.clone(),
        ports: p
            .rules
            .ports
            .iter()
            .map(port_from_wit)
            .collect::<Result<Vec<_>, String>>()?,
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
pub(crate) fn check(plan: &Plan, g: &NetworkGrants, allowed: &Allowed<'_>) -> Result<(), String> {
    let host_link = |name: &str, what: &str| -> Result<(), String> {
        if !valid_ifname(name) {
            return Err(format!(
                "{what} {name:?} is not a valid interface name (1-15 of A-Z a-z 0-9 _ . -)"
            ));
        }
        if !g.link_prefixes.iter().any(|p| name.starts_with(p.as_str())) {
            return Err(format!(
                "{what} {name:?} is outside the plugin's granted link prefixes {:?}",
                g.link_prefixes
            ));
        }
        Ok(())
    };
    let in_pool = |net: &Ipv4Net, what: &str| -> Result<(), String> {
        if g.pools.iter().any(|p| p.contains(net)) {
            Ok(())
        } else {
            Err(format!(
                "{what} {net} is outside the plugin's granted address pools {:?}",
                g.pools.iter().map(|p| p.to_string()).collect::<Vec<_>>()
            ))
        }
    };
    let ip_in_pool = |ip: Ipv4Addr, what: &str| in_pool(&Ipv4Net::from(ip), what);
    let container = |what: &str| -> Result<(), String> {
        if allowed.container {
            Ok(())
        } else {
            Err(format!(
                "{what} acts in a container, but this call has none"
            ))
        }
    };

    let mut host_links: HashSet<&str> = HashSet::new();
    let mut container_links: HashSet<&str> = HashSet::new();
    for l in &plan.links {
        host_link(&l.name, "link")?;
        if !host_links.insert(&l.name) {
            return Err(format!("link {:?} is planned twice", l.name));
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
                    return Err(format!("container interface name {peer:?} is not valid"));
                }
                if !container_links.insert(peer) {
                    return Err(format!("container interface {peer:?} is planned twice"));
                }
            }
        }
        if let LinkKind::Macvlan { parent, mode, .. } = &l.kind {
            if !g.macvlan_parents.iter().any(|p| p == parent) {
                return Err(format!(
                    "macvlan parent {parent:?} is not granted to the plugin (granted: {:?})",
                    g.macvlan_parents
                ));
            }
            if !["bridge", "private", "vepa", "passthru"].contains(&mode.as_str()) {
                return Err(format!(
                    "macvlan mode {mode:?} is not one of bridge, private, vepa, passthru"
                ));
            }
        }
        if l.mtu != 0 && !(68..=65535).contains(&l.mtu) {
            return Err(format!(
                "MTU {} of link {} is out of range 68-65535",
                l.mtu, l.name
            ));
        }
    }
    let on_side = |side: Side, link: &str, what: &str| -> Result<(), String> {
        match side {
            Side::Host => host_link(link, what),
            Side::Container => {
                container(what)?;
                if container_links.contains(link) || link == "lo" {
                    Ok(())
                } else {
                    Err(format!(
                        "{what}: container interface {link:?} is not one this plan creates"
                    ))
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
            (Side::Host, None) => {
                return Err(format!(
                    "{what}: a plugin may not set the host's default route"
                ))
            }
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
            return Err(format!(
                "published port {}:{}/{} -> {}:{} was not asked for",
                p.host_ip.map(|i| i.to_string()).unwrap_or_default(),
                p.host_port,
                p.protocol.as_str(),
                p.container_ip,
                p.container_port
            ));
        }
        ip_in_pool(p.container_ip, "published port's container address")?;
    }
    for s in &plan.shaping {
        on_side(s.side, &s.link, &format!("bandwidth limit on {}", s.link))?;
        if s.side == Side::Host && !host_links.contains(s.link.as_str()) {
            return Err(format!(
                "bandwidth limit on {}: not a link this plan creates",
                s.link
            ));
        }
        if s.rate == 0 {
            return Err(format!("bandwidth limit on {} is 0", s.link));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants() -> NetworkGrants {
        NetworkGrants {
            link_prefixes: vec!["berth".into(), "veth".into()],
            pools: vec!["172.16.0.0/12".parse().unwrap()],
            macvlan_parents: vec![],
        }
    }

    fn attach_plan() -> Plan {
        Plan {
            links: vec![Link {
                name: "veth0123456789a".into(),
                kind: LinkKind::Veth {
                    peer: "eth0".into(),
                },
                mtu: 0,
                master: Some("berth0".into()),
            }],
            addresses: vec![Address {
                side: Side::Container,
                link: "eth0".into(),
                addr: "172.17.0.2/16".parse().unwrap(),
            }],
            routes: vec![Route {
                side: Side::Container,
                destination: None,
                gateway: Some("172.17.0.1".parse().unwrap()),
                link: "eth0".into(),
            }],
            rules: Rules::default(),
            shaping: vec![Shaping {
                side: Side::Host,
                link: "veth0123456789a".into(),
                rate: 10_000_000,
            }],
        }
    }

    #[test]
    fn a_good_attachment_passes() {
        let a = Allowed {
            container: true,
            ports: &[],
        };
        check(&attach_plan(), &grants(), &a).unwrap();
    }

    #[test]
    fn refusals_name_the_object() {
        let a = Allowed {
            container: true,
            ports: &[],
        };
        let mut p = attach_plan();
        p.links[0].name = "eth9".into();
        let e = check(&p, &grants(), &a).unwrap_err();
        assert!(e.contains("\"eth9\"") && e.contains("prefixes"), "{e}");

        let mut p = attach_plan();
        p.addresses[0].addr = "10.0.0.2/8".parse().unwrap();
        let e = check(&p, &grants(), &a).unwrap_err();
        assert!(e.contains("10.0.0.2/8") && e.contains("pools"), "{e}");

        let mut p = attach_plan();
        p.routes.push(Route {
            side: Side::Host,
            destination: None,
            gateway: None,
            link: "berth0".into(),
        });
        assert!(check(&p, &grants(), &a)
            .unwrap_err()
            .contains("default route"));

        let mut p = attach_plan();
        p.rules.ports.push(PortForward {
            protocol: Protocol::Tcp,
            host_ip: None,
            host_port: 22,
            container_ip: "172.17.0.2".parse().unwrap(),
            container_port: 22,
        });
        assert!(check(&p, &grants(), &a)
            .unwrap_err()
            .contains("not asked for"));

        let mut p = attach_plan();
        p.addresses[0].link = "eth1".into();
        assert!(check(&p, &grants(), &a).unwrap_err().contains("eth1"));

        // Without a container, container-side steps are refused.
        let e = check(&attach_plan(), &grants(), &Allowed::default()).unwrap_err();
        assert!(e.contains("container"), "{e}");
    }

    #[test]
    fn interface_names() {
        assert!(valid_ifname("berth0"));
        assert!(valid_ifname("br-0123456789ab"));
        assert!(!valid_ifname("br-0123456789abc"));
        assert!(!valid_ifname("a b"));
        assert!(!valid_ifname("a\"b"));
        assert!(!valid_ifname(""));
    }
}
