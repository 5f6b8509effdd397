//! The default storage drivers' `diff` keeps what WASI cannot see. A
//! container's changes, made as root in a snapshot — a setuid root-owned
//! file with a file capability, a uid 1000 file with a user xattr, an
//! absolute symlink, a hard-link pair, a fifo, a character device, and per
//! driver a chmod and a deletion (vfs) or a whiteout and an opaque directory
//! (overlay) — come out of `diff` as a layer tar that, applied as a new
//! layer, gives back exactly the snapshot's own tree. Needs root.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_host::{Grants, HostConfig, Mount, PluginHost, PluginSpec, StoragePlugin, WasmSource};
use rustix::fs::{self as rfs, FileType, XattrFlags};

const BASE: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const NEXT: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

/// A `security.capability` value (VFS_CAP_REVISION_2) granting cap_net_raw.
const CAP_NET_RAW: [u8; 20] = [
    0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

fn load(dir: &Path, name: &str, wasm: &'static [u8]) -> StoragePlugin {
    let host = PluginHost::new(HostConfig::new(common::shared_cache())).unwrap();
    let mut grants = Grants::new(dir.join("root"));
    grants.device_nodes = true;
    host.load_storage(PluginSpec {
        name: name.into(),
        wasm: WasmSource::Bytes(wasm),
        grants,
    })
    .unwrap()
}

fn base_layer() -> Box<dyn std::io::Read + Send> {
    Box::new(std::io::Cursor::new(common::tar(&[
        ("etc/", b'5', b""),
        ("etc/hostname", b'0', b"berth\n"),
        ("bin/", b'5', b""),
        ("var/", b'5', b""),
        ("var/cache/", b'5', b""),
        ("var/cache/old", b'0', b"old"),
    ])))
}

/// The directory a container's changes land in: a bind mount's source, or
/// an overlay's upper dir.
fn own_dir(m: &[Mount]) -> PathBuf {
    match m[0].kind.as_str() {
        "bind" => m[0].source.clone(),
        _ => option(&m[0], "upperdir=").into(),
    }
}

/// The content of the top layer of a view.
fn top_layer(m: &[Mount]) -> PathBuf {
    match m[0].kind.as_str() {
        "bind" => m[0].source.clone(),
        _ => option(&m[0], "lowerdir=").split(':').next().unwrap().into(),
    }
}

fn option(m: &Mount, key: &str) -> String {
    m.options
        .iter()
        .find_map(|o| o.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in {m:?}"))
        .to_string()
}

fn mknod(p: &Path, ft: FileType, mode: u32, (major, minor): (u32, u32)) {
    let mode = rfs::Mode::from_raw_mode(mode);
    rfs::mknodat(rfs::CWD, p, ft, mode, rfs::makedev(major, minor)).unwrap();
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn file(p: &Path, content: &str, (uid, gid): (u32, u32), mode: u32) {
    std::fs::write(p, content).unwrap();
    std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
    chmod(p, mode); // after chown, which clears setuid
}

/// What a container does that WASI alone cannot see, made as root in `dir`.
fn special_changes(dir: &Path) {
    for d in ["bin", "home/u", "lib", "run", "dev"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    file(&dir.join("bin/su"), "su", (0, 0), 0o4755);
    rfs::lsetxattr(
        dir.join("bin/su"),
        "security.capability",
        &CAP_NET_RAW,
        XattrFlags::empty(),
    )
    .unwrap();
    std::os::unix::fs::chown(dir.join("home/u"), Some(1000), Some(1000)).unwrap();
    chmod(&dir.join("home/u"), 0o700);
    file(&dir.join("home/u/notes"), "mine", (1000, 1000), 0o640);
    rfs::lsetxattr(
        dir.join("home/u/notes"),
        "user.k",
        b"v\0w",
        XattrFlags::empty(),
    )
    .unwrap();
    std::os::unix::fs::symlink("/usr/lib/x86_64/ld.so", dir.join("lib/ld.so")).unwrap();
    file(&dir.join("bin/a"), "one inode", (0, 0), 0o755);
    std::fs::hard_link(dir.join("bin/a"), dir.join("bin/b")).unwrap();
    chmod(&dir.join("run"), 0o1777);
    mknod(&dir.join("run/p"), FileType::Fifo, 0o600, (0, 0));
    mknod(
        &dir.join("dev/tty5"),
        FileType::CharacterDevice,
        0o620,
        (4, 5),
    );
}

/// Paths beneath `dir`, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            out.push(
                e.path()
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// Everything a layer must keep about an entry: type, mode, owner, device,
/// size and (files) mtime, symlink target, content, xattrs.
fn describe(p: &Path) -> String {
    let m = std::fs::symlink_metadata(p).unwrap();
    let ft = m.file_type();
    let mut xattrs = Vec::new();
    let mut names = vec![0u8; 64 << 10];
    let n = rfs::llistxattr(p, &mut names).unwrap();
    for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = std::str::from_utf8(name).unwrap();
        let mut value = vec![0u8; 64 << 10];
        let len = rfs::lgetxattr(p, name, &mut value).unwrap();
        xattrs.push(format!("{name}={:?}", &value[..len]));
    }
    xattrs.sort();
    let (mtime, content) = if ft.is_file() {
        (m.mtime(), std::fs::read_to_string(p).unwrap())
    } else {
        (0, String::new())
    };
    let link = std::fs::read_link(p).map(|t| t.display().to_string());
    format!(
        "{:?} {:o} {}:{} rdev {} size {} mtime {mtime} link {:?} {content:?} {xattrs:?}",
        FileType::from_raw_mode(m.mode()),
        m.mode() & 0o7777,
        m.uid(),
        m.gid(),
        m.rdev(),
        if ft.is_dir() { 0 } else { m.len() },
        link.ok(),
    )
}

/// `diff` of snapshot `key` as bytes.
async fn diff(p: &StoragePlugin, key: &str) -> Vec<u8> {
    let buf = Arc::new(Mutex::new(Vec::new()));
    p.diff(key, Box::new(common::Sink(buf.clone())))
        .await
        .unwrap();
    let out = buf.lock().unwrap().clone();
    out
}

/// Makes the changes in a snapshot on the base layer, diffs it, applies the
/// diff as a new layer and compares that layer with the snapshot's own dir.
async fn round_trip(name: &str, wasm: &'static [u8], driver_changes: fn(&Path)) {
    let dir = tempfile::tempdir().unwrap();
    let p = load(dir.path(), name, wasm);
    p.apply_layer(BASE, None, base_layer()).await.unwrap();
    let own = own_dir(&p.prepare("c1", Some(BASE)).await.unwrap());
    special_changes(&own);
    driver_changes(&own);

    let tar = diff(&p, "c1").await;
    p.apply_layer(NEXT, Some(BASE), Box::new(std::io::Cursor::new(tar)))
        .await
        .unwrap();
    let layer = top_layer(&p.view("v", NEXT).await.unwrap());
    let paths = tree(&own);
    assert_eq!(tree(&layer), paths, "{name}: the same entries");
    for rel in &paths {
        assert_eq!(
            describe(&layer.join(rel)),
            describe(&own.join(rel)),
            "{name}: {rel}"
        );
    }
    let (a, b) = (
        std::fs::metadata(layer.join("bin/a")).unwrap(),
        std::fs::metadata(layer.join("bin/b")).unwrap(),
    );
    assert_eq!(
        (a.ino(), a.nlink()),
        (b.ino(), 2),
        "{name}: one inode, two names"
    );
    let su = std::fs::metadata(layer.join("bin/su")).unwrap();
    assert_eq!((su.mode() & 0o7777, su.uid()), (0o4755, 0), "{name}");
}

#[tokio::test]
async fn vfs_diff_keeps_owners_modes_devices_links_and_xattrs() {
    round_trip("storage-vfs", berth_plugins::STORAGE_VFS, |own| {
        chmod(&own.join("etc/hostname"), 0o600);
        std::fs::remove_file(own.join("var/cache/old")).unwrap();
    })
    .await;
}

#[tokio::test]
async fn overlay_diff_keeps_owners_modes_devices_links_xattrs_and_whiteouts() {
    round_trip("storage-overlay", berth_plugins::STORAGE_OVERLAY, |upper| {
        // What overlayfs leaves for a deleted file and a replaced directory.
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        mknod(
            &upper.join("etc/hostname"),
            FileType::CharacterDevice,
            0,
            (0, 0),
        );
        std::fs::create_dir_all(upper.join("var/cache")).unwrap();
        rfs::lsetxattr(
            upper.join("var/cache"),
            "trusted.overlay.opaque",
            b"y",
            XattrFlags::empty(),
        )
        .unwrap();
        file(&upper.join("var/cache/fresh"), "f", (0, 0), 0o644);
    })
    .await;
}
