//! The netlink applier against the real kernel, as root, inside network
//! namespaces each test creates (the machine's own network is never touched).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};

use futures_util::stream::TryStreamExt;
use ipnet::Ipv4Net;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkFlags};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteScope};
use netlink_packet_route::tc::{TcAttribute, TcHandle, TcOption};
use rtnetlink::packet_core::Nla;
use rtnetlink::RouteMessageBuilder;

use super::testns::{block_on, in_new_netns, new_netns};
use super::*;
use crate::net::nft::Firewall;
use crate::net::plan::{
    Address, Link, LinkKind, Plan, PortForward, Protocol, Route, Rules, Shaping, Side, Step,
};

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn bridge(name: &str) -> Link {
    Link {
        name: name.into(),
        kind: LinkKind::Bridge,
        mtu: 0,
        master: None,
    }
}

fn veth(name: &str, peer: &str, master: &str, mtu: u32) -> Link {
    Link {
        name: name.into(),
        kind: LinkKind::Veth { peer: peer.into() },
        mtu,
        master: Some(master.into()),
    }
}

/// A bridge with a veth into the container: the shape of network-bridge's
/// attach plan.
fn bridge_plan() -> Plan {
    Plan {
        links: vec![
            Link {
                mtu: 1400,
                ..bridge("br-test")
            },
            veth("vethtest0", "eth0", "br-test", 1400),
        ],
        addresses: vec![
            Address {
                side: Side::Host,
                link: "br-test".into(),
                addr: net("10.88.0.1/24"),
            },
            Address {
                side: Side::Container,
                link: "eth0".into(),
                addr: net("10.88.0.2/24"),
            },
        ],
        routes: vec![
            Route {
                side: Side::Container,
                destination: None,
                gateway: Some(ip("10.88.0.1")),
                link: "eth0".into(),
            },
            Route {
                side: Side::Host,
                destination: Some(net("10.99.0.0/16")),
                gateway: None,
                link: "br-test".into(),
            },
        ],
        ..Plan::default()
    }
}

/// Applies `plan`, returning what it journaled and how it ended.
async fn apply(
    nl: &Netlink,
    plan: &Plan,
    netns: Option<BorrowedFd<'_>>,
) -> (Vec<Step>, Result<(), NetError>) {
    let mut steps = Vec::new();
    let result = nl
        .apply(plan, netns, &mut |step| {
            steps.push(step);
            Ok(())
        })
        .await;
    (steps, result)
}

async fn undo_all(nl: &Netlink, steps: &[Step], netns: Option<BorrowedFd<'_>>) {
    for step in steps.iter().rev() {
        nl.undo(step, netns)
            .await
            .unwrap_or_else(|e| panic!("undoing {step:?}: {e}"));
    }
}

/// The names of every link but `lo`.
async fn links(nl: &Netlink) -> Vec<String> {
    let links: Vec<LinkMessage> = nl
        .handle
        .link()
        .get()
        .execute()
        .try_collect()
        .await
        .unwrap();
    let mut names: Vec<String> = links
        .iter()
        .filter_map(|l| {
            l.attributes.iter().find_map(|a| match a {
                LinkAttribute::IfName(name) => Some(name.clone()),
                _ => None,
            })
        })
        .filter(|name| name != "lo")
        .collect();
    names.sort();
    names
}

async fn get_link(nl: &Netlink, name: &str) -> LinkMessage {
    nl.link(name)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no link {name}"))
}

fn is_up(link: &LinkMessage) -> bool {
    link.header.flags.contains(LinkFlags::Up)
}

fn mtu(link: &LinkMessage) -> Option<u32> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Mtu(mtu) => Some(*mtu),
        _ => None,
    })
}

fn controller(link: &LinkMessage) -> Option<u32> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Controller(index) => Some(*index),
        _ => None,
    })
}

/// The IPv4 addresses on link `name`, as `a.b.c.d/len`.
async fn addresses(nl: &Netlink, name: &str) -> Vec<String> {
    let index = get_link(nl, name).await.header.index;
    let addresses: Vec<_> = nl
        .handle
        .address()
        .get()
        .set_link_index_filter(index)
        .execute()
        .try_collect()
        .await
        .unwrap();
    addresses
        .iter()
        .filter(|a| a.header.index == index)
        .filter_map(|a| {
            a.attributes.iter().find_map(|attr| match attr {
                AddressAttribute::Address(addr @ IpAddr::V4(_)) => {
                    Some(format!("{addr}/{}", a.header.prefix_len))
                }
                _ => None,
            })
        })
        .collect()
}

/// The main table's IPv4 routes as `DEST [via GW] dev INDEX [link]`.
async fn routes(nl: &Netlink) -> Vec<String> {
    let query = RouteMessageBuilder::<Ipv4Addr>::new().build();
    let routes: Vec<_> = nl
        .handle
        .route()
        .get(query)
        .execute()
        .try_collect()
        .await
        .unwrap();
    routes
        .iter()
        .filter(|r| r.header.table == RouteHeader::RT_TABLE_MAIN)
        .map(|r| {
            let mut destination = "default".to_string();
            let mut text = String::new();
            for attribute in &r.attributes {
                match attribute {
                    RouteAttribute::Destination(RouteAddress::Inet(d)) => {
                        destination = format!("{d}/{}", r.header.destination_prefix_length)
                    }
                    RouteAttribute::Gateway(RouteAddress::Inet(g)) => {
                        text.push_str(&format!(" via {g}"))
                    }
                    RouteAttribute::Oif(index) => text.push_str(&format!(" dev {index}")),
                    _ => {}
                }
            }
            if r.header.scope == RouteScope::Link {
                text.push_str(" link");
            }
            format!("{destination}{text}")
        })
        .collect()
}

/// The kind of the root qdisc of `name` and the options it reports.
async fn root_qdisc(nl: &Netlink, name: &str) -> Option<(String, Vec<TcOption>)> {
    let index = get_link(nl, name).await.header.index as i32;
    let qdiscs: Vec<_> = nl
        .handle
        .qdisc()
        .get()
        .index(index)
        .execute()
        .try_collect()
        .await
        .unwrap();
    let root = qdiscs
        .into_iter()
        .find(|q| q.header.index == index && q.header.parent == TcHandle::ROOT)?;
    let mut kind = String::new();
    let mut options = Vec::new();
    for attribute in root.attributes {
        match attribute {
            TcAttribute::Kind(k) => kind = k,
            TcAttribute::Options(o) => options = o,
            _ => {}
        }
    }
    Some((kind, options))
}

/// The attributes inside the options a qdisc reports, by kind.
/// netlink-packet-route does not know tbf and hands back the whole
/// TCA_OPTIONS as one opaque attribute, so it is walked here.
fn tbf_attributes(options: &[TcOption]) -> Vec<(u16, Vec<u8>)> {
    let mut attributes = Vec::new();
    for option in options {
        let TcOption::Other(nla) = option else {
            continue;
        };
        let mut value = vec![0; nla.value_len()];
        nla.emit_value(&mut value);
        if nla.kind() != TCA_OPTIONS {
            attributes.push((nla.kind(), value));
            continue;
        }
        let mut rest = &value[..];
        while rest.len() >= 4 {
            let len = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
            let kind = u16::from_ne_bytes([rest[2], rest[3]]);
            attributes.push((kind, rest[4..len].to_vec()));
            rest = &rest[(len + 3) & !3..];
        }
    }
    attributes
}

const TCA_OPTIONS: u16 = 2;

/// The byte rate of a tbf qdisc (from TCA_TBF_RATE64, else the `rate.rate`
/// of TCA_TBF_PARMS).
fn tbf_rate(options: &[TcOption]) -> u64 {
    let attributes = tbf_attributes(options);
    let raw = |kind: u16| {
        attributes
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, v)| v.clone())
    };
    if let Some(rate64) = raw(TCA_TBF_RATE64) {
        return u64::from_ne_bytes(rate64[..8].try_into().unwrap());
    }
    let parms =
        raw(TCA_TBF_PARMS).unwrap_or_else(|| panic!("tbf reports its parameters: {options:?}"));
    u64::from(u32::from_ne_bytes(parms[8..12].try_into().unwrap()))
}

#[test]
fn bridge_and_veth_plan_is_applied_and_undone() {
    in_new_netns(|| {
        block_on(async {
            let container_ns = new_netns();
            let netns = Some(container_ns.as_fd());
            let host = Netlink::new().unwrap();
            let container = Netlink::in_netns(container_ns.as_fd()).unwrap();

            let (steps, result) = apply(&host, &bridge_plan(), netns).await;
            result.unwrap();
            assert_eq!(
                steps,
                vec![
                    Step::Link {
                        name: "br-test".into()
                    },
                    Step::Link {
                        name: "vethtest0".into()
                    },
                    Step::Route {
                        route: bridge_plan().routes[1].clone()
                    },
                ],
                "links and host routes are journaled; addresses on new links are not"
            );

            assert_eq!(links(&host).await, ["br-test", "vethtest0"]);
            assert_eq!(links(&container).await, ["eth0"]);
            let br = get_link(&host, "br-test").await;
            let veth = get_link(&host, "vethtest0").await;
            let eth0 = get_link(&container, "eth0").await;
            assert_eq!(link_kind(&br), Some(&InfoKind::Bridge));
            assert_eq!(link_kind(&veth), Some(&InfoKind::Veth));
            assert_eq!(
                controller(&veth),
                Some(br.header.index),
                "the veth is enslaved to the bridge"
            );
            assert!(is_up(&br) && is_up(&veth) && is_up(&eth0));
            assert!(
                is_up(&get_link(&container, "lo").await),
                "lo is up in the container"
            );
            assert_eq!(
                (mtu(&br), mtu(&veth), mtu(&eth0)),
                (Some(1400), Some(1400), Some(1400))
            );
            assert_eq!(addresses(&host, "br-test").await, ["10.88.0.1/24"]);
            assert_eq!(addresses(&container, "eth0").await, ["10.88.0.2/24"]);
            let eth0_index = eth0.header.index;
            assert!(
                routes(&container)
                    .await
                    .contains(&format!("default via 10.88.0.1 dev {eth0_index}")),
                "{:?}",
                routes(&container).await
            );
            assert!(
                routes(&host)
                    .await
                    .contains(&format!("10.99.0.0/16 dev {} link", br.header.index)),
                "{:?}",
                routes(&host).await
            );

            // Traffic flows over the bridge: the host reaches a listener in
            // the container.
            let listener = in_netns_thread(&container_ns, || {
                TcpListener::bind("10.88.0.2:7777").unwrap()
            });
            let server = std::thread::spawn(move || {
                let (mut conn, peer) = listener.accept().unwrap();
                conn.write_all(b"hello").unwrap();
                peer
            });
            let mut client = TcpStream::connect(SocketAddrV4::new(ip("10.88.0.2"), 7777)).unwrap();
            let mut greeting = String::new();
            client.read_to_string(&mut greeting).unwrap();
            assert_eq!(greeting, "hello");
            assert_eq!(server.join().unwrap().ip().to_string(), "10.88.0.1");

            undo_all(&host, &steps, netns).await;
            assert!(links(&host).await.is_empty(), "{:?}", links(&host).await);
            assert!(
                links(&container).await.is_empty(),
                "the peer went with the veth"
            );
            assert!(!routes(&host).await.iter().any(|r| r.starts_with("10.99.")));
            // Undo is idempotent.
            undo_all(&host, &steps, netns).await;
        })
    });
}

/// Runs `f` on a thread inside `netns` and returns its result (a socket
/// created there stays in that namespace).
fn in_netns_thread<T: Send>(netns: &OwnedFd, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                enter_netns(netns.as_fd()).unwrap();
                f()
            })
            .join()
            .unwrap()
    })
}

#[test]
fn a_duplicate_bridge_fails_without_taking_the_existing_one() {
    in_new_netns(|| {
        block_on(async {
            let host = Netlink::new().unwrap();
            let first = Plan {
                links: vec![bridge("br-dup")],
                ..Plan::default()
            };
            let (first_steps, result) = apply(&host, &first, None).await;
            result.unwrap();
            assert!(host.link_exists("br-dup").await.unwrap());

            let second = Plan {
                links: vec![bridge("br-other"), bridge("br-dup")],
                ..Plan::default()
            };
            let (steps, result) = apply(&host, &second, None).await;
            let error = result.unwrap_err();
            assert_eq!(error.what, "creating bridge br-dup");
            assert_eq!(error.reason, "link br-dup already exists");
            assert_eq!(
                steps,
                vec![Step::Link {
                    name: "br-other".into()
                }]
            );
            undo_all(&host, &steps, None).await;
            assert_eq!(
                links(&host).await,
                ["br-dup"],
                "the first plan's bridge stays"
            );

            undo_all(&host, &first_steps, None).await;
            assert!(links(&host).await.is_empty());
            assert!(!host.link_exists("br-dup").await.unwrap());
        })
    });
}

#[test]
fn an_address_on_a_missing_link_fails_and_is_undone_to_nothing() {
    in_new_netns(|| {
        block_on(async {
            let host = Netlink::new().unwrap();
            let plan = Plan {
                links: vec![bridge("br-a")],
                addresses: vec![
                    Address {
                        side: Side::Host,
                        link: "br-a".into(),
                        addr: net("10.1.0.1/24"),
                    },
                    Address {
                        side: Side::Host,
                        link: "nosuch0".into(),
                        addr: net("10.2.0.1/24"),
                    },
                ],
                ..Plan::default()
            };
            let (steps, result) = apply(&host, &plan, None).await;
            let error = result.unwrap_err();
            assert_eq!(error.what, "adding 10.2.0.1/24 to nosuch0");
            assert_eq!(error.reason, "there is no link named nosuch0");
            undo_all(&host, &steps, None).await;
            assert!(links(&host).await.is_empty());
        })
    });
}

#[test]
fn kernel_refusals_carry_the_kernel_error() {
    in_new_netns(|| {
        block_on(async {
            let container_ns = new_netns();
            let netns = Some(container_ns.as_fd());
            let host = Netlink::new().unwrap();
            let (first, result) = apply(&host, &bridge_plan(), netns).await;
            result.unwrap();

            // A second veth whose container end would also be eth0.
            let plan = Plan {
                links: vec![veth("vethtest1", "eth0", "br-test", 0)],
                ..Plan::default()
            };
            let (steps, result) = apply(&host, &plan, netns).await;
            let error = result.unwrap_err();
            assert_eq!(
                error.what,
                "creating veth vethtest1 (peer eth0 in the container)"
            );
            assert_eq!(error.reason, "File exists (os error 17)");
            assert_eq!(
                error.to_string(),
                format!("{}: {}", error.what, error.reason)
            );
            undo_all(&host, &steps, netns).await;
            assert_eq!(links(&host).await, ["br-test", "vethtest0"]);

            // The same address twice on a host link the plan did not create:
            // journaled before the kernel refuses it.
            let addr = Address {
                side: Side::Host,
                link: "br-test".into(),
                addr: net("10.88.0.1/24"),
            };
            let plan = Plan {
                addresses: vec![addr.clone()],
                ..Plan::default()
            };
            let (steps, result) = apply(&host, &plan, None).await;
            let error = result.unwrap_err();
            assert_eq!(error.what, "adding 10.88.0.1/24 to br-test");
            assert_eq!(error.reason, "File exists (os error 17)");
            assert_eq!(
                steps,
                vec![Step::Address {
                    link: addr.link,
                    addr: addr.addr
                }]
            );

            undo_all(&host, &first, netns).await;
            assert!(links(&host).await.is_empty());
        })
    });
}

#[test]
fn container_steps_need_a_namespace_except_to_undo() {
    in_new_netns(|| {
        block_on(async {
            let host = Netlink::new().unwrap();
            let plan = Plan {
                links: vec![bridge("br-b"), veth("vethtest2", "eth0", "br-b", 0)],
                ..Plan::default()
            };
            let (steps, result) = apply(&host, &plan, None).await;
            let error = result.unwrap_err();
            assert_eq!(
                error.what,
                "creating veth vethtest2 (peer eth0 in the container)"
            );
            assert!(
                error.reason.contains("no container network namespace"),
                "{error}"
            );
            undo_all(&host, &steps, None).await;
            assert!(links(&host).await.is_empty());

            // After a crash the container may be gone: its steps undo to success.
            for step in [
                Step::ContainerLink {
                    name: "eth1".into(),
                },
                Step::Shaping {
                    side: Side::Container,
                    link: "eth0".into(),
                },
                Step::Route {
                    route: Route {
                        side: Side::Container,
                        destination: None,
                        gateway: None,
                        link: "eth0".into(),
                    },
                },
                Step::Link {
                    name: "gone0".into(),
                },
                Step::Address {
                    link: "gone0".into(),
                    addr: net("10.3.0.1/24"),
                },
            ] {
                host.undo(&step, None).await.unwrap();
            }
            assert!(host
                .undo(&Step::Rules { owner: "x".into() }, None)
                .await
                .is_err());
        })
    });
}

#[test]
fn macvlan_is_moved_into_the_container_and_renamed() {
    in_new_netns(|| {
        block_on(async {
            let container_ns = new_netns();
            let netns = Some(container_ns.as_fd());
            let host = Netlink::new().unwrap();
            let container = Netlink::in_netns(container_ns.as_fd()).unwrap();
            let plan = Plan {
                links: vec![
                    bridge("br-mv"),
                    Link {
                        name: "mvtest0".into(),
                        kind: LinkKind::Macvlan {
                            parent: "br-mv".into(),
                            mode: "bridge".into(),
                            container_name: "eth1".into(),
                        },
                        mtu: 1300,
                        master: None,
                    },
                ],
                addresses: vec![Address {
                    side: Side::Container,
                    link: "eth1".into(),
                    addr: net("10.5.0.2/24"),
                }],
                ..Plan::default()
            };
            let (steps, result) = apply(&host, &plan, netns).await;
            result.unwrap();
            assert_eq!(
                steps,
                vec![
                    Step::Link {
                        name: "br-mv".into()
                    },
                    Step::Link {
                        name: "mvtest0".into()
                    },
                    Step::ContainerLink {
                        name: "eth1".into()
                    },
                ]
            );
            assert_eq!(links(&host).await, ["br-mv"]);
            assert_eq!(links(&container).await, ["eth1"]);
            let eth1 = get_link(&container, "eth1").await;
            assert_eq!(link_kind(&eth1), Some(&InfoKind::MacVlan));
            assert!(is_up(&eth1));
            assert_eq!(mtu(&eth1), Some(1300));
            assert_eq!(addresses(&container, "eth1").await, ["10.5.0.2/24"]);

            undo_all(&host, &steps, netns).await;
            assert!(links(&host).await.is_empty());
            assert!(links(&container).await.is_empty());

            let bad = Plan {
                links: vec![Link {
                    name: "mvtest1".into(),
                    kind: LinkKind::Macvlan {
                        parent: "nosuch0".into(),
                        mode: "bridge".into(),
                        container_name: "eth1".into(),
                    },
                    mtu: 0,
                    master: None,
                }],
                ..Plan::default()
            };
            let error = apply(&host, &bad, netns).await.1.unwrap_err();
            assert_eq!(
                error.to_string(),
                "creating macvlan mvtest1 on nosuch0: there is no link named nosuch0"
            );
        })
    });
}

#[test]
fn shaping_installs_a_token_bucket_on_either_side() {
    in_new_netns(|| {
        block_on(async {
            let container_ns = new_netns();
            let netns = Some(container_ns.as_fd());
            let host = Netlink::new().unwrap();
            let container = Netlink::in_netns(container_ns.as_fd()).unwrap();
            let mut plan = bridge_plan();
            plan.shaping = vec![
                Shaping {
                    side: Side::Host,
                    link: "vethtest0".into(),
                    rate: 10_000_000,
                },
                // 40 Gbit/s is more bytes per second than 32 bits hold.
                Shaping {
                    side: Side::Container,
                    link: "eth0".into(),
                    rate: 40_000_000_000,
                },
            ];
            let (steps, result) = apply(&host, &plan, netns).await;
            result.unwrap();
            assert!(steps.contains(&Step::Shaping {
                side: Side::Host,
                link: "vethtest0".into()
            }));
            assert!(steps.contains(&Step::Shaping {
                side: Side::Container,
                link: "eth0".into()
            }));

            let (kind, options) = root_qdisc(&host, "vethtest0").await.expect("a root qdisc");
            assert_eq!(kind, "tbf");
            assert_eq!(tbf_rate(&options), 10_000_000 / 8);
            let (kind, options) = root_qdisc(&container, "eth0").await.expect("a root qdisc");
            assert_eq!(kind, "tbf");
            assert_eq!(tbf_rate(&options), 40_000_000_000 / 8);

            // Undoing the shaping steps alone takes the buckets away.
            for step in steps
                .iter()
                .rev()
                .filter(|s| matches!(s, Step::Shaping { .. }))
            {
                host.undo(step, netns).await.unwrap();
                host.undo(step, netns).await.unwrap();
            }
            let not_tbf =
                |q: Option<(String, Vec<TcOption>)>| q.is_none_or(|(kind, _)| kind != "tbf");
            assert!(not_tbf(root_qdisc(&host, "vethtest0").await));
            assert!(not_tbf(root_qdisc(&container, "eth0").await));

            undo_all(&host, &steps, netns).await;
            assert!(links(&host).await.is_empty());
        })
    });
}

#[test]
fn tbf_parameters_follow_the_rate() {
    // The usual kernel: 1000 ns per µs, 64 ns per tick, 1 MHz clock.
    let ticks = parse_psched("000003e8 00000040 000f4240 3b9aca00\n").unwrap();
    assert_eq!(ticks, 15.625);
    // The old nanosecond convention.
    assert_eq!(
        parse_psched("000003e8 00000400 3b9aca00 3b9aca00"),
        Some(1000.0)
    );
    assert_eq!(parse_psched("garbage"), None);

    let options = tbf_options(10_000_000, 1500, ticks).unwrap();
    assert_eq!(tbf_rate(&options), 1_250_000);
    let parms = match &options[0] {
        TcOption::Other(nla) => {
            let mut v = vec![0; nla.value_len()];
            nla.emit_value(&mut v);
            v
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(parms.len(), 36, "struct tc_tbf_qopt");
    let word = |at: usize| u32::from_ne_bytes(parms[at..at + 4].try_into().unwrap());
    let burst = 16 * 1024;
    assert_eq!(
        word(24),
        1_250_000 / 20 + burst,
        "limit: 50 ms at the rate plus the burst"
    );
    let expected_ticks = (1e6 * f64::from(burst) / 1_250_000.0 * ticks) as u32;
    assert_eq!(
        word(28),
        expected_ticks,
        "buffer: the burst's send time in ticks"
    );
    assert!(tbf_options(4, 1500, ticks).is_err());
}

#[test]
fn a_published_port_reaches_the_container() {
    in_new_netns(|| {
        block_on(async {
            let container_ns = new_netns();
            let netns = Some(container_ns.as_fd());
            let host = Netlink::new().unwrap();
            let (steps, result) = apply(&host, &bridge_plan(), netns).await;
            result.unwrap();
            let dir = tempfile::tempdir().unwrap();
            let firewall = Firewall::new(dir.path().join("firewall.json"), "berth_test");
            let rules = Rules {
                masquerade: vec![(net("10.88.0.0/24"), "br-test".into())],
                forward: vec!["br-test".into()],
                ports: vec![PortForward {
                    protocol: Protocol::Tcp,
                    host_ip: None,
                    host_port: 8080,
                    container_ip: ip("10.88.0.2"),
                    container_port: 80,
                }],
                ..Rules::default()
            };
            firewall.set("attachment", &rules).unwrap();

            let listener =
                in_netns_thread(&container_ns, || TcpListener::bind("10.88.0.2:80").unwrap());
            let server = std::thread::spawn(move || {
                let (mut conn, _) = listener.accept().unwrap();
                conn.write_all(b"from the container").unwrap();
            });
            // A host address, not the container's: the output chain's DNAT
            // sends it on.
            let mut client = TcpStream::connect("10.88.0.1:8080").unwrap();
            let mut reply = String::new();
            client.read_to_string(&mut reply).unwrap();
            server.join().unwrap();
            assert_eq!(reply, "from the container");

            firewall.remove("attachment").unwrap();
            undo_all(&host, &steps, netns).await;
        })
    });
}
