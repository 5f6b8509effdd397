//! Namespace combinations beyond the defaults: a new user namespace with a
//! joined network namespace, and the host's processes out of reach.

use berth_tests::{cmd, require_path, Bundle, Container, NetNs, Runtime};
use serde_json::json;
use std::path::Path;
use std::process::{Child, Command};

/// A new user namespace plus a joined one is berth's slow path: join, unshare
/// the user namespace, write the maps, unshare the rest, fork to be PID 1.
#[test]
fn user_namespace_with_a_joined_network_namespace() {
    require_path("/proc/self/ns/user", "user namespaces");
    let rt = Runtime::new();
    let ns = NetNs::new();
    ns.ip(&[
        "link", "add", "bt-veth0", "type", "veth", "peer", "name", "bt-veth1",
    ]);
    let mut b = Bundle::new();
    // Owned by the mapped root, as a user-namespaced container's image would be.
    cmd::host(
        "chown",
        &["-hR", "100000:100000", &b.rootfs().to_string_lossy()],
    );
    b.user_namespace(100000, 65536)
        .namespace("network", Some(&ns.path()))
        .sh("echo $$; id -u; cat /proc/self/uid_map; ip -o link; exit 4");
    if !rt.is_berth() {
        // The kernel refuses sysfs for a network namespace the user namespace
        // does not own. berth then binds the host's /sys; runc 1.1.5 fails
        // ("mount sysfs:/sys … operation not permitted"), so give it the bind.
        bind_host_sys(&mut b);
    }
    let c = Container::new(&rt, b);
    let out = c.run();
    out.assert_code(4);
    let lines = out.lines();
    assert_eq!(lines[..2], ["1", "0"], "not PID 1 or not root: {out}");
    let map: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(map, ["0", "100000", "65536"], "{out}");
    let mut links: Vec<&str> = lines[3..]
        .iter()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or_default())
        .collect();
    links.sort_unstable();
    assert_eq!(
        links,
        ["bt-veth0", "bt-veth1", "lo"],
        "not the joined namespace's links: {out}"
    );
    c.assert_no_leaks();
    ns.ip(&["link", "show", "bt-veth0"]);
}

/// Replaces the config's sysfs mount on /sys, in place, with a read-only
/// bind of the host's.
fn bind_host_sys(b: &mut Bundle) {
    let sys = b.config_mut()["mounts"]
        .as_array_mut()
        .expect("mounts is an array")
        .iter_mut()
        .find(|m| m["destination"] == "/sys")
        .expect("the config mounts /sys");
    *sys = json!({
        "destination": "/sys",
        "type": "bind",
        "source": "/sys",
        "options": ["rbind", "nosuid", "noexec", "nodev", "ro"],
    });
}

/// A host process killed and reaped when the test ends, even on failure.
struct HostProcess(Child);

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn host_processes_are_invisible_and_unsignalable() {
    let rt = Runtime::new();
    let mut host = HostProcess(
        Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("start host sleep"),
    );
    let pid = host.0.id();
    let mut b = Bundle::new();
    b.sh(&format!(
        "kill -0 {pid} 2>/dev/null && echo signalled || echo no-such-process; \
         test -e /proc/{pid} && echo visible || echo hidden"
    ));
    let c = Container::new(&rt, b);
    let out = c.run();
    out.assert_ok();
    assert_eq!(out.lines(), ["no-such-process", "hidden"], "{out}");
    assert!(
        host.0.try_wait().expect("poll host sleep").is_none(),
        "the host sleep {pid} died during the container run"
    );
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    c.assert_no_leaks();
}
