//! cgroup limits: memory (OOM kill), pids (fork bomb), CPU quota, the files
//! a runtime writes, and that the cgroup is gone after delete.

use berth_tests::{cgroup, Bundle, Container, Runtime};
use serde_json::json;
use std::time::{Duration, Instant};

const MIB: u64 = 1024 * 1024;

#[test]
fn memory_limit_oom_kills_a_process_that_allocates_more() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    // busybox tail buffers a line without newline whole: 200 MiB in 32 MiB.
    b.resources(json!({ "memory": { "limit": 32 * MIB, "swap": 32 * MIB } }))
        .sh("head -c 200m /dev/zero | tail");
    let c = Container::new(&rt, b);
    let out = c.run();
    out.assert_code(137);
    c.assert_no_leaks();
}

#[test]
fn pids_limit_stops_a_fork_bomb_and_the_container_still_exits() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    // The inner shell forks until fork fails; PID 1 reports with builtins only
    // (it cannot fork either while the sleeps hold the pids).
    b.resources(json!({ "pids": { "limit": 20 } })).sh(
        "sh -c 'i=0; while [ $i -lt 100 ]; do sleep 600 & i=$((i+1)); echo $i > /tmp/n; done'; \
         echo bomb=$?; read n < /tmp/n; echo started=$n",
    );
    let c = Container::new(&rt, b);
    let out = c.run();
    out.assert_ok();
    let started: u32 = out
        .lines()
        .iter()
        .find_map(|l| l.strip_prefix("started="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count: {out}"));
    assert!(
        (1..20).contains(&started),
        "{started} sleeps started under pids.max=20: {out}"
    );
    assert!(!out.stdout.contains("bomb=0"), "fork never failed: {out}");
    assert!(out.stderr.contains("fork"), "{out}");
    c.assert_no_leaks();
}

#[test]
fn cpu_quota_holds_a_busy_loop_near_the_quota() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.resources(json!({ "cpu": { "quota": 20000, "period": 100000 } }))
        .sh("while :; do :; done");
    let c = Container::new(&rt, b);
    c.create(&[]).assert_ok();
    c.start().assert_ok();
    let cg = c.bundle().cgroups_path();
    assert_eq!(cgroup::cpu_quota(&cg), (Some(20000), 100000));
    std::thread::sleep(Duration::from_millis(300));
    let (t0, u0) = (Instant::now(), cgroup::cpu_usage_ns(&cg));
    std::thread::sleep(Duration::from_secs(2));
    let (t1, u1) = (Instant::now(), cgroup::cpu_usage_ns(&cg));
    let cpus = (u1 - u0) as f64 / (t1 - t0).as_nanos() as f64;
    eprintln!("busy loop under a 0.2 CPU quota used {cpus:.3} CPU");
    assert!(cpus > 0.0, "the busy loop did not run");
    assert!(cpus < 0.4, "a 0.2 CPU quota let the loop use {cpus:.2} CPU");
    c.kill("KILL").assert_ok();
    c.wait_status("stopped");
    c.delete().assert_ok();
    c.assert_no_leaks();
}

#[test]
fn cgroup_files_hold_the_configured_values_and_vanish_after_delete() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.resources(json!({
        "memory": { "limit": 32 * MIB, "swap": 32 * MIB },
        "pids": { "limit": 20 },
        "cpu": { "quota": 20000, "period": 100000 }
    }))
    .args(&["sleep", "600"]);
    let c = Container::new(&rt, b);
    c.create(&[]).assert_ok();
    let cg = c.bundle().cgroups_path();
    assert!(cg.starts_with("/berth-test/"), "{cg}");
    assert_eq!(cgroup::memory_limit(&cg), Some(32 * MIB));
    assert_eq!(cgroup::memory_swap_limit(&cg), Some(32 * MIB));
    assert_eq!(cgroup::pids_max(&cg), Some(20));
    assert_eq!(cgroup::cpu_quota(&cg), (Some(20000), 100000));
    let pid = c.pid();
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("init's cgroup");
    for controller in ["memory", "pids", "cpu"] {
        let line = own
            .lines()
            .find(|l| {
                l.split(':')
                    .nth(1)
                    .is_some_and(|cs| cs.split(',').any(|x| x == controller))
            })
            .or_else(|| own.lines().find(|l| l.starts_with("0::")))
            .unwrap_or_else(|| panic!("no {controller} line in /proc/{pid}/cgroup:\n{own}"));
        assert!(
            line.ends_with(&cg),
            "init not in {cg} for {controller}: {line}"
        );
    }
    assert!(
        !c.leaks().is_empty(),
        "leak check should see the live container"
    );
    c.kill("KILL").assert_ok();
    c.wait_status("stopped");
    c.delete().assert_ok();
    for dir in cgroup::dirs(&cg) {
        assert!(!dir.exists(), "{} left after delete", dir.display());
    }
    c.assert_no_leaks();
}

/// runc's `update`: single flags, then a whole LinuxResources on stdin as
/// containerd sends it; a stopped container is refused.
#[test]
fn update_changes_a_running_containers_cgroup() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.resources(json!({
        "memory": { "limit": 32 * MIB },
        "pids": { "limit": 20 }
    }))
    .args(&["sleep", "600"]);
    let c = Container::new(&rt, b);
    c.create(&[]).assert_ok();
    let cg = c.bundle().cgroups_path();
    rt.cmd(&[
        "update",
        "--memory",
        "64m",
        "--pids-limit",
        "30",
        "--cpu-quota",
        "30000",
        "--cpu-period",
        "100000",
        c.id(),
    ])
    .assert_ok();
    assert_eq!(cgroup::memory_limit(&cg), Some(64 * MIB));
    assert_eq!(cgroup::pids_max(&cg), Some(30));
    assert_eq!(cgroup::cpu_quota(&cg), (Some(30000), 100000));
    let resources = json!({"memory": {"limit": 48 * MIB}, "pids": {"limit": 40}}).to_string();
    rt.cmd_stdin(
        &["update", "--resources", "-", c.id()],
        resources.as_bytes(),
    )
    .assert_ok();
    assert_eq!(cgroup::memory_limit(&cg), Some(48 * MIB));
    assert_eq!(cgroup::pids_max(&cg), Some(40));
    c.kill("KILL").assert_ok();
    c.wait_status("stopped");
    let stopped = rt.cmd(&["update", "--pids-limit", "50", c.id()]);
    stopped.assert_failed();
    assert!(stopped.stderr.contains("stopped"), "{stopped}");
    c.delete().assert_ok();
    c.assert_no_leaks();
}
