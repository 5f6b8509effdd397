//! Real-host cgroup tests, as root: limits land in the kernel's files, a child process can be
//! added, listed, frozen, counted and killed, nothing is left behind, and a BPF device program on
//! a cgroup2 directory (the unified mount of a hybrid host) really denies a device.
//! They fail, never skip, when not root or when a needed controller is missing.

use std::io::Write as _;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use berth_runtime::cgroups::{
    attach_device_filter, attached_device_programs, Cgroup, CgroupError, Layout,
};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};

/// Destroys the cgroup when a test ends, even by panic, so failures leak nothing.
struct Guard(Cgroup);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Err(e) = self.0.destroy() {
            eprintln!("cleanup of {:?} failed: {e}", self.0.paths());
        }
    }
}

fn setup(needed_v1: &[&str]) -> Layout {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the cgroup host tests need root: run them as root (CI does)"
    );
    let layout = Layout::detect().expect("cannot detect the cgroup layout");
    if !layout.is_v2() {
        for c in needed_v1 {
            assert!(
                layout.v1_mount(c).is_some(),
                "the {c} v1 controller is not mounted on this host ({layout:?})"
            );
        }
    }
    layout
}

fn unique_path() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "/berth-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn resources(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

fn sleeper() -> Child {
    Command::new("sleep")
        .arg("600")
        .spawn()
        .expect("spawn sleep")
}

#[test]
fn limits_processes_freeze_stats_and_destroy() {
    let layout = setup(&["memory", "pids", "cpu", "freezer"]);
    let path = unique_path();
    let r = resources(
        r#"{"memory": {"limit": 67108864},
            "pids": {"limit": 32},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000}}"#,
    );
    let cg = Guard(Cgroup::create(&layout, &path, Some(&r)).expect("create"));
    let cg = &cg.0;
    assert!(cg.paths().iter().all(|p| p.is_dir()));

    if layout.is_v2() {
        let d = cg.unified_path().unwrap();
        assert_eq!(read(&d.join("memory.max")), "67108864");
        assert_eq!(read(&d.join("pids.max")), "32");
        assert_eq!(read(&d.join("cpu.weight")), "20");
        assert_eq!(read(&d.join("cpu.max")), "50000 100000");
    } else {
        let dir = |c: &str| cg.v1_dir(c).unwrap().to_path_buf();
        assert_eq!(
            read(&dir("memory").join("memory.limit_in_bytes")),
            "67108864"
        );
        assert_eq!(read(&dir("pids").join("pids.max")), "32");
        assert_eq!(read(&dir("cpu").join("cpu.shares")), "512");
        assert_eq!(read(&dir("cpu").join("cpu.cfs_quota_us")), "50000");
        assert_eq!(read(&dir("cpu").join("cpu.cfs_period_us")), "100000");
    }

    let mut child = sleeper();
    let pid = child.id() as i32;
    cg.add_pid(pid).expect("add_pid");
    assert_eq!(cg.pids().unwrap(), vec![pid]);
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(own.contains(&path), "{own}");

    // The same path again is a duplicate container, and refusing it removes nothing.
    let dup = Cgroup::create(&layout, &path, None).unwrap_err();
    assert!(matches!(dup, CgroupError::InUse { .. }), "{dup}");
    assert!(cg.paths().iter().all(|p| p.is_dir()));

    cg.freeze().expect("freeze");
    assert!(cg.is_frozen().unwrap());
    cg.thaw().expect("thaw");
    assert!(!cg.is_frozen().unwrap());

    let stats = cg.stats().expect("stats");
    serde_json::to_string(&stats).unwrap();
    let pids = stats.pids.expect("pids stats");
    assert_eq!((pids.current, pids.limit), (1, Some(32)));
    assert_eq!(stats.memory.expect("memory stats").limit, Some(67108864));
    assert!(stats.cpu.is_some());

    cg.destroy().expect("destroy");
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    for p in cg.paths() {
        assert!(!p.exists(), "{} is left behind", p.display());
    }
    cg.destroy().expect("destroy is idempotent");
}

#[test]
fn a_refused_limit_leaves_no_directory_in_any_hierarchy() {
    let layout = setup(&["memory"]);
    let path = unique_path();
    // No host has 3MB huge pages.
    let r =
        resources(r#"{"pids": {"limit": 8}, "hugepageLimits": [{"pageSize": "3MB", "limit": 1}]}"#);
    let err = Cgroup::create(&layout, &path, Some(&r)).unwrap_err();
    assert!(err.to_string().contains("hugetlb"), "{err}");
    let mut roots: Vec<_> = [
        "memory", "pids", "cpu", "freezer", "devices", "cpuset", "blkio",
    ]
    .iter()
    .filter_map(|c| layout.v1_mount(c))
    .collect();
    roots.extend(layout.unified_mount());
    for root in roots {
        let dir = root.join(path.trim_start_matches('/'));
        assert!(!dir.exists(), "{} is left behind", dir.display());
    }
}

#[test]
fn a_bpf_device_program_on_cgroup2_denies_the_device_inside_only() {
    let layout = setup(&[]);
    let unified = layout
        .unified_mount()
        .unwrap_or_else(|| panic!("this test needs a cgroup2 mount ({layout:?})"));
    assert!(unified.is_dir());
    let path = unique_path();
    let cg = Guard(Cgroup::create(&layout, &path, None).expect("create"));
    let cg = &cg.0;
    let dir = cg.unified_path().unwrap();

    // A typical container allow-list (as `runc spec` writes it) passes the verifier and works.
    let defaults: Vec<LinuxDeviceCgroup> = serde_json::from_str(
        r#"[{"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
            {"allow": true, "type": "c", "major": 136, "access": "rwm"},
            {"allow": true, "type": "c", "access": "m"},
            {"allow": true, "type": "b", "access": "m"}]"#,
    )
    .unwrap();
    attach_device_filter(dir, &defaults).expect("attach the default list");
    let (stdout, stderr) = run_inside(
        cg,
        "head -c1 /dev/zero >/dev/null; echo zero=$?; head -c0 /dev/kmsg; echo kmsg=$?",
    );
    assert!(
        stdout.contains("zero=0"),
        "stdout: {stdout} stderr: {stderr}"
    );
    assert!(
        stdout.contains("kmsg=1"),
        "stdout: {stdout} stderr: {stderr}"
    );

    let rules: Vec<LinuxDeviceCgroup> = serde_json::from_str(
        r#"[{"allow": true, "access": "rwm"},
            {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "r"}]"#,
    )
    .unwrap();
    attach_device_filter(dir, &rules).expect("attach");
    attach_device_filter(dir, &rules).expect("attach again");
    assert_eq!(
        attached_device_programs(dir).unwrap(),
        1,
        "a new program replaces the old one"
    );

    assert_dev_null_read_denied_inside(cg);

    cg.destroy().expect("destroy");
    for p in cg.paths() {
        assert!(!p.exists(), "{} is left behind", p.display());
    }
}

/// Runs `script` with `sh -c` inside `cg` (it starts only once it is in there); returns its
/// stdout and stderr.
fn run_inside(cg: &Cgroup, script: &str) -> (String, String) {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("read go; {script}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sh");
    cg.add_pid(child.id() as i32).expect("add_pid");
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let out = child.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Reading /dev/null must fail with EPERM inside `cg`, writing must work, and this process
/// (outside) must still open it.
fn assert_dev_null_read_denied_inside(cg: &Cgroup) {
    let script = "cat /dev/null; echo read=$?; echo x > /dev/null && echo write=ok";
    let (stdout, stderr) = run_inside(cg, script);
    assert!(
        stdout.contains("read=1"),
        "stdout: {stdout} stderr: {stderr}"
    );
    assert!(
        stderr.contains("Operation not permitted"),
        "stderr: {stderr}"
    );
    assert!(
        stdout.contains("write=ok"),
        "writing stays allowed: {stdout}"
    );
    std::fs::File::open("/dev/null").expect("outside the cgroup /dev/null still opens");
}

#[test]
fn device_rules_through_apply_use_the_hosts_device_controller() {
    let layout = setup(&["devices"]);
    let path = unique_path();
    let r = resources(
        r#"{"devices": [{"allow": true, "access": "rwm"},
                        {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "r"}]}"#,
    );
    let cg = Guard(Cgroup::create(&layout, &path, Some(&r)).expect("create"));
    if let Some(d) = cg.0.v1_dir("devices") {
        assert!(read(&d.join("devices.list")).contains("a *:* rwm"));
    }
    assert_dev_null_read_denied_inside(&cg.0);
}

#[test]
fn memory_and_swap_updates_in_both_directions() {
    let layout = setup(&["memory"]);
    let swap = layout
        .v1_mount("memory")
        .is_none_or(|m| m.join("memory.memsw.limit_in_bytes").exists());
    let mem = |limit: i64, with_swap: i64| {
        if swap {
            resources(&format!(
                r#"{{"memory": {{"limit": {limit}, "swap": {with_swap}}}}}"#
            ))
        } else {
            resources(&format!(r#"{{"memory": {{"limit": {limit}}}}}"#))
        }
    };
    let cg = Guard(
        Cgroup::create(&layout, &unique_path(), Some(&mem(64 << 20, 128 << 20))).expect("create"),
    );
    // Growing past the current memory+swap, then shrinking below the current limit: each
    // needs the writes in a different order.
    cg.0.apply(&mem(256 << 20, 512 << 20)).expect("grow");
    cg.0.apply(&mem(32 << 20, 48 << 20)).expect("shrink");
    let limit = cg.0.stats().unwrap().memory.unwrap().limit;
    assert_eq!(limit, Some(32 << 20));
    cg.0.apply(&mem(-1, -1)).expect("unlimited");
    assert_eq!(cg.0.stats().unwrap().memory.unwrap().limit, None);
}
