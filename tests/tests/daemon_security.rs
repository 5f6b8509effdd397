//! The security defaults docker users take for granted, through the daemon
//! with both docker clients: every container gets a seccomp filter with the
//! effect of docker's default profile (namespaces, keyrings, kernel modules
//! and the like refused with EPERM, ordinary work unaffected);
//! `seccomp=unconfined` and `--privileged` have none; a profile in docker's
//! format replaces it; a bad profile is refused at create, by name.

use berth_tests::daemon::{clients, Daemon, IMAGE};
use berth_tests::ok;

#[test]
fn containers_run_under_docker_s_default_seccomp_profile() {
    let d = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
    )
    .unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"defaultAction": "SCMP_ACT_NOPE"}"#).unwrap();
    for (name, c) in clients() {
        let run = |extra: &[&str], script: &str| {
            let mut args = vec!["run", "--rm", "--network", "none"];
            args.extend_from_slice(extra);
            args.extend_from_slice(&[IMAGE, "sh", "-c", script]);
            d.docker(c, &args)
        };
        let mode = "grep '^Seccomp:' /proc/self/status | tr -d ' \\t'";
        assert_eq!(ok(run(&[], mode)), "Seccomp:2", "{name}");
        // Ordinary work is unaffected.
        ok(run(&[], "ls / >/dev/null && date >/dev/null && ps >/dev/null && mkdir /x && ln -s /x /y && sync"));
        // New namespaces are refused without CAP_SYS_ADMIN, by the filter.
        for ns in ["-U", "-n", "-m", "-p -f"] {
            let out = run(&[], &format!("unshare {ns} true"));
            assert!(
                out.code != 0 && out.stderr.contains("Operation not permitted"),
                "{name}: unshare {ns}: {out}"
            );
        }
        // --cap-add SYS_ADMIN opens them (the filter follows capabilities).
        ok(run(&["--cap-add", "SYS_ADMIN"], "unshare -n true"));
        assert_eq!(
            ok(run(&["--security-opt", "seccomp=unconfined"], mode)),
            "Seccomp:0",
            "{name}"
        );
        assert_eq!(ok(run(&["--privileged"], mode)), "Seccomp:0", "{name}");
        // A profile of docker's format, read by the client from its file.
        let opt = format!("seccomp={}", profile.display());
        let out = run(&["--security-opt", &opt], "mkdir /x");
        assert!(
            out.code != 0 && out.stderr.contains("Permission denied"),
            "{name}: {out}"
        );
        let opt = format!("seccomp={}", bad.display());
        let out = d.docker(c, &["create", "--security-opt", &opt, IMAGE, "true"]);
        assert!(
            out.code != 0 && out.stderr.contains("seccomp profile"),
            "{name}: {out}"
        );
    }
    assert!(d.leaks().is_empty(), "{:?}", d.leaks());
}
