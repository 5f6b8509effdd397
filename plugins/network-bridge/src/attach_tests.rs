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

fn port(host: u16, container: u16) -> PortForward {
    PortForward {
        protocol: "tcp".into(),
        host_ip: String::new(),
        host_port: host,
        container_ip: String::new(),
        container_port: container,
    }
}

#[test]
fn add_leases_an_address_and_plans_the_veth() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let mut s = spec("front", "172.18.0.0/16");
    s.options = vec![("mtu".into(), "1400".into())];
    let info = create_network(root, &s).unwrap();
    let bridge = info.plan.links[0].name.clone();
    let mut r = req(&s, &cid(1));
    r.ports = vec![port(8080, 80)];
    r.bandwidth = 1_000_000;
    let a = add(root, &r).unwrap();
    let veth = veth_name(&s.id, &cid(1));
    assert_eq!(a.address, "172.18.0.2/16");
    assert_eq!(a.gateway, "172.18.0.1");
    assert_eq!(a.mac, "02:42:ac:12:00:02");
    assert_eq!(
        a.plan,
        Plan {
            links: vec![Link {
                name: veth.clone(),
                kind: LinkKind::Veth("eth0".into()),
                mtu: 1400,
                master: bridge,
            }],
            addresses: vec![Address {
                side: Side::Container,
                link: "eth0".into(),
                cidr: "172.18.0.2/16".into(),
            }],
            routes: vec![Route {
                side: Side::Container,
                destination: "default".into(),
                gateway: "172.18.0.1".into(),
                link: "eth0".into(),
            }],
            rules: Rules {
                ports: vec![PortForward {
                    container_ip: "172.18.0.2".into(),
                    ..port(8080, 80)
                }],
                ..Rules::default()
            },
            shaping: vec![
                Shaping {
                    side: Side::Host,
                    link: veth,
                    rate: 1_000_000,
                },
                Shaping {
                    side: Side::Container,
                    link: "eth0".into(),
                    rate: 1_000_000,
                },
            ],
        }
    );
    // The lease is on disk.
    let st = state::load(root, &s.id).unwrap().unwrap();
    assert_eq!(st.leases.get(&cid(1)), Some("172.18.0.2".parse().unwrap()));
    check(root, &s, &cid(1)).unwrap();
    assert_eq!(
        add(root, &req(&s, &cid(2))).unwrap().address,
        "172.18.0.3/16"
    );
}

#[test]
fn a_second_add_for_the_same_container_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let s = spec("front", "10.0.0.0/24");
    create_network(tmp.path(), &s).unwrap();
    add(tmp.path(), &req(&s, &cid(1))).unwrap();
    match add(tmp.path(), &req(&s, &cid(1))) {
        Err(Error::AlreadyExists(m)) => assert!(m.contains("10.0.0.2"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn internal_networks_get_no_default_route() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = spec("back", "10.0.0.0/24");
    s.internal = true;
    create_network(tmp.path(), &s).unwrap();
    let a = add(tmp.path(), &req(&s, &cid(1))).unwrap();
    assert!(a.plan.routes.is_empty());
    assert!(a.plan.shaping.is_empty());
    assert_eq!(a.gateway, "10.0.0.1");
}

#[test]
fn an_address_the_operator_chose() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let mut s = spec("front", "10.0.0.0/24");
    s.ip_range = "10.0.0.128/25".into();
    create_network(root, &s).unwrap();
    let mut r = req(&s, &cid(1));
    r.address = "10.0.0.200".into();
    assert_eq!(add(root, &r).unwrap().address, "10.0.0.200/24");

    let mut r = req(&s, &cid(2));
    r.address = "10.0.0.200".into();
    match add(root, &r) {
        Err(Error::AlreadyExists(m)) => assert_eq!(
            m,
            format!(
                "address 10.0.0.200 is already used by container {} on network front",
                cid(1)
            )
        ),
        other => panic!("{other:?}"),
    }
    for (bad, why) in [
        ("10.0.1.5", "outside 10.0.0.0/24"),
        ("10.0.0.5", "outside 10.0.0.128/25"),
        ("10.0.0.255", "broadcast"),
        ("10.0.0.1", "outside 10.0.0.128/25"),
        ("fd00::5", "only IPv4"),
        ("nope", "not an IPv4 address"),
    ] {
        r.address = bad.into();
        match add(root, &r) {
            Err(Error::Invalid(m)) => assert!(m.contains(why), "{bad}: {m}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
    // The gateway, when it lies inside the range.
    let mut s = spec("gw", "10.1.0.0/24");
    s.gateway = "10.1.0.9".into();
    create_network(root, &s).unwrap();
    let mut r = req(&s, &cid(1));
    r.address = "10.1.0.9".into();
    match add(root, &r) {
        Err(Error::Invalid(m)) => assert!(m.contains("gateway"), "{m}"),
        other => panic!("{other:?}"),
    }
    // Nothing was leased by the refused requests.
    assert_eq!(state::load(root, &s.id).unwrap().unwrap().leases.len(), 0);
}

#[test]
fn exhaustion_is_reported_with_the_network() {
    let tmp = tempfile::tempdir().unwrap();
    let s = spec("tiny", "172.18.0.0/30");
    create_network(tmp.path(), &s).unwrap();
    assert_eq!(
        add(tmp.path(), &req(&s, &cid(1))).unwrap().address,
        "172.18.0.2/30"
    );
    match add(tmp.path(), &req(&s, &cid(2))) {
        Err(Error::Other(m)) => assert!(
            m.starts_with("no free address left in 172.18.0.0/30 (network tiny)"),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_networks_and_bad_ifnames() {
    let tmp = tempfile::tempdir().unwrap();
    let s = spec("ghost", "10.0.0.0/24");
    match add(tmp.path(), &req(&s, &cid(1))) {
        Err(Error::NotFound(m)) => assert!(m.contains("network ghost"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        check(tmp.path(), &s, &cid(1)),
        Err(Error::NotFound(_))
    ));
    del(tmp.path(), &s, &cid(1)).unwrap();
    assert_eq!(gc(tmp.path(), &s, &[]).unwrap(), Vec::<String>::new());

    create_network(tmp.path(), &s).unwrap();
    let mut r = req(&s, &cid(1));
    r.ifname = "eth/0".into();
    assert!(matches!(add(tmp.path(), &r), Err(Error::Invalid(_))));
}

#[test]
fn del_releases_and_is_always_safe() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let s = spec("front", "10.0.0.0/24");
    create_network(root, &s).unwrap();
    add(root, &req(&s, &cid(1))).unwrap();
    del(root, &s, &cid(1)).unwrap();
    del(root, &s, &cid(1)).unwrap();
    match check(root, &s, &cid(1)) {
        Err(Error::NotFound(m)) => assert!(m.contains("no address on network front"), "{m}"),
        other => panic!("{other:?}"),
    }
    // The freed .2 is not handed out again at once.
    assert_eq!(add(root, &req(&s, &cid(2))).unwrap().address, "10.0.0.3/24");
}

#[test]
fn gc_releases_containers_not_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let s = spec("front", "10.0.0.0/24");
    create_network(root, &s).unwrap();
    for n in 1..=3 {
        add(root, &req(&s, &cid(n))).unwrap();
    }
    assert_eq!(gc(root, &s, &[cid(2)]).unwrap(), [cid(1), cid(3)]);
    check(root, &s, &cid(2)).unwrap();
    assert!(check(root, &s, &cid(1)).is_err());
    assert!(gc(root, &s, &[cid(2)]).unwrap().is_empty());
}
