//! `berth run --rm` without a daemon (`--root`, no `-H`): the daemon's
//! container lifecycle run in the command's own process — a monitor per
//! container, the streams attached, the exit code passed on, our signals
//! forwarded — and nothing left behind.

use std::time::Duration;

use berth_tests::cmd::Spawned;
use berth_tests::{images, leak, poll, Berth};

/// A root with a busybox image loaded; returns the image's name.
fn with_busybox() -> (Berth, String, tempfile::TempDir) {
    let layout = tempfile::Builder::new()
        .prefix("berth-layout-")
        .tempdir()
        .unwrap();
    let l = layout.path().join("oci");
    images::busybox_layout(&l, "local", false);
    let b = Berth::new("");
    let name = b.load(&l);
    (b, name, layout)
}

/// Nothing of any container is left: no container directory, no mount
/// under the root, no monitor socket.
fn assert_clean(b: &Berth) {
    let containers: Vec<_> = std::fs::read_dir(b.root().join("containers"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(containers.is_empty(), "containers left: {containers:?}");
    let mounts = leak::mounts_under(b.root());
    assert!(mounts.is_empty(), "mounts left: {mounts:?}");
    let sockets: Vec<_> = std::fs::read_dir(b.root().join("sock"))
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(sockets.is_empty(), "monitor sockets left: {sockets:?}");
}

#[test]
fn output_exit_code_and_input_pass_through_and_nothing_is_left() {
    let (b, image, _l) = with_busybox();
    let out = b.cmd(&[
        "run",
        "--rm",
        &image,
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    out.assert_code(3);
    assert_eq!(out.stdout, "out\n", "{out}");
    assert!(out.stderr.contains("err\n"), "{out}");
    assert_clean(&b);

    // -i: our input reaches the container, its end is the container's EOF.
    let cat = berth_tests::cmd::run(
        b.command(&["run", "--rm", "-i", &image, "sh", "-c", "cat; echo done"]),
        Some(b"piped in\n"),
        Duration::from_secs(60),
    );
    cat.assert_ok();
    assert_eq!(cat.stdout, "piped in\ndone\n", "{cat}");
    assert_clean(&b);

    // A command that does not exist: docker's 127, and no container left.
    let missing = b.cmd(&["run", "--rm", &image, "/no/such/program"]);
    missing.assert_code(127);
    assert!(missing.stderr.contains("/no/such/program"), "{missing}");
    assert_clean(&b);
}

#[test]
fn containers_have_no_network_but_the_hosts_and_other_networks_are_refused() {
    let (b, image, _l) = with_busybox();
    // The default: a network namespace of its own with only `lo`.
    let ifs = b.cmd(&["run", "--rm", &image, "ls", "/sys/class/net"]);
    ifs.assert_ok();
    assert_eq!(
        ifs.stdout.split_whitespace().collect::<Vec<_>>(),
        ["lo"],
        "{ifs}"
    );
    let host = b.cmd(&[
        "run",
        "--rm",
        "--network",
        "host",
        &image,
        "ls",
        "/sys/class/net",
    ]);
    host.assert_ok();
    let ours = std::fs::read_dir("/sys/class/net").unwrap().count();
    assert_eq!(host.stdout.split_whitespace().count(), ours, "{host}");
    let bridge = b.cmd(&["run", "--rm", "--network", "bridge", &image, "true"]);
    bridge.assert_failed();
    assert!(
        bridge.stderr.contains("\"bridge\"") && bridge.stderr.contains("berth daemon"),
        "{bridge}"
    );
    let detached = b.cmd(&["run", "-d", "--rm", &image, "true"]);
    detached.assert_failed();
    assert!(detached.stderr.contains("foreground"), "{detached}");
    assert_clean(&b);
}

#[test]
fn our_sigterm_reaches_the_container() {
    let (b, image, _l) = with_busybox();
    let mut run = Spawned::start(
        b.command(&[
            "run",
            "--rm",
            &image,
            "sh",
            "-c",
            "trap 'echo got TERM; exit 42' TERM; echo ready; while :; do sleep 0.1; done",
        ]),
        None,
        Duration::from_secs(60),
    );
    poll::until("the container to start", Duration::from_secs(30), || {
        run.stdout_so_far().contains("ready")
    });
    assert!(!run.finished());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(run.pid() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = run.wait();
    out.assert_code(42);
    assert!(out.stdout.contains("got TERM"), "{out}");
    assert_clean(&b);
}

#[test]
fn a_build_without_a_daemon_runs_its_steps_here_and_leaves_nothing() {
    let (b, image, _l) = with_busybox();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM {image}\nARG WHO=nobody\nCOPY greeting /greeting\n\
             RUN echo \"$WHO\" >> /greeting\nCMD [\"cat\", \"/greeting\"]\n"
        ),
    )
    .unwrap();
    std::fs::write(ctx.path().join("greeting"), "hello\n").unwrap();
    let dir = ctx.path().to_string_lossy().into_owned();
    let out = b.cmd(&[
        "build",
        "--build-arg",
        "WHO=berth",
        "-t",
        "local-built",
        &dir,
    ]);
    out.assert_ok();
    assert!(
        out.stdout
            .contains("Successfully tagged local-built:latest"),
        "{out}"
    );
    let run = b.cmd(&["run", "--rm", "local-built"]);
    run.assert_ok();
    assert_eq!(run.stdout, "hello\nberth\n", "{run}");
    // Cached the second time; -q prints the id only.
    let again = b.cmd(&[
        "build",
        "-q",
        "--build-arg",
        "WHO=berth",
        "-t",
        "local-built",
        &dir,
    ]);
    again.assert_ok();
    assert!(
        again.stdout.trim().starts_with("sha256:") && again.stdout.lines().count() == 1,
        "{again}"
    );
    // A failing step: its code, nothing tagged, nothing left; a network
    // needing a daemon is refused by name.
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {image}\nRUN exit 4\n"),
    )
    .unwrap();
    let failed = b.cmd(&["build", "-t", "never-local", &dir]);
    failed.assert_code(4);
    assert!(
        failed.stderr.contains("returned a non-zero code: 4"),
        "{failed}"
    );
    b.cmd(&["image", "inspect", "never-local"]).assert_failed();
    let net = b.cmd(&["build", "--network", "bridge", &dir]);
    net.assert_failed();
    assert!(net.stderr.contains("\"bridge\""), "{net}");
    assert_clean(&b);
    let contexts: Vec<_> = std::fs::read_dir(b.root().join("build"))
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(contexts.is_empty(), "build contexts left: {contexts:?}");
}
