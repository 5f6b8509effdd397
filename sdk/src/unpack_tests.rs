//! Unpacking tests against [`crate::testing::DirLayerFs`] on a temporary directory.

use super::*;
use crate::tar_read::Entry;
use crate::tar_write::TarWriter;
use crate::testing::{source, DirLayerFs};

fn tar(build: impl FnOnce(&mut TarWriter<Vec<u8>>)) -> Vec<u8> {
    let mut w = TarWriter::new(Vec::new());
    build(&mut w);
    w.finish().unwrap()
}

fn file(w: &mut TarWriter<Vec<u8>>, path: &str, content: &str) {
    w.append(
        &Entry::new(path, EntryKind::File, 0o644),
        content.as_bytes(),
    )
    .unwrap();
}

fn dir(w: &mut TarWriter<Vec<u8>>, path: &str) {
    w.append_header(&Entry::new(path, EntryKind::Directory, 0o755))
        .unwrap();
}

fn link(w: &mut TarWriter<Vec<u8>>, path: &str, kind: EntryKind, target: &str) {
    let mut e = Entry::new(path, kind, 0o777);
    e.link = target.into();
    w.append_header(&e).unwrap();
}

fn read(fs: &DirLayerFs, path: &str) -> Option<String> {
    std::fs::read_to_string(fs.root.join(path)).ok()
}

fn base_layer() -> Vec<u8> {
    tar(|w| {
        dir(w, "etc");
        file(w, "etc/passwd", "root");
        file(w, "etc/motd", "hi");
        dir(w, "var/cache");
        file(w, "var/cache/a", "a");
        file(w, "var/cache/b", "b");
        file(w, "deep/implied/parent", "p"); // parents not listed
        link(w, "bin/sh", EntryKind::Symlink, "/bin/busybox");
        link(w, "etc/passwd.lnk", EntryKind::HardLink, "etc/passwd");
        let mut dev = Entry::new("dev/null", EntryKind::CharDevice, 0o666);
        (dev.major, dev.minor) = (1, 3);
        dev.xattrs = vec![
            ("user.k".into(), b"v".to_vec()),
            ("security.selinux".into(), b"x".to_vec()),
            ("trusted.overlay.opaque".into(), b"y".to_vec()),
        ];
        w.append_header(&dev).unwrap();
        let mut suid = Entry::new("bin/ping", EntryKind::File, 0o4755);
        suid.uid = 0;
        w.append(&suid, b"ping").unwrap();
    })
}

#[test]
fn copy_mode_applies_whiteouts_by_deleting() {
    let tmp = tempfile::tempdir().unwrap();
    let mut fs = DirLayerFs::new(tmp.path());
    let l1 = "layers/1";
    let stats = Unpacker::new(l1, vec![], Mode::Copy)
        .apply(&mut fs, &mut source(base_layer()))
        .unwrap();
    assert_eq!(stats.bytes, 4 + 2 + 1 + 1 + 1 + 4);
    assert_eq!(
        read(&fs, "layers/1/etc/passwd.lnk").as_deref(),
        Some("root")
    );
    assert_eq!(
        read(&fs, "layers/1/deep/implied/parent").as_deref(),
        Some("p")
    );
    assert_eq!(fs.meta["layers/1/bin/ping"].mode, 0o4755);
    assert_eq!(fs.meta["layers/1/deep"], Meta::IMPLIED_DIR);
    assert_eq!(fs.nodes["layers/1/dev/null"], (NodeKind::Char, 1, 3));
    assert_eq!(fs.xattrs.len(), 1, "only allowed xattrs: {:?}", fs.xattrs);
    assert_eq!(
        std::fs::read_link(tmp.path().join("layers/1/bin/sh"))
            .unwrap()
            .to_str(),
        Some("/bin/busybox")
    );

    // Layer 2 on a copy of layer 1.
    fs.copy_tree(l1, "layers/2").unwrap();
    let l2 = tar(|w| {
        file(w, "var/cache/new1", "n1"); // same layer, before the marker
        file(w, "var/cache/.wh..wh..opq", "");
        file(w, "var/cache/new2", "n2");
        file(w, "etc/.wh.motd", "");
        file(w, "deep", "now a file"); // replaces a directory
    });
    Unpacker::new("layers/2", vec![], Mode::Copy)
        .apply(&mut fs, &mut source(l2))
        .unwrap();
    let mut cache: Vec<_> = std::fs::read_dir(tmp.path().join("layers/2/var/cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    cache.sort();
    assert_eq!(cache, ["new1", "new2"]);
    assert_eq!(read(&fs, "layers/2/etc/motd"), None);
    assert_eq!(read(&fs, "layers/2/etc/passwd").as_deref(), Some("root"));
    assert_eq!(read(&fs, "layers/2/deep").as_deref(), Some("now a file"));
    assert!(fs.whiteouts.is_empty() && fs.opaque.is_empty());
    // The lower layer is untouched.
    assert_eq!(read(&fs, "layers/1/etc/motd").as_deref(), Some("hi"));
}

#[test]
fn overlay_mode_makes_overlay_whiteouts() {
    let tmp = tempfile::tempdir().unwrap();
    let mut fs = DirLayerFs::new(tmp.path());
    Unpacker::new("l1/fs", vec![], Mode::Overlay)
        .apply(&mut fs, &mut source(base_layer()))
        .unwrap();
    let l2 = tar(|w| {
        file(w, "var/cache/.wh..wh..opq", "");
        file(w, "etc/.wh.motd", "");
        file(w, "etc/new", "n"); // etc exists only below: the upper gets its own dir
        link(w, "passwd2", EntryKind::HardLink, "etc/passwd"); // target only below
    });
    Unpacker::new("l2/fs", vec!["l1/fs".into()], Mode::Overlay)
        .apply(&mut fs, &mut source(l2))
        .unwrap();
    assert!(fs.opaque.contains("l2/fs/var/cache"));
    assert!(fs.whiteouts.contains("l2/fs/etc/motd"));
    assert_eq!(read(&fs, "l2/fs/etc/new").as_deref(), Some("n"));
    assert_eq!(read(&fs, "l2/fs/passwd2").as_deref(), Some("root"));
    assert_eq!(
        read(&fs, "l2/fs/etc/passwd").as_deref(),
        Some("root"),
        "copied up for the link"
    );
    assert_eq!(read(&fs, "l1/fs/etc/motd").as_deref(), Some("hi"));
}

#[test]
fn symlinks_on_the_way_stay_inside_the_layer() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("secret")).unwrap();
    let mut fs = DirLayerFs::new(tmp.path());
    let layer = tar(|w| {
        link(w, "evil", EntryKind::Symlink, "../../../../secret");
        file(w, "evil/passwd", "pwned");
        dir(w, "etc");
        link(w, "etc2", EntryKind::Symlink, "/etc");
        file(w, "etc2/x", "x");
        link(w, "loop", EntryKind::Symlink, "loop");
    });
    Unpacker::new("layers/a", vec![], Mode::Copy)
        .apply(&mut fs, &mut source(layer))
        .unwrap();
    assert_eq!(
        std::fs::read_dir(tmp.path().join("secret"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        read(&fs, "layers/a/secret/passwd").as_deref(),
        Some("pwned")
    );
    assert_eq!(read(&fs, "layers/a/etc/x").as_deref(), Some("x"));

    let looping = tar(|w| file(w, "loop/x", "x"));
    let err = Unpacker::new("layers/a", vec![], Mode::Copy)
        .apply(&mut fs, &mut source(looping))
        .unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");
}

#[test]
fn dotdot_escapes_are_refused() {
    let mut w = TarWriter::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.as_old_mut().name[..12].copy_from_slice(b"../../etc/x\0");
    h.set_size(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    std::io::Write::write_all(w.inner_mut(), h.as_bytes()).unwrap();
    let bytes = w.finish().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut fs = DirLayerFs::new(tmp.path());
    let err = Unpacker::new("l", vec![], Mode::Copy)
        .apply(&mut fs, &mut source(bytes))
        .unwrap_err();
    assert!(matches!(err, crate::SdkError::PathEscape(_)), "{err}");
    assert_eq!(fs.calls, ["mkdir l"], "nothing but the layer dir was made");
}
