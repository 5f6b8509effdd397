//! The vfs driver against a fake `layer-fs` on a temporary directory.

use super::*;
use berth_sdk::tar_read::{ReadSource, TarReader};
use berth_sdk::testing::{files_tar, source, DirLayerFs};

fn id(n: u8) -> String {
    format!(
        "sha256:{}",
        "0123456789abcdef".repeat(4).replace('0', &n.to_string())
    )
}

fn read(root: &std::path::Path, rel: &str) -> Option<String> {
    std::fs::read_to_string(root.join(rel)).ok()
}

#[test]
fn layers_snapshots_commit_diff_gc() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let mut vfs = Vfs::new(DirLayerFs::new(root), root);
    let (l1, l2, l3) = (id(1), id(2), id(3));

    vfs.apply_layer(
        &l1,
        None,
        &mut source(files_tar(&[("etc/a", "1"), ("etc/b", "2")])),
    )
    .unwrap();
    let stats = vfs
        .apply_layer(
            &l2,
            Some(&l1),
            &mut source(files_tar(&[("etc/.wh.a", ""), ("etc/c", "3")])),
        )
        .unwrap();
    assert_eq!((stats.entries, stats.bytes), (2, 1));
    assert!(vfs.has_layer(&l2));
    let l2dir = layer_dir(&l2).unwrap();
    assert_eq!(read(root, &format!("{l2dir}/etc/a")), None);
    assert_eq!(read(root, &format!("{l2dir}/etc/b")).as_deref(), Some("2"));
    // Applying again is a no-op; a missing parent is an error.
    assert_eq!(
        vfs.apply_layer(&l2, Some(&l1), &mut source(files_tar(&[])))
            .unwrap()
            .entries,
        0
    );
    let err = vfs
        .apply_layer(&l3, Some(&id(9)), &mut source(files_tar(&[])))
        .unwrap_err();
    assert!(matches!(err, PluginError::NotFound(_)), "{err:?}");

    let mounts = vfs.prepare("ctr/1", Some(&l2)).unwrap();
    assert_eq!(mounts[0].kind, "bind");
    assert_eq!(mounts[0].source, snapshot_dir("ctr/1"));
    assert_eq!(mounts[0].options, ["rbind", "rw"]);
    assert!(matches!(
        vfs.prepare("ctr/1", None),
        Err(PluginError::AlreadyExists(_))
    ));
    let view = vfs.view("v", &l1).unwrap();
    assert_eq!(
        (view[0].source.as_str(), view[0].options[1].as_str()),
        (layer_dir(&l1).unwrap().as_str(), "ro")
    );
    assert_eq!(vfs.mounts("v").unwrap(), view);

    // The container changes things; diff shows exactly that.
    let snap = root.join(snapshot_dir("ctr/1"));
    std::fs::write(snap.join("etc/new"), "n").unwrap();
    std::fs::remove_file(snap.join("etc/b")).unwrap();
    let tar = vfs.diff("ctr/1", Vec::new()).unwrap();
    let mut r = TarReader::new(ReadSource(&tar[..]));
    let mut paths = Vec::new();
    while let Some(e) = r.next_entry().unwrap() {
        paths.push(e.path);
    }
    paths.retain(|p| p != "etc");
    assert_eq!(paths, ["etc/new", "etc/.wh.b"]);

    // Commit turns it into a layer; the removed layer's children protect it.
    vfs.commit("ctr/1", &l3).unwrap();
    assert!(vfs.has_layer(&l3) && vfs.mounts("ctr/1").is_err());
    assert_eq!(
        read(root, &format!("{}/etc/new", layer_dir(&l3).unwrap())).as_deref(),
        Some("n")
    );
    assert!(matches!(vfs.remove(&l2), Err(PluginError::Invalid(_))));

    let mut removed = vfs.gc(std::slice::from_ref(&l3)).unwrap();
    removed.sort();
    assert_eq!(removed, ["v".to_string()]);
    let removed = vfs.gc(&[]).unwrap();
    assert_eq!(removed.len(), 3);
    assert!(!root.join(layer_dir(&l1).unwrap()).exists());
    assert!(matches!(
        vfs.remove("nothing"),
        Err(PluginError::NotFound(_))
    ));
}

#[test]
fn a_snapshot_from_scratch_commits_into_the_first_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let mut vfs = Vfs::new(DirLayerFs::new(root), root);
    vfs.prepare("s", None).unwrap();
    std::fs::write(root.join(snapshot_dir("s")).join("f"), "12345").unwrap();
    assert_eq!(vfs.usage("s").unwrap().inodes, 2);
    // No layer exists yet, so neither does `layers/`.
    vfs.commit("s", &id(1)).unwrap();
    assert!(vfs.has_layer(&id(1)));
    assert_eq!(
        read(root, &format!("{}/f", layer_dir(&id(1)).unwrap())).as_deref(),
        Some("12345")
    );
    assert_eq!(vfs.usage(&id(1)).unwrap().inodes, 2);
    assert!(matches!(vfs.usage("s"), Err(PluginError::NotFound(_))));
    assert!(matches!(
        vfs.commit("s", &id(2)),
        Err(PluginError::NotFound(_))
    ));
}
