//! Verbs in the wrong state or on the wrong id: start twice, delete while
//! running, delete before start, kill --all, state of an unknown id, and
//! `events --stats`.

use berth_tests::{until, Bundle, Container, Runtime};
use serde_json::Value;
use std::fs;

/// Exit code runc uses for every runtime error.
const RUNC_ERROR: i32 = 1;

/// The container's host pids from `ps --format json`, once there are `n`.
fn pids(c: &Container<'_>, n: usize) -> Vec<u64> {
    let rt = c.runtime();
    until(&format!("{n} processes in ps"), rt.timeout(), || {
        let out = rt.cmd(&["ps", "--format", "json", c.id()]);
        out.assert_ok();
        let v: Vec<u64> =
            serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("ps json ({e}): {out}"));
        (v.len() == n).then_some(v)
    })
}

/// Gone or a zombie: a reparented child may wait for a reaper that is slow.
fn dead(pid: u64) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

#[test]
fn start_twice_fails_and_the_container_keeps_running() {
    let rt = Runtime::new();
    let c = Container::started_sh(&rt, Bundle::new(), 1);
    let pid = c.pid();
    let out = c.start();
    out.assert_code(RUNC_ERROR);
    rt.expect_message(&out, &[c.id(), "running"]);
    assert_eq!(c.status(), "running", "{out}");
    assert_eq!(c.pid(), pid, "init changed");
    c.stop_and_delete();
}

#[test]
fn delete_of_a_running_container_needs_force() {
    let rt = Runtime::new();
    let c = Container::started_sh(&rt, Bundle::new(), 1);
    let pid = c.pid();
    let out = c.delete();
    out.assert_code(RUNC_ERROR);
    rt.expect_message(&out, &[c.id(), "running"]);
    assert_eq!(c.status(), "running", "delete without --force stopped it");
    assert!(!dead(pid as u64), "init {pid} died: {out}");
    rt.cmd(&["delete", "--force", c.id()]).assert_ok();
    assert!(
        c.state().is_none(),
        "state still known after delete --force"
    );
    assert!(dead(pid as u64), "init {pid} survived delete --force");
    c.assert_no_leaks();
}

#[test]
fn delete_of_a_created_container() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh(": > /started");
    let c = Container::new(&rt, b);
    c.create(&[]).assert_ok();
    let pid = c.pid();
    assert_eq!(c.status(), "created");
    c.delete().assert_ok();
    assert!(c.state().is_none(), "state still known after delete");
    assert!(dead(pid as u64), "init {pid} survived delete");
    assert!(
        !c.bundle().rootfs().join("started").exists(),
        "the process ran although never started"
    );
    c.assert_no_leaks();
    assert!(rt.list_ids().is_empty());
}

/// In the host PID namespace, killing init leaves its children alive, so
/// only a signal to every process of the cgroup stops them all.
#[test]
fn kill_all_signals_every_process() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.remove_namespace("pid");
    let c = Container::started_sh(&rt, b, 2);
    let all = pids(&c, 3);
    rt.cmd(&["kill", "--all", c.id(), "KILL"]).assert_ok();
    for pid in &all {
        until(&format!("process {pid} to die"), rt.timeout(), || {
            dead(*pid)
        });
    }
    c.wait_status("stopped");
    c.delete().assert_ok();
    c.assert_no_leaks();
}

#[test]
fn state_of_an_unknown_id_fails() {
    let rt = Runtime::new();
    let id = berth_tests::unique_name("bt-unknown");
    let out = rt.cmd(&["state", &id]);
    out.assert_code(RUNC_ERROR);
    assert!(
        out.stdout.trim().is_empty(),
        "state printed something: {out}"
    );
    rt.expect_message(&out, &[&id]);
}

#[test]
fn events_stats_reports_memory_and_pids() {
    let rt = Runtime::new();
    let c = Container::started_sh(&rt, Bundle::new(), 1);
    let out = rt.cmd(&["events", "--stats", c.id()]);
    out.assert_ok();
    let ev: Value = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("events --stats printed invalid JSON ({e}): {out}"));
    assert_eq!(ev["type"], "stats", "{out}");
    assert_eq!(ev["id"], c.id(), "{out}");
    assert_eq!(ev["data"]["pids"]["current"].as_u64(), Some(2), "{out}");
    assert!(ev["data"]["memory"].is_object(), "no memory section: {out}");
    if rt.is_berth() {
        // runc nests it as memory.usage.usage; berth's is a number.
        let usage = ev["data"]["memory"]["usage"].as_u64().unwrap_or(0);
        assert!(usage > 0, "memory usage missing or zero: {out}");
    } else {
        eprintln!("runtime is not berth: berth's memory.usage layout not checked");
    }
    c.stop_and_delete();
}
