//! The firewall: the script it renders, and real `nft` runs as root inside
//! network namespaces each test creates.

use std::net::Ipv4Addr;
use std::process::Command;

use super::*;
use crate::net::netlink::testns::{in_new_netns, read_sysctl};
use crate::net::plan::{PortForward, Protocol};

fn web() -> Rules {
    Rules {
        masquerade: vec![("10.88.0.0/16".parse().unwrap(), "berth0".into())],
        forward: vec!["berth0".into()],
        isolate: vec![],
        ports: vec![PortForward {
            protocol: Protocol::Tcp,
            host_ip: None,
            host_port: 8080,
            container_ip: Ipv4Addr::new(10, 88, 0, 2),
            container_port: 80,
        }],
    }
}

fn db() -> Rules {
    Rules {
        isolate: vec!["berth1".into()],
        ports: vec![PortForward {
            protocol: Protocol::Udp,
            host_ip: Some(Ipv4Addr::new(192, 0, 2, 1)),
            host_port: 5353,
            container_ip: Ipv4Addr::new(10, 89, 0, 2),
            container_port: 53,
        }],
        ..Rules::default()
    }
}

fn state(owners: &[(&str, Rules)]) -> State {
    owners
        .iter()
        .map(|(owner, rules)| (owner.to_string(), rules.clone()))
        .collect()
}

/// `nft list table ip <table>` in this thread's namespace; `None` when
/// there is no such table.
fn list(table: &str) -> Option<String> {
    let output = Command::new(nft_binary().expect(NFT_NOT_INSTALLED))
        .args(["list", "table", "ip", table])
        .output()
        .unwrap();
    output
        .status
        .success()
        .then(|| String::from_utf8(output.stdout).unwrap())
}

fn nft(args: &[&str]) {
    let status = Command::new(nft_binary().expect(NFT_NOT_INSTALLED))
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "nft {args:?}");
}

#[test]
fn the_script_replaces_the_whole_table() {
    let script = render("berth", &state(&[("web", web()), ("db", db())])).unwrap();
    assert!(script.starts_with("add table ip berth\ndelete table ip berth\ntable ip berth {\n"));
    for line in [
        "type nat hook postrouting priority srcnat; policy accept;",
        "ip saddr 10.88.0.0/16 oifname != \"berth0\" masquerade",
        "fib daddr type local tcp dport 8080 dnat to 10.88.0.2:80",
        "ip daddr != 127.0.0.0/8 fib daddr type local tcp dport 8080 dnat to 10.88.0.2:80",
        "ip daddr 192.0.2.1 fib daddr type local udp dport 5353 dnat to 10.89.0.2:53",
        "type filter hook forward priority filter; policy accept;",
        "ct state established,related accept",
        "iifname \"berth1\" oifname != \"berth1\" drop",
        "oifname \"berth1\" iifname != \"berth1\" drop",
        "iifname \"berth0\" accept",
        "ip daddr 10.88.0.2 tcp dport 80 accept",
    ] {
        assert!(script.contains(line), "{line:?} missing from\n{script}");
    }
    // Every owner's drops come before any owner's accepts.
    assert!(
        script.find("iifname \"berth1\" oifname").unwrap()
            < script.find("iifname \"berth0\" accept").unwrap()
    );

    assert_eq!(
        render("berth", &State::new()).unwrap(),
        "add table ip berth\ndelete table ip berth\n",
        "no owner: the table goes"
    );
}

#[test]
fn shared_bridges_and_loopback_ports_render_once_or_not_at_all() {
    let mut attachment = Rules {
        forward: vec!["berth0".into()],
        ..Rules::default()
    };
    attachment.ports.push(PortForward {
        host_ip: Some(Ipv4Addr::LOCALHOST),
        ..web().ports[0].clone()
    });
    let script = render("berth", &state(&[("net", web()), ("ctr", attachment)])).unwrap();
    assert_eq!(
        script.matches("iifname \"berth0\" accept").count(),
        1,
        "{script}"
    );
    assert!(
        !script.contains("ip daddr != 127.0.0.0/8 ip daddr 127.0.0.1"),
        "loopback is the userland proxy's: {script}"
    );
}

#[test]
fn names_nft_could_misread_are_refused() {
    for bad in ["", "br0\" accept", "br 0", "a-name-longer-than-15", "br0;"] {
        let rules = Rules {
            forward: vec![bad.into()],
            ..Rules::default()
        };
        assert!(check_rules(&rules).is_err(), "{bad:?} accepted");
    }
    for good in ["berth0", "br-1a2b3c4d5e6f", "eth0.100", "veth_x"] {
        check_ifname(good).unwrap();
    }
    assert!(render("berth; flush ruleset", &State::new()).is_err());
}

#[test]
fn owners_share_one_table_and_the_last_one_out_deletes_it() {
    in_new_netns(|| {
        let dir = tempfile::tempdir().unwrap();
        let state_file = dir.path().join("firewall.json");
        let firewall = Firewall::new(state_file.clone(), "berth_test");
        firewall.set("net-web", &web()).unwrap();
        firewall.set("net-db", &db()).unwrap();

        let table = list("berth_test").expect("the table exists");
        for line in [
            "ip saddr 10.88.0.0/16 oifname != \"berth0\" masquerade",
            "fib daddr type local tcp dport 8080 dnat to 10.88.0.2:80",
            "iifname \"berth1\" oifname != \"berth1\" drop",
            "ip daddr 192.0.2.1 fib daddr type local udp dport 5353 dnat to 10.89.0.2:53",
        ] {
            assert!(table.contains(line), "{line:?} missing from\n{table}");
        }
        assert_eq!(firewall.owners(), ["net-db", "net-web"]);
        let saved: State = serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
        assert_eq!(saved, state(&[("net-web", web()), ("net-db", db())]));

        // Setting the same rules again changes nothing.
        firewall.set("net-web", &web()).unwrap();
        assert_eq!(list("berth_test").unwrap(), table);

        firewall.remove("net-web").unwrap();
        let table = list("berth_test").expect("the table stays for net-db");
        assert!(!table.contains("berth0"), "{table}");
        assert!(table.contains("iifname \"berth1\" oifname != \"berth1\" drop"));
        firewall.remove("nobody").unwrap();
        assert_eq!(firewall.owners(), ["net-db"]);

        firewall.remove("net-db").unwrap();
        assert_eq!(list("berth_test"), None, "no owner left: no table");
        assert!(firewall.owners().is_empty());
        firewall.remove("net-db").unwrap();
    });
}

#[test]
fn restore_rebuilds_the_table_from_the_state_file() {
    in_new_netns(|| {
        let dir = tempfile::tempdir().unwrap();
        let state_file = dir.path().join("firewall.json");
        Firewall::new(state_file.clone(), "berth_test")
            .set("net-web", &web())
            .unwrap();
        let before = list("berth_test").unwrap();
        // A reboot: the kernel forgets the table, the state file remains.
        nft(&["delete", "table", "ip", "berth_test"]);
        assert_eq!(list("berth_test"), None);

        let restarted = Firewall::new(state_file, "berth_test");
        restarted.restore().unwrap();
        assert_eq!(list("berth_test").unwrap(), before);
        assert_eq!(restarted.owners(), ["net-web"]);
    });
}

#[test]
fn a_bad_interface_name_is_refused_and_changes_nothing() {
    in_new_netns(|| {
        let dir = tempfile::tempdir().unwrap();
        let state_file = dir.path().join("firewall.json");
        let firewall = Firewall::new(state_file.clone(), "berth_test");
        firewall.set("net-web", &web()).unwrap();
        let table = list("berth_test").unwrap();
        let saved = std::fs::read(&state_file).unwrap();

        let bad = Rules {
            isolate: vec!["x\" accept #".into()],
            ..Rules::default()
        };
        let error = firewall.set("net-bad", &bad).unwrap_err();
        assert_eq!(
            error.what,
            "installing the firewall rules of net-bad in table ip berth_test"
        );
        assert!(
            error.reason.contains("not a usable interface name"),
            "{error}"
        );
        assert_eq!(list("berth_test").unwrap(), table);
        assert_eq!(std::fs::read(&state_file).unwrap(), saved);
        assert_eq!(firewall.owners(), ["net-web"]);
    });
}

#[test]
fn forwarding_is_turned_on_in_the_namespace_only() {
    let machine = read_sysctl(IP_FORWARD);
    in_new_netns(|| {
        std::fs::write(IP_FORWARD, "0\n").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let firewall = Firewall::new(dir.path().join("firewall.json"), "berth_test");
        let isolate_only = Rules {
            isolate: vec!["berth1".into()],
            ..Rules::default()
        };
        firewall.set("net-internal", &isolate_only).unwrap();
        assert_eq!(
            read_sysctl(IP_FORWARD),
            "0",
            "isolation alone forwards nothing"
        );
        firewall.set("net-web", &web()).unwrap();
        assert_eq!(read_sysctl(IP_FORWARD), "1");
    });
    assert_eq!(
        read_sysctl(IP_FORWARD),
        machine,
        "the machine's own setting is untouched"
    );
}
