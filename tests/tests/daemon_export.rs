//! `export` and `import` through the daemon with both docker clients and
//! berth's own: a container's filesystem out as a tar, and a tar back in as
//! a one-layer image that runs; what is not a tar is refused and leaves no
//! image.

use std::time::Duration;

use berth_tests::daemon::{clients, Daemon, IMAGE};
use berth_tests::ok;

#[test]
fn a_container_exported_and_imported_runs_again() {
    let d = Daemon::start();
    for (name, c) in clients() {
        let id = ok(d.docker(
            c,
            &[
                "run",
                "-d",
                IMAGE,
                "sh",
                "-c",
                "echo new > /added; sleep 1000",
            ],
        ));
        let id = id.trim();
        berth_tests::until("the file", Duration::from_secs(30), || {
            d.docker(c, &["exec", id, "cat", "/added"]).stdout == "new\n"
        });
        let dir = tempfile::tempdir().unwrap();
        let tar = dir.path().join("fs.tar");
        // A running container exports as it is.
        ok(d.docker(c, &["export", "-o", &tar.to_string_lossy(), id]));
        let list = berth_tests::cmd::host("tar", &["-tf", &tar.to_string_lossy()]);
        let names: Vec<&str> = list
            .stdout
            .lines()
            .map(|l| l.trim_start_matches("./"))
            .collect();
        for want in ["added", "bin/busybox", "etc/berth-base"] {
            assert!(names.contains(&want), "{name}: no {want} in the export");
        }
        let tag = format!("imported-{name}:v1");
        let out = d.docker(
            c,
            &[
                "import",
                "-c",
                r#"CMD ["cat", "/added"]"#,
                "-m",
                "from a tar",
                &tar.to_string_lossy(),
                &tag,
            ],
        );
        out.assert_ok();
        let image_id = out.stdout.trim().to_string();
        assert!(image_id.starts_with("sha256:"), "{name}: {out}");
        let run = d.docker(c, &["run", "--rm", &tag]);
        run.assert_ok();
        assert_eq!(run.stdout, "new\n", "{name}: {run}");
        let history = ok(d.docker(c, &["history", "--format", "{{.Comment}}", &tag]));
        assert_eq!(history.trim(), "from a tar", "{name}");
        ok(d.docker(c, &["rm", "-f", id]));
        ok(d.docker(c, &["rmi", &tag]));
    }
}

#[test]
fn berths_cli_exports_and_imports_from_stdin_and_bad_archives_fail() {
    let d = Daemon::start();
    let (_, c) = clients()[0];
    let id = ok(d.docker(c, &["create", IMAGE, "true"]));
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("fs.tar");
    ok(d.berth(&["export", "-o", &tar.to_string_lossy(), id.trim()]));
    let bytes = std::fs::read(&tar).unwrap();
    let out = berth_tests::cmd::run(
        d.docker_cmd(berth_tests::binary::berth(), &["import", "-", "piped:in"]),
        Some(&bytes),
        Duration::from_secs(120),
    );
    out.assert_ok();
    let run = d.docker(c, &["run", "--rm", "piped:in", "cat", "/etc/berth-base"]);
    run.assert_ok();
    assert_eq!(run.stdout, "base\n", "{run}");
    let before = ok(d.docker(c, &["images", "-q"]));
    let junk = dir.path().join("junk.tar");
    std::fs::write(&junk, vec![b'x'; 4096]).unwrap();
    let bad = d.docker(c, &["import", &junk.to_string_lossy(), "junk:v1"]);
    bad.assert_failed();
    assert!(bad.stderr.contains("importing"), "{bad}");
    assert_eq!(ok(d.docker(c, &["images", "-q"])), before);
}

#[test]
fn an_export_keeps_hard_links_and_extended_attributes() {
    let d = Daemon::start();
    let c = clients()[0].1;
    let id = ok(d.docker(
        c,
        &[
            "run", "-d", IMAGE, "sh", "-c",
            "echo one > /first && ln /first /second && echo x > /tagged && touch /ready && sleep 1000",
        ],
    ));
    let id = id.trim();
    berth_tests::until("the files", Duration::from_secs(30), || {
        d.docker(c, &["exec", id, "test", "-e", "/ready"]).code == 0
    });
    let pid = ok(d.docker(c, &["inspect", "-f", "{{.State.Pid}}", id]));
    let tagged = std::path::Path::new("/proc")
        .join(pid.trim())
        .join("root/tagged");
    let set = berth_tests::cmd::host(
        "python3",
        &[
            "-c",
            "import os,sys; os.setxattr(sys.argv[1], 'user.berth', b'kept', follow_symlinks=False)",
            &tagged.to_string_lossy(),
        ],
    );
    set.assert_ok();
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("fs.tar");
    ok(d.docker(c, &["export", "-o", &tar.to_string_lossy(), id]));
    let script = "import tarfile,sys\n\
        t = tarfile.open(sys.argv[1])\n\
        for m in t.getmembers():\n\
        \x20   n = m.name.lstrip('./')\n\
        \x20   if n in ('first', 'second', 'tagged'):\n\
        \x20       x = m.pax_headers.get('SCHILY.xattr.user.berth', '')\n\
        \x20       print(n, 'link:' + m.linkname if m.islnk() else 'file', x)\n";
    let listed = berth_tests::cmd::host("python3", &["-c", script, &tar.to_string_lossy()]);
    listed.assert_ok();
    let lines: Vec<&str> = listed.stdout.lines().collect();
    assert!(lines.contains(&"first file "), "{listed}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("second link:") && l.contains("first")),
        "the second name is a hard link: {listed}"
    );
    assert!(
        lines.contains(&"tagged file kept"),
        "the xattr is kept: {listed}"
    );
    ok(d.docker(c, &["rm", "-f", id]));
}
