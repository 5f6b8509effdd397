//! The overlay driver against a fake `layer-fs` on a temporary directory.

use super::*;
use berth_sdk::tar_read::{ReadSource, TarReader};
use berth_sdk::testing::{files_tar, source, DirLayerFs};

fn id(n: u8) -> String {
    format!("sha256:{}", hex(n))
}

fn hex(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

#[test]
fn layers_are_shared_and_whiteouts_become_overlay_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let mut ov = Overlay::new(DirLayerFs::new(root), root);
    let (l1, l2) = (id(1), id(2));
    ov.apply_layer(
        &l1,
        None,
        &mut source(files_tar(&[("etc/a", "1"), ("var/x/y", "y")])),
    )
    .unwrap();
    ov.apply_layer(
        &l2,
        Some(&l1),
        &mut source(files_tar(&[("etc/.wh.a", ""), ("var/x/.wh..wh..opq", "")])),
    )
    .unwrap();
    assert!(ov
        .base
        .fs
        .whiteouts
        .contains(&format!("layers/{}/fs/etc/a", hex(2))));
    assert!(ov
        .base
        .fs
        .opaque
        .contains(&format!("layers/{}/fs/var/x", hex(2))));
    // Same chain id again: nothing is unpacked.
    let calls = ov.base.fs.calls.len();
    assert_eq!(
        ov.apply_layer(&l2, Some(&l1), &mut source(files_tar(&[("z", "z")])))
            .unwrap()
            .entries,
        0
    );
    assert!(ov.has_layer(&l2));
    assert_eq!(ov.base.fs.calls.len(), calls);
}

#[test]
fn mounts_for_snapshots_and_views() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let mut ov = Overlay::new(DirLayerFs::new(root), root);
    let (l1, l2) = (id(1), id(2));
    ov.apply_layer(&l1, None, &mut source(files_tar(&[("a", "1")])))
        .unwrap();
    ov.apply_layer(&l2, Some(&l1), &mut source(files_tar(&[("b", "2")])))
        .unwrap();

    let m = ov.prepare("c1", Some(&l2)).unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(
        (m[0].kind.as_str(), m[0].source.as_str()),
        ("overlay", "overlay")
    );
    assert_eq!(
        m[0].options,
        [
            format!("lowerdir=layers/{}/fs:layers/{}/fs", hex(2), hex(1)),
            "upperdir=snapshots/c1/upper".to_string(),
            "workdir=snapshots/c1/work".to_string(),
        ]
    );
    assert_eq!(ov.mounts("c1").unwrap(), m);
    let v = ov.view("v1", &l1).unwrap();
    assert_eq!(
        (v[0].kind.as_str(), v[0].source.clone()),
        ("bind", format!("layers/{}/fs", hex(1)))
    );
    assert_eq!(v[0].options, ["rbind", "ro"]);
    let v = ov.view("v2", &l2).unwrap();
    assert_eq!(v[0].kind, "overlay");
    assert_eq!(v[0].options[1], "ro");
    let empty = ov.prepare("scratch", None).unwrap();
    assert_eq!(
        (empty[0].kind.as_str(), empty[0].source.as_str()),
        ("bind", "snapshots/scratch/upper")
    );
    assert!(matches!(
        ov.prepare("x", Some(&id(7))),
        Err(PluginError::NotFound(_))
    ));
}

#[test]
fn diff_commit_and_gc() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let mut ov = Overlay::new(DirLayerFs::new(root), root);
    let (l1, l3) = (id(1), id(3));
    ov.apply_layer(&l1, None, &mut source(files_tar(&[("etc/a", "1")])))
        .unwrap();
    ov.prepare("c1", Some(&l1)).unwrap();
    // What a container would leave in its upper dir (whiteouts as made by the host).
    let upper = root.join("snapshots/c1/upper");
    std::fs::create_dir_all(upper.join("etc")).unwrap();
    std::fs::write(upper.join("etc/new"), "n").unwrap();
    let tar = ov.diff("c1", Vec::new()).unwrap();
    let mut r = TarReader::new(ReadSource(&tar[..]));
    let mut got = Vec::new();
    while let Some(e) = r.next_entry().unwrap() {
        got.push(format!(
            "{} {}",
            e.path,
            String::from_utf8(r.read_content_to_vec(10).unwrap()).unwrap()
        ));
    }
    assert_eq!(got, ["etc ", "etc/new n"]);

    ov.commit("c1", &l3).unwrap();
    assert!(ov.has_layer(&l3));
    assert_eq!(
        std::fs::read_to_string(root.join(layer_fs_dir(&l3).unwrap()).join("etc/new")).unwrap(),
        "n"
    );
    assert!(!root.join("snapshots/c1").exists());
    let m = ov.prepare("c2", Some(&l3)).unwrap();
    assert!(m[0].options[0].starts_with(&format!("lowerdir=layers/{}/fs:", hex(3))));
    assert!(matches!(ov.remove(&l1), Err(PluginError::Invalid(_))));
    let mut removed = ov.gc(&[]).unwrap();
    removed.sort();
    assert_eq!(removed, ["c2".to_string(), id(1), id(3)]);
}
