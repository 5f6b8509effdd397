//! `exec` into a running container, and a terminal handed over a
//! `--console-socket`.

use berth_tests::{Bundle, ConsoleSocket, Container, Runtime};
use serde_json::json;
use std::time::Duration;

/// A bundle with the hostname `exec-box` (its process is set when started).
fn exec_box() -> Bundle {
    let mut b = Bundle::new();
    b.hostname("exec-box");
    b
}

#[test]
fn exec_runs_in_the_container_namespaces() {
    let rt = Runtime::new();
    let c = Container::started(&rt, exec_box());
    let init = c.pid();
    let out = c.exec(&[], &["sh", "-c", "hostname; for n in pid mnt net; do readlink /proc/self/ns/$n; done; cat /proc/1/cmdline | tr '\\0' ' '"]);
    out.assert_ok();
    let lines = out.lines();
    assert_eq!(lines[0], "exec-box", "{out}");
    for (i, ns) in ["pid", "mnt", "net"].iter().enumerate() {
        let host_view = std::fs::read_link(format!("/proc/{init}/ns/{ns}")).unwrap();
        assert_eq!(
            lines[1 + i],
            host_view.to_string_lossy(),
            "exec is not in the {ns} namespace: {out}"
        );
    }
    assert_eq!(
        lines[4], "sleep 600",
        "PID 1 is not the container init: {out}"
    );
    c.stop_and_delete();
}

#[test]
fn exec_flags_env_cwd_user_and_exit_code() {
    let rt = Runtime::new();
    let c = Container::started(&rt, exec_box());
    let out = c.exec(
        &["-e", "FOO=bar", "--cwd", "/tmp", "-u", "65534:65534"],
        &["sh", "-c", "echo $FOO; pwd; id -u; id -g"],
    );
    out.assert_ok();
    assert_eq!(out.lines(), ["bar", "/tmp", "65534", "65534"], "{out}");
    c.exec(&[], &["sh", "-c", "exit 5"]).assert_code(5);
    let out = c.exec(&[], &["/nonexistent"]);
    out.assert_failed();
    c.runtime().expect_message(&out, &["/nonexistent"]);
    c.stop_and_delete();
}

#[test]
fn exec_process_file_and_detached() {
    let rt = Runtime::new();
    let c = Container::started(&rt, exec_box());
    let process = json!({
        "terminal": false,
        "user": { "uid": 0, "gid": 0 },
        "args": ["sh", "-c", "echo from-process-json; echo $WHO"],
        "env": ["PATH=/bin:/usr/bin", "WHO=file"],
        "cwd": "/"
    });
    let file = c.bundle().path().join("process.json");
    std::fs::write(&file, process.to_string()).unwrap();
    let out = c.exec(&["--process", &file.to_string_lossy()], &[]);
    out.assert_ok();
    assert_eq!(out.lines(), ["from-process-json", "file"], "{out}");
    c.exec(&["-d"], &["sh", "-c", "echo detached > /tmp/exec-d.out"])
        .assert_ok();
    c.wait_file("/tmp/exec-d.out");
    c.stop_and_delete();
}

#[test]
fn terminal_is_passed_over_the_console_socket() {
    let rt = Runtime::new();
    let console = ConsoleSocket::new();
    let mut b = Bundle::new();
    b.terminal(true).args(&["sh"]);
    let c = Container::new(&rt, b);
    let bundle = c.bundle().path().to_string_lossy().into_owned();
    let sock = console.path().to_string_lossy().into_owned();
    let run = rt.spawn(&[
        "run",
        "--detach",
        "--console-socket",
        &sock,
        "--bundle",
        &bundle,
        c.id(),
    ]);
    let pty = console.receive(rt.timeout());
    run.wait().assert_ok();
    pty.write_all(b"echo hi; tty; exit\n");
    let text = pty.read_to_end(Duration::from_secs(30));
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    assert!(
        lines.contains(&"hi"),
        "no `hi` line on the terminal:\n{text}"
    );
    assert!(
        lines.contains(&"/dev/pts/0"),
        "tty is not /dev/pts/0:\n{text}"
    );
    c.wait_status("stopped");
    c.delete().assert_ok();
    c.assert_no_leaks();
}
