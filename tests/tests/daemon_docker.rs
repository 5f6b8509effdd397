//! `berth daemon` driven by real docker clients — docker 28 (API 1.50) and
//! Debian's docker 20.10 (API 1.41) — over its unix socket: run, logs,
//! exec (with and without a terminal), interactive runs, restart policies,
//! containers outliving the daemon, many containers at once, bad input, and
//! the everyday commands. Each test has its own daemon and root; dropping it
//! fails the test if anything was left behind.

use berth_tests::daemon::{clients, Daemon, DOCKER_20_10, IMAGE, WAIT};
use berth_tests::{ok, until, Output};

/// `docker inspect -f FORMAT ID`, trimmed; panics if it fails.
#[track_caller]
fn inspect(d: &Daemon, client: &str, id: &str, format: &str) -> String {
    let out = d.docker(client, &["inspect", "-f", format, id]);
    out.assert_ok();
    out.stdout.trim().to_string()
}

/// A suffix that keeps each client's names apart: both share one daemon.
fn tag(client_name: &str) -> String {
    client_name.replace(['.', '-'], "")
}

#[test]
fn run_rm_prints_output_and_passes_the_exit_code() {
    let d = Daemon::start();
    for (name, c) in clients() {
        for code in [0, 3] {
            let script = format!("echo to-stdout; echo to-stderr >&2; exit {code}");
            let out = d.docker(c, &["run", "--rm", IMAGE, "sh", "-c", &script]);
            out.assert_code(code);
            assert_eq!(out.stdout.trim(), "to-stdout", "{name}: {out}");
            assert!(out.stderr.contains("to-stderr"), "{name}: {out}");
        }
        let ps = d.docker(c, &["ps", "-aq"]);
        ps.assert_ok();
        assert_eq!(
            ps.stdout.trim(),
            "",
            "{name}: --rm containers were not removed"
        );
    }
}

/// A container that ends while its client still sends input: the client's
/// last bytes are drained, so its stream ends cleanly rather than with
/// "connection reset by peer", and the exit code comes through.
#[test]
fn a_container_that_ends_before_its_input_does_ends_cleanly() {
    let d = Daemon::start();
    let input = vec![b'x'; 4 << 20];
    for (name, c) in clients() {
        for _ in 0..3 {
            let out = d.docker_in(
                c,
                &["run", "--rm", "-i", IMAGE, "sh", "-c", "head -c 5; exit 7"],
                Some(&input),
            );
            out.assert_code(7);
            assert_eq!(out.stdout, "xxxxx", "{name}: {out}");
            assert!(!out.stderr.contains("reset"), "{name}: {out}");
        }
    }
}

#[test]
fn detached_containers_have_logs_that_follow_until_stopped() {
    let d = Daemon::start();
    for (name, c) in clients() {
        // Prints three lines, then one more once /tmp/go exists; SIGTERM ends it.
        let script = "trap 'echo bye; exit 0' TERM; echo line1; echo line2; echo line3; \
                      while [ ! -f /tmp/go ]; do sleep 0.1; done; echo late; \
                      while :; do sleep 0.1; done";
        let id = ok(d.docker(c, &["run", "-d", IMAGE, "sh", "-c", script]));
        until("the first lines in the log", WAIT, || {
            let out = d.docker(c, &["logs", &id]);
            (out.stdout.contains("line3"), out.to_string())
        });
        let tail = d.docker(c, &["logs", "--tail", "2", &id]);
        tail.assert_ok();
        assert_eq!(tail.lines(), ["line2", "line3"], "{name}: {tail}");
        let ts = d.docker(c, &["logs", "-t", &id]);
        ts.assert_ok();
        assert_eq!(ts.lines().len(), 3, "{name}: {ts}");
        for (l, want) in ts.lines().iter().zip(["line1", "line2", "line3"]) {
            let (time, text) = l
                .split_once(' ')
                .unwrap_or_else(|| panic!("{name}: no timestamp: {ts}"));
            assert_eq!(text, want, "{name}: {ts}");
            assert!(
                time.len() >= 20
                    && time.as_bytes()[4] == b'-'
                    && time.as_bytes()[10] == b'T'
                    && time.ends_with('Z'),
                "{name}: not an RFC 3339 time: {time:?} in {ts}"
            );
        }
        let follow = d.spawn_docker(c, &["logs", "-f", &id]);
        until("logs -f to print what is there", WAIT, || {
            let s = follow.stdout_so_far();
            (s.contains("line3"), s)
        });
        d.docker(c, &["exec", &id, "touch", "/tmp/go"]).assert_ok();
        until(
            "logs -f to print a line written after it started",
            WAIT,
            || {
                let s = follow.stdout_so_far();
                (s.contains("late"), s)
            },
        );
        let stop = d.docker(c, &["stop", "-t", "30", &id]);
        stop.assert_ok();
        assert_eq!(stop.stdout.trim(), id, "{name}: {stop}");
        let out = follow.wait();
        out.assert_ok();
        assert_eq!(
            out.lines(),
            ["line1", "line2", "line3", "late", "bye"],
            "{name}: {out}"
        );
        assert_eq!(
            inspect(&d, c, &id, "{{.State.Status}} {{.State.ExitCode}}"),
            "exited 0",
            "{name}"
        );
    }
}

#[test]
fn exec_without_a_terminal() {
    let d = Daemon::start();
    for (name, c) in clients() {
        let id = ok(d.docker(c, &["run", "-d", IMAGE, "sleep", "1000"]));
        let out = d.docker(c, &["exec", &id, "echo", "hello", "exec"]);
        out.assert_ok();
        assert_eq!(out.stdout.trim(), "hello exec", "{name}: {out}");
        let out = d.docker(c, &["exec", &id, "sh", "-c", "echo oops >&2; exit 4"]);
        out.assert_code(4);
        assert!(out.stderr.contains("oops"), "{name}: {out}");
        assert!(!out.stdout.contains("oops"), "{name}: {out}");
        let out = d.docker(
            c,
            &[
                "exec",
                "-e",
                "GREETING=ahoy",
                &id,
                "sh",
                "-c",
                "echo $GREETING",
            ],
        );
        out.assert_ok();
        assert_eq!(out.stdout.trim(), "ahoy", "{name}: {out}");
        let out = d.docker(c, &["exec", "-w", "/etc", &id, "pwd"]);
        out.assert_ok();
        assert_eq!(out.stdout.trim(), "/etc", "{name}: {out}");
        let out = d.docker(c, &["exec", "-u", "nobody", &id, "id", "-u"]);
        out.assert_ok();
        assert_eq!(out.stdout.trim(), "65534", "{name}: {out}");
        let out = d.docker(
            c,
            &["exec", "-u", "1234:5678", &id, "sh", "-c", "id -u; id -g"],
        );
        out.assert_ok();
        assert_eq!(out.lines(), ["1234", "5678"], "{name}: {out}");
        let out = d.docker_in(c, &["exec", "-i", &id, "cat"], Some(b"through stdin\n"));
        out.assert_ok();
        assert_eq!(out.stdout.trim(), "through stdin", "{name}: {out}");
        d.docker(c, &["rm", "-f", &id]).assert_ok();
    }
}

/// What a command run under `script` printed: lines without `\r` and
/// without the `^@` that `script` echoes when its input ends.
fn screen(out: &Output) -> Vec<String> {
    out.stdout
        .replace("^@", "")
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn exec_with_a_terminal() {
    let d = Daemon::start();
    for (name, c) in clients() {
        let id = ok(d.docker(c, &["run", "-d", IMAGE, "sleep", "1000"]));
        // docker 28 sends the size with the start: the first instruction
        // sees it. API 1.41 has no size there; the client resizes after the
        // start (so with docker's own daemon too), so wait for it to land.
        let size = if c == DOCKER_20_10 {
            "sh -c 'while [ -z \"$(stty size 2>/dev/null)\" ]; do sleep 0.05; done; stty size'"
        } else {
            "stty size"
        };
        let out = d.script(
            &format!("stty rows 33 cols 111; {c} exec -it {id} {size}"),
            b"",
        );
        out.assert_ok();
        assert_eq!(screen(&out), ["33 111"], "{name}: {out}");
        let out = d.script(&format!("{c} exec -t {id} tty"), b"");
        out.assert_ok();
        let lines = screen(&out);
        assert!(
            lines.len() == 1
                && lines[0]
                    .strip_prefix("/dev/pts/")
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
            "{name}: not a pty: {out}"
        );
        let out = d.script(&format!("{c} exec -t {id} sh -c 'exit 6'"), b"");
        out.assert_code(6);
        d.docker(c, &["rm", "-f", &id]).assert_ok();
    }
}

#[test]
fn run_interactive_with_a_terminal() {
    let d = Daemon::start();
    for (name, c) in clients() {
        let out = d.script(
            &format!("{c} run -it --rm {IMAGE} sh"),
            b"echo $((6 * 7)); exit 7\n",
        );
        out.assert_code(7);
        assert!(
            screen(&out).contains(&"42".to_string()),
            "{name}: the shell did not run the command: {out}"
        );
        let ps = d.docker(c, &["ps", "-aq"]);
        assert_eq!(ps.stdout.trim(), "", "{name}: {ps}");
    }
}

#[test]
fn restart_policies() {
    let d = Daemon::start();
    for (name, c) in clients() {
        let id = ok(d.docker(
            c,
            &[
                "run",
                "-d",
                "--restart",
                "on-failure:3",
                IMAGE,
                "sh",
                "-c",
                "exit 1",
            ],
        ));
        until("on-failure:3 to give up after 3 restarts", WAIT, || {
            let s = inspect(&d, c, &id, "{{.State.Status}} {{.RestartCount}}");
            (s == "exited 3", s)
        });
        assert_eq!(inspect(&d, c, &id, "{{.State.ExitCode}}"), "1", "{name}");

        let id = ok(d.docker(
            c,
            &[
                "run",
                "-d",
                "--restart",
                "always",
                IMAGE,
                "sh",
                "-c",
                "sleep 0.5; exit 2",
            ],
        ));
        until("--restart always to bring the container back", WAIT, || {
            let s = inspect(&d, c, &id, "{{.State.Status}} {{.RestartCount}}");
            let n: u32 = s.split(' ').nth(1).unwrap_or("0").parse().unwrap_or(0);
            (s.starts_with("running ") && n >= 1, s)
        });
        d.docker(c, &["rm", "-f", &id]).assert_ok();
    }
}

#[test]
fn restart_always_comes_back_after_the_daemon_is_killed() {
    let mut d = Daemon::start();
    for (name, c) in clients() {
        let id = ok(d.docker(
            c,
            &[
                "run",
                "-d",
                "--restart",
                "always",
                IMAGE,
                "sh",
                "-c",
                "sleep 3; exit 1",
            ],
        ));
        let started = inspect(&d, c, &id, "{{.State.StartedAt}}");
        d.kill9();
        // It ends while no daemon runs: its monitor records the exit and goes.
        until(
            "the container to exit while the daemon is down",
            WAIT,
            || {
                let shims = d.shim_pids();
                (shims.is_empty(), format!("monitors {shims:?}"))
            },
        );
        d.restart();
        until("the container to run again", WAIT, || {
            let s = inspect(&d, c, &id, "{{.State.Status}} {{.State.StartedAt}}");
            (s.starts_with("running ") && !s.ends_with(&started), s)
        });
        d.docker(c, &["rm", "-f", &id]).assert_ok();
        assert!(d.shim_pids().is_empty(), "{name}: a monitor is left");
    }
}

#[test]
fn containers_outlive_a_daemon_restart() {
    let mut d = Daemon::start();
    for (name, c) in clients() {
        for kill9 in [false, true] {
            let how = if kill9 { "SIGKILL" } else { "SIGTERM" };
            let keeps = ok(d.docker(c, &["run", "-d", IMAGE, "sleep", "1000"]));
            let ends = ok(d.docker(
                c,
                &[
                    "run",
                    "-d",
                    IMAGE,
                    "sh",
                    "-c",
                    "trap 'exit 7' USR1; while :; do sleep 0.1; done",
                ],
            ));
            let pid: i32 = inspect(&d, c, &ends, "{{.State.Pid}}")
                .parse()
                .expect("a pid");
            // The leak check sees running containers (so it can fail).
            let seen = d.leaks();
            assert!(
                seen.iter().filter(|l| l.contains("berth shim")).count() >= 2
                    && seen.iter().any(|l| l.starts_with("mount "))
                    && seen.iter().any(|l| l.starts_with("cgroup directory")),
                "{name}: the leak check does not see running containers: {seen:#?}"
            );
            if kill9 {
                d.kill9();
            } else {
                d.terminate();
            }
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGUSR1,
            )
            .expect("signal the container");
            until("the signalled container to end", WAIT, || {
                let n = d.shim_pids().len();
                (n == 1, format!("{n} monitors"))
            });
            d.restart();
            assert_eq!(
                inspect(&d, c, &keeps, "{{.State.Status}}"),
                "running",
                "{name}, {how}"
            );
            let out = d.docker(c, &["exec", &keeps, "echo", "still", "here"]);
            out.assert_ok();
            assert_eq!(out.stdout.trim(), "still here", "{name}, {how}: {out}");
            assert_eq!(
                inspect(&d, c, &ends, "{{.State.Status}} {{.State.ExitCode}}"),
                "exited 7",
                "{name}, {how}: the exit while the daemon was down"
            );
            let out = d.docker(c, &["wait", &ends]);
            out.assert_ok();
            assert_eq!(out.stdout.trim(), "7", "{name}, {how}: {out}");
            d.docker(c, &["stop", "-t", "1", &keeps]).assert_ok();
            assert_eq!(
                inspect(&d, c, &keeps, "{{.State.Status}}"),
                "exited",
                "{name}, {how}"
            );
            d.docker(c, &["rm", &keeps, &ends]).assert_ok();
        }
    }
}

#[test]
fn a_hundred_containers_at_once() {
    let d = Daemon::start();
    let all = clients();
    let ids: Vec<String> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..10)
            .map(|t| {
                let d = &d;
                let (_, c) = all[t % 2];
                s.spawn(move || {
                    let mut ids = Vec::new();
                    for _ in 0..10 {
                        ids.push(ok(d.docker(c, &["run", "-d", IMAGE, "sleep", "1000"])));
                    }
                    for id in &ids {
                        let out = d.docker(c, &["rm", "-f", id]);
                        out.assert_ok();
                        assert_eq!(out.stdout.trim(), id, "{out}");
                    }
                    ids
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a worker failed"))
            .collect()
    });
    let unique: std::collections::BTreeSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), 100, "ids: {ids:?}");
    let ps = d.docker(all[0].1, &["ps", "-aq"]);
    ps.assert_ok();
    assert_eq!(ps.stdout.trim(), "", "{ps}");
    let leaks = d.leaks();
    assert!(leaks.is_empty(), "left behind: {leaks:#?}");
    assert!(
        d.shim_pids().is_empty(),
        "monitors left: {:?}",
        d.shim_pids()
    );
}

#[test]
fn bad_input_is_refused_with_docker_messages() {
    let d = Daemon::start();
    for (name, c) in clients() {
        let t = tag(name);
        for args in [
            vec!["stop", "nosuch"],
            vec!["rm", "nosuch"],
            vec!["container", "inspect", "nosuch"],
            vec!["logs", "nosuch"],
        ] {
            let out = d.docker(c, &args);
            out.assert_code(1);
            assert!(out.stderr.contains("No such container"), "{name}: {out}");
        }
        let dup = format!("dup{t}");
        d.docker(c, &["create", "--name", &dup, IMAGE, "true"])
            .assert_ok();
        let out = d.docker(c, &["create", "--name", &dup, IMAGE, "true"]);
        out.assert_failed();
        assert!(out.stderr.contains("is already in use"), "{name}: {out}");

        let running = ok(d.docker(c, &["run", "-d", IMAGE, "sleep", "1000"]));
        let out = d.docker(c, &["rm", &running]);
        out.assert_failed();
        assert!(
            out.stderr.contains("cannot remove a running container"),
            "{name}: {out}"
        );

        let stopped = ok(d.docker(c, &["run", "-d", IMAGE, "true"]));
        d.docker(c, &["wait", &stopped]).assert_ok();
        let out = d.docker(c, &["exec", &stopped, "true"]);
        out.assert_failed();
        assert!(out.stderr.contains("is not running"), "{name}: {out}");

        let before = d.docker(c, &["ps", "-aq"]);
        let out = d.docker(c, &["run", "--memory", "12q", IMAGE, "true"]);
        out.assert_code(125);
        assert!(
            out.stderr.contains("12q") && !out.stderr.contains("Error response from daemon"),
            "{name}: not refused by the client: {out}"
        );
        let after = d.docker(c, &["ps", "-aq"]);
        assert_eq!(
            before.stdout, after.stdout,
            "{name}: a container was created"
        );

        // A client that goes away in the middle of an attach.
        let ticker = ok(d.docker(
            c,
            &[
                "run",
                "-d",
                IMAGE,
                "sh",
                "-c",
                "while :; do echo tick; sleep 0.2; done",
            ],
        ));
        let attach = d.spawn_docker(c, &["attach", "--no-stdin", &ticker]);
        until("attach to stream output", WAIT, || {
            let s = attach.stdout_so_far();
            (s.contains("tick"), s)
        });
        drop(attach); // SIGKILL
        let out = d.docker(c, &["ps", "--no-trunc"]);
        out.assert_ok();
        assert!(out.stdout.contains(&ticker), "{name}: {out}");
        let out = d.docker(c, &["attach", "--no-stdin", "--sig-proxy=false", "nosuch"]);
        out.assert_failed();
        d.docker(c, &["rm", "-f", &dup, &running, &stopped, &ticker])
            .assert_ok();
    }
    for version in ["v1.41", "v1.50"] {
        let out = d.curl(&[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data",
            "this is { not json",
            "-w",
            "\n%{http_code}",
            &format!("http://berth/{version}/containers/create"),
        ]);
        out.assert_ok();
        let (body, status) = out.stdout.rsplit_once('\n').expect("status line");
        assert_eq!(status, "400", "{out}");
        let v: serde_json::Value =
            serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
        assert!(
            v["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{out}"
        );
        let out = d.curl(&[
            "-w",
            "\n%{http_code}",
            &format!("http://berth/{version}/no/such/path"),
        ]);
        out.assert_ok();
        let (body, status) = out.stdout.rsplit_once('\n').expect("status line");
        assert_eq!(status, "404", "{out}");
        let v: serde_json::Value =
            serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
        assert!(v["message"].is_string(), "{out}");
    }
    assert!(d.ping(), "the daemon stopped answering");
}

#[test]
fn everyday_commands() {
    let d = Daemon::start();
    for (name, c) in clients() {
        let t = tag(name);
        let web = format!("web{t}");
        // The init of a container ignores signals it has no handler for.
        let id = ok(d.docker(
            c,
            &[
                "run",
                "-d",
                "--name",
                &web,
                IMAGE,
                "sh",
                "-c",
                "trap 'exit 42' USR1; sleep 1000 & wait",
            ],
        ));
        let ps = d.docker(c, &["ps"]);
        ps.assert_ok();
        let row = ps
            .stdout
            .lines()
            .find(|l| l.ends_with(&web))
            .unwrap_or_else(|| panic!("{name}: {web} not listed: {ps}"));
        assert!(
            row.starts_with(&id[..12]) && row.contains(" Up "),
            "{name}: {ps}"
        );
        assert_eq!(
            inspect(
                &d,
                c,
                &web,
                "{{.State.Status}} {{.State.ExitCode}} {{.State.Running}}"
            ),
            "running 0 true",
            "{name}"
        );

        let renamed = format!("renamed{t}");
        d.docker(c, &["rename", &web, &renamed]).assert_ok();
        assert_eq!(inspect(&d, c, &id, "{{.Name}}"), format!("/{renamed}"));
        d.docker(c, &["container", "inspect", &web]).assert_code(1);

        d.docker(c, &["pause", &renamed]).assert_ok();
        assert_eq!(inspect(&d, c, &id, "{{.State.Status}}"), "paused", "{name}");
        let ps = d.docker(c, &["ps", "--filter", &format!("name={renamed}")]);
        assert!(ps.stdout.contains("(Paused)"), "{name}: {ps}");
        d.docker(c, &["unpause", &renamed]).assert_ok();
        assert_eq!(
            inspect(&d, c, &id, "{{.State.Status}}"),
            "running",
            "{name}"
        );

        let top = d.docker(c, &["top", &renamed]);
        top.assert_ok();
        assert!(
            top.stdout.contains("PID") && top.stdout.contains("sleep 1000"),
            "{name}: {top}"
        );
        let stats = d.docker(c, &["stats", "--no-stream", &renamed]);
        stats.assert_ok();
        assert!(
            stats.stdout.contains(&renamed) && stats.stdout.contains('%'),
            "{name}: {stats}"
        );

        d.docker(c, &["kill", "-s", "USR1", &renamed]).assert_ok();
        let out = d.docker(c, &["wait", &renamed]);
        out.assert_ok();
        assert_eq!(out.stdout.trim(), "42", "{name}: {out}");
        assert_eq!(
            inspect(&d, c, &id, "{{.State.Status}} {{.State.ExitCode}}"),
            "exited 42",
            "{name}"
        );
        let ps = d.docker(c, &["ps", "-a", "--filter", &format!("name={renamed}")]);
        assert!(ps.stdout.contains("Exited (42)"), "{name}: {ps}");

        d.docker(c, &["restart", "-t", "1", &renamed]).assert_ok();
        assert_eq!(
            inspect(&d, c, &id, "{{.State.Status}}"),
            "running",
            "{name}"
        );
        let pid1 = inspect(&d, c, &id, "{{.State.Pid}}");
        d.docker(c, &["restart", "-t", "1", &renamed]).assert_ok();
        assert_ne!(
            inspect(&d, c, &id, "{{.State.Pid}}"),
            pid1,
            "{name}: restart of a running container did not restart it"
        );

        let short = ok(d.docker(c, &["run", "-d", IMAGE, "sh", "-c", "sleep 1; exit 5"]));
        let out = d.docker(c, &["wait", &short]);
        out.assert_ok();
        assert_eq!(out.stdout.trim(), "5", "{name}: {out}");

        let vol = format!("vol{t}");
        let out = d.docker(c, &["volume", "create", &vol]);
        out.assert_ok();
        assert_eq!(out.stdout.trim(), vol, "{name}: {out}");
        let ls = d.docker(c, &["volume", "ls", "-q"]);
        assert!(ls.lines().contains(&vol.as_str()), "{name}: {ls}");
        let vi = d.docker(c, &["volume", "inspect", &vol]);
        vi.assert_ok();
        let v: serde_json::Value = serde_json::from_str(&vi.stdout).expect("volume JSON");
        assert_eq!(v[0]["Name"], vol.as_str(), "{name}: {vi}");
        assert_eq!(v[0]["Driver"], "local", "{name}: {vi}");
        let mount = format!("{vol}:/data");
        d.docker(
            c,
            &[
                "run",
                "--rm",
                "-v",
                &mount,
                IMAGE,
                "sh",
                "-c",
                "echo kept > /data/f",
            ],
        )
        .assert_ok();
        let out = d.docker(c, &["run", "--rm", "-v", &mount, IMAGE, "cat", "/data/f"]);
        out.assert_ok();
        assert_eq!(out.stdout.trim(), "kept", "{name}: {out}");
        d.docker(c, &["volume", "rm", &vol]).assert_ok();
        let ls = d.docker(c, &["volume", "ls", "-q"]);
        assert!(!ls.lines().contains(&vol.as_str()), "{name}: {ls}");
        d.docker(c, &["volume", "inspect", &vol]).assert_failed();

        d.docker(c, &["stop", "-t", "1", &renamed]).assert_ok();
        d.docker(c, &["rm", &renamed, &short]).assert_ok();
    }
}
