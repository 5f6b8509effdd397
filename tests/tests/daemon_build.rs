//! `build` through the daemon with both docker clients (classic builder
//! requests, no buildx) and berth's own: multi-stage builds with build
//! arguments, a target, `.dockerignore` exceptions, `-f` inside and outside
//! the context, `-q`; the layer cache (unchanged, touched, changed content,
//! changed argument, `--no-cache`, a cache mount kept across builds); and
//! failures that name their cause, exit with the step's code and leave no
//! image, container or mount behind.

use std::path::Path;
use std::process::Command;

use berth_tests::cmd::{self, Output};
use berth_tests::daemon::{clients, Daemon, IMAGE};
use berth_tests::ok;

/// Writes `files` (path, content) under `dir`.
fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (p, body) in files {
        let p = dir.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
}

/// Runs `client ARGS` in `cwd` against the daemon.
#[track_caller]
fn client_in(d: &Daemon, client: impl AsRef<std::ffi::OsStr>, cwd: &Path, args: &[&str]) -> Output {
    let mut c: Command = d.docker_cmd(client, args);
    c.current_dir(cwd);
    cmd::run(c, None, std::time::Duration::from_secs(300))
}

/// The three clients: both docker CLIs and berth's.
fn all_clients() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = clients()
        .iter()
        .map(|(n, p)| (n.to_string(), p.to_string()))
        .collect();
    v.push((
        "berth".into(),
        berth_tests::binary::berth().to_string_lossy().into_owned(),
    ));
    v
}

const MULTI_STAGE: &str = r#"# escape=\
ARG BASE=busybox:latest
FROM $BASE AS base
ARG GREETING=hi
RUN echo "$GREETING" > /greeting \
 && mkdir /data && echo one > /data/one
COPY files/ /files/

FROM base AS unused
RUN echo never > /never && exit 9

FROM busybox:latest AS final
LABEL stage=final
COPY --from=base /greeting /greeting
COPY --from=base /files/ /files/
COPY --chown=1:2 --chmod=0640 files/a.txt /owned.txt
ENV MODE=final
WORKDIR /work
EXPOSE 8080/tcp
CMD ["cat", "/greeting"]

FROM final AS after
RUN exit 7
"#;

#[test]
fn docker_clients_build_multi_stage_images_that_run() {
    let d = Daemon::start();
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[
            ("Dockerfile", MULTI_STAGE),
            (".dockerignore", "files/*.md\n!files/keep.md\nsecret\n"),
            ("files/a.txt", "a\n"),
            ("files/notes.md", "left out\n"),
            ("files/keep.md", "kept\n"),
            ("secret", "never sent\n"),
        ],
    );
    for (name, c) in all_clients() {
        let tag = format!("built-{name}:v1");
        let out = client_in(
            &d,
            &c,
            ctx.path(),
            &[
                "build",
                "--build-arg",
                "GREETING=hello",
                "--target",
                "final",
                "--label",
                "by=test",
                "-t",
                &tag,
                ".",
            ],
        );
        out.assert_ok();
        assert!(out.stdout.contains("Step 1/"), "{name}: {}", out.stdout);
        assert!(
            out.stdout.contains("Successfully built "),
            "{name}: {}",
            out.stdout
        );
        assert!(
            out.stdout
                .contains(&format!("Successfully tagged built-{name}:v1")),
            "{name}: {}",
            out.stdout
        );
        // The stage the target does not need was not built.
        assert!(!out.stdout.contains("never"), "{name}: {}", out.stdout);
        let run = ok(d.docker(&c, &["run", "--rm", &tag]));
        assert_eq!(run, "hello", "{name}");
        let files = ok(d.docker(
            &c,
            &[
                "run",
                "--rm",
                &tag,
                "sh",
                "-c",
                "ls /files; stat -c '%u:%g %a' /owned.txt; pwd; echo $MODE; ls /secret 2>&1 || true",
            ],
        ));
        let lines: Vec<&str> = files.lines().collect();
        assert_eq!(
            lines[..5],
            ["a.txt", "keep.md", "1:2 640", "/work", "final"],
            "{name}: {files}"
        );
        assert!(lines[5].contains("No such file"), "{name}: {files}");
        let cfg = ok(d.docker(&c, &["image", "inspect", "-f", "{{json .Config}}", &tag]));
        let cfg: serde_json::Value = serde_json::from_str(&cfg).unwrap();
        assert_eq!(
            cfg["Cmd"],
            serde_json::json!(["cat", "/greeting"]),
            "{name}"
        );
        assert_eq!(cfg["WorkingDir"], "/work", "{name}");
        assert_eq!(cfg["Labels"]["stage"], "final", "{name}");
        assert_eq!(cfg["Labels"]["by"], "test", "{name}");
        assert!(cfg["ExposedPorts"]["8080/tcp"].is_object(), "{name}: {cfg}");
        assert!(
            cfg["Env"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e == "MODE=final"),
            "{name}: {cfg}"
        );
    }
    assert!(d.leaks().is_empty(), "{:?}", d.leaks());
}

#[test]
fn dockerfiles_inside_outside_and_on_stdin_and_quiet_builds() {
    let d = Daemon::start();
    let ctx = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[
            (
                "docker/Build.file",
                "FROM busybox:latest\nCOPY . /ctx/\nCMD [\"ls\", \"/ctx\"]\n",
            ),
            ("data.txt", "d\n"),
        ],
    );
    write_files(
        outside.path(),
        &[(
            "Outside",
            "FROM busybox:latest\nCOPY . /ctx/\nCMD [\"ls\", \"-a\", \"/ctx\"]\n",
        )],
    );
    for (name, c) in all_clients() {
        // -f inside the context, relative to the current directory.
        let inside = format!("inside-{name}");
        client_in(
            &d,
            &c,
            ctx.path(),
            &["build", "-f", "docker/Build.file", "-t", &inside, "."],
        )
        .assert_ok();
        let ls = ok(d.docker(&c, &["run", "--rm", &inside]));
        assert_eq!(
            ls.lines().collect::<Vec<_>>(),
            ["data.txt", "docker"],
            "{name}"
        );
        // -f outside the context: it is not copied by `COPY .`.
        let out_tag = format!("outside-{name}");
        let f = outside.path().join("Outside");
        client_in(
            &d,
            &c,
            ctx.path(),
            &["build", "-f", &f.to_string_lossy(), "-t", &out_tag, "."],
        )
        .assert_ok();
        let ls = ok(d.docker(&c, &["run", "--rm", &out_tag]));
        assert_eq!(
            ls.lines().collect::<Vec<_>>(),
            [".", "..", "data.txt", "docker"],
            "{name}: {ls}"
        );
        // A Dockerfile on stdin as the whole context; -q prints the id only.
        let mut cmd = d.docker_cmd(&c, &["build", "-q", "-"]);
        cmd.current_dir(ctx.path());
        let out = cmd::run(
            cmd,
            Some(b"FROM busybox:latest\nRUN echo from-stdin > /s\n"),
            std::time::Duration::from_secs(300),
        );
        out.assert_ok();
        let id = out.stdout.trim();
        assert!(
            id.starts_with("sha256:") && id.len() == 71 && !id.contains('\n'),
            "{name}: {:?}",
            out.stdout
        );
        assert_eq!(
            ok(d.docker(&c, &["run", "--rm", id, "cat", "/s"])),
            "from-stdin"
        );
    }
}

#[test]
fn a_failing_run_exits_with_its_code_and_leaves_nothing() {
    let d = Daemon::start();
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[(
            "Dockerfile",
            "FROM busybox:latest\nRUN echo before > /b\nRUN echo failing-output && exit 3\n",
        )],
    );
    let before = ok(d.docker(clients()[0].1, &["ps", "-aq"]));
    for (name, c) in all_clients() {
        let tag = format!("failed-{name}");
        let out = client_in(&d, &c, ctx.path(), &["build", "-t", &tag, "."]);
        out.assert_code(3);
        assert!(
            out.stdout.contains("failing-output"),
            "{name}: {}",
            out.stdout
        );
        assert!(
            out.stderr.contains(
                "The command '/bin/sh -c echo failing-output && exit 3' returned a non-zero code: 3"
            ),
            "{name}: {}",
            out.stderr
        );
        d.docker(&c, &["image", "inspect", &tag]).assert_failed();
    }
    assert_eq!(ok(d.docker(clients()[0].1, &["ps", "-aq"])), before);
    assert!(d.leaks().is_empty(), "{:?}", d.leaks());
    // Bad input names its cause.
    for (dockerfile, files, want) in [
        ("FROM busybox:latest\nCOPY ../x /x\n", vec![], "../x"),
        (
            "FROM busybox:latest\nCOPY missing.txt /x\n",
            vec![],
            "missing.txt",
        ),
        (
            "FROM busybox:latest\nCOPY link/passwd /x\n",
            vec!["link"],
            "link/passwd",
        ),
        ("FROM busybox:latest\nFROBNICATE x\n", vec![], "line 2"),
        (
            "FROM 127.0.0.1:1/nowhere:latest\n",
            vec![],
            "127.0.0.1:1/nowhere:latest",
        ),
    ] {
        let ctx = tempfile::tempdir().unwrap();
        write_files(ctx.path(), &[("Dockerfile", dockerfile)]);
        if !files.is_empty() {
            std::os::unix::fs::symlink("/etc", ctx.path().join("link")).unwrap();
        }
        for (name, c) in all_clients() {
            let out = client_in(&d, &c, ctx.path(), &["build", "."]);
            out.assert_failed();
            assert!(
                out.stderr.contains(want),
                "{name}: {dockerfile:?}: {}",
                out.stderr
            );
        }
    }
    assert_eq!(ok(d.docker(clients()[0].1, &["ps", "-aq"])), before);
    assert!(d.leaks().is_empty(), "{:?}", d.leaks());
}

/// The step numbers a build's output says were taken from the cache.
fn cached_steps(out: &str) -> Vec<usize> {
    let mut step = 0;
    let mut cached = Vec::new();
    for l in out.lines() {
        if let Some(rest) = l.strip_prefix("Step ") {
            step = rest.split('/').next().unwrap().parse().unwrap();
        }
        if l.contains("---> Using cache") {
            cached.push(step);
        }
    }
    cached
}

#[test]
fn the_cache_follows_content_arguments_and_no_cache() {
    let d = Daemon::start();
    let c = clients()[0].1;
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[
            (
                "Dockerfile",
                "FROM busybox:latest\nRUN echo base > /base\nARG FLAVOUR=plain\nCOPY app.txt /app.txt\nRUN echo $FLAVOUR > /flavour\nCMD [\"cat\", \"/app.txt\"]\n",
            ),
            ("app.txt", "v1\n"),
        ],
    );
    let build = |extra: &[&str]| {
        let mut args = vec!["build", "-t", "cached"];
        args.extend_from_slice(extra);
        args.push(".");
        let out = client_in(&d, c, ctx.path(), &args);
        out.assert_ok();
        out.stdout
    };
    let first = build(&[]);
    assert_eq!(cached_steps(&first), Vec::<usize>::new(), "{first}");
    // FROM is step 1; steps 2-6 are RUN, ARG, COPY, RUN, CMD.
    let again = build(&[]);
    assert_eq!(cached_steps(&again), [2, 3, 4, 5, 6], "{again}");
    // Touching the file changes nothing.
    let app = ctx.path().join("app.txt");
    let f = std::fs::File::options().write(true).open(&app).unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(60))
        .unwrap();
    drop(f);
    let touched = build(&[]);
    assert_eq!(cached_steps(&touched), [2, 3, 4, 5, 6], "{touched}");
    // New content: the steps from its COPY on rerun.
    std::fs::write(&app, "v2\n").unwrap();
    let changed = build(&[]);
    assert_eq!(cached_steps(&changed), [2, 3], "{changed}");
    assert_eq!(ok(d.docker(c, &["run", "--rm", "cached"])), "v2");
    // A changed argument: from its first use on (COPY does not use it).
    let arg = build(&["--build-arg", "FLAVOUR=spicy"]);
    assert_eq!(cached_steps(&arg), [2, 3, 4], "{arg}");
    assert_eq!(
        ok(d.docker(c, &["run", "--rm", "cached", "cat", "/flavour"])),
        "spicy"
    );
    let none = build(&["--no-cache"]);
    assert_eq!(cached_steps(&none), Vec::<usize>::new(), "{none}");
}

#[test]
fn a_cache_mount_keeps_its_content_across_builds() {
    let d = Daemon::start();
    let c = clients()[0].1;
    let ctx = tempfile::tempdir().unwrap();
    let dockerfile = |n: u32| {
        format!(
            "FROM busybox:latest\nRUN --mount=type=cache,target=/cache,id=berth-test \
             echo run{n} >> /cache/log && cat /cache/log > /seen\n"
        )
    };
    for n in 1..=2 {
        write_files(ctx.path(), &[("Dockerfile", &dockerfile(n))]);
        client_in(&d, c, ctx.path(), &["build", "-t", "mounted", "."]).assert_ok();
    }
    let seen = ok(d.docker(c, &["run", "--rm", "mounted", "cat", "/seen"]));
    assert_eq!(seen, "run1\nrun2", "the second build saw the first's file");
    // The cache directory is not in the image.
    d.docker(c, &["run", "--rm", "mounted", "ls", "/cache/log"])
        .assert_failed();
    let _ = IMAGE;
}

#[test]
fn a_client_that_goes_away_stops_the_build_and_its_container() {
    let d = Daemon::start();
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[(
            "Dockerfile",
            "FROM busybox:latest\nRUN echo started && sleep 60\n",
        )],
    );
    for (name, c) in all_clients() {
        let mut cmd = d.docker_cmd(&c, &["build", "-t", "never", "."]);
        cmd.current_dir(ctx.path());
        let mut build = cmd::Spawned::start(cmd, None, std::time::Duration::from_secs(120));
        berth_tests::poll::until(
            "the step to start",
            std::time::Duration::from_secs(60),
            || {
                let so_far = build.stdout_so_far();
                (so_far.contains("started"), so_far)
            },
        );
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(build.pid() as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        let _ = build.finished();
        // The step's container is killed and removed well before its sleep ends.
        berth_tests::poll::until(
            "the build container to go",
            std::time::Duration::from_secs(20),
            || {
                let ps = ok(d.docker(&c, &["ps", "-aq"]));
                (ps.is_empty(), format!("{name}: {ps}"))
            },
        );
        d.docker(&c, &["image", "inspect", "never"]).assert_failed();
    }
    assert!(d.leaks().is_empty(), "{:?}", d.leaks());
}

const BEYOND_CLASSIC: &str = r#"# syntax=docker/dockerfile:1
FROM busybox:latest AS tools
RUN <<EOF
mkdir -p /opt/tool
echo tool-v1 > /opt/tool/version
EOF

FROM busybox:latest
SHELL ["/bin/sh", "-ec"]
RUN --mount=type=bind,from=tools,source=/opt/tool,target=/mnt/tool \
    cp /mnt/tool/version /tool-version
RUN --mount=type=tmpfs,target=/scratch touch /scratch/x && ls /scratch > /tmpfs-seen
COPY <<-EOT /etc/motd
	hello from a heredoc
	EOT
COPY --exclude=*.log --exclude=skip/ app/ /app/
COPY --parents src/a/one.txt src/b/two.txt /tree/
COPY --from=busybox:latest /bin/busybox /from-image/busybox
ADD layer.tar /unpacked/
USER 1000:1000
WORKDIR /home/app
VOLUME /data
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --timeout=2s --retries=4 --start-period=1s CMD true
ONBUILD RUN echo child
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["id -u; id -g; pwd"]
"#;

#[test]
fn buildkit_features_beyond_the_classic_builder() {
    let d = Daemon::start();
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[
            ("Dockerfile", BEYOND_CLASSIC),
            ("app/main.txt", "main\n"),
            ("app/debug.log", "left out\n"),
            ("app/skip/x", "left out\n"),
            ("src/a/one.txt", "1\n"),
            ("src/b/two.txt", "2\n"),
        ],
    );
    // A local tar archive ADD unpacks.
    let inner = tempfile::tempdir().unwrap();
    write_files(inner.path(), &[("in-archive/file", "from the archive\n")]);
    berth_tests::cmd::host(
        "tar",
        &[
            "-cf",
            &ctx.path().join("layer.tar").to_string_lossy(),
            "-C",
            &inner.path().to_string_lossy(),
            "in-archive",
        ],
    );
    for (name, c) in all_clients() {
        let tag = format!("beyond-{name}");
        client_in(&d, &c, ctx.path(), &["build", "-t", &tag, "."]).assert_ok();
        assert_eq!(
            ok(d.docker(&c, &["run", "--rm", &tag])),
            "1000\n1000\n/home/app",
            "{name}"
        );
        let seen = ok(d.docker(
            &c,
            &[
                "run",
                "--rm",
                "--user",
                "0",
                "--entrypoint",
                "sh",
                &tag,
                "-c",
                "cat /tool-version /tmpfs-seen /etc/motd; ls /app; find /tree -type f | sort; \
                 cat /unpacked/in-archive/file; ls /scratch /mnt/tool 2>/dev/null | wc -l; \
                 cmp /bin/busybox /from-image/busybox && echo same",
            ],
        ));
        assert_eq!(
            seen.lines().map(str::trim).collect::<Vec<_>>(),
            [
                "tool-v1",
                "x",
                "hello from a heredoc",
                "main.txt",
                "/tree/src/a/one.txt",
                "/tree/src/b/two.txt",
                "from the archive",
                "0",
                "same",
            ],
            "{name}: {seen}"
        );
        let cfg = ok(d.docker(&c, &["image", "inspect", "-f", "{{json .Config}}", &tag]));
        let cfg: serde_json::Value = serde_json::from_str(&cfg).unwrap();
        assert_eq!(cfg["User"], "1000:1000", "{name}");
        assert_eq!(cfg["StopSignal"], "SIGINT", "{name}");
        assert!(cfg["Volumes"]["/data"].is_object(), "{name}: {cfg}");
        assert_eq!(
            cfg["OnBuild"],
            serde_json::json!(["RUN echo child"]),
            "{name}"
        );
        assert_eq!(
            cfg["Healthcheck"]["Test"],
            serde_json::json!(["CMD-SHELL", "true"]),
            "{name}"
        );
        assert_eq!(cfg["Healthcheck"]["Interval"], 5_000_000_000u64, "{name}");
        assert_eq!(cfg["Healthcheck"]["Retries"], 4, "{name}");
        assert_eq!(
            cfg["Entrypoint"],
            serde_json::json!(["/bin/sh", "-c"]),
            "{name}"
        );
        assert_eq!(
            cfg["Shell"],
            serde_json::json!(["/bin/sh", "-ec"]),
            "{name}"
        );
    }
    assert!(d.leaks().is_empty(), "{:?}", d.leaks());
}

const COMPARED: &str = r#"FROM busybox:latest
ENV APP=/srv/app PATH=/srv/app/bin:/usr/sbin:/usr/bin:/sbin:/bin
ARG VERSION=1.0
LABEL version=$VERSION maintainer="t@example.com"
WORKDIR $APP
COPY --chown=1000:1000 files/ ./files/
COPY script.sh bin/run
RUN mkdir -p /data/cache && chmod 1777 /data/cache && echo "$VERSION" > version \
 && chmod 4755 bin/run && ln -s bin/run run-link && ln version version-hard \
 && rm -r files/gone && chown -R 7:8 /data
ADD archive.tar /opt/
ADD plain.txt /opt/plain.txt
SHELL ["/bin/sh", "-ec"]
USER 1000:1000
EXPOSE 8080 53/udp
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=3s --retries=2 CMD ["true"]
STOPSIGNAL SIGQUIT
ONBUILD RUN echo child
ENTRYPOINT ["/srv/app/bin/run"]
CMD ["--serve"]
"#;

/// What `image` holds under the paths its build made: each path's owner,
/// mode and type, and the checksum of each regular file.
fn tree(run: impl Fn(&[&str]) -> Output, image: &str) -> String {
    let script = "find /srv /opt /data | sort | while read f; do \
                  stat -c '%n %u:%g %a %F' \"$f\"; \
                  if [ -f \"$f\" ] && [ ! -L \"$f\" ]; then md5sum < \"$f\"; fi; done";
    let out = run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--user",
        "0",
        "--entrypoint",
        "sh",
        image,
        "-c",
        script,
    ]);
    out.assert_ok();
    out.stdout
}

#[test]
fn berth_builds_what_dockerds_classic_builder_builds() {
    let d = Daemon::start();
    let reference = berth_tests::dockerd::Dockerd::start();
    let c = clients()[1].1;
    // The same busybox in both.
    reference.load_from(&d, IMAGE);
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[
            ("Dockerfile", COMPARED),
            ("files/a.txt", "a\n"),
            ("files/sub/b.txt", "b\n"),
            ("files/gone/x", "x\n"),
            ("script.sh", "#!/bin/sh\necho running \"$@\"\n"),
            ("plain.txt", "not unpacked\n"),
        ],
    );
    {
        use std::os::unix::fs::PermissionsExt as _;
        let p = ctx.path().join("files/a.txt");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let inner = tempfile::tempdir().unwrap();
    write_files(
        inner.path(),
        &[("pkg/lib/x.so", "lib\n"), ("pkg/README", "r\n")],
    );
    berth_tests::cmd::host(
        "tar",
        &[
            "--owner=5",
            "--group=6",
            "-cf",
            &ctx.path().join("archive.tar").to_string_lossy(),
            "-C",
            &inner.path().to_string_lossy(),
            "pkg",
        ],
    );
    let args = [
        "build",
        "--network",
        "none",
        "--build-arg",
        "VERSION=2.5",
        "-t",
        "compared",
        ".",
    ];
    client_in(&d, c, ctx.path(), &args).assert_ok();
    let mut theirs = reference.docker_cmd(&args);
    theirs.current_dir(ctx.path());
    cmd::run(theirs, None, std::time::Duration::from_secs(300)).assert_ok();

    let ours = tree(|a| d.docker(c, a), "compared");
    let theirs = tree(|a| reference.docker(a), "compared");
    assert!(ours.contains("/srv/app/bin/run 0:0 4755"), "{ours}");
    assert_eq!(ours, theirs, "files: berth (left) and dockerd (right)");

    let config = |out: Output| -> serde_json::Value {
        out.assert_ok();
        serde_json::from_str(out.stdout.trim()).unwrap()
    };
    let ours = config(d.docker(
        c,
        &["image", "inspect", "-f", "{{json .Config}}", "compared"],
    ));
    let theirs =
        config(reference.docker(&["image", "inspect", "-f", "{{json .Config}}", "compared"]));
    for field in [
        "Env",
        "Cmd",
        "Entrypoint",
        "WorkingDir",
        "User",
        "ExposedPorts",
        "Labels",
        "Volumes",
        "Healthcheck",
        "StopSignal",
        "Shell",
        "OnBuild",
    ] {
        assert_eq!(
            ours[field], theirs[field],
            "{field}: berth {ours} dockerd {theirs}"
        );
    }
    assert!(d.leaks().is_empty(), "{:?}", d.leaks());
}
