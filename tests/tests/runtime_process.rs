//! The container process's settings: user and groups, env and cwd,
//! capabilities, no_new_privs, rlimits, seccomp.

use berth_tests::{caps, Bundle, Container, Runtime};
use serde_json::json;

#[test]
fn user_uid_gid_and_additional_gids() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.user(1000, 1001, &[10, 100])
        .sh("id -u; id -g; id -G; grep -E '^(Uid|Gid|Groups):' /proc/self/status");
    let c = Container::new(&rt, b);
    let out = c.run();
    out.assert_ok();
    let lines = out.lines();
    assert_eq!(lines[..2], ["1000", "1001"], "{out}");
    let groups: Vec<&str> = lines[2].split_whitespace().collect();
    assert!(
        groups.contains(&"10") && groups.contains(&"100"),
        "additional gids missing: {out}"
    );
    let status_groups = lines
        .iter()
        .find(|l| l.starts_with("Groups:"))
        .expect("Groups line");
    assert_eq!(
        status_groups.split_whitespace().skip(1).collect::<Vec<_>>(),
        ["10", "100"],
        "{out}"
    );
    c.assert_no_leaks();
}

#[test]
fn user_nobody_is_named_from_etc_passwd() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.user(65534, 65534, &[]).sh("id -un; id -u");
    let c = Container::new(&rt, b);
    let out = c.run();
    out.assert_ok();
    assert_eq!(out.lines(), ["nobody", "65534"], "{out}");
    c.assert_no_leaks();
}

#[test]
fn env_and_cwd() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.env("GREETING", "hello world")
        .cwd("/tmp")
        .sh("echo \"$GREETING\"; pwd; echo $PATH");
    let c = Container::new(&rt, b);
    let out = c.run();
    out.assert_ok();
    let lines = out.lines();
    assert_eq!(lines[..2], ["hello world", "/tmp"], "{out}");
    assert!(lines[2].contains("/bin"), "PATH from config missing: {out}");
    c.assert_no_leaks();
}

const STATUS: &str = "grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status";

#[test]
fn default_capabilities_match_capeff() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh(&format!(
        "{STATUS}; touch /tmp/f && chown 1 /tmp/f && echo chown=ok"
    ));
    let c = Container::new(&rt, b);
    let out = c.run();
    out.assert_ok();
    let want = caps::mask(caps::DEFAULT);
    for field in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(
            caps::status_mask(&out.stdout, field),
            want,
            "{field}: {out}"
        );
    }
    assert_eq!(caps::status_mask(&out.stdout, "CapAmb"), 0, "{out}");
    assert!(out.stdout.contains("chown=ok"), "{out}");
    c.assert_no_leaks();
}

#[test]
fn dropped_cap_chown_and_cap_net_raw_are_gone() {
    let rt = Runtime::new();
    let kept: Vec<&str> = caps::DEFAULT
        .iter()
        .copied()
        .filter(|c| !matches!(*c, "CAP_CHOWN" | "CAP_NET_RAW"))
        .collect();
    let mut b = Bundle::new();
    b.capabilities(&kept).sh(&format!(
        "{STATUS}; touch /tmp/f; chown 1 /tmp/f; echo chown=$?"
    ));
    let c = Container::new(&rt, b);
    let out = c.run();
    out.assert_ok();
    for field in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(
            caps::status_mask(&out.stdout, field),
            caps::mask(&kept),
            "{field}: {out}"
        );
    }
    assert!(
        out.stdout.contains("chown=1"),
        "chown should fail without CAP_CHOWN: {out}"
    );
    assert!(out.stderr.contains("Operation not permitted"), "{out}");
    c.assert_no_leaks();
}

#[test]
fn no_new_privileges_on_and_off() {
    let rt = Runtime::new();
    for (on, want) in [(true, "1"), (false, "0")] {
        let mut b = Bundle::new();
        b.no_new_privileges(on)
            .sh("grep NoNewPrivs /proc/self/status");
        let c = Container::new(&rt, b);
        let out = c.run();
        out.assert_ok();
        assert_eq!(
            out.stdout.split_whitespace().collect::<Vec<_>>(),
            ["NoNewPrivs:", want],
            "{out}"
        );
        c.assert_no_leaks();
    }
}

#[test]
fn rlimit_nofile_soft_and_hard() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.rlimit("RLIMIT_NOFILE", 512, 2048)
        .sh("ulimit -n; ulimit -Hn");
    let c = Container::new(&rt, b);
    let out = c.run();
    out.assert_ok();
    assert_eq!(out.lines(), ["512", "2048"], "{out}");
    c.assert_no_leaks();
}

fn deny_mkdir_profile() -> serde_json::Value {
    let arches: &[&str] = if cfg!(target_arch = "x86_64") {
        &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    } else {
        &["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    };
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": arches,
        "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }]
    })
}

#[test]
fn seccomp_profile_denies_mkdir() {
    berth_tests::require_path("/proc/sys/kernel/seccomp/actions_avail", "seccomp filters");
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.seccomp(deny_mkdir_profile())
        .sh("grep '^Seccomp:' /proc/self/status; mkdir /tmp/d; echo mkdir=$?; touch /tmp/f && echo touch=ok");
    let c = Container::new(&rt, b);
    let out = c.run();
    out.assert_ok();
    let lines = out.lines();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["Seccomp:", "2"],
        "{out}"
    );
    assert_eq!(lines[1..], ["mkdir=1", "touch=ok"], "{out}");
    assert!(out.stderr.contains("Operation not permitted"), "{out}");
    assert!(!c.bundle().rootfs().join("tmp/d").exists());
    c.assert_no_leaks();
}
