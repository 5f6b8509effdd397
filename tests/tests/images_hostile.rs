//! Hostile and broken images fail cleanly: layers that try to write outside
//! their root (`..` entries, writes through a symlink pointing out) and
//! truncated downloads; nothing is written outside berth's root and no
//! image is recorded.

use berth_tests::crafted::{self, Entry};
use berth_tests::walk;
use berth_tests::{Berth, Output, Registry};

fn marker(tag: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("/tmp/berth-escape-{tag}-{}", std::process::id()))
}

/// Loads an image of one layer made of `entries` with each storage driver,
/// and hands each driver's berth and the output of `load` to `check`.
fn load_with_each_driver(entries: &[Entry], check: impl Fn(&str, &Berth, &Output)) {
    let dir = tempfile::Builder::new()
        .prefix("berth-crafted-")
        .tempdir()
        .unwrap();
    let layout = dir.path().join("evil");
    crafted::layout(&layout, "v1", entries);
    for driver in ["overlay", "vfs"] {
        let b = Berth::new(&format!("storage-driver = \"{driver}\"\n"));
        let out = b.cmd(&["load", "-i", &layout.to_string_lossy()]);
        check(driver, &b, &out);
    }
}

/// The load failed, naming `what`, and recorded no image.
fn refused(driver: &str, b: &Berth, out: &Output, what: &str) {
    out.assert_failed();
    assert!(
        out.stderr.contains(what),
        "{driver}: the error does not name {what:?}: {out}"
    );
    let images = b.cmd(&["images", "-q"]);
    assert!(
        images.stdout.trim().is_empty(),
        "{driver}: an image was recorded: {images}"
    );
}

fn load_fails(entries: Vec<Entry>, escaped: &std::path::Path) {
    let _ = std::fs::remove_file(escaped);
    load_with_each_driver(&entries, |driver, b, out| {
        assert!(
            !escaped.exists(),
            "{driver}: the layer wrote {} on the host: {out}",
            escaped.display()
        );
        refused(driver, b, out, "..");
    });
}

#[test]
fn a_layer_with_dotdot_entries_is_refused() {
    let m = marker("dotdot");
    let name = format!("../../../../../../..{}", m.display());
    load_fails(
        vec![Entry::File {
            name,
            data: b"pwned".to_vec(),
        }],
        &m,
    );
}

#[test]
fn a_hard_link_out_of_the_layer_is_refused_and_nothing_is_written_through_it() {
    use std::os::unix::fs::MetadataExt;
    let host = marker("hardlink");
    std::fs::write(&host, "original").unwrap();
    for target in [
        format!("../../../../../../..{}", host.display()),
        host.display().to_string(),
    ] {
        let entries = vec![
            Entry::Hardlink {
                name: "evil".into(),
                target: target.clone(),
            },
            Entry::File {
                name: "evil".into(),
                data: b"pwned".to_vec(),
            },
        ];
        let name = host.file_name().unwrap().to_string_lossy().into_owned();
        load_with_each_driver(&entries, |driver, b, out| {
            let meta = std::fs::metadata(&host).unwrap();
            assert_eq!(
                std::fs::read_to_string(&host).unwrap(),
                "original",
                "{driver}, link to {target}: the host file was written through: {out}"
            );
            assert_eq!(
                meta.nlink(),
                1,
                "{driver}, link to {target}: berth's root holds a link to a host file: {out}"
            );
            // An absolute target names a path inside the layer, which does not
            // exist there; `..` leaves the layer. Either way the load fails.
            refused(driver, b, out, &name);
        });
    }
    std::fs::remove_file(&host).unwrap();
}

#[test]
fn a_write_through_a_symlink_out_of_the_layer_stays_inside() {
    let m = marker("symlink");
    let entries = vec![
        Entry::Symlink {
            name: "evil".into(),
            target: "/tmp".into(),
        },
        Entry::File {
            name: format!("evil/{}", m.file_name().unwrap().to_string_lossy()),
            data: b"pwned".to_vec(),
        },
    ];
    let _ = std::fs::remove_file(&m);
    load_with_each_driver(&entries, |driver, b, out| {
        assert!(
            !m.exists(),
            "{driver}: the layer wrote {} on the host: {out}",
            m.display()
        );
        // Either refused, or unpacked with the symlink resolved inside the
        // layer (as the kernel would after pivot_root): never on the host.
        if out.code == 0 {
            // The layer has no shell: check the file landed inside the layer
            // (under the layer's own /tmp) with the storage driver's view.
            let inside = walk(b.root())
                .into_iter()
                .any(|p| p.ends_with(format!("tmp/{}", m.file_name().unwrap().to_string_lossy())));
            assert!(
                inside,
                "{driver}: the load succeeded but the file is nowhere in berth's root: {out}"
            );
        }
    });
}

#[test]
fn device_nodes_in_a_layer_unpack_with_the_built_in_drivers() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::Builder::new()
        .prefix("berth-crafted-")
        .tempdir()
        .unwrap();
    let layout = dir.path().join("devs");
    let entries = vec![
        Entry::Dir {
            name: "dev/".into(),
        },
        Entry::CharDev {
            name: "dev/console".into(),
            major: 5,
            minor: 1,
        },
    ];
    crafted::layout(&layout, "v1", &entries);
    for driver in ["overlay", "vfs"] {
        let b = Berth::new(&format!("storage-driver = \"{driver}\"\n"));
        b.cmd(&["load", "-i", &layout.to_string_lossy()])
            .assert_ok();
        let node = walk(b.root())
            .into_iter()
            .find(|p| p.ends_with("dev/console"))
            .unwrap_or_else(|| panic!("{driver}: no dev/console unpacked"));
        let md = std::fs::symlink_metadata(&node).unwrap();
        assert!(
            md.file_type().is_char_device(),
            "{driver}: {} is not a char device",
            node.display()
        );
    }
}

#[test]
fn a_truncated_layer_download_is_refused_and_not_kept() {
    let reg = Registry::start();
    let layout = tempfile::Builder::new()
        .prefix("berth-layout-")
        .tempdir()
        .unwrap();
    let l = layout.path().join("oci");
    berth_tests::images::busybox_layout(&l, "latest", false);
    reg.push_layout(&l, "latest", "busybox", None);
    let blobs = reg.data().join("docker/registry/v2/blobs/sha256");
    let mut cut = 0;
    for p in walk(&blobs) {
        if p.file_name().is_some_and(|n| n == "data") {
            let data = std::fs::read(&p).unwrap();
            if data.len() > 4096 {
                std::fs::write(&p, &data[..data.len() / 2]).unwrap();
                cut += 1;
            }
        }
    }
    assert!(cut > 0, "no layer blob found to truncate");
    let b = Berth::new("");
    let out = b.cmd(&["pull", &format!("{}/busybox", reg.addr)]);
    out.assert_failed();
    let images = b.cmd(&["images", "-q"]);
    assert!(
        images.stdout.trim().is_empty(),
        "an image was recorded: {images}"
    );
    let kept = std::fs::read_dir(b.root().join("blobs/sha256"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name() != ".ingest")
                .filter(|e| {
                    std::fs::metadata(e.path())
                        .map(|m| m.len() > 4096)
                        .unwrap_or(false)
                })
                .count()
        })
        .unwrap_or(0);
    assert_eq!(kept, 0, "a partial layer blob was kept: {out}");
}
