//! Terminals: a foreground `run` relaying the container's pty to the
//! runtime's own terminal, and `exec -t` handing its pty over a console socket.

use berth_tests::{cmd, Bundle, ConsoleSocket, Container, Output, Runtime};
use std::process::Command;
use std::time::Duration;

/// `s` quoted for sh: in single quotes, each `'` written as `'\''`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[test]
fn foreground_run_relays_the_terminal_to_its_stdio() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.terminal(true).sh("tty; read x; echo got:$x; exit 3");
    let c = Container::new(&rt, b);
    let bundle = c.bundle().path().to_string_lossy().into_owned();
    let mut argv: Vec<String> = rt.argv().to_vec();
    argv.push("--root".into());
    argv.push(rt.root().to_string_lossy().into_owned());
    argv.extend(["run", "-b", &bundle, c.id()].map(String::from));
    let line: Vec<String> = argv.iter().map(|a| sh_quote(a)).collect();
    // script(1) gives the runtime a terminal as its stdio; -e passes on the exit status.
    let mut script = Command::new("script");
    script.args(["-qec", &line.join(" "), "/dev/null"]);
    let out = cmd::run(script, Some(b"hi\n"), rt.timeout());
    out.assert_code(3);
    let lines = out.lines();
    assert!(
        lines.contains(&"/dev/pts/0"),
        "tty is not /dev/pts/0: {out}"
    );
    assert!(
        lines.contains(&"got:hi"),
        "input did not reach the container: {out}"
    );
    c.assert_no_leaks();
}

/// `exec -t --console-socket S [flags…] ID sh`: runs `tty; exit 6` on the
/// pty received and checks it printed a /dev/pts/N; returns exec's output.
fn exec_on_console(c: &Container<'_>, flags: &[&str]) -> Output {
    let rt = c.runtime();
    let console = ConsoleSocket::new();
    let sock = console.path().to_string_lossy().into_owned();
    let mut args = vec!["exec", "-t", "--console-socket", &sock];
    args.extend_from_slice(flags);
    args.extend([c.id(), "sh"]);
    let exec = rt.spawn(&args);
    let pty = console.receive(rt.timeout());
    pty.write_all(b"tty; exit 6\n");
    let text = pty.read_to_end(Duration::from_secs(30));
    let out = exec.wait();
    assert!(
        text.lines().any(|l| l.trim().starts_with("/dev/pts/")),
        "no /dev/pts/N line on the terminal:\n{text}\n{out}"
    );
    assert_eq!(c.status(), "running", "exec disturbed the container");
    out
}

/// What containerd's shim does: `exec --detach` returns once the process runs.
#[test]
fn detached_exec_with_a_terminal_over_the_console_socket() {
    let rt = Runtime::new();
    let c = Container::started(&rt, Bundle::new());
    let out = exec_on_console(&c, &["--detach"]);
    out.assert_ok();
    c.stop_and_delete();
}

#[test]
fn foreground_exec_with_a_terminal_over_the_console_socket() {
    let rt = Runtime::new();
    if !rt.is_berth() {
        // runc 1.1.5 uses --console-socket only with --detach: in the
        // foreground it relays the pty to its own stdio and never connects.
        eprintln!(
            "runtime {:?} is not berth: foreground exec ignores --console-socket there; \
             the detached test covers it",
            rt.argv()
        );
        return;
    }
    let c = Container::started(&rt, Bundle::new());
    let out = exec_on_console(&c, &[]);
    out.assert_code(6);
    c.stop_and_delete();
}
