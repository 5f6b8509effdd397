//! `commit` through the daemon with both docker clients and berth's own:
//! a container's added, changed and deleted files and directories become a
//! layer of a new image that runs; `-c` changes, the message and the author
//! land in its config; an image committed without a name is `<none>`; bad
//! input fails naming the problem and leaves no image.

use berth_tests::daemon::{clients, Daemon, IMAGE};
use berth_tests::ok;

/// Makes a container that added, changed and deleted files and a
/// directory, and has ended; returns its id.
fn changed_container(d: &Daemon, c: &str) -> String {
    let script = "echo new > /added && echo changed > /etc/berth-base && rm /etc/group \
                  && rm -r /mnt && mkdir -p /made/dir && echo deep > /made/dir/file";
    let id = ok(d.docker(c, &["create", IMAGE, "sh", "-c", script]));
    ok(d.docker(c, &["start", "-a", &id]));
    id
}

/// The entries of an image's top layer, from `docker save`.
fn top_layer(d: &Daemon, c: &str, image: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("image.tar");
    ok(d.docker(c, &["save", "-o", &tar.to_string_lossy(), image]));
    let x = berth_tests::cmd::host(
        "tar",
        &[
            "-xf",
            &tar.to_string_lossy(),
            "-C",
            &dir.path().to_string_lossy(),
        ],
    );
    x.assert_ok();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).unwrap()).unwrap();
    let top = manifest[0]["Layers"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_str()
        .unwrap();
    let list = berth_tests::cmd::host("tar", &["-tzf", &dir.path().join(top).to_string_lossy()]);
    list.assert_ok();
    list.stdout
        .lines()
        .map(|l| l.trim_start_matches("./").trim_end_matches('/').to_string())
        .collect()
}

#[test]
fn a_committed_container_runs_with_its_changes_and_config() {
    let d = Daemon::start();
    for (name, c) in clients() {
        let id = changed_container(&d, c);
        let tag = format!("committed-{name}:v1");
        let out = d.docker(
            c,
            &[
                "commit",
                "-a",
                "Ann <ann@example.com>",
                "-m",
                "two words",
                "-c",
                "ENV A=1",
                "-c",
                r#"CMD ["cat", "/added"]"#,
                "-c",
                "EXPOSE 8080",
                "-c",
                "LABEL team=infra",
                &id,
                &tag,
            ],
        );
        out.assert_ok();
        let image_id = out.stdout.trim().to_string();
        // docker diff: the container's changes, sorted, without berth's mountpoints.
        let diff = ok(d.docker(c, &["diff", &id]));
        assert_eq!(
            diff.lines().collect::<Vec<_>>(),
            [
                "A /added",
                "C /etc",
                "C /etc/berth-base",
                "D /etc/group",
                "A /made",
                "A /made/dir",
                "A /made/dir/file",
                "D /mnt"
            ],
            "{name}"
        );
        // docker history: the commit on top of the base image's rows.
        let history = ok(d.docker(
            c,
            &[
                "history",
                "--no-trunc",
                "--format",
                "{{.ID}}|{{.CreatedBy}}|{{.Comment}}",
                &tag,
            ],
        ));
        let top = history.lines().next().unwrap_or_default();
        assert!(
            top.starts_with(&format!("{image_id}|sh -c echo new > /added"))
                && top.ends_with("|two words"),
            "{name}: {history}"
        );
        assert!(
            image_id.starts_with("sha256:") && image_id.len() == 71,
            "{name}: {out}"
        );
        // The new image's CMD.
        let run = d.docker(c, &["run", "--rm", &tag]);
        run.assert_ok();
        assert_eq!(run.stdout, "new\n", "{name}: {run}");
        // Added, changed and deleted files and directories.
        let script = "cat /added /etc/berth-base /made/dir/file; \
                      test -e /etc/group && echo group || echo no-group; \
                      test -e /mnt && echo mnt || echo no-mnt; echo A=$A";
        let run = d.docker(c, &["run", "--rm", &tag, "sh", "-c", script]);
        run.assert_ok();
        assert_eq!(
            run.lines(),
            ["new", "changed", "deep", "no-group", "no-mnt", "A=1"],
            "{name}: {run}"
        );
        let inspect = ok(d.docker(
            c,
            &[
                "image",
                "inspect",
                "--format",
                "{{.Id}}|{{.Author}}|{{json .Config.ExposedPorts}}|{{.Config.Labels.team}}|{{len .RootFS.Layers}}",
                &tag,
            ],
        ));
        assert_eq!(
            inspect.trim(),
            format!("{image_id}|Ann <ann@example.com>|{{\"8080/tcp\":{{}}}}|infra|2"),
            "{name}"
        );
        // The new layer holds the changes (whiteouts for what was deleted),
        // not the mountpoints berth made for /etc/hosts and friends.
        let layer = top_layer(&d, c, &tag);
        for want in [
            "added",
            "etc/berth-base",
            "etc/.wh.group",
            ".wh.mnt",
            "made/dir/file",
        ] {
            assert!(
                layer.iter().any(|l| l == want),
                "{name}: no {want} in {layer:?}"
            );
        }
        for unwanted in ["etc/hostname", "etc/hosts", "etc/resolv.conf"] {
            assert!(
                !layer.iter().any(|l| l == unwanted),
                "{name}: {unwanted} in {layer:?}"
            );
        }
        ok(d.docker(c, &["rm", &id]));
        ok(d.docker(c, &["rmi", &tag]));
    }
}

#[test]
fn a_commit_without_a_name_is_dangling_and_berths_cli_commits_too() {
    let d = Daemon::start();
    let (_, c) = clients()[0];
    let id = changed_container(&d, c);
    let image_id = ok(d.docker(c, &["commit", &id])).trim().to_string();
    let images = ok(d.docker(
        c,
        &[
            "images",
            "--no-trunc",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.ID}}",
        ],
    ));
    assert!(
        images
            .lines()
            .any(|l| l == format!("<none>:<none> {image_id}")),
        "{images}"
    );
    // It runs by id, and berth's own client commits the same way.
    let run = d.docker(c, &["run", "--rm", &image_id, "cat", "/added"]);
    run.assert_ok();
    assert_eq!(run.stdout, "new\n", "{run}");
    let by_berth = d.berth(&[
        "commit",
        "--pause=false",
        "-c",
        "USER nobody",
        &id,
        "by-berth",
    ]);
    by_berth.assert_ok();
    let user = ok(d.docker(
        c,
        &[
            "image",
            "inspect",
            "--format",
            "{{.Config.User}}",
            "by-berth",
        ],
    ));
    assert_eq!(user.trim(), "nobody");
    // Naming the dangling image takes it out of <none>.
    ok(d.docker(c, &["tag", &image_id, "named:now"]));
    let images = ok(d.docker(c, &["images", "--format", "{{.Repository}}:{{.Tag}}"]));
    assert!(!images.contains("<none>"), "{images}");
    // Removing it by id removes it.
    ok(d.docker(c, &["rmi", "named:now"]));
    let images = ok(d.docker(c, &["images", "-q", "--no-trunc"]));
    assert!(!images.contains(&image_id), "{images}");
}

#[test]
fn bad_commits_fail_naming_the_problem_and_make_no_image() {
    let d = Daemon::start();
    for (name, c) in clients() {
        let id = changed_container(&d, c);
        let before = ok(d.docker(c, &["images", "-q"]));
        let bad = d.docker(c, &["commit", "-c", "RUN make", &id, "nope"]);
        bad.assert_failed();
        assert!(
            bad.stderr.contains("RUN is not a valid change command"),
            "{name}: {bad}"
        );
        let missing = d.docker(c, &["commit", "no-such-container", "nope"]);
        missing.assert_failed();
        assert!(
            missing
                .stderr
                .contains("No such container: no-such-container"),
            "{name}: {missing}"
        );
        let upper = d.docker(c, &["commit", &id, "UPPER"]);
        upper.assert_failed();
        assert_eq!(ok(d.docker(c, &["images", "-q"])), before, "{name}");
        ok(d.docker(c, &["rm", &id]));
    }
}
