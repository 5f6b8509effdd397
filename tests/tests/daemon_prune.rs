//! Pruning through the daemon with both docker clients and berth's own:
//! `container prune` takes the stopped containers and leaves the running
//! one; `image prune` the images without a name (with `-a` every image no
//! container uses); `system prune` all of it; without `-f` berth asks first.

use berth_tests::daemon::{clients, Daemon, IMAGE};
use berth_tests::ok;

#[test]
fn container_and_image_prune_take_only_what_is_unused() {
    let d = Daemon::start();
    for (name, c) in clients() {
        let running = ok(d.docker(c, &["run", "-d", IMAGE, "sleep", "1000"]));
        let stopped: Vec<String> = (0..2)
            .map(|i| {
                ok(d.docker(
                    c,
                    &["run", "--name", &format!("gone-{name}-{i}"), IMAGE, "true"],
                ))
            })
            .collect();
        let created = ok(d.docker(c, &["create", IMAGE, "true"]))
            .trim()
            .to_string();
        // A filter berth does not know is refused rather than ignored.
        let filtered = d.docker(c, &["container", "prune", "-f", "--filter", "until=1h"]);
        filtered.assert_failed();
        assert!(filtered.stderr.contains("until"), "{name}: {filtered}");
        let out = d.docker(c, &["container", "prune", "-f"]);
        out.assert_ok();
        assert!(out.stdout.contains("Deleted Containers:"), "{name}: {out}");
        assert!(out.stdout.contains(&created), "{name}: {out}");
        assert!(
            out.stdout.contains("Total reclaimed space:"),
            "{name}: {out}"
        );
        let left = ok(d.docker(c, &["ps", "-aq", "--no-trunc"]));
        assert_eq!(
            left.trim(),
            running.trim(),
            "{name}: only the running one stays"
        );
        drop(stopped);

        // A dangling image goes with image prune; named ones stay.
        let id = ok(d.docker(c, &["create", IMAGE, "true"]))
            .trim()
            .to_string();
        let dangling = ok(d.docker(c, &["commit", &id])).trim().to_string();
        ok(d.docker(
            c,
            &[
                "commit",
                "-c",
                "ENV SPARE=1",
                &id,
                &format!("spare-{name}:v1"),
            ],
        ));
        ok(d.docker(c, &["rm", &id]));
        let out = d.docker(c, &["image", "prune", "-f"]);
        out.assert_ok();
        assert!(
            out.stdout.contains(&format!("deleted: {dangling}")),
            "{name}: {out}"
        );
        let images = ok(d.docker(c, &["images", "--format", "{{.Repository}}:{{.Tag}}"]));
        assert!(
            images.contains(&format!("spare-{name}:v1")),
            "{name}: {images}"
        );
        assert!(!images.contains("<none>"), "{name}: {images}");
        // -a: every image no container uses; the running container's stays.
        let out = d.docker(c, &["image", "prune", "-a", "-f"]);
        out.assert_ok();
        let images = ok(d.docker(c, &["images", "--format", "{{.Repository}}:{{.Tag}}"]));
        assert!(!images.contains("spare-"), "{name}: {images}");
        assert!(
            !ok(d.docker(c, &["images", "-q"])).trim().is_empty(),
            "{name}: the used image went"
        );
        // The image stayed: the running container used it.
        ok(d.docker(c, &["rm", "-f", running.trim()]));
    }
}

#[test]
fn system_prune_takes_everything_unused_and_berth_asks_first() {
    let d = Daemon::start();
    let (_, c) = clients()[0];
    ok(d.docker(c, &["run", IMAGE, "true"]));
    ok(d.docker(c, &["network", "create", "spare-net"]));
    ok(d.docker(c, &["volume", "create", "spare-vol"]));
    // berth asks, and a "no" leaves everything.
    let no = berth_tests::cmd::run(
        d.docker_cmd(berth_tests::binary::berth(), &["container", "prune"]),
        Some(b"n\n"),
        std::time::Duration::from_secs(60),
    );
    no.assert_ok();
    assert!(
        no.stdout
            .contains("Are you sure you want to continue? [y/N]"),
        "{no}"
    );
    assert_eq!(ok(d.docker(c, &["ps", "-aq"])).lines().count(), 1);
    let out = d.berth(&["system", "prune", "--volumes", "-f"]);
    out.assert_ok();
    for want in [
        "Deleted Containers:",
        "Deleted Networks:",
        "spare-net",
        "Deleted Volumes:",
        "spare-vol",
    ] {
        assert!(out.stdout.contains(want), "no {want}: {out}");
    }
    assert_eq!(ok(d.docker(c, &["ps", "-aq"])).trim(), "");
    // docker's own system prune (it also prunes the build cache).
    let out = d.docker(c, &["system", "prune", "-a", "-f"]);
    out.assert_ok();
    assert!(out.stdout.contains("Total reclaimed space"), "{out}");
    assert_eq!(ok(d.docker(c, &["images", "-q"])).trim(), "");
}
