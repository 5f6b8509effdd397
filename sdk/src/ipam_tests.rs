use super::*;

fn net(s: &str) -> Ipv4Net {
    parse_subnet("subnet", s).unwrap()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn parses_and_formats_cidrs() {
    let n = parse_subnet("subnet", "172.18.0.0/16").unwrap();
    assert_eq!(n.to_string(), "172.18.0.0/16");
    assert_eq!(n.prefix_len(), 16);
    let a = parse_cidr("address", "172.18.0.2/16").unwrap();
    assert_eq!((a.addr(), a.prefix_len()), (ip("172.18.0.2"), 16));
    assert_eq!(format_cidr(ip("172.18.0.2"), 16), "172.18.0.2/16");
    assert_eq!(parse_addr("gateway", "10.0.0.1").unwrap(), ip("10.0.0.1"));
}

#[test]
fn refuses_malformed_and_ipv6() {
    let e = parse_subnet("subnet", "172.18.0.1/16").unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid subnet 172.18.0.1/16: host bits are set; did you mean 172.18.0.0/16?"
    );
    for bad in [
        "172.18.0.0",
        "172.18.0.0/33",
        "172.18.0.0/+8",
        "300.1.1.1/8",
        "x/8",
        "",
    ] {
        assert!(
            matches!(
                parse_subnet("subnet", bad),
                Err(IpamError::Malformed { .. })
            ),
            "{bad}"
        );
    }
    for v6 in ["fd00::/64", "fd00::1"] {
        let e = parse_cidr("subnet", v6).unwrap_err();
        assert!(matches!(e, IpamError::Ipv6 { .. }), "{v6}: {e:?}");
        assert!(e.to_string().contains("only IPv4"), "{e}");
    }
    assert!(matches!(
        parse_addr("gateway", "fd00::1"),
        Err(IpamError::Ipv6 { .. })
    ));
    assert!(matches!(
        PluginError::from(parse_addr("gateway", "nope").unwrap_err()),
        PluginError::Invalid(_)
    ));
}

#[test]
fn overlap_checks() {
    assert!(overlaps(&net("172.18.0.0/16"), &net("172.16.0.0/12")));
    assert!(overlaps(&net("172.16.0.0/12"), &net("172.18.0.0/16")));
    assert!(overlaps(&net("10.0.0.0/24"), &net("10.0.0.0/24")));
    assert!(!overlaps(&net("10.0.0.0/24"), &net("10.0.1.0/24")));
    let taken = [net("10.0.0.0/8"), net("172.16.0.0/12")];
    assert_eq!(
        first_overlap(&net("172.20.1.0/24"), &taken),
        Some(net("172.16.0.0/12"))
    );
    assert_eq!(first_overlap(&net("192.168.0.0/20"), &taken), None);
}

#[test]
fn default_pools_follow_dockers_order() {
    let pools: Vec<String> = default_pools().map(|p| p.to_string()).collect();
    assert_eq!(pools.len(), 31);
    assert_eq!(pools[0], "172.17.0.0/16");
    assert_eq!(pools[14], "172.31.0.0/16");
    assert_eq!(pools[15], "192.168.0.0/20");
    assert_eq!(pools[16], "192.168.16.0/20");
    assert_eq!(pools[30], "192.168.240.0/20");
    let taken = [net("172.17.0.0/16"), net("172.18.5.0/24")];
    assert_eq!(
        first_free_subnet(default_pools(), &taken),
        Some(net("172.19.0.0/16"))
    );
    assert_eq!(
        first_free_subnet(default_pools(), &[net("0.0.0.0/0")]),
        None
    );
    assert_eq!(first_host(&net("172.18.0.0/16")), ip("172.18.0.1"));
}

#[test]
fn pool_checks_range_and_gateway() {
    let subnet = net("172.18.0.0/16");
    let e = Pool::new(subnet, Some(net("172.19.0.0/24")), None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "ip-range 172.19.0.0/24 is outside 172.18.0.0/16"
    );
    let e = Pool::new(subnet, None, Some(ip("10.0.0.1"))).unwrap_err();
    assert_eq!(e.to_string(), "gateway 10.0.0.1 is outside 172.18.0.0/16");
    let e = Pool::new(subnet, None, Some(ip("172.18.255.255"))).unwrap_err();
    assert_eq!(
        e.to_string(),
        "gateway 172.18.255.255 is the broadcast address of 172.18.0.0/16"
    );
    assert!(matches!(
        Pool::new(subnet, None, Some(ip("172.18.0.0"))),
        Err(IpamError::Reserved {
            role: "network",
            ..
        })
    ));
    let pool = Pool::new(subnet, Some(net("172.18.1.0/24")), Some(ip("172.18.0.1"))).unwrap();
    assert!(pool.check_usable(ip("172.18.1.0")).is_ok());
    assert!(matches!(
        pool.check_usable(ip("172.18.2.1")),
        Err(IpamError::Outside { .. })
    ));
    let pool = Pool::new(subnet, None, Some(ip("172.18.0.9"))).unwrap();
    assert!(matches!(
        pool.check_usable(ip("172.18.0.9")),
        Err(IpamError::Reserved {
            role: "gateway",
            ..
        })
    ));
}

#[test]
fn allocates_skipping_reserved_addresses() {
    let subnet = net("10.1.0.0/29");
    let pool = Pool::new(subnet, None, Some(first_host(&subnet))).unwrap();
    let mut l = Leases::default();
    let got: Vec<Ipv4Addr> = (0..5)
        .map(|i| l.allocate(&format!("c{i}"), &pool).unwrap())
        .collect();
    // .0 network, .1 gateway, .7 broadcast.
    let want: Vec<Ipv4Addr> = (2..=6).map(|d| Ipv4Addr::new(10, 1, 0, d)).collect();
    assert_eq!(got, want);
    let e = l.allocate("c5", &pool).unwrap_err();
    assert_eq!(e, IpamError::Exhausted(subnet));
    assert!(
        matches!(PluginError::from(e), PluginError::Other(m) if m == "no free address left in 10.1.0.0/29")
    );
}

#[test]
fn rotating_cursor_does_not_reuse_a_released_address_at_once() {
    let subnet = net("10.1.0.0/29");
    let pool = Pool::new(subnet, None, Some(first_host(&subnet))).unwrap();
    let mut l = Leases::default();
    assert_eq!(l.allocate("a", &pool).unwrap(), ip("10.1.0.2"));
    assert_eq!(l.allocate("b", &pool).unwrap(), ip("10.1.0.3"));
    assert_eq!(l.release("a"), Some(ip("10.1.0.2")));
    assert_eq!(l.allocate("c", &pool).unwrap(), ip("10.1.0.4"));
    assert_eq!(l.allocate("d", &pool).unwrap(), ip("10.1.0.5"));
    assert_eq!(l.allocate("e", &pool).unwrap(), ip("10.1.0.6"));
    // Past the end: wraps around to the freed .2.
    assert_eq!(l.allocate("f", &pool).unwrap(), ip("10.1.0.2"));
    assert_eq!(l.cursor(), Some(ip("10.1.0.2")));
}

#[test]
fn allocates_within_the_range_only() {
    let subnet = net("172.18.0.0/16");
    let pool = Pool::new(subnet, Some(net("172.18.5.0/30")), Some(ip("172.18.0.1"))).unwrap();
    let mut l = Leases::default();
    let got: Vec<String> = (0..4)
        .map(|i| l.allocate(&i.to_string(), &pool).unwrap().to_string())
        .collect();
    assert_eq!(
        got,
        ["172.18.5.0", "172.18.5.1", "172.18.5.2", "172.18.5.3"]
    );
    assert_eq!(
        l.allocate("x", &pool).unwrap_err(),
        IpamError::Exhausted(net("172.18.5.0/30"))
    );
}

#[test]
fn reserve_checks_the_address_and_its_holder() {
    let subnet = net("172.18.0.0/24");
    let pool = Pool::new(subnet, None, Some(first_host(&subnet))).unwrap();
    let mut l = Leases::default();
    assert_eq!(
        l.reserve("a", ip("172.18.0.9"), &pool).unwrap(),
        ip("172.18.0.9")
    );
    assert_eq!(
        l.cursor(),
        None,
        "an operator's choice does not move the cursor"
    );
    let e = l.reserve("b", ip("172.18.0.9"), &pool).unwrap_err();
    assert_eq!(e.to_string(), "address 172.18.0.9 is already leased to a");
    assert!(matches!(
        PluginError::from(e),
        PluginError::AlreadyExists(_)
    ));
    let e = l.reserve("a", ip("172.18.0.10"), &pool).unwrap_err();
    assert_eq!(e.to_string(), "a already holds address 172.18.0.9");
    assert!(matches!(
        l.allocate("a", &pool),
        Err(IpamError::AlreadyLeased { .. })
    ));
    assert!(l.reserve("b", ip("172.18.0.1"), &pool).is_err());
    assert!(l.reserve("b", ip("172.18.0.255"), &pool).is_err());
    assert!(l.reserve("b", ip("172.18.1.2"), &pool).is_err());
    assert_eq!(l.holder(ip("172.18.0.9")), Some("a"));
    assert_eq!(l.len(), 1);
}

#[test]
fn retain_releases_holders_not_kept() {
    let subnet = net("172.18.0.0/24");
    let pool = Pool::new(subnet, None, None).unwrap();
    let mut l = Leases::default();
    for h in ["c", "a", "b"] {
        l.allocate(h, &pool).unwrap();
    }
    assert_eq!(l.retain(&["b".to_string()]), ["a", "c"]);
    assert_eq!(l.iter().map(|(h, _)| h).collect::<Vec<_>>(), ["b"]);
    assert!(l.retain(&[]).len() == 1 && l.is_empty());
}

#[test]
fn leases_serialize_as_a_map_and_a_cursor() {
    let subnet = net("172.18.0.0/24");
    let pool = Pool::new(subnet, None, Some(first_host(&subnet))).unwrap();
    let mut l = Leases::default();
    l.allocate("web", &pool).unwrap();
    let json = serde_json::to_string(&l).unwrap();
    assert_eq!(
        json,
        r#"{"leases":{"web":"172.18.0.2"},"cursor":"172.18.0.2"}"#
    );
    assert_eq!(serde_json::from_str::<Leases>(&json).unwrap(), l);
    assert_eq!(
        serde_json::from_str::<Leases>("{}").unwrap(),
        Leases::default()
    );
}
