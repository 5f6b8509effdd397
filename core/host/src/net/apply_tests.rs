//! The netlink applier against the real kernel, as root, inside network
//! namespaces each test creates (the machine's own network is never touched).

use std::io::{Read, Write};
use std::net::{SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsFd;

use netlink_packet_route::link::InfoKind;

use super::*;
use crate::net::netlink::link_kind;
use crate::net::netlink::testns::{block_on, in_new_netns, new_netns};
use crate::net::nft::Firewall;
use crate::net::plan::{Address, PortForward, Protocol, Rules};
use crate::net::testnl::*;

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
            assert_eq!(error.errno, None, "the host refused it, not the kernel");
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
            assert_eq!(error.errno, Some(libc::EEXIST));
            assert_eq!(
                error.os_error().map(|e| e.kind()),
                Some(std::io::ErrorKind::AlreadyExists)
            );
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
            assert_eq!(error.errno, Some(libc::EEXIST));
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
