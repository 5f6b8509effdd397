//! The busybox root filesystem: built once per test process from Debian's
//! `busybox-static`, copied into each bundle.

use crate::cmd;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where the static busybox comes from (Debian package `busybox-static`).
pub const BUSYBOX: &str = "/bin/busybox";

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                      nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\nwheel:x:10:\nusers:x:100:\nnogroup:x:65534:\n";

static BASE: OnceLock<PathBuf> = OnceLock::new();

/// The base rootfs of this test process, built on first use and removed at exit.
pub fn base() -> &'static Path {
    BASE.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-rootfs-")
            .tempdir()
            .expect("temp dir for the base rootfs")
            .keep();
        build(&dir);
        // SAFETY: `remove_base` is an `extern "C" fn()` that touches only the
        // already-initialised `BASE`; registering it has no other effect.
        unsafe { libc::atexit(remove_base) };
        dir
    })
}

extern "C" fn remove_base() {
    if let Some(dir) = BASE.get() {
        let _ = fs::remove_dir_all(dir);
    }
}

/// Copies the base rootfs to `dest` (which must not exist).
pub fn copy_to(dest: &Path) {
    let src = format!("{}/.", base().display());
    fs::create_dir_all(dest).expect("create rootfs dir");
    cmd::host(
        "cp",
        &["-a", "--reflink=auto", &src, &dest.to_string_lossy()],
    );
}

/// Lays out a busybox rootfs in `dir`: the binary, one symlink per applet,
/// /etc/passwd and /etc/group with root and nobody, the usual empty dirs.
pub fn build(dir: &Path) {
    if !Path::new(BUSYBOX).exists() {
        panic!("{BUSYBOX} is missing: install Debian's busybox-static (apt-get install busybox-static)");
    }
    for d in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "proc", "sys", "dev", "var", "mnt",
    ] {
        fs::create_dir_all(dir.join(d)).expect("create rootfs dir");
    }
    fs::create_dir_all(dir.join("tmp")).expect("create /tmp");
    fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777)).expect("chmod /tmp");
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).expect("chmod rootfs");
    fs::copy(BUSYBOX, dir.join("bin/busybox")).expect("copy busybox");
    let applets = cmd::host(BUSYBOX, &["--list-full"]).stdout;
    for applet in applets.lines().map(str::trim).filter(|a| !a.is_empty()) {
        let link = dir.join(applet);
        if link.symlink_metadata().is_err() {
            symlink("/bin/busybox", &link).expect("symlink applet");
        }
    }
    fs::write(dir.join("etc/passwd"), PASSWD).expect("write /etc/passwd");
    fs::write(dir.join("etc/group"), GROUP).expect("write /etc/group");
}
