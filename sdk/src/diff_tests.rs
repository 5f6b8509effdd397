//! Diffs against [`crate::testing::DirLayerFs`]: what a container changed
//! comes out as a tar that, unpacked, gives back the same entries with their
//! owners, modes, devices, links and xattrs.

use super::*;
use crate::layerfs::{Meta, NodeKind};
use crate::tar_read::{ReadSource, TarReader};
use crate::testing::{source, DirLayerFs};
use crate::unpack::{Mode, Unpacker};

/// A `security.capability` value (revision 2) granting cap_net_raw.
const CAP_NET_RAW: [u8; 20] = [
    0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

fn meta(mode: u32, uid: u32) -> Meta {
    Meta {
        mode,
        uid,
        gid: uid,
        mtime: 1_700_000_000,
    }
}

fn write(fs: &mut DirLayerFs, path: &str, content: &str, m: Meta) {
    let mut src = source(content.as_bytes().to_vec());
    fs.write_file(path, m, src.source_mut(), content.len() as u64)
        .unwrap();
}

/// The tree every test starts from, at `lower`.
fn lower(fs: &mut DirLayerFs) {
    fs.mkdir("lower/etc", meta(0o755, 0)).unwrap();
    write(fs, "lower/etc/same", "same", meta(0o644, 0));
    write(fs, "lower/etc/gone", "x", meta(0o644, 0));
    write(fs, "lower/etc/edit", "old", meta(0o644, 0));
    fs.mkdir("lower/bin", meta(0o755, 0)).unwrap();
    write(fs, "lower/bin/tool", "tool", meta(0o755, 0));
}

/// What a container does that WASI alone could not see, made in `dir`.
fn special_changes(fs: &mut DirLayerFs, dir: &str) {
    let at = |p: &str| path::join(dir, p);
    fs.mkdir(&at("bin"), meta(0o755, 0)).unwrap();
    write(fs, &at("bin/su"), "su", meta(0o4755, 0));
    fs.set_xattr(&at("bin/su"), "security.capability", &CAP_NET_RAW)
        .unwrap();
    fs.mkdir(&at("home/u"), meta(0o700, 1000)).unwrap();
    write(fs, &at("home/u/notes"), "mine", meta(0o640, 1000));
    fs.set_xattr(&at("home/u/notes"), "user.k", b"v\0w")
        .unwrap();
    fs.mkdir(&at("lib"), meta(0o755, 0)).unwrap();
    fs.symlink(&at("lib/ld.so"), "/usr/lib/x86_64/ld.so", 0, 0)
        .unwrap();
    write(fs, &at("bin/a"), "same inode", meta(0o755, 0));
    fs.hardlink(&at("bin/b"), &at("bin/a")).unwrap();
    fs.mkdir(&at("run"), meta(0o1777, 0)).unwrap();
    fs.mknod(&at("run/p"), NodeKind::Fifo, 0, 0, meta(0o600, 0))
        .unwrap();
    fs.mkdir(&at("dev"), meta(0o755, 0)).unwrap();
    fs.mknod(&at("dev/tty5"), NodeKind::Char, 4, 5, meta(0o620, 0))
        .unwrap();
}

/// Everything the tar must keep about an entry (not times or inodes).
fn summary(fs: &DirLayerFs, path: &str) -> String {
    let n = node(fs, path).unwrap();
    let s = n.stat;
    format!(
        "{:?} {:o} {}:{} size {} rdev {:?} link {:?} xattrs {:?}",
        s.kind, s.mode, s.uid, s.gid, s.size, s.rdev, n.link, n.xattrs
    )
}

/// Paths beneath `dir`, relative to it, sorted.
fn tree(fs: &DirLayerFs, dir: &str, rel: &str, out: &mut Vec<String>) {
    for name in list(fs, &path::join(dir, rel)).unwrap() {
        let r = path::join(rel, &name);
        out.push(r.clone());
        if fs.kind(&path::join(dir, &r)) == Some(crate::layerfs::PathKind::Directory) {
            tree(fs, dir, &r, out);
        }
    }
}

/// The entries of a tar: "path kind [-> link]".
fn entries(tar: &[u8]) -> Vec<String> {
    let mut r = TarReader::new(ReadSource(tar));
    let mut out = Vec::new();
    while let Some(e) = r.next_entry().unwrap() {
        r.read_content_to_vec(1 << 20).unwrap();
        let link = if e.kind == EntryKind::HardLink {
            format!(" -> {}", e.link)
        } else {
            String::new()
        };
        out.push(format!("{} {:?}{link}", e.path, e.kind));
    }
    out
}

#[test]
fn a_copy_round_trips_owners_modes_devices_links_and_xattrs() {
    let tmp = tempfile::tempdir().unwrap();
    let mut fs = DirLayerFs::new(tmp.path());
    lower(&mut fs);
    fs.copy_tree("lower", "upper").unwrap();
    special_changes(&mut fs, "upper");
    write(&mut fs, "upper/etc/edit", "new!", meta(0o644, 0));
    fs.remove("upper/etc/gone").unwrap();
    // Only the mode changes: content and size stay.
    fs.meta.get_mut("upper/bin/tool").unwrap().mode = 0o700;

    let mut w = DiffWriter::new(Vec::new());
    compare_trees(&fs, &mut w, "", "upper", Some("lower")).unwrap();
    let tar = w.finish().unwrap();
    let got = entries(&tar);
    for want in [
        "bin/a File",
        "bin/b HardLink -> bin/a",
        "bin/su File",
        "bin/tool File",
        "dev/tty5 CharDevice",
        "etc/edit File",
        "etc/.wh.gone File",
        "lib/ld.so Symlink",
        "run/p Fifo",
        "home/u/notes File",
    ] {
        assert!(got.iter().any(|g| g == want), "no {want:?} in {got:?}");
    }
    assert!(!got.iter().any(|g| g.starts_with("etc/same")), "{got:?}");

    // Applied on a copy of the lower tree, the diff rebuilds the upper one.
    fs.copy_tree("lower", "result").unwrap();
    Unpacker::new("result", Vec::new(), Mode::Copy)
        .apply(&mut fs, &mut source(tar))
        .unwrap();
    let (mut want, mut have) = (Vec::new(), Vec::new());
    tree(&fs, "upper", "", &mut want);
    tree(&fs, "result", "", &mut have);
    assert_eq!(have, want);
    for p in &want {
        let (u, r) = (path::join("upper", p), path::join("result", p));
        assert_eq!(summary(&fs, &r), summary(&fs, &u), "{p}");
    }
    let (a, b) = (
        fs.stat("result/bin/a").unwrap(),
        fs.stat("result/bin/b").unwrap(),
    );
    assert_eq!(
        (a.ino, a.nlink),
        (b.ino, 2),
        "bin/a and bin/b stay one inode"
    );
    assert_eq!(
        fs.read_link("result/lib/ld.so").unwrap(),
        "/usr/lib/x86_64/ld.so"
    );
    assert_eq!(fs.stat("result/bin/su").unwrap().mode, 0o4755);
    assert_eq!(fs.stat("result/home/u/notes").unwrap().uid, 1000);
}

#[test]
fn an_unchanged_copy_has_an_empty_diff() {
    let tmp = tempfile::tempdir().unwrap();
    let mut fs = DirLayerFs::new(tmp.path());
    lower(&mut fs);
    special_changes(&mut fs, "lower");
    fs.copy_tree("lower", "upper").unwrap();
    let mut w = DiffWriter::new(Vec::new());
    compare_trees(&fs, &mut w, "", "upper", Some("lower")).unwrap();
    assert_eq!(entries(&w.finish().unwrap()), Vec::<String>::new());
}

#[test]
fn an_overlay_upper_keeps_whiteouts_opaque_dirs_and_real_devices_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let mut fs = DirLayerFs::new(tmp.path());
    special_changes(&mut fs, "up");
    fs.mkdir("up/etc", meta(0o755, 0)).unwrap();
    fs.whiteout("up/etc/gone").unwrap();
    fs.mkdir("up/var/cache", meta(0o755, 0)).unwrap();
    fs.set_opaque("up/var/cache").unwrap();
    write(&mut fs, "up/var/cache/fresh", "f", meta(0o644, 0));

    let mut w = DiffWriter::new(Vec::new());
    overlay_upper(&fs, &mut w, "", "up").unwrap();
    let tar = w.finish().unwrap();
    let got = entries(&tar);
    let pos = |want: &str| got.iter().position(|g| g == want);
    for want in [
        "etc/.wh.gone File",
        "var/cache Directory",
        "var/cache/.wh..wh..opq File",
        "var/cache/fresh File",
        "dev/tty5 CharDevice",
        "bin/b HardLink -> bin/a",
    ] {
        assert!(pos(want).is_some(), "no {want:?} in {got:?}");
    }
    assert!(pos("var/cache Directory") < pos("var/cache/.wh..wh..opq File"));
    // The opaque xattr is overlay's own: it is not copied into the layer.
    let mut r = TarReader::new(ReadSource(&tar[..]));
    while let Some(e) = r.next_entry().unwrap() {
        assert!(e
            .xattrs
            .iter()
            .all(|(k, _)| !k.starts_with("trusted.overlay.")));
    }

    // Unpacked as an overlay layer, whiteouts and opaque dirs come back.
    Unpacker::new("layer", Vec::new(), Mode::Overlay)
        .apply(&mut fs, &mut source(tar))
        .unwrap();
    assert!(fs.whiteouts.contains("layer/etc/gone"));
    assert!(fs.opaque.contains("layer/var/cache"));
    for p in ["dev/tty5", "bin/su", "home/u/notes", "lib/ld.so", "run/p"] {
        let (u, l) = (path::join("up", p), path::join("layer", p));
        assert_eq!(summary(&fs, &l), summary(&fs, &u), "{p}");
    }
}
