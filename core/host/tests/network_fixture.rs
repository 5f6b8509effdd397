//! A network plugin that misbehaves (tests/fixtures/net-faulty) leaves
//! nothing behind: a plan outside its grants is refused before anything is
//! applied and its lease is released, a trap halfway through `add` releases
//! the lease it wrote, and `del` and `gc` — also by a fresh plugin after a
//! crash — remove exactly what `add` made. What the kernel has is read back
//! with `ip`. Every test runs on its own thread inside network namespaces it
//! creates (a "daemon" namespace and a "container" one); the machine's own
//! network is never touched. Needs root.

mod common;

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::process::Command;

use berth_host::{
    AttachRequest, Grants, HostConfig, HostError, NetworkGrants, NetworkPlugin, NetworkSpec,
    Networking, PlanViolation, PluginHost, PluginSpec, Refusal, WasmSource,
};

const NAME: &str = "net-faulty-fixture";
/// A container and the host end of its veth (`veth` + 11 digits of its ID).
const CID: &str = "1234abcd1234abcd1234abcd1234abcd1234abcd1234abcd1234abcd1234abcd";
const VETH: &str = "veth1234abcd123";

// ---- namespaces -----------------------------------------------------------

/// Runs `test` on a new thread inside a new, empty network namespace (the
/// test's "daemon" side) with a current-thread tokio runtime. The fixture
/// is built first, outside: cargo may want the network.
fn in_netns(test: impl AsyncFnOnce() + Send + 'static) {
    common::fixture("net-faulty");
    let thread = std::thread::spawn(move || {
        unshare_netns();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
            .block_on(test());
    });
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

fn unshare_netns() {
    // SAFETY: unshare takes no pointers; CLONE_NEWNET moves only the calling
    // thread into a new network namespace.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(
        rc,
        0,
        "unshare(CLONE_NEWNET): {} — these tests must run as root",
        std::io::Error::last_os_error()
    );
}

fn enter_netns(fd: BorrowedFd<'_>) {
    // SAFETY: setns takes a descriptor that `fd` keeps open; it moves only
    // the calling thread.
    let rc = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
}

/// A second network namespace (the "container"); the calling thread stays
/// where it was. It lives as long as the descriptor.
fn new_netns() -> OwnedFd {
    let here = File::open("/proc/thread-self/ns/net").expect("this thread's netns");
    unshare_netns();
    let other = File::open("/proc/thread-self/ns/net").expect("the new netns");
    enter_netns(here.as_fd());
    other.into()
}

/// `ip ARGS` run in the calling thread's namespace, or in `ns`.
fn ip(ns: Option<BorrowedFd<'_>>, args: &[&str]) -> String {
    let run = || {
        let out = Command::new("ip").args(args).output().expect("running ip");
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("ip prints UTF-8")
    };
    match ns {
        None => run(),
        Some(fd) => std::thread::scope(|s| {
            s.spawn(|| {
                enter_netns(fd);
                run()
            })
            .join()
            .expect("ip in the container's netns")
        }),
    }
}

/// Every link but `lo` as (name, its `ip -o link` line).
fn links(ns: Option<BorrowedFd<'_>>) -> Vec<(String, String)> {
    ip(ns, &["-o", "link", "show"])
        .lines()
        .filter_map(|l| {
            let (_, rest) = l.split_once(": ")?;
            let name = rest.split([':', '@']).next()?.to_string();
            (name != "lo").then(|| (name, l.to_string()))
        })
        .collect()
}

fn link_names(ns: Option<BorrowedFd<'_>>) -> Vec<String> {
    links(ns).into_iter().map(|(n, _)| n).collect()
}

/// The bridge `name` is enslaved to.
fn master(name: &str) -> Option<String> {
    let (_, line) = links(None).into_iter().find(|(n, _)| n == name)?;
    let (_, rest) = line.split_once(" master ")?;
    rest.split_whitespace().next().map(str::to_string)
}

/// The IPv4 addresses (CIDR) on `link`.
fn addrs(ns: Option<BorrowedFd<'_>>, link: &str) -> Vec<String> {
    ip(ns, &["-o", "-4", "addr", "show", "dev", link])
        .lines()
        .filter_map(|l| {
            let (_, rest) = l.split_once(" inet ")?;
            rest.split_whitespace().next().map(str::to_string)
        })
        .collect()
}

// ---- the plugin -----------------------------------------------------------

/// A loaded fixture, its directories and a container namespace.
struct Env {
    dir: tempfile::TempDir,
    plugin: NetworkPlugin,
    container: OwnedFd,
}

/// Loads the fixture with its root at `<dir>/root` and the host's journal at
/// `<dir>/net`, granted `veth`/`bf` links and 10.123.0.0/16.
fn load(dir: &std::path::Path) -> NetworkPlugin {
    let host = PluginHost::new(HostConfig::new(common::shared_cache())).unwrap();
    let net = Networking::new(dir.join("net"), "berthtest").unwrap();
    let mut grants = Grants::new(dir.join("root"));
    grants.network = NetworkGrants {
        link_prefixes: vec!["veth".into(), "bf".into()],
        pools: vec!["10.123.0.0/16".parse().unwrap()],
        macvlan_parents: vec![],
    };
    host.load_network(
        PluginSpec {
            name: NAME.into(),
            wasm: WasmSource::Bytes(common::fixture("net-faulty")),
            grants,
        },
        &net,
    )
    .unwrap()
}

impl Env {
    /// Must run inside the test's namespace.
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let plugin = load(dir.path());
        Env {
            dir,
            plugin,
            container: new_netns(),
        }
    }

    fn ctr(&self) -> BorrowedFd<'_> {
        self.container.as_fd()
    }

    /// Creates network number `n` (`10.123.<n>.0/24` on bridge `bf<n>c0ffe`)
    /// whose `add` misbehaves as `fault` says; returns its spec with the
    /// gateway the plugin chose, as the engine passes it on.
    async fn create(&self, n: u8, fault: Option<&str>) -> NetworkSpec {
        let mut spec = NetworkSpec {
            name: format!("net{n}"),
            id: format!("{n}c0ffee{}", "0".repeat(57)),
            subnet: format!("10.123.{n}.0/24"),
            options: fault
                .map(|f| vec![("fault".into(), f.into())])
                .unwrap_or_default(),
            ..NetworkSpec::default()
        };
        let info = self.plugin.create_network(&spec).await.unwrap();
        assert_eq!(info.links, [bridge(n)]);
        spec.gateway = info.gateway.unwrap().to_string();
        spec
    }

    fn lease(&self) -> PathBuf {
        self.dir.path().join("root/leases").join(CID)
    }

    /// The fixture got as far as leasing (it makes `/leases` for the first
    /// lease), so a missing lease file means someone removed it.
    fn assert_add_leased(&self) {
        assert!(
            self.dir.path().join("root/leases").is_dir(),
            "add never leased"
        );
    }

    /// The attachments' journal files.
    fn attachment_journals(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.path().join("net/journal"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("att-"))
            .collect()
    }

    /// Nothing of the attachment is left: no veth or `evil0` on the host,
    /// nothing but `lo` in the container, no lease and no journal. The
    /// network's bridge is still there.
    fn assert_nothing_left(&self, n: u8) {
        assert_eq!(link_names(None), [bridge(n)], "links on the host");
        assert_eq!(link_names(Some(self.ctr())), Vec::<String>::new());
        assert!(!self.lease().exists(), "the lease is still there");
        assert_eq!(self.attachment_journals(), Vec::<String>::new());
    }
}

fn bridge(n: u8) -> String {
    format!("bf{n}c0ffe")
}

fn req(spec: &NetworkSpec) -> AttachRequest {
    AttachRequest {
        network: spec.clone(),
        container_id: CID.into(),
        ifname: "eth0".into(),
        address: None,
        ports: vec![],
        bandwidth: 0,
        default_route: true,
    }
}

/// The container is plugged into network `n`: the veth on the host is
/// enslaved to the bridge, `eth0` in the container has the address and
/// the default route, the lease and the journal are on disk.
fn assert_attached(env: &Env, n: u8) {
    assert_eq!(link_names(None), [bridge(n), VETH.to_string()]);
    assert_eq!(master(VETH), Some(bridge(n)));
    assert_eq!(addrs(None, &bridge(n)), [format!("10.123.{n}.1/24")]);
    assert_eq!(link_names(Some(env.ctr())), ["eth0"]);
    assert_eq!(addrs(Some(env.ctr()), "eth0"), [format!("10.123.{n}.2/24")]);
    let routes = ip(Some(env.ctr()), &["-4", "route", "show", "default"]);
    assert!(
        routes.contains(&format!("default via 10.123.{n}.1 dev eth0")),
        "{routes}"
    );
    assert_eq!(
        std::fs::read_to_string(env.lease()).unwrap(),
        format!("10.123.{n}.2")
    );
    assert_eq!(env.attachment_journals().len(), 1);
}

fn assert_names(err: &HostError, call: &str) {
    let msg = err.to_string();
    assert!(msg.contains(NAME), "no plugin name in: {msg}");
    assert!(msg.contains(call), "no call {call:?} in: {msg}");
}

// ---- the tests ------------------------------------------------------------

#[test]
fn a_good_add_is_applied_and_del_removes_it() {
    in_netns(async || {
        let env = Env::new();
        let spec = env.create(1, None).await;
        let att = env.plugin.add(&req(&spec), env.ctr()).await.unwrap();
        assert_eq!(att.address, "10.123.1.2/24".parse().unwrap());
        assert_eq!(att.gateway, Some("10.123.1.1".parse().unwrap()));
        assert_eq!(att.host_links, [VETH]);
        assert_attached(&env, 1);
        env.plugin.check(&spec, CID).await.unwrap();

        env.plugin.del(&spec, CID, Some(env.ctr())).await.unwrap();
        env.assert_nothing_left(1);
        // del is safe to repeat; check now fails.
        env.plugin.del(&spec, CID, Some(env.ctr())).await.unwrap();
        env.plugin.check(&spec, CID).await.unwrap_err();
        // The address and the link names are free again.
        env.plugin.add(&req(&spec), env.ctr()).await.unwrap();
        assert_attached(&env, 1);
    });
}

#[test]
fn a_link_outside_the_granted_prefixes_is_refused_and_nothing_is_left() {
    in_netns(async || {
        let env = Env::new();
        let spec = env.create(1, Some("bad-link")).await;
        let err = env.plugin.add(&req(&spec), env.ctr()).await.unwrap_err();
        let Some(Refusal::Plan(PlanViolation::LinkOutsidePrefixes { name, prefixes, .. })) =
            err.refusal()
        else {
            panic!("want a link outside the prefixes refused, got {err:?}");
        };
        assert_eq!(
            (name.as_str(), prefixes.as_slice()),
            ("evil0", &["veth".to_string(), "bf".to_string()][..])
        );
        assert!(err.to_string().contains(r#""evil0""#), "{err}");
        assert_names(&err, "add");
        // Refused before anything was applied; the plugin's lease was
        // released through del.
        env.assert_add_leased();
        env.assert_nothing_left(1);
    });
}

#[test]
fn an_address_outside_the_granted_pools_is_refused_and_nothing_is_left() {
    in_netns(async || {
        let env = Env::new();
        let spec = env.create(1, Some("bad-address")).await;
        let err = env.plugin.add(&req(&spec), env.ctr()).await.unwrap_err();
        let Some(Refusal::Plan(PlanViolation::OutsidePools { what, pools, .. })) = err.refusal()
        else {
            panic!("want an address outside the pools refused, got {err:?}");
        };
        assert!(what.contains("192.0.2.2/24"), "{what}");
        assert_eq!(pools, &["10.123.0.0/16".parse::<ipnet::Ipv4Net>().unwrap()]);
        assert_names(&err, "add");
        env.assert_add_leased();
        env.assert_nothing_left(1);
    });
}

#[test]
fn a_trap_halfway_through_add_releases_the_lease() {
    in_netns(async || {
        let env = Env::new();
        let spec = env.create(1, Some("trap-in-add")).await;
        let err = env.plugin.add(&req(&spec), env.ctr()).await.unwrap_err();
        assert!(matches!(err, HostError::Trap { .. }), "{err:?}");
        assert_names(&err, "add 1234abcd1234 to net1");
        // The fixture wrote the lease before it panicked; the host's del removed it.
        env.assert_add_leased();
        env.assert_nothing_left(1);

        // The plugin goes on working.
        let good = env.create(2, None).await;
        env.plugin.add(&req(&good), env.ctr()).await.unwrap();
        assert_eq!(link_names(None), [bridge(1), bridge(2), VETH.into()]);
        assert_eq!(master(VETH), Some(bridge(2)));
    });
}

#[test]
fn gc_after_a_crash_removes_the_links_and_the_lease() {
    in_netns(async || {
        let mut env = Env::new();
        let spec = env.create(1, None).await;
        env.plugin.add(&req(&spec), env.ctr()).await.unwrap();
        assert_attached(&env, 1);

        // The daemon dies; a new one loads the plugin on the same directories.
        env.plugin = load(env.dir.path());
        // The container still runs: gc keeps it.
        assert_eq!(
            env.plugin.gc(&spec, &[CID.into()]).await.unwrap(),
            Vec::<String>::new()
        );
        assert_attached(&env, 1);
        // It is gone: gc removes its veth (and with it the container's end),
        // its journal and its lease.
        assert_eq!(env.plugin.gc(&spec, &[]).await.unwrap(), [CID]);
        env.assert_nothing_left(1);
        assert_eq!(
            env.plugin.gc(&spec, &[]).await.unwrap(),
            Vec::<String>::new()
        );
    });
}
