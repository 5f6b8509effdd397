//! Failures: each exits 1 as runc does, names the problem and the object on
//! stderr (asserted for berth only), and leaves nothing behind.

use berth_tests::{Bundle, Container, Output, Runtime};
use std::fs;

/// Exit code runc uses for every runtime error.
const RUNC_ERROR: i32 = 1;

fn assert_clean_failure(c: &Container<'_>, out: &Output, needles: &[&str]) {
    out.assert_code(RUNC_ERROR);
    c.runtime().expect_message(out, needles);
    c.assert_no_leaks();
    assert!(
        c.runtime().list_ids().is_empty(),
        "list is not empty after a failed run"
    );
}

#[test]
fn missing_config_json() {
    let rt = Runtime::new();
    let c = Container::new(&rt, Bundle::new());
    fs::remove_file(c.bundle().config_path()).unwrap();
    let out = c.run();
    assert_clean_failure(&c, &out, &["config.json"]);
}

#[test]
fn config_json_that_is_not_json() {
    let rt = Runtime::new();
    let c = Container::new(&rt, Bundle::new());
    fs::write(c.bundle().config_path(), "{ this is not json").unwrap();
    let out = c.run();
    assert_clean_failure(&c, &out, &["config.json"]);
}

#[test]
fn config_json_with_a_wrong_type() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set("/process/args", "sh".into());
    let c = Container::new(&rt, b);
    let out = c.run();
    assert_clean_failure(&c, &out, &["config.json", "args"]);
}

#[test]
fn rootfs_directory_missing() {
    let rt = Runtime::new();
    let c = Container::new(&rt, Bundle::new());
    let rootfs = c.bundle().rootfs();
    fs::remove_dir_all(&rootfs).unwrap();
    let out = c.run();
    assert_clean_failure(&c, &out, &[&rootfs.to_string_lossy()]);
}

#[test]
fn duplicate_container_id() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["sleep", "600"]);
    let c = Container::new(&rt, b);
    c.create(&[]).assert_ok();
    let other = Bundle::new();
    other.write();
    let out = rt.cmd(&[
        "create",
        "--bundle",
        &other.path().to_string_lossy(),
        c.id(),
    ]);
    out.assert_code(RUNC_ERROR);
    rt.expect_message(&out, &[c.id()]);
    assert_eq!(c.status(), "created", "the first container was disturbed");
    assert!(berth_tests::leak::mounts_under(other.path()).is_empty());
    c.kill("KILL").assert_ok();
    c.wait_status("stopped");
    c.delete().assert_ok();
    c.assert_no_leaks();
    assert!(rt.list_ids().is_empty());
}

#[test]
fn rlimit_nofile_above_the_hard_limit() {
    let rt = Runtime::new();
    // Above fs.nr_open, setrlimit fails with EPERM even with CAP_SYS_RESOURCE.
    let nr_open: u64 = fs::read_to_string("/proc/sys/fs/nr_open")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut b = Bundle::new();
    b.rlimit("RLIMIT_NOFILE", 1024, nr_open + 1)
        .sh("echo started");
    let c = Container::new(&rt, b);
    let out = c.run();
    assert!(!out.stdout.contains("started"), "the process ran: {out}");
    assert_clean_failure(&c, &out, &["rlimit"]);
}

#[test]
fn binary_not_in_the_rootfs() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["/nonexistent"]);
    let c = Container::new(&rt, b);
    let out = c.run();
    assert_clean_failure(&c, &out, &["/nonexistent"]);
}
