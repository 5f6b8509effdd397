//! The container lifecycle: create/start/state/kill/delete, signals, exit
//! codes, stdio, ps, pause/resume, list, and the leak check itself.

use berth_tests::{cgroup, Bundle, Container, Runtime};
use serde_json::Value;
use std::path::Path;

#[test]
fn create_start_kill_delete_and_state_in_between() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["sleep", "600"]);
    let c = Container::new(&rt, b);
    c.create(&[]).assert_ok();
    // `create` has exited: the state lives on disk and the init process waits.
    let st = c.state().expect("state after create");
    assert_eq!(st["status"], "created", "{st}");
    assert_eq!(st["id"], c.id(), "{st}");
    assert!(st["ociVersion"].is_string(), "{st}");
    let bundle = st["bundle"].as_str().expect("bundle in state");
    assert_eq!(
        Path::new(bundle).canonicalize().unwrap(),
        c.bundle().path().canonicalize().unwrap()
    );
    let pid = st["pid"].as_u64().expect("pid in state");
    assert!(
        pid > 0 && Path::new(&format!("/proc/{pid}")).exists(),
        "init {pid} not alive: {st}"
    );

    c.start().assert_ok();
    c.wait_status("running");
    assert_eq!(c.pid() as u64, pid, "pid changed on start");

    // The leak check must see a live container, or it proves nothing later.
    let live = c.leaks();
    for what in [
        "cgroup directory",
        "whose root is the rootfs",
        "state entry",
        "`state",
        "`list`",
    ] {
        assert!(
            live.iter().any(|l| l.contains(what)),
            "leak check misses {what:?}: {live:?}"
        );
    }

    c.kill("KILL").assert_ok();
    c.wait_status("stopped");
    c.delete().assert_ok();
    assert!(c.state().is_none(), "state still known after delete");
    c.assert_no_leaks();
}

#[test]
fn kill_delivers_a_signal_to_a_trap_handler() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("trap 'echo got-term; exit 3' TERM; : > /ready; while :; do sleep 1; done");
    let c = Container::new(&rt, b);
    let running = c.spawn_run();
    c.wait_file("/ready");
    c.kill("TERM").assert_ok();
    let out = running.wait();
    out.assert_code(3);
    assert_eq!(out.lines(), ["got-term"], "{out}");
    c.assert_no_leaks();
}

#[test]
fn exit_code_propagates_from_run() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("exit 7");
    let c = Container::new(&rt, b);
    c.run().assert_code(7);
    c.assert_no_leaks();
}

#[test]
fn killed_by_signal_exits_128_plus_n() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["sleep", "600"]);
    let c = Container::new(&rt, b);
    let running = c.spawn_run();
    c.wait_status("running");
    c.kill("KILL").assert_ok();
    running.wait().assert_code(128 + 9);
    c.assert_no_leaks();
}

#[test]
fn stdin_stdout_stderr_pass_through() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("cat; echo to-stderr >&2");
    let c = Container::new(&rt, b);
    let out = c.run_stdin(b"hello\nworld\n");
    out.assert_ok();
    assert_eq!(out.stdout, "hello\nworld\n", "{out}");
    assert!(out.stderr.contains("to-stderr"), "{out}");
    c.assert_no_leaks();
}

#[test]
fn ps_lists_the_container_pids() {
    let rt = Runtime::new();
    let c = Container::started_sh(&rt, Bundle::new(), 1);
    let pid = c.pid();
    let pids: Vec<u64> = berth_tests::until("two processes in ps", rt.timeout(), || {
        let out = rt.cmd(&["ps", "--format", "json", c.id()]);
        out.assert_ok();
        let v: Vec<u64> =
            serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("ps json ({e}): {out}"));
        (v.len() == 2).then_some(v)
    });
    assert!(pids.contains(&(pid as u64)), "init {pid} not in {pids:?}");
    let table = rt.cmd(&["ps", c.id()]);
    table.assert_ok();
    for p in &pids {
        assert!(
            table.stdout.split_whitespace().any(|w| w == p.to_string()),
            "{p} not in table: {table}"
        );
    }
    c.stop_and_delete();
}

#[test]
fn pause_freezes_and_resume_thaws() {
    let rt = Runtime::new();
    let c = Container::started_sh(&rt, Bundle::new(), 1);
    let cg = c.bundle().cgroups_path();
    rt.cmd(&["pause", c.id()]).assert_ok();
    assert_eq!(c.status(), "paused");
    assert_eq!(cgroup::freezer_state(&cg), "FROZEN");
    rt.cmd(&["resume", c.id()]).assert_ok();
    assert_eq!(c.status(), "running");
    assert_eq!(cgroup::freezer_state(&cg), "THAWED");
    c.stop_and_delete();
}

#[test]
fn list_shows_the_container() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["sleep", "600"]);
    let c = Container::new(&rt, b);
    c.create(&[]).assert_ok();
    assert_eq!(rt.list_ids(), [c.id()]);
    let out = rt.cmd(&["list", "--format", "json"]);
    out.assert_ok();
    let list: Vec<Value> =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("list json ({e}): {out}"));
    assert_eq!(list.len(), 1, "{out}");
    assert_eq!(list[0]["id"], c.id(), "{out}");
    assert_eq!(list[0]["status"], "created", "{out}");
    assert_eq!(list[0]["pid"].as_u64(), Some(c.pid() as u64), "{out}");
    let table = rt.cmd(&["list"]);
    table.assert_ok();
    let row = table
        .lines()
        .into_iter()
        .find(|l| l.starts_with(c.id()))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains("created"), "{table}");
    c.stop_and_delete();
    assert!(rt.list_ids().is_empty());
}
