//! Networking through the network plugins, end to end: every test's daemon
//! runs in a network namespace the test made (never the machine's own), and
//! traffic goes only between containers and that namespace. Containers
//! reach each other by IP and by name over TCP, UDP and ICMP; `none` has
//! only `lo`; `--internal` has no way out; bandwidth limits hold; bad input
//! fails clearly and leaves no link, lease or rule; a daemon killed with
//! SIGKILL cleans up after containers that ended while it was down.

use std::time::{Duration, Instant};

use berth_tests::daemon::{macvlan_example, Daemon, DOCKER_CURRENT as DOCKER, IMAGE, WAIT};
use berth_tests::{ok, until, Output};

#[track_caller]
fn fails(out: Output, needle: &str) -> Output {
    assert_ne!(out.code, 0, "expected a failure: {out}");
    assert!(
        out.stderr.contains(needle),
        "the error does not say {needle:?}: {out}"
    );
    out
}

fn ip_of(d: &Daemon, c: &str, net: &str) -> String {
    ok(d.berth(&[
        "inspect",
        "-f",
        &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
        c,
    ]))
}

/// The leases the bridge plugin holds on network `name` (its state file).
fn leases(d: &Daemon, name: &str) -> usize {
    plugin_leases(d, "bridge", name)
}

/// The leases plugin `plugin` holds on network `name` (its state file).
fn plugin_leases(d: &Daemon, plugin: &str, name: &str) -> usize {
    let id = ok(d.berth(&["network", "inspect", "-f", "{{.Id}}", name]));
    let path = d
        .root()
        .join("plugins")
        .join(plugin)
        .join("networks")
        .join(format!("{id}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let v: serde_json::Value = serde_json::from_str(&text).expect("the plugin's state is JSON");
    v["leases"]
        .as_object()
        .map(|m| m.len())
        .unwrap_or_else(|| panic!("no lease table in {text}"))
}

/// Waits until no veth is left: the host ends of an ended container's links
/// are deleted in the background (the kernel takes ~20 ms per veth).
fn no_veths_left(d: &Daemon) {
    until("every veth is gone", WAIT, || {
        let v = veths(d);
        (v.is_empty(), format!("{v:?}"))
    });
}

fn veths(d: &Daemon) -> Vec<String> {
    d.netns()
        .links()
        .into_iter()
        .filter(|l| l.starts_with("veth"))
        .collect()
}

#[test]
fn containers_reach_each_other_by_ip_and_name_over_tcp_udp_and_icmp() {
    let d = Daemon::start();
    ok(d.berth(&["network", "create", "--subnet", "10.77.0.0/24", "front"]));
    ok(d.berth(&[
        "run",
        "-d",
        "--network",
        "front",
        "--name",
        "srv",
        "--network-alias",
        "web",
        IMAGE,
        "sh",
        "-c",
        "echo hello > /tmp/index.html; httpd -p 80 -h /tmp; sleep 600",
    ]));
    let ip = ip_of(&d, "srv", "front");
    assert!(
        ip.starts_with("10.77.0."),
        "address {ip:?} outside the subnet"
    );
    // The MAC the plugin chose is the interface's, and inspect says so.
    let mac = ok(d.berth(&[
        "inspect",
        "-f",
        "{{(index .NetworkSettings.Networks \"front\").MacAddress}}",
        "srv",
    ]));
    assert!(
        mac.starts_with("02:42:"),
        "{mac:?}; {}",
        ok(d.berth(&["inspect", "-f", "{{json .NetworkSettings}}", "srv"]))
    );
    let real = ok(d.berth(&["exec", "srv", "cat", "/sys/class/net/eth0/address"]));
    assert_eq!(real, mac);
    // The gateway is where the embedded DNS answers.
    let resolv = ok(d.berth(&["exec", "srv", "cat", "/etc/resolv.conf"]));
    assert!(resolv.contains("nameserver 10.77.0.1"), "{resolv}");
    let hosts = ok(d.berth(&["exec", "srv", "cat", "/etc/hosts"]));
    assert!(hosts.contains(&ip), "{hosts}");
    for target in [ip.as_str(), "srv", "web", "SRV."] {
        let script = format!(
            "wget -q -O - http://{target}/index.html && ping -c 1 -W 3 {target} >/dev/null && echo pinged"
        );
        let out = d.berth(&[
            "run",
            "--rm",
            "--network",
            "front",
            IMAGE,
            "sh",
            "-c",
            &script,
        ]);
        assert_eq!(ok(out), "hello\npinged", "TCP and ICMP to {target}");
    }
    // UDP by name and by IP, both ways. Debian's busybox nc has no -u: the
    // host's python3 runs in the containers, from read-only binds.
    let py = [
        "-v",
        "/usr:/usr:ro",
        "-v",
        "/lib:/lib:ro",
        "-v",
        "/lib64:/lib64:ro",
        IMAGE,
        "/usr/bin/python3",
        "-c",
    ];
    let mut args = vec!["run", "-d", "--network", "front", "--name", "udp"];
    args.extend(py);
    args.push(
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('', 9000))\n\
         while True:\n    d, a = s.recvfrom(100)\n    s.sendto(d.upper(), a)",
    );
    ok(d.berth(&args));
    let udp_ip = ip_of(&d, "udp", "front");
    for target in ["udp", udp_ip.as_str()] {
        let script = format!(
            "import socket, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.settimeout(1)\n\
             for _ in range(20):\n    s.sendto(b'datagram', ('{target}', 9000))\n    \
             try:\n        print(s.recv(100).decode()); break\n    except socket.timeout:\n        pass"
        );
        let mut args = vec!["run", "--rm", "--network", "front"];
        args.extend(py);
        args.push(&script);
        assert_eq!(ok(d.berth(&args)), "DATAGRAM", "UDP to {target}");
    }
    // The daemon's namespace (the containers' host) reaches the container too.
    let out = d.in_netns("/bin/busybox", &["ping", "-c", "1", "-W", "3", &ip]);
    out.assert_ok();
    // docker's client sees the network and the endpoint.
    let inspect = ok(d.docker(DOCKER, &["network", "inspect", "front"]));
    assert!(
        inspect.contains("10.77.0.0/24") && inspect.contains("\"srv\""),
        "{inspect}"
    );
    let ls = ok(d.docker(DOCKER, &["network", "ls"]));
    for n in ["bridge", "host", "none", "front"] {
        assert!(ls.contains(n), "{ls}");
    }
    // A network with a container on it cannot be removed.
    fails(d.berth(&["network", "rm", "front"]), "active endpoints");
    ok(d.berth(&["rm", "-f", "srv", "udp"]));
    assert_eq!(leases(&d, "front"), 0, "the lease was released");
    no_veths_left(&d);
    ok(d.berth(&["network", "rm", "front"]));
    let links = d.netns().links();
    assert!(!links.iter().any(|l| l.starts_with("br-")), "{links:?}");
}

#[test]
fn default_bridge_none_and_internal() {
    let d = Daemon::start();
    // The default bridge: an address from its subnet and a default route.
    let out = ok(d.berth(&[
        "run",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "ip -o -4 addr show eth0; ip route",
    ]));
    assert!(
        out.contains("inet 172.") && out.contains("default via 172."),
        "{out}"
    );
    // --add-host lands in /etc/hosts, with the container's own address.
    let out = ok(d.berth(&[
        "run",
        "--rm",
        "--add-host",
        "db:10.9.9.9",
        "--hostname",
        "me",
        IMAGE,
        "cat",
        "/etc/hosts",
    ]));
    assert!(
        out.contains("10.9.9.9\tdb") && out.contains("\tme"),
        "{out}"
    );
    // none: only the loopback.
    let out = ok(d.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        IMAGE,
        "ip",
        "-o",
        "link",
    ]));
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains(": lo:"), "{out}");
    // --internal: an address, but no route out.
    ok(d.berth(&["network", "create", "--internal", "back"]));
    let out = ok(d.berth(&[
        "run",
        "--rm",
        "--network",
        "back",
        IMAGE,
        "sh",
        "-c",
        "ip -o -4 addr show eth0; ip route",
    ]));
    assert!(out.contains("inet ") && !out.contains("default"), "{out}");
    ok(d.berth(&["network", "rm", "back"]));
    // --gateway and --ip-range: addresses come from the range, the route
    // goes through the given gateway.
    ok(d.berth(&[
        "network",
        "create",
        "--subnet",
        "10.87.0.0/24",
        "--gateway",
        "10.87.0.254",
        "--ip-range",
        "10.87.0.128/25",
        "ranged",
    ]));
    let out = ok(d.berth(&[
        "run",
        "--rm",
        "--network",
        "ranged",
        IMAGE,
        "sh",
        "-c",
        "ip -o -4 addr show eth0; ip route",
    ]));
    assert!(
        out.contains("inet 10.87.0.1") && out.contains("default via 10.87.0.254"),
        "{out}"
    );
    let addr = out
        .split_whitespace()
        .find(|w| w.starts_with("10.87.0."))
        .and_then(|w| w.split('/').next()?.rsplit('.').next()?.parse::<u8>().ok())
        .expect("an address");
    assert!(addr >= 128, "{out}");
    ok(d.berth(&["network", "rm", "ranged"]));
    // docker's client runs on the default bridge and on a created network.
    ok(d.docker(
        DOCKER,
        &["network", "create", "--subnet", "10.78.0.0/24", "dk"],
    ));
    let out = ok(d.docker(
        DOCKER,
        &[
            "run",
            "--rm",
            "--network",
            "dk",
            "--ip",
            "10.78.0.77",
            IMAGE,
            "ip",
            "-o",
            "-4",
            "addr",
            "show",
            "eth0",
        ],
    ));
    assert!(out.contains("10.78.0.77/24"), "{out}");
    ok(d.docker(DOCKER, &["network", "rm", "dk"]));
}

#[test]
fn bad_input_fails_clearly_and_leaves_nothing() {
    let d = Daemon::start();
    ok(d.berth(&["network", "create", "--subnet", "10.80.0.0/16", "one"]));
    fails(
        d.berth(&["network", "create", "--subnet", "10.80.5.0/24", "two"]),
        "overlaps",
    );
    fails(d.berth(&["network", "create", "one"]), "already exists");
    fails(
        d.berth(&["run", "--rm", "--network", "nope", IMAGE, "true"]),
        "nope",
    );
    fails(
        d.berth(&[
            "run",
            "--rm",
            "--network",
            "one",
            "--ip",
            "10.81.0.5",
            IMAGE,
            "true",
        ]),
        "10.81.0.5",
    );
    fails(d.berth(&["network", "rm", "bridge"]), "pre-defined");
    fails(
        d.berth(&["run", "--rm", "--network-bandwidth", "10xb", IMAGE, "true"]),
        "10xb",
    );
    fails(
        d.berth(&["run", "--rm", "--add-host", "nocolon", IMAGE, "true"]),
        "nocolon",
    );
    // An exhausted pool: a /30 has one address besides the gateway.
    ok(d.berth(&["network", "create", "--subnet", "10.90.0.0/30", "tiny"]));
    ok(d.berth(&[
        "run",
        "-d",
        "--network",
        "tiny",
        "--name",
        "first",
        IMAGE,
        "sleep",
        "600",
    ]));
    fails(
        d.berth(&["run", "--rm", "--network", "tiny", IMAGE, "true"]),
        "no free address",
    );
    // An address in use.
    let taken = ip_of(&d, "first", "tiny");
    ok(d.berth(&["network", "create", "--subnet", "10.91.0.0/24", "wide"]));
    ok(d.berth(&[
        "run",
        "-d",
        "--network",
        "wide",
        "--ip",
        "10.91.0.9",
        "--name",
        "nine",
        IMAGE,
        "sleep",
        "600",
    ]));
    fails(
        d.berth(&[
            "run",
            "--rm",
            "--network",
            "wide",
            "--ip",
            "10.91.0.9",
            IMAGE,
            "true",
        ]),
        "10.91.0.9",
    );
    assert_eq!(taken, "10.90.0.2");
    ok(d.berth(&["rm", "-f", "first", "nine"]));
    for n in ["tiny", "wide"] {
        assert_eq!(leases(&d, n), 0, "network {n}");
    }
    no_veths_left(&d);
    ok(d.berth(&["network", "rm", "one", "tiny", "wide"]));
}

#[test]
fn connect_and_disconnect_a_running_container() {
    let d = Daemon::start();
    ok(d.berth(&["network", "create", "--subnet", "10.82.0.0/24", "left"]));
    ok(d.berth(&["network", "create", "--subnet", "10.83.0.0/24", "right"]));
    ok(d.berth(&[
        "run",
        "-d",
        "--network",
        "left",
        "--name",
        "c",
        IMAGE,
        "sleep",
        "600",
    ]));
    ok(d.berth(&["network", "connect", "--alias", "cee", "right", "c"]));
    let out = ok(d.berth(&["exec", "c", "ip", "-o", "-4", "addr"]));
    assert!(
        out.contains("10.82.0.") && out.contains("10.83.0."),
        "{out}"
    );
    let out = ok(d.berth(&[
        "run",
        "--rm",
        "--network",
        "right",
        IMAGE,
        "ping",
        "-c",
        "1",
        "-W",
        "3",
        "cee",
    ]));
    assert!(out.contains("10.83.0."), "{out}");
    ok(d.berth(&["network", "disconnect", "right", "c"]));
    let out = ok(d.berth(&["exec", "c", "ip", "-o", "-4", "addr"]));
    assert!(!out.contains("10.83.0."), "{out}");
    assert_eq!(leases(&d, "right"), 0);
    ok(d.berth(&["rm", "-f", "c"]));
    ok(d.berth(&["network", "rm", "left", "right"]));
}

/// Seconds `f` takes.
fn timed(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

#[test]
fn bandwidth_limit_holds_between_two_containers() {
    let d = Daemon::start();
    ok(d.berth(&["network", "create", "--subnet", "10.84.0.0/24", "bw"]));
    // 5 MB served over HTTP (wget ends when Content-Length bytes came:
    // the time is the transfer's, not a socket buffer's).
    const BYTES: f64 = 5_000_000.0;
    let serve =
        "dd if=/dev/zero of=/tmp/f bs=10000 count=500 2>/dev/null; httpd -p 80 -h /tmp; sleep 600";
    ok(d.berth(&[
        "run",
        "-d",
        "--network",
        "bw",
        "--name",
        "free",
        IMAGE,
        "sh",
        "-c",
        serve,
    ]));
    ok(d.berth(&[
        "run",
        "-d",
        "--network",
        "bw",
        "--name",
        "slow",
        "--network-bandwidth",
        "10mbit",
        IMAGE,
        "sh",
        "-c",
        serve,
    ]));
    assert_eq!(
        ok(d.berth(&["inspect", "-f", "{{.NetworkSettings.Bandwidth}}", "slow"])),
        "10000000"
    );
    let fetch = |from: &str, limit: Option<&str>| {
        let url = format!("http://{from}/f");
        let mut args = vec!["run", "--rm", "--network", "bw"];
        if let Some(l) = limit {
            args.extend(["--network-bandwidth", l]);
        }
        args.extend([IMAGE, "wget", "-q", "-O", "/dev/null", url.as_str()]);
        timed(|| {
            ok(d.berth(&args));
        })
    };
    let unlimited = fetch("free", None);
    // The limited container's ingress, then its egress.
    for (what, took) in [
        ("ingress", fetch("free", Some("10mbit"))),
        ("egress", fetch("slow", None)),
    ] {
        let rate = BYTES * 8.0 / took;
        assert!(
            (8.0e6..=12.0e6).contains(&rate),
            "{what}: 10 Mbit/s asked, {:.1} Mbit/s measured ({took:.2} s for 5 MB; {unlimited:.2} s unlimited)",
            rate / 1e6
        );
    }
    ok(d.berth(&["rm", "-f", "free", "slow"]));
    ok(d.berth(&["network", "rm", "bw"]));
}

#[test]
fn fifty_containers_attached_and_removed_leave_nothing() {
    let d = Daemon::start();
    ok(d.berth(&["network", "create", "--subnet", "10.85.0.0/24", "many"]));
    let mut ids = Vec::new();
    for i in 0..50 {
        ids.push(ok(d.berth(&[
            "run",
            "-d",
            "--network",
            "many",
            "--name",
            &format!("m{i}"),
            IMAGE,
            "sleep",
            "600",
        ])));
    }
    assert_eq!(leases(&d, "many"), 50);
    assert_eq!(veths(&d).len(), 50);
    let mut ips: Vec<String> = (0..50)
        .map(|i| ip_of(&d, &format!("m{i}"), "many"))
        .collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 50, "an address was handed out twice");
    let mut args = vec!["rm", "-f"];
    args.extend(ids.iter().map(String::as_str));
    ok(d.berth(&args));
    assert_eq!(leases(&d, "many"), 0);
    no_veths_left(&d);
    ok(d.berth(&["network", "rm", "many"]));
}

#[test]
fn after_sigkill_the_daemon_releases_what_no_container_owns() {
    let mut d = Daemon::start();
    ok(d.berth(&["network", "create", "--subnet", "10.86.0.0/24", "crash"]));
    ok(d.berth(&[
        "run",
        "-d",
        "--network",
        "crash",
        "--name",
        "goner",
        IMAGE,
        "sleep",
        "600",
    ]));
    ok(d.berth(&[
        "run",
        "-d",
        "--network",
        "crash",
        "--name",
        "stays",
        IMAGE,
        "sleep",
        "600",
    ]));
    let pid: i32 = ok(d.berth(&["inspect", "-f", "{{.State.Pid}}", "goner"]))
        .parse()
        .expect("a pid");
    d.kill9();
    // The container dies while no daemon runs.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    std::thread::sleep(Duration::from_millis(300));
    d.restart();
    until("the dead container's attachment is released", WAIT, || {
        let n = leases(&d, "crash");
        (n == 1, format!("{n} leases, links {:?}", d.netns().links()))
    });
    assert_eq!(veths(&d).len(), 1, "{:?}", veths(&d));
    // The survivor still answers by name.
    let out = ok(d.berth(&[
        "run",
        "--rm",
        "--network",
        "crash",
        IMAGE,
        "ping",
        "-c",
        "1",
        "-W",
        "3",
        "stays",
    ]));
    assert!(out.contains("10.86.0."), "{out}");
    ok(d.berth(&["rm", "-f", "goner", "stays"]));
    ok(d.berth(&["network", "rm", "crash"]));
}

#[test]
fn published_ports_answer_on_loopback_the_host_and_from_other_hosts() {
    let d = Daemon::start();
    let serve = "echo hi > /tmp/index.html; httpd -p 80 -h /tmp; httpd -p 81 -h /tmp; sleep 600";
    ok(d.berth(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        "8080:80",
        "-p",
        "127.0.0.1::81",
        "--expose",
        "82",
        IMAGE,
        "sh",
        "-c",
        serve,
    ]));
    let ports = ok(d.berth(&["inspect", "-f", "{{json .NetworkSettings.Ports}}", "web"]));
    let v: serde_json::Value = serde_json::from_str(&ports).expect("JSON");
    assert_eq!(v["80/tcp"][0]["HostPort"], "8080", "{ports}");
    assert!(
        v["82/tcp"].is_null(),
        "an exposed port that is not published: {ports}"
    );
    let chosen = v["81/tcp"][0]["HostPort"]
        .as_str()
        .expect("a chosen port")
        .to_string();
    let ps = ok(d.berth(&["ps", "--format", "{{.Ports}}"]));
    assert!(ps.contains("0.0.0.0:8080->80/tcp"), "{ps}");
    let get = |url: &str| d.in_netns("/usr/bin/curl", &["-sS", "--max-time", "10", url]);
    // The host's loopback (the daemon's proxy) and its own address (DNAT).
    assert_eq!(ok(get("http://127.0.0.1:8080/index.html")), "hi");
    assert_eq!(
        ok(get(&format!("http://127.0.0.1:{chosen}/index.html"))),
        "hi"
    );
    let gw = ok(d.berth(&[
        "network",
        "inspect",
        "-f",
        "{{(index .IPAM.Config 0).Gateway}}",
        "bridge",
    ]));
    assert_eq!(ok(get(&format!("http://{gw}:8080/index.html"))), "hi");
    // Another host: a namespace linked to the daemon's by a veth pair.
    let other = berth_tests::netns::NetNs::new();
    d.netns().ip(&[
        "link",
        "add",
        "bt-a",
        "type",
        "veth",
        "peer",
        "name",
        "bt-b",
        "netns",
        other.name(),
    ]);
    d.netns()
        .ip(&["addr", "add", "10.200.0.1/24", "dev", "bt-a"]);
    d.netns().ip(&["link", "set", "bt-a", "up"]);
    other.ip(&["addr", "add", "10.200.0.2/24", "dev", "bt-b"]);
    other.ip(&["link", "set", "bt-b", "up"]);
    let mut c = other.command("/usr/bin/curl");
    c.args([
        "-sS",
        "--max-time",
        "10",
        "http://10.200.0.1:8080/index.html",
    ]);
    let out = berth_tests::cmd::run(c, None, Duration::from_secs(30));
    assert_eq!(ok(out), "hi", "from another host");
    // UDP: published, answered through the proxy (loopback) and DNAT (the other host).
    ok(d.berth(&[
        "run",
        "-d",
        "--name",
        "udp",
        "-p",
        "9999:9999/udp",
        "-v",
        "/usr:/usr:ro",
        "-v",
        "/lib:/lib:ro",
        "-v",
        "/lib64:/lib64:ro",
        IMAGE,
        "/usr/bin/python3",
        "-c",
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('', 9999))\n\
             while True:\n    d, a = s.recvfrom(100)\n    s.sendto(d.upper(), a)",
    ]));
    let udp_probe = |host: &str| {
        format!(
            "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.settimeout(1)\n\
             for _ in range(20):\n    s.sendto(b'datagram', ('{host}', 9999))\n    \
             try:\n        print(s.recv(100).decode()); break\n    except socket.timeout:\n        pass"
        )
    };
    let out = d.in_netns("/usr/bin/python3", &["-c", &udp_probe("127.0.0.1")]);
    assert_eq!(ok(out), "DATAGRAM", "UDP on the host's loopback");
    let mut c = other.command("/usr/bin/python3");
    c.args(["-c", &udp_probe("10.200.0.1")]);
    let out = berth_tests::cmd::run(c, None, Duration::from_secs(60));
    assert_eq!(ok(out), "DATAGRAM", "UDP from another host");
    ok(d.berth(&["rm", "-f", "udp"]));
    // --dns: the embedded DNS forwards names it does not know to the
    // container's own servers (here a listener on the other host that
    // notes the question and answers with an empty NOERROR).
    let fake_dns = "import socket, sys\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('10.200.0.2', 53))\n\
         d, a = s.recvfrom(512)\nprint(d[12:].split(b'\\0')[0].decode('ascii', 'replace'), flush=True)\n\
         s.sendto(d[:2] + b'\\x81\\x80' + d[4:6] + b'\\0\\0\\0\\0\\0\\0' + d[12:], a)";
    let mut c = other.command("/usr/bin/python3");
    c.args(["-c", fake_dns]);
    let listener = berth_tests::Spawned::start(c, None, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(300));
    let _ = d.berth(&[
        "run",
        "--rm",
        "--dns",
        "10.200.0.2",
        IMAGE,
        "nslookup",
        "outside.example",
    ]);
    let heard = listener.wait();
    assert!(
        heard.stdout.contains("outside") && heard.stdout.contains("example"),
        "{heard}"
    );
    // Outbound: a container reaches the other host, which has no route back
    // to the bridge's subnet: only masquerading makes the answer come back.
    let out = ok(d.berth(&[
        "run",
        "--rm",
        IMAGE,
        "ping",
        "-c",
        "1",
        "-W",
        "3",
        "10.200.0.2",
    ]));
    assert!(out.contains("1 packets received"), "{out}");
    // An internal network has no way there.
    ok(d.berth(&["network", "create", "--internal", "closed"]));
    let out = d.berth(&[
        "run",
        "--rm",
        "--network",
        "closed",
        IMAGE,
        "ping",
        "-c",
        "1",
        "-W",
        "2",
        "10.200.0.2",
    ]);
    assert_ne!(
        out.code, 0,
        "an internal network reached another host: {out}"
    );
    ok(d.berth(&["network", "rm", "closed"]));
    // docker's client reads the same bindings.
    let port = ok(d.docker(DOCKER, &["port", "web", "80"]));
    assert!(port.contains("0.0.0.0:8080"), "{port}");
    // A host port in use: a clear error, and nothing is left of the attempt.
    let before = veths(&d).len();
    fails(
        d.berth(&["run", "--rm", "-p", "8080:80", IMAGE, "true"]),
        "port is already allocated",
    );
    assert_eq!(veths(&d).len(), before);
    assert_eq!(leases(&d, "bridge"), 1);
    // -P publishes what the image or --expose exposes.
    ok(d.berth(&[
        "run", "-d", "--name", "all", "--expose", "80", "-P", IMAGE, "sh", "-c", serve,
    ]));
    let p = ok(d.berth(&["inspect", "-f", "{{json .NetworkSettings.Ports}}", "all"]));
    let v: serde_json::Value = serde_json::from_str(&p).expect("JSON");
    let any = v["80/tcp"][0]["HostPort"]
        .as_str()
        .expect("a port")
        .to_string();
    assert_eq!(ok(get(&format!("http://127.0.0.1:{any}/index.html"))), "hi");
    ok(d.berth(&["rm", "-f", "web", "all"]));
    // The ports are free again.
    ok(d.berth(&[
        "run", "-d", "--name", "again", "-p", "8080:80", IMAGE, "sh", "-c", serve,
    ]));
    until("the new container answers", WAIT, || {
        let out = get("http://127.0.0.1:8080/index.html");
        (out.stdout.trim() == "hi", out.to_string())
    });
    ok(d.berth(&["rm", "-f", "again"]));
    d.netns().ip(&["link", "del", "bt-a"]);
}

#[test]
fn a_plan_outside_the_plugins_grants_is_refused_and_leaves_nothing() {
    // The built-in bridge plugin, granted less than it needs: no `veth`
    // links, and only 172.16.0.0/12.
    let d = Daemon::start_with_config(
        "[plugin.bridge]\nkind = \"network\"\nlink-prefixes = [\"berth\", \"br-\"]\npools = [\"172.16.0.0/12\"]\n",
    );
    let out = fails(
        d.berth(&["network", "create", "--subnet", "10.60.0.0/24", "outside"]),
        "10.60.0.",
    );
    assert!(out.stderr.contains("pools"), "{out}");
    assert!(!d.netns().links().iter().any(|l| l.starts_with("br-")));
    ok(d.berth(&["network", "create", "--subnet", "172.30.0.0/24", "inside"]));
    let out = fails(
        d.berth(&["run", "--rm", "--network", "inside", IMAGE, "true"]),
        "veth",
    );
    assert!(
        out.stderr.contains("refused") && out.stderr.contains("prefixes"),
        "{out}"
    );
    assert_eq!(
        leases(&d, "inside"),
        0,
        "the refused add's lease was released"
    );
    no_veths_left(&d);
    ok(d.berth(&["network", "rm", "inside"]));
}

#[test]
fn a_custom_plugin_from_berth_toml_runs_macvlan_networks() {
    let wasm = macvlan_example();
    let d = Daemon::start_with_config(&format!(
        "[plugin.macvlan]\nkind = \"network\"\nwasm = \"{}\"\nlink-prefixes = [\"mv\"]\npools = [\"10.99.0.0/16\"]\nmacvlan-parents = [\"par0\"]\n",
        wasm.display()
    ));
    // The parent: one end of a veth pair (this kernel has no dummy links).
    d.netns().ip(&[
        "link", "add", "par0", "type", "veth", "peer", "name", "par1",
    ]);
    d.netns().ip(&["link", "set", "par0", "up"]);
    d.netns().ip(&["link", "set", "par1", "up"]);
    fails(
        d.berth(&[
            "network",
            "create",
            "-d",
            "macvlan",
            "--subnet",
            "10.99.0.0/24",
            "noparent",
        ]),
        "parent",
    );
    ok(d.berth(&[
        "network",
        "create",
        "-d",
        "macvlan",
        "--subnet",
        "10.99.0.0/24",
        "-o",
        "parent=par0",
        "lan",
    ]));
    ok(d.berth(&[
        "run",
        "-d",
        "--network",
        "lan",
        "--name",
        "m1",
        IMAGE,
        "sleep",
        "600",
    ]));
    let ip = ip_of(&d, "m1", "lan");
    assert!(ip.starts_with("10.99.0."), "{ip}");
    let out = ok(d.berth(&[
        "run",
        "--rm",
        "--network",
        "lan",
        IMAGE,
        "sh",
        "-c",
        &format!("ping -c 1 -W 3 {ip}"),
    ]));
    assert!(out.contains("1 packets received"), "{out}");
    // A macvlan, not a veth: nothing of it stays on the host's side.
    let links = d.netns().links();
    assert!(
        !links
            .iter()
            .any(|l| l.starts_with("veth") || l.starts_with("mv")),
        "{links:?}"
    );
    // A parent the plugin was not granted is refused by the host.
    ok(d.berth(&[
        "network",
        "create",
        "-d",
        "macvlan",
        "--subnet",
        "10.99.1.0/24",
        "-o",
        "parent=par1",
        "other",
    ]));
    fails(
        d.berth(&["run", "--rm", "--network", "other", IMAGE, "true"]),
        "par1",
    );
    assert_eq!(plugin_leases(&d, "macvlan", "other"), 0);
    ok(d.berth(&["rm", "-f", "m1"]));
    assert_eq!(plugin_leases(&d, "macvlan", "lan"), 0);
    assert!(!d.netns().links().iter().any(|l| l.starts_with("mv")));
    ok(d.berth(&["network", "rm", "lan", "other"]));
    d.netns().ip(&["link", "del", "par0"]);
}

/// What `nslookup NAME` inside container `c` resolves to (its addresses, or
/// the error it printed).
fn lookup(d: &Daemon, c: &str, name: &str) -> Output {
    d.docker(DOCKER, &["exec", c, "nslookup", name])
}

#[test]
fn a_container_resolves_names_on_every_network_it_is_on() {
    let d = Daemon::start();
    for (net, subnet) in [
        ("n1", "10.84.0.0/24"),
        ("n2", "10.85.0.0/24"),
        ("n3", "10.86.0.0/24"),
    ] {
        ok(d.docker(DOCKER, &["network", "create", "--subnet", subnet, net]));
    }
    let sleeper = |name: &str, net: &str, alias: &str| {
        ok(d.docker(
            DOCKER,
            &[
                "run",
                "-d",
                "--name",
                name,
                "--network",
                net,
                "--network-alias",
                alias,
                IMAGE,
                "sleep",
                "600",
            ],
        ));
    };
    sleeper("svc", "n1", "service");
    sleeper("other", "n3", "elsewhere");
    sleeper("b", "n2", "bee");
    // On n2 only: n1's names are not b's.
    let out = lookup(&d, "b", "service");
    assert!(out.code != 0 || !out.stdout.contains("10.84.0."), "{out}");
    // connect: n1's names and aliases resolve through b's first resolver.
    ok(d.docker(DOCKER, &["network", "connect", "n1", "b"]));
    for name in ["svc", "service"] {
        let out = lookup(&d, "b", name);
        assert!(
            out.code == 0 && out.stdout.contains("10.84.0."),
            "{name}: {out}"
        );
    }
    // n3, where b is not, stays out of reach.
    let out = lookup(&d, "b", "elsewhere");
    assert!(out.code != 0 && !out.stdout.contains("10.86.0."), "{out}");
    // disconnect: gone again.
    ok(d.docker(DOCKER, &["network", "disconnect", "n1", "b"]));
    let out = lookup(&d, "b", "service");
    assert!(!out.stdout.contains("10.84.0."), "{out}");
    // Created on two networks (the second connected before it starts).
    ok(d.docker(
        DOCKER,
        &[
            "create",
            "--name",
            "both",
            "--network",
            "n2",
            IMAGE,
            "sleep",
            "600",
        ],
    ));
    ok(d.docker(DOCKER, &["network", "connect", "n3", "both"]));
    ok(d.docker(DOCKER, &["start", "both"]));
    let out = lookup(&d, "both", "elsewhere");
    assert!(out.code == 0 && out.stdout.contains("10.86.0."), "{out}");
    let out = lookup(&d, "both", "bee");
    assert!(out.code == 0 && out.stdout.contains("10.85.0."), "{out}");
    ok(d.docker(DOCKER, &["rm", "-f", "svc", "other", "b", "both"]));
    ok(d.docker(DOCKER, &["network", "rm", "n1", "n2", "n3"]));
}
