//! Test helpers over netlink: plans to apply, applying and undoing them
//! while recording the journal, and what the kernel then reports (links,
//! addresses, routes), for the applier's and the shaper's tests.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use futures_util::stream::TryStreamExt;
use ipnet::Ipv4Net;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteScope};
use rtnetlink::RouteMessageBuilder;

use super::netlink::{enter_netns, Netlink};
use super::plan::{Address, Link, LinkKind, Plan, Route, Side, Step};
use super::NetError;

pub(crate) fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

pub(crate) fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

pub(crate) fn bridge(name: &str) -> Link {
    Link {
        name: name.into(),
        kind: LinkKind::Bridge,
        mtu: 0,
        master: None,
    }
}

pub(crate) fn veth(name: &str, peer: &str, master: &str, mtu: u32) -> Link {
    Link {
        name: name.into(),
        kind: LinkKind::Veth { peer: peer.into() },
        mtu,
        master: Some(master.into()),
    }
}

/// A bridge with a veth into the container: the shape of network-bridge's
/// attach plan.
pub(crate) fn bridge_plan() -> Plan {
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
pub(crate) async fn apply(
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

pub(crate) async fn undo_all(nl: &Netlink, steps: &[Step], netns: Option<BorrowedFd<'_>>) {
    for step in steps.iter().rev() {
        nl.undo(step, netns)
            .await
            .unwrap_or_else(|e| panic!("undoing {step:?}: {e}"));
    }
}

/// The names of every link but `lo`.
pub(crate) async fn links(nl: &Netlink) -> Vec<String> {
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

pub(crate) async fn get_link(nl: &Netlink, name: &str) -> LinkMessage {
    nl.link(name)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no link {name}"))
}

pub(crate) fn is_up(link: &LinkMessage) -> bool {
    link.header.flags.contains(LinkFlags::Up)
}

pub(crate) fn mtu(link: &LinkMessage) -> Option<u32> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Mtu(mtu) => Some(*mtu),
        _ => None,
    })
}

pub(crate) fn controller(link: &LinkMessage) -> Option<u32> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Controller(index) => Some(*index),
        _ => None,
    })
}

/// The IPv4 addresses on link `name`, as `a.b.c.d/len`.
pub(crate) async fn addresses(nl: &Netlink, name: &str) -> Vec<String> {
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
pub(crate) async fn routes(nl: &Netlink) -> Vec<String> {
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

/// Runs `f` on a thread inside `netns` and returns its result (a socket
/// created there stays in that namespace).
pub(crate) fn in_netns_thread<T: Send>(netns: &OwnedFd, f: impl FnOnce() -> T + Send) -> T {
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
