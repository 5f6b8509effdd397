//! The checker's rules, one refusal at a time: each is told apart by its
//! variant and the object it carries, and renders the text users read.

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

const ADD: Allowed<'static> = Allowed {
    container: true,
    ports: &[],
};

/// The refusal of `plan` in an `add` that published no port.
fn refusal(plan: &Plan) -> PlanViolation {
    check(plan, &grants(), &ADD).unwrap_err()
}

fn ssh() -> PortForward {
    PortForward {
        protocol: Protocol::Tcp,
        host_ip: None,
        host_port: 22,
        container_ip: "172.17.0.2".parse().unwrap(),
        container_port: 22,
    }
}

#[test]
fn a_good_attachment_passes() {
    check(&attach_plan(), &grants(), &ADD).unwrap();
    let port = ssh();
    let mut p = attach_plan();
    p.rules.ports.push(port.clone());
    let asked = [port];
    let allowed = Allowed {
        container: true,
        ports: &asked,
    };
    check(&p, &grants(), &allowed).unwrap();
}

#[test]
fn host_links_stay_within_the_granted_prefixes() {
    let mut p = attach_plan();
    p.links[0].name = "eth9".into();
    let e = refusal(&p);
    assert!(
        matches!(&e, PlanViolation::LinkOutsidePrefixes { what, name, .. } if what == "link" && name == "eth9"),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        r#"link "eth9" is outside the plugin's granted link prefixes ["berth", "veth"]"#
    );

    let mut p = attach_plan();
    p.links[0].master = Some("br 0".into());
    let e = refusal(&p);
    assert!(
        matches!(&e, PlanViolation::BadLinkName { what, name } if what == "master bridge" && name == "br 0"),
        "{e:?}"
    );

    let mut p = attach_plan();
    p.links.push(p.links[0].clone());
    let e = refusal(&p);
    assert_eq!(
        e,
        PlanViolation::LinkPlannedTwice {
            name: "veth0123456789a".into()
        }
    );
    assert_eq!(e.to_string(), r#"link "veth0123456789a" is planned twice"#);

    let mut p = attach_plan();
    p.links[0].mtu = 10;
    assert_eq!(
        refusal(&p),
        PlanViolation::MtuOutOfRange {
            link: "veth0123456789a".into(),
            mtu: 10
        }
    );
}

#[test]
fn container_interfaces_are_valid_and_planned_once() {
    let mut p = attach_plan();
    p.links[0].kind = LinkKind::Veth { peer: "a b".into() };
    assert_eq!(
        refusal(&p),
        PlanViolation::BadContainerIfname { name: "a b".into() }
    );

    let mut p = attach_plan();
    let mut second = p.links[0].clone();
    second.name = "veth1".into();
    p.links.push(second);
    assert_eq!(
        refusal(&p),
        PlanViolation::ContainerIfnamePlannedTwice {
            name: "eth0".into()
        }
    );

    let mut p = attach_plan();
    p.addresses[0].link = "eth1".into();
    let e = refusal(&p);
    assert!(
        matches!(&e, PlanViolation::UnplannedContainerIfname { link, .. } if link == "eth1"),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        r#"address 172.17.0.2/16: container interface "eth1" is not one this plan creates"#
    );
}

#[test]
fn macvlans_need_a_granted_parent_and_a_known_mode() {
    let mut p = attach_plan();
    p.links[0].kind = LinkKind::Macvlan {
        parent: "eth0".into(),
        mode: "bridge".into(),
        container_name: "eth0".into(),
    };
    p.shaping.clear();
    assert_eq!(
        refusal(&p),
        PlanViolation::MacvlanParentNotGranted {
            parent: "eth0".into(),
            granted: vec![]
        }
    );

    let mut g = grants();
    g.macvlan_parents = vec!["eth0".into()];
    p.links[0].kind = LinkKind::Macvlan {
        parent: "eth0".into(),
        mode: "sideways".into(),
        container_name: "eth0".into(),
    };
    assert_eq!(
        check(&p, &g, &ADD).unwrap_err(),
        PlanViolation::BadMacvlanMode {
            mode: "sideways".into()
        }
    );
}

#[test]
fn addresses_and_routes_stay_within_the_granted_pools() {
    let mut p = attach_plan();
    p.addresses[0].addr = "10.0.0.2/8".parse().unwrap();
    let e = refusal(&p);
    assert_eq!(
        e,
        PlanViolation::OutsidePools {
            what: "address 10.0.0.2/8".into(),
            net: "10.0.0.0/8".parse().unwrap(),
            pools: grants().pools,
        }
    );
    assert_eq!(
        e.to_string(),
        r#"address 10.0.0.2/8 10.0.0.0/8 is outside the plugin's granted address pools ["172.16.0.0/12"]"#
    );

    let mut p = attach_plan();
    p.routes[0].gateway = Some("192.0.2.1".parse().unwrap());
    let e = refusal(&p);
    assert!(
        matches!(&e, PlanViolation::OutsidePools { net, .. } if net.to_string() == "192.0.2.1/32"),
        "{e:?}"
    );

    let mut p = attach_plan();
    p.routes.push(Route {
        side: Side::Host,
        destination: None,
        gateway: None,
        link: "berth0".into(),
    });
    let e = refusal(&p);
    assert_eq!(
        e,
        PlanViolation::HostDefaultRoute {
            what: "route to default".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "route to default: a plugin may not set the host's default route"
    );
}

#[test]
fn only_the_ports_the_host_chose_are_published() {
    let mut p = attach_plan();
    p.rules.ports.push(ssh());
    let e = refusal(&p);
    assert_eq!(e, PlanViolation::PortNotAsked { port: ssh() });
    assert_eq!(
        e.to_string(),
        "published port :22/tcp -> 172.17.0.2:22 was not asked for"
    );
}

#[test]
fn bandwidth_limits_are_nonzero_on_links_the_plan_creates() {
    let mut p = attach_plan();
    p.shaping[0].rate = 0;
    let e = refusal(&p);
    assert_eq!(
        e,
        PlanViolation::ZeroBandwidth {
            link: "veth0123456789a".into()
        }
    );
    assert_eq!(e.to_string(), "bandwidth limit on veth0123456789a is 0");

    let mut p = attach_plan();
    p.shaping[0].link = "berth0".into();
    assert_eq!(
        refusal(&p),
        PlanViolation::ShapingOnUnplannedLink {
            link: "berth0".into()
        }
    );
}

#[test]
fn container_steps_need_a_container() {
    let e = check(&attach_plan(), &grants(), &Allowed::default()).unwrap_err();
    assert_eq!(
        e,
        PlanViolation::NoContainer {
            what: "link veth0123456789a".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "link veth0123456789a acts in a container, but this call has none"
    );
}

#[test]
fn values_that_do_not_parse_are_named() {
    let e = parse_cidr("10.0.0.1", "address").unwrap_err();
    assert_eq!(
        e,
        PlanViolation::NotACidr {
            what: "address",
            value: "10.0.0.1".into()
        }
    );
    assert_eq!(
        e.to_string(),
        r#"address "10.0.0.1" is not an IPv4 address with a prefix length"#
    );
    let e = parse_ip("::1", "gateway").unwrap_err();
    assert_eq!(e.to_string(), r#"gateway "::1" is not an IPv4 address"#);
    assert!(matches!(
        e,
        PlanViolation::NotAnAddress {
            what: "gateway",
            ..
        }
    ));
    assert_eq!(
        protocol("sctp").unwrap_err(),
        PlanViolation::UnknownProtocol {
            protocol: "sctp".into()
        }
    );
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
