//! Images end to end: pull from a real registry, unpack with the storage
//! plugin, run; copy-on-write isolation; whiteouts; load/save round trips;
//! bad input (unknown image, digest mismatch, auth) failing cleanly.

use berth_tests::walk;
use berth_tests::{images, Berth, Registry};

fn pushed(reg: &Registry, repo: &str, whiteout: bool) -> tempfile::TempDir {
    let layout = tempfile::Builder::new()
        .prefix("berth-layout-")
        .tempdir()
        .unwrap();
    let l = layout.path().join("oci");
    images::busybox_layout(&l, "latest", whiteout);
    reg.push_layout(&l, "latest", repo, None);
    layout
}

#[test]
fn pull_then_run_and_a_second_pull_downloads_nothing() {
    let reg = Registry::start();
    let _l = pushed(&reg, "busybox", false);
    let b = Berth::new("");
    let image = format!("{}/busybox", reg.addr);
    let pull = b.cmd(&["pull", &image]);
    pull.assert_ok();
    // Not a terminal: docker's per-layer status lines, one per change.
    for status in [
        "Pulling fs layer",
        "Downloading",
        "Download complete",
        "Extracting",
        "Pull complete",
    ] {
        assert!(
            pull.stdout.contains(&format!(": {status}\n")),
            "no {status:?} line:\n{pull}"
        );
    }
    let first = reg.blob_gets();
    assert!(
        first >= 2,
        "config and layer should have been downloaded:\n{}",
        reg.log()
    );
    let out = b.cmd(&["run", "--rm", &image, "echo", "hello", "from", "berth"]);
    out.assert_ok();
    assert_eq!(out.stdout.trim(), "hello from berth", "{out}");
    let again = b.cmd(&["pull", &image]);
    again.assert_ok();
    assert!(again.stdout.contains(": Already exists\n"), "{again}");
    assert!(!again.stdout.contains("Downloading"), "{again}");
    assert!(
        again.stdout.contains("Status: Image is up to date for"),
        "{again}"
    );
    assert_eq!(
        reg.blob_gets(),
        first,
        "the second pull downloaded blobs again"
    );
    let images = b.cmd(&["images"]);
    images.assert_ok();
    assert!(
        images.stdout.contains(&format!("{}/busybox", reg.addr)),
        "{images}"
    );
}

fn cow_isolation(config: &str) {
    let reg = Registry::start();
    let _l = pushed(&reg, "busybox", false);
    let b = Berth::new(config);
    let image = format!("{}/busybox", reg.addr);
    b.cmd(&["pull", "-q", &image]).assert_ok();
    // Two containers at once, each writing its own file over a shared image file.
    let one = b.command(&[
        "run",
        "--rm",
        &image,
        "sh",
        "-c",
        "echo one > /etc/berth-base; sleep 1; cat /etc/berth-base; ls /tmp",
    ]);
    let s1 = berth_tests::Spawned::start(one, None, std::time::Duration::from_secs(120));
    let two = b.cmd(&[
        "run",
        "--rm",
        &image,
        "sh",
        "-c",
        "echo two > /etc/berth-base; touch /tmp/two; cat /etc/berth-base",
    ]);
    two.assert_ok();
    assert_eq!(two.stdout.trim(), "two", "{two}");
    let one = s1.wait();
    one.assert_ok();
    assert_eq!(
        one.lines(),
        ["one"],
        "container one saw another's changes: {one}"
    );
    let three = b.cmd(&["run", "--rm", &image, "cat", "/etc/berth-base"]);
    three.assert_ok();
    assert_eq!(
        three.stdout.trim(),
        "base",
        "the image was changed by a container: {three}"
    );
}

#[test]
fn containers_are_copy_on_write_with_overlay() {
    cow_isolation("");
}

#[test]
fn containers_are_copy_on_write_with_vfs() {
    cow_isolation("storage-driver = \"vfs\"\n");
}

#[test]
fn whiteouts_hide_lower_files() {
    for driver in ["overlay", "vfs"] {
        let reg = Registry::start();
        let _l = pushed(&reg, "layered", true);
        let b = Berth::new(&format!("storage-driver = \"{driver}\"\n"));
        let image = format!("{}/layered", reg.addr);
        b.cmd(&["pull", "-q", &image]).assert_ok();
        let out = b.cmd(&[
            "run",
            "--rm",
            &image,
            "sh",
            "-c",
            "ls /etc/berth-base 2>&1; cat /etc/berth-top",
        ]);
        out.assert_ok();
        assert!(
            out.stdout.contains("No such file"),
            "{driver}: the whiteout did not hide the file: {out}"
        );
        assert!(out.stdout.contains("top"), "{driver}: {out}");
    }
}

#[test]
fn save_and_load_round_trip_and_skopeo_reads_the_archive() {
    let reg = Registry::start();
    let _l = pushed(&reg, "busybox", false);
    let b = Berth::new("");
    let image = format!("{}/busybox", reg.addr);
    b.cmd(&["pull", "-q", &image]).assert_ok();
    let tar = b.root().join("saved.tar");
    b.cmd(&["save", "-o", &tar.to_string_lossy(), &image])
        .assert_ok();
    for kind in ["oci-archive", "docker-archive"] {
        let out =
            berth_tests::cmd::host("skopeo", &["inspect", &format!("{kind}:{}", tar.display())]);
        assert!(out.stdout.contains("\"Layers\""), "{kind}: {out}");
    }
    let fresh = Berth::new("");
    let out = fresh.cmd(&["load", "-i", &tar.to_string_lossy()]);
    out.assert_ok();
    assert!(out.stdout.contains("Loaded image"), "{out}");
    let run = fresh.cmd(&["run", "--rm", &image, "cat", "/etc/berth-base"]);
    run.assert_ok();
    assert_eq!(run.stdout.trim(), "base", "{run}");
}

#[test]
fn an_oci_layout_directory_loads() {
    let layout = tempfile::Builder::new()
        .prefix("berth-layout-")
        .tempdir()
        .unwrap();
    let l = layout.path().join("oci");
    images::busybox_layout(&l, "v1", false);
    let b = Berth::new("");
    let out = b.cmd(&["load", "-i", &l.to_string_lossy()]);
    out.assert_ok();
    let images = b.cmd(&["images", "--format", "json"]);
    images.assert_ok();
    assert!(images.stdout.contains("\"v1\""), "{images}");
}

#[test]
fn an_unknown_image_fails_naming_it_and_leaves_nothing() {
    let reg = Registry::start();
    let b = Berth::new("");
    let image = format!("{}/nothing-here:v9", reg.addr);
    let out = b.cmd(&["pull", &image]);
    out.assert_failed();
    assert!(out.stderr.contains("nothing-here"), "{out}");
    let blobs = std::fs::read_dir(b.root().join("blobs/sha256"))
        .map(|d| {
            d.filter(|e| e.as_ref().unwrap().file_name() != ".ingest")
                .count()
        })
        .unwrap_or(0);
    assert_eq!(blobs, 0, "blobs left after a failed pull");
}

#[test]
fn a_blob_with_the_wrong_digest_is_refused_and_not_kept() {
    let reg = Registry::start();
    let _l = pushed(&reg, "busybox", false);
    // Corrupt every layer blob in the registry's storage (same size, other bytes).
    let blobs = reg.data().join("docker/registry/v2/blobs/sha256");
    for e in walk(&blobs) {
        if e.file_name().map(|n| n == "data").unwrap_or(false) {
            let len = std::fs::metadata(&e).unwrap().len();
            if len > 4096 {
                std::fs::write(&e, vec![0u8; len as usize]).unwrap();
            }
        }
    }
    let b = Berth::new("");
    let out = b.cmd(&["pull", &format!("{}/busybox", reg.addr)]);
    out.assert_failed();
    assert!(
        out.stderr.contains("digest") || out.stderr.contains("sha256"),
        "{out}"
    );
    let images = b.cmd(&["images", "-q"]);
    assert!(
        images.stdout.trim().is_empty(),
        "an image was recorded: {images}"
    );
}

#[test]
fn a_registry_with_auth_refuses_anonymous_and_accepts_configured_credentials() {
    let reg = Registry::start_with_auth("tester", "s3cret");
    let layout = tempfile::Builder::new()
        .prefix("berth-layout-")
        .tempdir()
        .unwrap();
    let l = layout.path().join("oci");
    images::busybox_layout(&l, "latest", false);
    reg.push_layout(&l, "latest", "private", Some(("tester", "s3cret")));
    let image = format!("{}/private", reg.addr);
    let anon = Berth::new("");
    let out = anon.cmd(&["pull", &image]);
    out.assert_failed();
    assert!(
        out.stderr.to_lowercase().contains("unauthorized") || out.stderr.contains("401"),
        "{out}"
    );
    let cfg = format!(
        "[registry.\"{}\"]\nusername = \"tester\"\npassword = \"s3cret\"\n",
        reg.addr
    );
    let authed = Berth::new(&cfg);
    authed.cmd(&["pull", &image]).assert_ok();
}

/// A loopback port nothing listens on.
fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn pull_goes_through_the_mirrors_berth_toml_lists() {
    let mirror = Registry::start();
    let _l = pushed(&mirror, "busybox", false);
    let (registry, broken) = (dead_port(), dead_port());
    let b = Berth::new(&format!(
        "[registry.\"127.0.0.1:{registry}\"]\nmirrors = [\"127.0.0.1:{broken}\", \"http://{}\"]\n",
        mirror.addr
    ));
    let image = format!("127.0.0.1:{registry}/busybox");
    b.cmd(&["pull", "-q", &image]).assert_ok();
    assert!(
        mirror.blob_gets() >= 2,
        "the blobs should have come from the mirror:\n{}",
        mirror.log()
    );
    let out = b.cmd(&["run", "--rm", &image, "echo", "mirrored"]);
    out.assert_ok();
    assert_eq!(out.stdout.trim(), "mirrored", "{out}");
    let images = b.cmd(&["images"]);
    assert!(images.stdout.contains(&image), "named as pulled:\n{images}");

    // Without the mirror, the dead registry is the error.
    let plain = Berth::new("");
    let out = plain.cmd(&["pull", "-q", &image]);
    out.assert_failed();
    assert!(
        out.stderr.contains(&format!("127.0.0.1:{registry}")),
        "{out}"
    );
}

#[test]
fn a_malformed_mirror_is_a_configuration_error() {
    let b = Berth::new("[registry.\"127.0.0.1:1\"]\nmirrors = [\"http://m:5000/v2/busybox\"]\n");
    let out = b.cmd(&["pull", "-q", "127.0.0.1:1/busybox"]);
    out.assert_failed();
    assert!(
        out.stderr.contains("mirror \"http://m:5000/v2/busybox\""),
        "the error should name the mirror:\n{out}"
    );
}

#[test]
fn rmi_refuses_an_image_a_container_uses_unless_forced_and_nothing_is_left() {
    use std::process::Stdio;
    use std::time::Duration;
    let reg = Registry::start();
    let _l = pushed(&reg, "busybox", false);
    let b = Berth::new("");
    let image = format!("{}/busybox", reg.addr);
    b.cmd(&["pull", "-q", &image]).assert_ok();
    let layers = b.root().join("plugins/overlay/layers");
    let count = |dir: &std::path::Path| std::fs::read_dir(dir).map_or(0, |d| d.count());
    assert!(count(&layers) > 0, "no layer in {}", layers.display());
    let mut running = b
        .command(&["run", "--rm", &image, "sleep", "6"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let containers = b.root().join("containers");
    berth_tests::until(
        "the container's root filesystem",
        Duration::from_secs(30),
        || {
            std::fs::read_dir(&containers)
                .ok()?
                .flatten()
                .find(|e| e.path().join("rootfs/bin/sh").exists())
                .map(drop)
        },
    );

    let out = b.cmd(&["rmi", &image]);
    out.assert_failed();
    assert!(out.stderr.contains("is used by container"), "{out}");
    let images = b.cmd(&["images", "-q"]);
    assert!(!images.stdout.trim().is_empty(), "the image went: {images}");

    let out = b.cmd(&["rmi", "-f", &image]);
    out.assert_ok();
    assert!(out.stdout.contains("Untagged:"), "{out}");
    assert!(b.cmd(&["images", "-q"]).stdout.trim().is_empty());

    let status = running.wait().unwrap();
    assert!(status.success(), "the container was disturbed: {status}");
    // Its end took the layers the forced rmi could not remove.
    assert_eq!(
        count(&layers),
        0,
        "layers left behind in {}",
        layers.display()
    );
    assert!(
        walk(&b.root().join("blobs")).is_empty(),
        "blobs left behind: {:?}",
        walk(&b.root().join("blobs"))
    );
}
