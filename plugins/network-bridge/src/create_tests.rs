use super::*;

pub(crate) fn spec(name: &str, subnet: &str) -> NetworkSpec {
    NetworkSpec {
        name: name.into(),
        id: format!("{:0<64}", hex_of(name)),
        subnet: subnet.into(),
        gateway: String::new(),
        ip_range: String::new(),
        internal: false,
        options: Vec::new(),
        taken: Vec::new(),
    }
}

fn hex_of(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn invalid(r: Result<NetworkInfo, Error>) -> String {
    match r {
        Err(Error::Invalid(m)) => m,
        other => panic!("want invalid, got {other:?}"),
    }
}

#[test]
fn chooses_the_first_free_default_pool_and_plans_the_bridge() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = spec("front", "");
    s.id = "0123456789abcdef".repeat(4);
    s.taken = vec!["172.17.0.0/16".into(), "fd00::/64".into()];
    let info = create_network(tmp.path(), &s).unwrap();
    assert_eq!(info.subnet, "172.18.0.0/16");
    assert_eq!(info.gateway, "172.18.0.1");
    let bridge = "br-0123456789ab";
    assert_eq!(
        info.plan,
        Plan {
            links: vec![Link {
                name: bridge.into(),
                kind: LinkKind::Bridge,
                mtu: 0,
                master: String::new(),
            }],
            addresses: vec![Address {
                side: Side::Host,
                link: bridge.into(),
                cidr: "172.18.0.1/16".into(),
            }],
            routes: vec![],
            rules: Rules {
                masquerade: vec![("172.18.0.0/16".into(), bridge.into())],
                forward: vec![bridge.into()],
                isolate: vec![],
                ports: vec![],
            },
            shaping: vec![],
        }
    );
    assert!(tmp.path().join(format!("networks/{}.json", s.id)).is_file());
}

#[test]
fn falls_back_to_the_192_168_pools() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = spec("front", "");
    s.taken = vec!["172.16.0.0/12".into(), "192.168.0.0/24".into()];
    let info = create_network(tmp.path(), &s).unwrap();
    assert_eq!(info.subnet, "192.168.16.0/20");
    s.taken = vec!["172.16.0.0/12".into(), "192.168.0.0/16".into()];
    s.id = "1".repeat(64);
    match create_network(tmp.path(), &s) {
        Err(Error::Other(m)) => assert!(m.contains("no free subnet"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn is_idempotent() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = spec("front", "");
    let first = create_network(tmp.path(), &s).unwrap();
    // A second call sees its own subnet as taken; it must still answer the same.
    s.taken = vec![first.subnet.clone()];
    assert_eq!(create_network(tmp.path(), &s).unwrap(), first);
}

#[test]
fn a_given_subnet_must_not_overlap_another_network() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = spec("front", "172.18.0.0/16");
    s.taken = vec!["10.0.0.0/8".into(), "172.16.0.0/12".into()];
    match create_network(tmp.path(), &s) {
        Err(Error::AlreadyExists(m)) => assert!(
            m.starts_with("subnet 172.18.0.0/16 overlaps 172.16.0.0/12 (network front)"),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(state::load(tmp.path(), &s.id).unwrap().is_none());
}

#[test]
fn validates_addresses() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let m = invalid(create_network(root, &spec("v6", "fd00::/64")));
    assert!(m.contains("only IPv4") && m.contains("fd00::/64"), "{m}");
    let m = invalid(create_network(root, &spec("tiny", "10.0.0.0/31")));
    assert!(m.contains("at most /30"), "{m}");
    let m = invalid(create_network(root, &spec("bits", "10.0.0.1/24")));
    assert!(m.contains("did you mean 10.0.0.0/24"), "{m}");

    let mut s = spec("gw", "10.0.0.0/24");
    s.gateway = "10.0.1.1".into();
    let m = invalid(create_network(root, &s));
    assert_eq!(m, "network gw: gateway 10.0.1.1 is outside 10.0.0.0/24");
    s.gateway = "10.0.0.255".into();
    let m = invalid(create_network(root, &s));
    assert!(m.contains("broadcast"), "{m}");
    s.gateway = "10.0.0.0".into();
    let m = invalid(create_network(root, &s));
    assert!(m.contains("network address"), "{m}");
    s.gateway = "fd00::1".into();
    let m = invalid(create_network(root, &s));
    assert!(m.contains("only IPv4"), "{m}");

    let mut s = spec("range", "10.0.0.0/24");
    s.ip_range = "10.0.1.0/28".into();
    let m = invalid(create_network(root, &s));
    assert_eq!(
        m,
        "network range: ip-range 10.0.1.0/28 is outside 10.0.0.0/24"
    );

    let mut s = spec("ok", "10.0.0.0/30");
    s.gateway = "10.0.0.2".into();
    s.ip_range = "10.0.0.0/30".into();
    let info = create_network(root, &s).unwrap();
    assert_eq!(
        (info.subnet.as_str(), info.gateway.as_str()),
        ("10.0.0.0/30", "10.0.0.2")
    );
    assert!(std::fs::read_dir(root.join("networks")).unwrap().count() == 1);
}

#[test]
fn bridge_names_and_mtu_from_options() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let info = create_network(root, &spec("bridge", "")).unwrap();
    assert_eq!(info.plan.links[0].name, "berth0");

    let mut s = spec("named", "10.1.0.0/24");
    s.options = vec![
        ("com.docker.network.bridge.name".into(), "br-named".into()),
        ("com.docker.network.driver.mtu".into(), "1450".into()),
    ];
    let info = create_network(root, &s).unwrap();
    assert_eq!(info.plan.links[0].name, "br-named");
    assert_eq!(info.plan.links[0].mtu, 1450);

    let mut s = spec("short", "10.2.0.0/24");
    s.options = vec![
        ("bridge-name".into(), "br-short".into()),
        ("mtu".into(), "9000".into()),
    ];
    let info = create_network(root, &s).unwrap();
    assert_eq!(
        (info.plan.links[0].name.as_str(), info.plan.links[0].mtu),
        ("br-short", 9000)
    );

    let mut s = spec("dup", "10.3.0.0/24");
    s.options = vec![("bridge-name".into(), "br-named".into())];
    match create_network(root, &s) {
        Err(Error::AlreadyExists(m)) => assert!(m.contains("network named"), "{m}"),
        other => panic!("{other:?}"),
    }

    let mut s = spec("badname", "10.4.0.0/24");
    s.options = vec![("bridge-name".into(), "much-too-long-bridge".into())];
    assert!(invalid(create_network(root, &s)).contains("longer than 15"));
    let mut s = spec("badmtu", "10.4.0.0/24");
    s.options = vec![("mtu".into(), "big".into())];
    assert!(invalid(create_network(root, &s)).contains("mtu=big"));
}

#[test]
fn internal_networks_are_isolated() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = spec("back", "10.9.0.0/24");
    s.internal = true;
    let info = create_network(tmp.path(), &s).unwrap();
    let bridge = info.plan.links[0].name.clone();
    assert_eq!(
        info.plan.rules,
        Rules {
            isolate: vec![bridge],
            ..Rules::default()
        }
    );
    assert_eq!(info.gateway, "10.9.0.1");
}

#[test]
fn remove_network_forgets_it() {
    let tmp = tempfile::tempdir().unwrap();
    let s = spec("front", "");
    create_network(tmp.path(), &s).unwrap();
    remove_network(tmp.path(), &s).unwrap();
    assert!(state::load(tmp.path(), &s.id).unwrap().is_none());
    remove_network(tmp.path(), &s).unwrap();
}
