//! The `berth` command line as a client of `berth daemon` (BERTH_HOST):
//! docker's verbs and flags end to end — run, logs, exec, interactive
//! terminals, restart policies across a daemon crash, cp, health checks,
//! --init, volumes, limits, formats and bad input. Each test has its own
//! daemon and root; dropping it fails the test if anything was left behind.

use std::time::Duration;

use berth_tests::binary::berth;
use berth_tests::daemon::{Daemon, DOCKER_CURRENT as DOCKER, IMAGE, WAIT};
use berth_tests::{ok, until, Output};

fn state(d: &Daemon, id: &str, format: &str) -> String {
    ok(d.berth(&["inspect", "-f", format, id]))
}

#[test]
fn run_passes_output_exit_codes_and_options() {
    let d = Daemon::start();
    let out = d.berth(&[
        "run",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    out.assert_code(3);
    assert_eq!(out.stdout.trim(), "out", "{out}");
    assert!(out.stderr.contains("err"), "{out}");
    let out = d.berth(&[
            "run", "--rm", "-e", "A=1", "-w", "/tmp", "-u", "65534", "--hostname", "box", "--read-only",
            "--tmpfs", "/scratch", "-m", "64m", "--pids-limit", "20", "--cap-drop", "ALL",
            IMAGE, "sh", "-c",
            "echo $A $(pwd) $(id -u) $(hostname); touch /x 2>/dev/null || echo ro; touch /scratch/y && echo tmpfs; \
             cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max",
        ],
    );
    out.assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        ["1 /tmp 65534 box", "ro", "tmpfs", "67108864", "20"],
        "{out}"
    );
    // A command that is not in the image: docker's 127, and --rm leaves nothing.
    d.berth(&["run", "--rm", IMAGE, "no-such-command"])
        .assert_code(127);
    // stdin reaches the container with -i.
    let out = d.docker_in(
        berth(),
        &[
            "run",
            "--rm",
            "-i",
            IMAGE,
            "sh",
            "-c",
            "read x; echo got $x",
        ],
        Some(b"hello\n"),
    );
    assert_eq!(out.stdout.trim(), "got hello", "{out}");
    // --init: tini is PID 1 and the command its child.
    let out = d.berth(&["run", "--rm", "--init", IMAGE, "cat", "/proc/1/cmdline"]);
    out.assert_ok();
    assert!(out.stdout.starts_with("/sbin/docker-init"), "{out}");
    assert_eq!(ok(d.berth(&["ps", "-aq"])), "");
}

#[test]
fn detached_logs_exec_stop_and_inspect() {
    let d = Daemon::start();
    let id = ok(d.berth(&[
        "run",
        "-d",
        "--name",
        "web",
        IMAGE,
        "sh",
        "-c",
        "trap 'echo bye; exit 0' TERM; echo one; echo two; while :; do sleep 0.1; done",
    ]));
    assert_eq!(id.len(), 64, "{id}");
    until("the log", WAIT, || {
        let o = d.berth(&["logs", "web"]);
        (o.stdout.contains("two"), o.to_string())
    });
    let tail = ok(d.berth(&["logs", "--tail", "1", "web"]));
    assert_eq!(tail, "two");
    let ts = ok(d.berth(&["logs", "-t", "web"]));
    assert!(
        ts.lines()
            .all(|l| l.len() > 31 && &l[4..5] == "-" && l.contains('Z')),
        "{ts}"
    );
    // exec without a terminal: output, exit code, env, workdir, user.
    let out = d.berth(&[
        "exec",
        "-e",
        "V=9",
        "-w",
        "/etc",
        "-u",
        "65534",
        "web",
        "sh",
        "-c",
        "echo $V $(pwd) $(id -u); exit 4",
    ]);
    out.assert_code(4);
    assert_eq!(out.stdout.trim(), "9 /etc 65534", "{out}");
    // exec with a terminal of a given size.
    let out = d.script(
        &format!(
            "stty rows 33 cols 101; {} exec -it web sh -c 'tty; stty size'",
            berth().display()
        ),
        b"",
    );
    let text = out.stdout.replace('\r', "");
    assert!(
        text.contains("/dev/pts/") && text.contains("33 101"),
        "{out}"
    );
    // ps, formats, top, stats.
    let ps = ok(d.berth(&["ps", "--format", "{{.Names}} {{.State}}"]));
    assert_eq!(ps, "web running");
    let top = ok(d.berth(&["top", "web"]));
    assert!(top.contains("PID") && top.contains("sleep"), "{top}");
    let stats = ok(d.berth(&["stats", "--no-stream", "web"]));
    assert!(
        stats.contains("MEM USAGE") && stats.contains("web"),
        "{stats}"
    );
    // logs -f follows until the container stops; stop sends its stop signal.
    let follow = d.spawn_docker(berth(), &["logs", "-f", "web"]);
    ok(d.berth(&["stop", "web"]));
    let out = follow.wait();
    assert!(out.stdout.contains("bye"), "{out}");
    assert_eq!(
        state(&d, "web", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 0"
    );
    // Bad input: unknown names, conflicts, a running container without -f.
    let out = d.berth(&["logs", "nope"]);
    assert!(
        out.code != 0 && out.stderr.contains("No such container: nope"),
        "{out}"
    );
    let out = d.berth(&["run", "-d", "--name", "web", IMAGE, "true"]);
    assert!(out.stderr.contains("is already in use"), "{out}");
    ok(d.berth(&["start", "web"]));
    let out = d.berth(&["rm", "web"]);
    assert!(
        out.stderr.contains("cannot remove a running container"),
        "{out}"
    );
    let out = d.berth(&["run", "--rm", "-m", "12q", IMAGE, "true"]);
    assert!(out.code == 125 && out.stderr.contains("12q"), "{out}");
    ok(d.berth(&["rm", "-f", "web"]));
    let out = d.berth(&["exec", "web", "true"]);
    assert!(out.stderr.contains("No such container"), "{out}");
}

#[test]
fn interactive_terminal_run() {
    let d = Daemon::start();
    let out = d.script(
        &format!(
            "stty rows 20 cols 70; {} run -it --rm {IMAGE} sh",
            berth().display()
        ),
        b"stty size; echo marker-$((40+2)); exit 5\n",
    );
    let text = out.stdout.replace('\r', "");
    assert!(
        text.contains("20 70") && text.contains("marker-42"),
        "{out}"
    );
    assert_eq!(out.code, 5, "{out}");
    assert_eq!(ok(d.berth(&["ps", "-aq"])), "");
}

#[test]
fn restart_policies_survive_a_daemon_crash() {
    let mut d = Daemon::start();
    let id = ok(d.berth(&[
        "run",
        "-d",
        "--restart",
        "on-failure:2",
        IMAGE,
        "sh",
        "-c",
        "exit 1",
    ]));
    until("two restarts", WAIT, || {
        let s = state(&d, &id, "{{.RestartCount}} {{.State.Status}}");
        (s == "2 exited", s)
    });
    // `always`: exits while the daemon is dead, and runs again after it restarts.
    let a = ok(d.berth(&[
        "run",
        "-d",
        "--restart",
        "always",
        IMAGE,
        "sh",
        "-c",
        "sleep 2; exit 1",
    ]));
    let keep = ok(d.berth(&["run", "-d", IMAGE, "sleep", "1000"]));
    d.kill9();
    std::thread::sleep(Duration::from_secs(3));
    d.restart();
    until("the always container running again", WAIT, || {
        let s = state(&d, &a, "{{.State.Status}} {{.RestartCount}}");
        (s.starts_with("running") && !s.ends_with(" 0"), s)
    });
    // The plain container kept running across the crash and is still ours.
    assert_eq!(state(&d, &keep, "{{.State.Status}}"), "running");
    assert_eq!(ok(d.berth(&["exec", &keep, "echo", "alive"])), "alive");
    ok(d.berth(&["stop", "-t", "1", &keep]));
    ok(d.berth(&["rm", "-f", &a, &keep, &id]));
}

#[test]
fn cp_volumes_and_health() {
    let d = Daemon::start();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("in.txt"), "from-host\n").unwrap();
    ok(d.berth(&[
        "run",
        "-d",
        "--name",
        "c",
        "-v",
        "vol1:/data",
        "--health-cmd",
        "test -e /tmp/ok",
        "--health-interval",
        "200ms",
        "--health-retries",
        "1",
        IMAGE,
        "sleep",
        "1000",
    ]));
    until("unhealthy", WAIT, || {
        let s = ok(d.berth(&["ps", "--format", "{{.Status}}"]));
        (s.contains("(unhealthy)"), s)
    });
    let src = host.path().join("in.txt");
    ok(d.berth(&["cp", &src.to_string_lossy(), "c:/tmp/ok"]));
    until("healthy", WAIT, || {
        let s = state(&d, "c", "{{.State.Health.Status}}");
        (s == "healthy", s)
    });
    assert_eq!(ok(d.berth(&["exec", "c", "cat", "/tmp/ok"])), "from-host");
    ok(d.berth(&[
        "exec",
        "c",
        "sh",
        "-c",
        "mkdir -p /tmp/d && echo deep > /tmp/d/f && echo kept > /data/v",
    ]));
    let back = host.path().join("back");
    ok(d.berth(&["cp", "c:/tmp/d", &back.to_string_lossy()]));
    assert_eq!(std::fs::read_to_string(back.join("f")).unwrap(), "deep\n");
    // A symlink to an absolute path resolves inside the container: copying
    // through it writes the container's /etc, never the host's.
    ok(d.berth(&["exec", "c", "ln", "-s", "/etc", "/tmp/etclink"]));
    let marker = host.path().join("berth-cp-marker");
    std::fs::write(&marker, "m\n").unwrap();
    ok(d.berth(&["cp", &marker.to_string_lossy(), "c:/tmp/etclink/"]));
    assert_eq!(
        ok(d.berth(&["exec", "c", "cat", "/etc/berth-cp-marker"])),
        "m"
    );
    assert!(
        !std::path::Path::new("/etc/berth-cp-marker").exists(),
        "cp wrote through a symlink onto the host"
    );
    ok(d.berth(&["rm", "-f", "c"]));
    // The named volume outlives the container and is in use by the next one.
    assert_eq!(
        ok(d.berth(&["run", "--rm", "-v", "vol1:/data", IMAGE, "cat", "/data/v"])),
        "kept"
    );
    assert!(ok(d.berth(&["volume", "ls", "-q"])).contains("vol1"));
    ok(d.berth(&["volume", "rm", "vol1"]));
    let out = d.berth(&["volume", "inspect", "vol1"]);
    assert!(out.stderr.contains("No such volume"), "{out}");
    // prune removes what no container uses.
    ok(d.berth(&["volume", "create", "idle"]));
    ok(d.berth(&[
        "run", "-d", "--name", "user", "-v", "busy:/b", IMAGE, "sleep", "1000",
    ]));
    let pruned = ok(d.berth(&["volume", "prune", "-f"]));
    assert!(
        pruned.contains("idle") && !pruned.contains("busy"),
        "{pruned}"
    );
    let left = ok(d.berth(&["volume", "ls", "-q"]));
    assert_eq!(left, "busy");
    let out = d.berth(&["volume", "rm", "busy"]);
    assert!(out.stderr.contains("in use"), "{out}");
    ok(d.berth(&["rm", "-f", "user"]));
    ok(d.berth(&["volume", "rm", "busy"]));
}

#[test]
fn sigkill_at_any_moment_leaves_nothing_after_a_restart() {
    let mut d = Daemon::start();
    for round in 0..3u64 {
        // Clients create and start containers while the daemon dies under them.
        let clients: Vec<_> = (0..8)
            .map(|_| d.spawn_docker(berth(), &["run", "-d", IMAGE, "sleep", "1000"]))
            .collect();
        std::thread::sleep(Duration::from_millis(100 + round * 150));
        d.kill9();
        for c in clients {
            let _ = c.wait();
        }
        d.restart();
        // What the records say is true: every container listed can be
        // inspected and removed, and then nothing of any is left.
        let ids = ok(d.berth(&["ps", "-aq"]));
        for id in ids.lines() {
            let s = state(&d, id, "{{.State.Status}}");
            assert!(
                ["running", "created", "exited"].contains(&s.as_str()),
                "{id}: {s}"
            );
            ok(d.berth(&["rm", "-f", id]));
        }
        until("nothing left after the crash", WAIT, || {
            let l = d.leaks();
            (l.is_empty(), format!("{l:?}"))
        });
    }
}

#[test]
fn logs_rotate_by_size() {
    let d = Daemon::start();
    let id = ok(d.berth(&[
        "run",
        "-d",
        "--log-opt",
        "max-size=2k",
        "--log-opt",
        "max-file=3",
        IMAGE,
        "sh",
        "-c",
        "for i in $(seq 1 400); do echo line-$i; done",
    ]));
    ok(d.berth(&["wait", &id]));
    let dir = d.root().join("containers").join(&id);
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("-json.log"))
        .collect();
    files.sort();
    assert_eq!(
        files.len(),
        3,
        "live file plus max-file - 1 rotated ones: {files:?}"
    );
    for f in &files {
        let len = std::fs::metadata(dir.join(f)).unwrap().len();
        assert!(len <= 2048, "{f} is {len} bytes");
    }
    // What is kept is the newest lines, in order, ending with the last.
    let logs = ok(d.berth(&["logs", &id]));
    let n: Vec<u32> = logs.lines().map(|l| l[5..].parse().unwrap()).collect();
    assert_eq!(n.last(), Some(&400));
    assert!(n.windows(2).all(|w| w[1] == w[0] + 1) && n[0] > 1, "{logs}");
    let out = d.berth(&["run", "--rm", "--log-opt", "max-size=12q", IMAGE, "true"]);
    assert!(out.code != 0 && out.stderr.contains("12q"), "{out}");
    ok(d.berth(&["rm", &id]));
}

/// Runs `berth ARGS` under `script` (a pty), typing `input` only after a
/// pause: the client must have put the terminal in raw mode first (in cooked
/// mode the tty itself would take ctrl-q as flow control).
fn typed(d: &Daemon, args: &str, input: &[&str]) -> Output {
    let mut c = std::process::Command::new("bash");
    d.client_env(&mut c);
    c.args([
        "-c",
        &format!(
            "(sleep 2; {} sleep 1) | script -qec '{} {args}' /dev/null",
            input
                .iter()
                .map(|i| format!("printf '{i}'; sleep 1;"))
                .collect::<String>(),
            berth().display()
        ),
    ]);
    berth_tests::cmd::run(c, None, Duration::from_secs(60))
}

#[test]
fn detach_keys_leave_the_container_running() {
    let d = Daemon::start();
    // ctrl-p ctrl-q: the client detaches with 0, the shell runs on.
    let out = typed(
        &d,
        &format!("run -it --name det {IMAGE} sh"),
        &["echo before\\n", "\\020\\021"],
    );
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("before"), "{out}");
    assert_eq!(state(&d, "det", "{{.State.Status}}"), "running");
    assert_eq!(
        ok(d.berth(&["exec", "det", "echo", "still-here"])),
        "still-here"
    );
    ok(d.berth(&["rm", "-f", "det"]));
}

#[test]
fn image_commands_go_through_the_daemon() {
    let d = Daemon::start();
    // In the daemon's network namespace: its loopback is not the test's.
    let reg = berth_tests::registry::Registry::start_in(d.netns());
    reg.push_layout(
        &berth_tests::daemon::layout().join("oci"),
        "latest",
        "lib/bb",
        None,
    );
    let name = format!("{}/lib/bb:latest", reg.addr);
    // Events: a listener started now sees what follows.
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 20;
    let events = d.spawn_docker(
        "/usr/bin/curl",
        &[
            "-sS",
            "--unix-socket",
            &d.socket().to_string_lossy(),
            &format!("http://berth/v1.41/events?until={until}"),
        ],
    );
    let out = ok(d.berth(&["pull", &name]));
    assert!(
        out.contains("Downloaded newer image") && out.ends_with(&name),
        "{out}"
    );
    let again = ok(d.berth(&["pull", &name]));
    assert!(again.contains("Image is up to date"), "{again}");
    ok(d.berth(&["tag", &name, "mine:v1"]));
    let images = ok(d.berth(&["images"]));
    assert!(
        images.contains("mine") && images.contains("lib/bb"),
        "{images}"
    );
    let inspect = ok(d.berth(&["image", "inspect", "mine:v1"]));
    assert!(
        inspect.contains("mine:v1") && inspect.contains("\"RootFS\""),
        "{inspect}"
    );
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("mine.tar");
    ok(d.berth(&["save", "-o", &tar.to_string_lossy(), "mine:v1"]));
    let rmi = ok(d.berth(&["rmi", "mine:v1", &name]));
    // Untagged only: busybox:latest (the same image) still names its content.
    assert!(
        rmi.contains("Untagged: mine:v1") && rmi.contains("lib/bb:latest"),
        "{rmi}"
    );
    let out = d.berth(&["run", "--rm", "mine:v1", "true"]);
    assert!(out.code != 0, "{out}");
    let loaded = ok(d.berth(&["load", "-i", &tar.to_string_lossy()]));
    assert!(loaded.contains("Loaded image: mine:v1"), "{loaded}");
    assert_eq!(
        ok(d.berth(&["run", "--rm", "mine:v1", "echo", "from-loaded"])),
        "from-loaded"
    );
    // The run above made and removed a container: the listener saw it.
    let ev = events.wait();
    for action in [
        "\"Action\":\"create\"",
        "\"Action\":\"start\"",
        "\"Action\":\"die\"",
        "\"Action\":\"destroy\"",
        "\"Type\":\"image\"",
    ] {
        assert!(ev.stdout.contains(action), "no {action} in {ev}");
    }
    // -p is checked with docker's rules (publishing itself: daemon_network.rs).
    let out = d.berth(&["run", "--rm", "-p", "70000:80", IMAGE, "true"]);
    assert!(out.code == 125 && out.stderr.contains("70000"), "{out}");
    let out = d.berth(&["run", "--rm", "-p", "8080:80/sctp", IMAGE, "true"]);
    assert!(out.code == 125 && out.stderr.contains("sctp"), "{out}");
}

#[test]
fn a_tcp_listener_only_when_configured() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("d.sock");
    // Its own network namespace: the daemon makes its default bridge there,
    // and the TCP listener is on that namespace's loopback.
    let ns = berth_tests::netns::NetNs::new();
    ns.ip(&["link", "set", "lo", "up"]);
    let mut daemon = ns
        .command(berth())
        .args(["daemon", "--root"])
        .arg(dir.path().join("root"))
        .args(["--config", "/nonexistent", "-H"])
        .arg(format!("unix://{}", sock.display()))
        .args(["-H", &format!("tcp://127.0.0.1:{port}")])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let host = format!("tcp://127.0.0.1:{port}");
    let seen = until("the TCP listener", WAIT, || {
        let o = ns
            .command(berth())
            .env_remove("BERTH_ROOT")
            .args(["-H", &host, "ps"])
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
        )
    });
    assert!(seen.contains("CONTAINER ID"), "{seen}");
    let v = ns
        .command(DOCKER)
        .env("DOCKER_HOST", &host)
        .env("DOCKER_CONFIG", dir.path())
        .args(["version", "--format", "{{.Server.APIVersion}}"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&v.stdout).trim(), "1.50");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let st = daemon.wait().unwrap();
    assert!(st.success(), "{st}");
    assert!(!sock.exists(), "the socket was left behind");
    // Stopped: the TCP port is closed too.
    let closed = ns
        .command("/usr/bin/curl")
        .args([
            "-sS",
            "--max-time",
            "5",
            &format!("http://127.0.0.1:{port}/_ping"),
        ])
        .output()
        .unwrap();
    assert!(!closed.status.success(), "the TCP port still answers");
}

#[test]
fn an_image_healthcheck_runs_without_flags() {
    let d = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("oci");
    berth_tests::cmd::host(
        "cp",
        &[
            "-a",
            &berth_tests::daemon::layout().join("oci").to_string_lossy(),
            &layout.to_string_lossy(),
        ],
    );
    berth_tests::layouts::edit_config(&layout, "latest", |c| {
        c["config"]["Healthcheck"] = serde_json::json!({
            "Test": ["CMD-SHELL", "test -e /tmp/ok"],
            "Interval": 200_000_000u64,
            "Retries": 1,
        });
    });
    let tar = dir.path().join("hc.tar");
    berth_tests::cmd::host(
        "tar",
        &[
            "-C",
            &layout.to_string_lossy(),
            "-cf",
            &tar.to_string_lossy(),
            ".",
        ],
    );
    let loaded = ok(d.berth(&["load", "-i", &tar.to_string_lossy()]));
    let name = berth_tests::berth::loaded_name(&loaded);
    ok(d.berth(&["run", "-d", "--name", "hc", &name, "sleep", "1000"]));
    until("unhealthy from the image's check", WAIT, || {
        let s = state(&d, "hc", "{{.State.Health.Status}}");
        (s == "unhealthy", s)
    });
    ok(d.berth(&["exec", "hc", "touch", "/tmp/ok"]));
    until("healthy", WAIT, || {
        let s = ok(d.berth(&["ps", "--format", "{{.Status}}"]));
        (s.contains("(healthy)"), s)
    });
    // --no-healthcheck turns the image's check off.
    ok(d.berth(&[
        "run",
        "-d",
        "--name",
        "nohc",
        "--no-healthcheck",
        &name,
        "sleep",
        "1000",
    ]));
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(state(&d, "nohc", "{{.State.Health}}"), "<no value>");
    ok(d.berth(&["rm", "-f", "hc", "nohc"]));
}

#[test]
fn the_socket_belongs_to_the_chosen_group() {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let group = nix::unistd::Group::from_name("daemon")
        .unwrap()
        .expect("Debian has a `daemon` group");
    let d = Daemon::start_with_config("[daemon]\ngroup = \"daemon\"\n");
    let m = std::fs::metadata(d.socket()).unwrap();
    assert_eq!((m.uid(), m.gid()), (0, group.gid.as_raw()));
    assert_eq!(m.permissions().mode() & 0o777, 0o660);
    // --group wins over the file; an unknown group is refused, by name.
    let ns = berth_tests::netns::NetNs::new();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("g.sock");
    let out = ns
        .command(berth())
        .args(["daemon", "--root"])
        .arg(dir.path().join("root"))
        .args([
            "--config",
            "/nonexistent",
            "--group",
            "no-such-group-here",
            "-H",
        ])
        .arg(format!("unix://{}", sock.display()))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("\"no-such-group-here\" does not exist"),
        "{err}"
    );
    assert!(!sock.exists());
    let mut daemon = ns
        .command(berth())
        .args(["daemon", "--root"])
        .arg(dir.path().join("root"))
        .args(["--config", "/nonexistent", "-G", "4242", "-H"])
        .arg(format!("unix://{}", sock.display()))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let gid = until("the socket", WAIT, || {
        std::fs::metadata(&sock).ok().map(|m| m.gid())
    });
    assert_eq!(gid, 4242);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(daemon.wait().unwrap().success());
}

#[test]
fn plain_tcp_is_served_on_loopback_only() {
    let ns = berth_tests::netns::NetNs::new();
    ns.ip(&["link", "set", "lo", "up"]);
    let dir = tempfile::tempdir().unwrap();
    for host in [
        "tcp://0.0.0.0:2375",
        "tcp://[::]:2375",
        "tcp://10.1.2.3:2375",
    ] {
        let out = ns
            .command(berth())
            .args(["daemon", "--root"])
            .arg(dir.path().join("root"))
            .args(["--config", "/nonexistent", "-H", host])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{host}: {err}");
        assert!(
            err.contains(&format!("refusing to listen on {host}")) && err.contains("loopback"),
            "{host}: {err}"
        );
    }
    assert!(!dir.path().join("root").join("containers").exists());
}
