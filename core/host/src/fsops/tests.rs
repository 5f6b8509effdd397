//! Tests of the layer-fs primitives on a temporary root (they need root for
//! chown and mknod, as CI runs them).

use super::*;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

fn meta(mode: u32) -> Meta {
    Meta {
        mode,
        uid: 1000,
        gid: 1001,
        mtime: 1_600_000_000,
    }
}

fn setup() -> (tempfile::TempDir, Root) {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::open(&dir.path().join("root")).unwrap();
    (dir, root)
}

fn is_escape<T: std::fmt::Debug>(r: Result<T, FsError>) -> bool {
    matches!(r, Err(FsError::Escape { .. }))
}

fn write(root: &Root, path: &str, data: &[u8], m: &Meta, j: &mut Journal) {
    let mut f = create_file(root, path, j).unwrap();
    f.write_all(data).unwrap();
    finish_file(&f, path, m).unwrap();
}

#[test]
fn mkdir_creates_parents_and_sets_meta() {
    let (_d, root) = setup();
    let mut j = Journal::default();
    mkdir(&root, "a/b/c", &meta(0o4750), &mut j).unwrap();
    let md = std::fs::metadata(root.path().join("a/b/c")).unwrap();
    assert_eq!(md.permissions().mode() & 0o7777, 0o4750);
    assert_eq!((md.uid(), md.gid()), (1000, 1001));
    assert_eq!(md.mtime(), 1_600_000_000);
    assert_eq!(j.len(), 3);
    // An existing directory gets the new meta and is not journaled again.
    mkdir(&root, "a/b/c", &meta(0o700), &mut j).unwrap();
    assert_eq!(j.len(), 3);
    let md = std::fs::metadata(root.path().join("a/b/c")).unwrap();
    assert_eq!(md.permissions().mode() & 0o7777, 0o700);
}

#[test]
fn files_links_and_nodes() {
    let (_d, root) = setup();
    let mut j = Journal::default();
    mkdir(&root, "l", &meta(0o755), &mut j).unwrap();
    write(&root, "l/f", b"hello", &meta(0o6755), &mut j);
    let md = std::fs::metadata(root.path().join("l/f")).unwrap();
    assert_eq!(
        md.permissions().mode() & 0o7777,
        0o6755,
        "setuid survives chown"
    );
    assert_eq!(std::fs::read(root.path().join("l/f")).unwrap(), b"hello");
    // Replacing a file.
    write(&root, "l/f", b"bye", &meta(0o644), &mut j);
    assert_eq!(std::fs::read(root.path().join("l/f")).unwrap(), b"bye");

    symlink(&root, "l/abs", "/etc/passwd", 7, 8, &mut j).unwrap();
    let md = std::fs::symlink_metadata(root.path().join("l/abs")).unwrap();
    assert_eq!((md.uid(), md.gid()), (7, 8));
    assert_eq!(
        std::fs::read_link(root.path().join("l/abs")).unwrap(),
        Path::new("/etc/passwd")
    );
    hardlink(&root, "l/h", "l/f", &mut j).unwrap();
    assert_eq!(
        std::fs::metadata(root.path().join("l/h")).unwrap().nlink(),
        2
    );

    whiteout(&root, "l/gone", &mut j).unwrap();
    let md = std::fs::symlink_metadata(root.path().join("l/gone")).unwrap();
    assert_eq!(md.rdev(), 0);
    assert_eq!(kind(&root, "l/gone").unwrap(), Some(EntryKind::Other));
    mknod(
        &root,
        "l/null",
        NodeKind::Char,
        (1, 3),
        &meta(0o666),
        false,
        &mut j,
    )
    .unwrap();
    mknod(
        &root,
        "l/fifo",
        NodeKind::Fifo,
        (0, 0),
        &meta(0o600),
        false,
        &mut j,
    )
    .unwrap();
    assert!(matches!(
        mknod(
            &root,
            "l/mem",
            NodeKind::Char,
            (1, 1),
            &meta(0o600),
            false,
            &mut j
        ),
        Err(FsError::Denied(_))
    ));
    assert!(matches!(
        mknod(
            &root,
            "l/sda",
            NodeKind::Block,
            (8, 0),
            &meta(0o600),
            false,
            &mut j
        ),
        Err(FsError::Denied(_))
    ));
    mknod(
        &root,
        "l/sda",
        NodeKind::Block,
        (8, 0),
        &meta(0o600),
        true,
        &mut j,
    )
    .unwrap();

    assert_eq!(kind(&root, "l/f").unwrap(), Some(EntryKind::File));
    assert_eq!(kind(&root, "l").unwrap(), Some(EntryKind::Directory));
    assert_eq!(kind(&root, "l/abs").unwrap(), Some(EntryKind::Symlink));
    assert_eq!(kind(&root, "l/missing").unwrap(), None);
    assert_eq!(kind(&root, "nope/missing").unwrap(), None);
    assert_eq!(kind(&root, "").unwrap(), Some(EntryKind::Directory));
}

#[test]
fn xattrs_and_opaque() {
    let (_d, root) = setup();
    let mut j = Journal::default();
    mkdir(&root, "d", &meta(0o755), &mut j).unwrap();
    set_opaque(&root, "d").unwrap();
    set_xattr(&root, "d", "user.k", b"v").unwrap();
    let mut buf = [0u8; 8];
    let n = rfs::lgetxattr(root.path().join("d"), "trusted.overlay.opaque", &mut buf).unwrap();
    assert_eq!(&buf[..n], b"y");
    assert!(matches!(
        set_xattr(&root, "d", "security.selinux", b"x"),
        Err(FsError::Denied(_))
    ));
}

#[test]
fn every_escape_is_refused() {
    let (dir, root) = setup();
    let mut j = Journal::default();
    std::os::unix::fs::symlink("/", root.path().join("out")).unwrap();
    std::os::unix::fs::symlink(dir.path(), root.path().join("up")).unwrap();
    let m = meta(0o755);
    assert!(is_escape(mkdir(&root, "../outside", &m, &mut j)));
    assert!(is_escape(mkdir(&root, "/abs", &m, &mut j)));
    assert!(is_escape(mkdir(&root, "out/tmp/x", &m, &mut j)));
    assert!(is_escape(create_file(&root, "out/etc/x", &mut j)));
    assert!(is_escape(create_file(&root, "up/x", &mut j)));
    assert!(is_escape(symlink(&root, "../l", "/", 0, 0, &mut j)));
    assert!(is_escape(hardlink(&root, "h", "../../etc/passwd", &mut j)));
    assert!(is_escape(hardlink(&root, "out/h", "x", &mut j)));
    assert!(is_escape(mknod(
        &root,
        "../n",
        NodeKind::Fifo,
        (0, 0),
        &m,
        false,
        &mut j
    )));
    assert!(is_escape(whiteout(&root, "out/w", &mut j)));
    assert!(is_escape(set_xattr(&root, "out/etc", "user.x", b"")));
    assert!(is_escape(remove(&root, "out/tmp")));
    assert!(is_escape(remove(&root, "..")));
    assert!(is_escape(kind(&root, "out/etc")));
    assert!(is_escape(disk_usage(&root, "up/root")));
    assert!(is_escape(copy_tree(&root, "out/etc", "copy", &mut j)));
    assert!(is_escape(copy_tree(&root, "x", "up/copy", &mut j)));
    // A final symlink is operated on, not followed.
    remove(&root, "out").unwrap();
    assert!(Path::new("/etc/passwd").exists());
    assert_eq!(j.len(), 0);
    let beside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        beside,
        vec![std::ffi::OsString::from("root")],
        "nothing beside the root"
    );
}

#[test]
fn rollback_removes_only_what_the_call_created() {
    let (_d, root) = setup();
    let mut before = Journal::default();
    mkdir(&root, "keep", &meta(0o755), &mut before).unwrap();
    write(&root, "keep/old", b"x", &meta(0o644), &mut before);
    before.commit();

    let mut j = Journal::default();
    mkdir(&root, "keep/new/deeper", &meta(0o755), &mut j).unwrap();
    write(&root, "keep/new/deeper/f", b"data", &meta(0o644), &mut j);
    symlink(&root, "keep/s", "old", 0, 0, &mut j).unwrap();
    hardlink(&root, "keep/h", "keep/old", &mut j).unwrap();
    whiteout(&root, "wh", &mut j).unwrap();
    copy_tree(&root, "keep", "copy", &mut j).unwrap();
    j.rollback(&root, "test");

    let mut left: Vec<_> = walk(root.path());
    left.sort();
    assert_eq!(left, vec!["keep".to_string(), "keep/old".to_string()]);
}

fn walk(p: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            out.push(
                e.path()
                    .strip_prefix(p)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
    out
}

#[test]
fn copy_tree_keeps_owners_links_and_xattrs() {
    let (_d, root) = setup();
    let mut j = Journal::default();
    mkdir(&root, "src/sub", &meta(0o750), &mut j).unwrap();
    write(&root, "src/sub/f", b"content", &meta(0o4711), &mut j);
    hardlink(&root, "src/h", "src/sub/f", &mut j).unwrap();
    symlink(&root, "src/l", "/abs/target", 3, 4, &mut j).unwrap();
    mknod(
        &root,
        "src/p",
        NodeKind::Fifo,
        (0, 0),
        &meta(0o600),
        false,
        &mut j,
    )
    .unwrap();
    set_xattr(&root, "src/sub/f", "user.a", b"1").unwrap();
    j.commit();

    copy_tree(&root, "src", "dst", &mut j).unwrap();
    let r = root.path();
    let f = std::fs::metadata(r.join("dst/sub/f")).unwrap();
    assert_eq!(f.permissions().mode() & 0o7777, 0o4711);
    assert_eq!((f.uid(), f.gid(), f.mtime()), (1000, 1001, 1_600_000_000));
    assert_eq!(std::fs::read(r.join("dst/sub/f")).unwrap(), b"content");
    assert_eq!(f.ino(), std::fs::metadata(r.join("dst/h")).unwrap().ino());
    assert_eq!(
        std::fs::read_link(r.join("dst/l")).unwrap(),
        Path::new("/abs/target")
    );
    assert_eq!(std::fs::symlink_metadata(r.join("dst/l")).unwrap().uid(), 3);
    assert!(std::fs::symlink_metadata(r.join("dst/p"))
        .unwrap()
        .file_type()
        .is_fifo_like());
    let mut buf = [0u8; 4];
    let n = rfs::lgetxattr(r.join("dst/sub/f"), "user.a", &mut buf).unwrap();
    assert_eq!(&buf[..n], b"1");
    // The destination must not exist yet.
    assert!(copy_tree(&root, "src", "dst", &mut j).is_err());

    let u = disk_usage(&root, "dst").unwrap();
    assert_eq!(u.inodes, 5, "dst, sub, f (h is the same inode), l, p");
}

trait FifoLike {
    fn is_fifo_like(&self) -> bool;
}

impl FifoLike for std::fs::FileType {
    fn is_fifo_like(&self) -> bool {
        std::os::unix::fs::FileTypeExt::is_fifo(self)
    }
}

#[test]
fn remove_is_recursive_and_missing_is_fine() {
    let (_d, root) = setup();
    let mut j = Journal::default();
    mkdir(&root, "x/y/z", &meta(0o755), &mut j).unwrap();
    write(&root, "x/y/z/f", b"1", &meta(0o644), &mut j);
    remove(&root, "x").unwrap();
    assert!(!root.path().join("x").exists());
    remove(&root, "x").unwrap();
    remove(&root, "no/such/dir").unwrap();
    assert!(matches!(remove(&root, ""), Err(FsError::Invalid(_))));
}

#[test]
fn stat_shows_owners_modes_devices_and_links() {
    let (_d, root) = setup();
    let mut j = Journal::default();
    mkdir(&root, "l", &meta(0o1777), &mut j).unwrap();
    write(
        &root,
        "l/su",
        b"suid",
        &Meta {
            uid: 0,
            gid: 0,
            ..meta(0o4755)
        },
        &mut j,
    );
    write(&root, "l/user", b"12345", &meta(0o640), &mut j);
    hardlink(&root, "l/user2", "l/user", &mut j).unwrap();
    symlink(&root, "l/abs", "/usr/lib/ld.so", 5, 6, &mut j).unwrap();
    let nodes = [
        ("l/p", NodeKind::Fifo, (0, 0), 0o600),
        ("l/tty5", NodeKind::Char, (4, 5), 0o620),
        ("l/sda", NodeKind::Block, (8, 1), 0o660),
    ];
    for (path, kind, dev, mode) in nodes {
        mknod(&root, path, kind, dev, &meta(mode), true, &mut j).unwrap();
    }
    whiteout(&root, "l/gone", &mut j).unwrap();

    let su = stat(&root, "l/su").unwrap();
    assert_eq!(
        (su.kind, su.mode, su.uid, su.gid, su.size, su.mtime, su.nlink),
        (FileKind::File, 0o4755, 0, 0, 4, 1_600_000_000, 1)
    );
    let (a, b) = (
        stat(&root, "l/user").unwrap(),
        stat(&root, "l/user2").unwrap(),
    );
    assert_eq!((a.uid, a.gid, a.mode, a.nlink), (1000, 1001, 0o640, 2));
    assert_eq!((a.dev, a.ino), (b.dev, b.ino));
    assert_ne!(a.ino, su.ino);
    let l = stat(&root, "l/abs").unwrap();
    assert_eq!(
        (l.kind, l.uid, l.gid, l.size),
        (FileKind::Symlink, 5, 6, 14)
    );
    let d = stat(&root, "l").unwrap();
    assert_eq!((d.kind, d.mode, d.size), (FileKind::Directory, 0o1777, 0));
    assert_eq!(stat(&root, "l/p").unwrap().kind, FileKind::Fifo);
    let tty = stat(&root, "l/tty5").unwrap();
    assert_eq!(
        (tty.kind, tty.rdev, tty.mode),
        (FileKind::CharDevice, (4, 5), 0o620)
    );
    let sda = stat(&root, "l/sda").unwrap();
    assert_eq!((sda.kind, sda.rdev), (FileKind::BlockDevice, (8, 1)));
    let wh = stat(&root, "l/gone").unwrap();
    assert_eq!((wh.kind, wh.rdev), (FileKind::CharDevice, (0, 0)));
    assert_eq!(stat(&root, "").unwrap().kind, FileKind::Directory);
    assert!(matches!(
        stat(&root, "l/missing"),
        Err(FsError::Os { err, .. }) if err.kind() == io::ErrorKind::NotFound
    ));
}

#[test]
fn read_link_returns_absolute_targets_as_stored() {
    let (_d, root) = setup();
    let mut j = Journal::default();
    symlink(&root, "abs", "/etc/../etc/passwd", 0, 0, &mut j).unwrap();
    symlink(&root, "rel", "../../x", 0, 0, &mut j).unwrap();
    assert_eq!(read_link(&root, "abs").unwrap(), "/etc/../etc/passwd");
    assert_eq!(read_link(&root, "rel").unwrap(), "../../x");
    write(&root, "f", b"", &meta(0o644), &mut j);
    assert!(matches!(read_link(&root, "f"), Err(FsError::Invalid(_))));
    assert!(matches!(read_link(&root, "none"), Err(FsError::Os { .. })));
}

/// A `security.capability` value (VFS_CAP_REVISION_2) granting cap_net_raw;
/// the kernel refuses malformed ones.
const CAP_NET_RAW: [u8; 20] = [
    0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

#[test]
fn xattrs_read_back_only_the_allowed_names() {
    let (_d, root) = setup();
    let mut j = Journal::default();
    mkdir(&root, "d", &meta(0o755), &mut j).unwrap();
    write(&root, "d/f", b"", &meta(0o755), &mut j);
    set_xattr(&root, "d/f", "user.k", b"v\0w").unwrap();
    set_xattr(&root, "d/f", "security.capability", &CAP_NET_RAW).unwrap();
    set_opaque(&root, "d").unwrap();
    symlink(&root, "d/s", "/nowhere", 0, 0, &mut j).unwrap();
    let mut names = list_xattrs(&root, "d/f").unwrap();
    names.sort();
    assert_eq!(names, ["security.capability", "user.k"]);
    assert_eq!(get_xattr(&root, "d/f", "user.k").unwrap(), b"v\0w");
    assert_eq!(
        get_xattr(&root, "d/f", "security.capability").unwrap(),
        CAP_NET_RAW
    );
    assert_eq!(list_xattrs(&root, "d").unwrap(), ["trusted.overlay.opaque"]);
    assert_eq!(
        get_xattr(&root, "d", "trusted.overlay.opaque").unwrap(),
        b"y"
    );
    // A final symlink is not followed (its target does not even exist).
    assert!(list_xattrs(&root, "d/s").unwrap().is_empty());
    rfs::lsetxattr(root.path(), "user.root", b"r", XattrFlags::empty()).unwrap();
    assert_eq!(list_xattrs(&root, "").unwrap(), ["user.root"]);
    assert_eq!(get_xattr(&root, "", "user.root").unwrap(), b"r");
    assert!(matches!(
        get_xattr(&root, "d/f", "user.none"),
        Err(FsError::Os { err, .. }) if err.kind() == io::ErrorKind::NotFound
    ));
    assert!(matches!(
        get_xattr(&root, "d/f", "security.selinux"),
        Err(FsError::Denied(_))
    ));
}

#[test]
fn reading_outside_the_root_is_an_escape() {
    let (dir, root) = setup();
    std::os::unix::fs::symlink("/", root.path().join("out")).unwrap();
    std::os::unix::fs::symlink(dir.path(), root.path().join("up")).unwrap();
    assert!(is_escape(stat(&root, "../root")));
    assert!(is_escape(stat(&root, "/etc/passwd")));
    assert!(is_escape(stat(&root, "out/etc/passwd")));
    assert!(is_escape(read_link(&root, "up/root/out")));
    assert!(is_escape(read_link(&root, "..")));
    assert!(is_escape(list_xattrs(&root, "out/etc")));
    assert!(is_escape(get_xattr(&root, "up/root", "user.x")));
    // The final symlink itself is beneath the root: it is read, not followed.
    assert_eq!(read_link(&root, "out").unwrap(), "/");
    assert_eq!(stat(&root, "out").unwrap().kind, FileKind::Symlink);
}
