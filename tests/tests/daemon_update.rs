//! `update` through the daemon with both docker clients and berth's own:
//! a running container's memory, CPU and pids limits change at once (its
//! own cgroup files say so), are kept for its next start, and a limit the
//! kernel cannot take is refused naming it, leaving the old one.

use berth_tests::daemon::{clients, Daemon, IMAGE};
use berth_tests::ok;

const LIMITS: &str =
    "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max \
                      /sys/fs/cgroup/cpu/cpu.cfs_quota_us";

#[test]
fn a_running_containers_limits_change_and_stay() {
    let d = Daemon::start();
    for (name, c) in clients() {
        let id = ok(d.docker(
            c,
            &[
                "run",
                "-d",
                "-m",
                "64m",
                "--pids-limit",
                "20",
                IMAGE,
                "sleep",
                "1000",
            ],
        ));
        let id = id.trim();
        let limits = |d: &Daemon| ok(d.docker(c, &["exec", id, "sh", "-c", LIMITS]));
        assert_eq!(
            limits(&d).lines().collect::<Vec<_>>(),
            ["67108864", "20", "-1"],
            "{name}"
        );
        let out = d.docker(
            c,
            &[
                "update",
                "-m",
                "128m",
                "--memory-swap",
                "256m",
                "--pids-limit",
                "50",
                "--cpus",
                "0.5",
                id,
            ],
        );
        out.assert_ok();
        assert_eq!(out.stdout.trim(), id, "{name}: {out}");
        assert_eq!(
            limits(&d).lines().collect::<Vec<_>>(),
            ["134217728", "50", "50000"],
            "{name}"
        );
        let kept = ok(d.docker(
            c,
            &[
                "inspect",
                "--format",
                "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.NanoCpus}}",
                id,
            ],
        ));
        assert_eq!(kept.trim(), "134217728 50 500000000", "{name}");
        // Kept for the next start.
        ok(d.docker(c, &["restart", "-t", "0", id]));
        assert_eq!(
            limits(&d).lines().collect::<Vec<_>>(),
            ["134217728", "50", "50000"],
            "{name}"
        );
        // Unlimited pids; and a restart policy.
        ok(d.docker(
            c,
            &[
                "update",
                "--pids-limit",
                "-1",
                "--restart",
                "on-failure:3",
                id,
            ],
        ));
        assert_eq!(limits(&d).lines().nth(1), Some("max"), "{name}");
        let policy = ok(d.docker(
            c,
            &[
                "inspect",
                "--format",
                "{{.HostConfig.RestartPolicy.Name}}",
                id,
            ],
        ));
        assert_eq!(policy.trim(), "on-failure", "{name}");
        // Below what the container uses: refused, the old limit stays.
        ok(d.docker(
            c,
            &[
                "exec",
                id,
                "sh",
                "-c",
                "dd if=/dev/zero of=/dev/shm/fill bs=1M count=20 2>/dev/null",
            ],
        ));
        let low = d.docker(c, &["update", "-m", "8m", "--memory-swap", "256m", id]);
        low.assert_failed();
        assert!(low.stderr.contains("memory"), "{name}: {low}");
        assert_eq!(limits(&d).lines().next(), Some("134217728"), "{name}");
        ok(d.docker(c, &["rm", "-f", id]));
    }
    let missing = d.berth(&["update", "-m", "64m", "no-such-container"]);
    missing.assert_failed();
    assert!(
        missing
            .stderr
            .contains("No such container: no-such-container"),
        "{missing}"
    );
}

#[test]
fn berths_run_and_update_share_their_resource_flags() {
    let d = Daemon::start();
    let id = ok(d.berth(&[
        "run",
        "-d",
        "--cpu-period",
        "100000",
        "--cpu-quota",
        "25000",
        "--pids-limit",
        "-1",
        "--memory-swap",
        "-1",
        "-m",
        "32m",
        IMAGE,
        "sleep",
        "1000",
    ]));
    let id = id.trim();
    let limits = || ok(d.berth(&["exec", id, "sh", "-c", LIMITS]));
    let l = limits();
    let lines: Vec<&str> = l.lines().collect();
    assert_eq!(lines[0], "33554432", "{l}");
    assert_eq!(lines[2], "25000", "{l}");
    ok(d.berth(&["update", "--cpu-quota", "40000", "--pids-limit", "30", id]));
    let l = limits();
    assert_eq!(
        l.lines().collect::<Vec<_>>(),
        ["33554432", "30", "40000"],
        "{l}"
    );
    let bad = d.berth(&["update", "--memory", "lots", id]);
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("--memory"), "the flag is named: {bad}");
    ok(d.berth(&["rm", "-f", id]));
}
