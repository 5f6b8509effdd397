//! Test images made locally: a busybox rootfs packed as an OCI image layout
//! with Debian's `umoci` (its layer tars start with an entry `/`, as real
//! images from umoci do), optionally with a second layer that deletes a file
//! (a whiteout).

use std::path::Path;

use crate::cmd;

/// Builds an OCI layout at `layout` holding image `tag`: one busybox layer
/// plus `/etc/berth-base` ("base"), and, with `whiteout`, a second layer
/// that deletes `/etc/berth-base` and adds `/etc/berth-top`.
pub fn busybox_layout(layout: &Path, tag: &str, whiteout: bool) {
    if !Path::new("/usr/bin/umoci").exists() {
        panic!("/usr/bin/umoci is missing: install Debian's umoci (.ci/run does)");
    }
    let l = layout.to_string_lossy().into_owned();
    let image = format!("{l}:{tag}");
    if !layout.join("index.json").exists() {
        cmd::host("umoci", &["init", "--layout", &l]);
    }
    cmd::host("umoci", &["new", "--image", &image]);
    let work = tempfile::Builder::new()
        .prefix("berth-umoci-")
        .tempdir()
        .expect("temp dir");
    let bundle = work.path().join("bundle");
    let b = bundle.to_string_lossy().into_owned();
    cmd::host("umoci", &["unpack", "--image", &image, &b]);
    let rootfs = bundle.join("rootfs");
    crate::rootfs::build(&rootfs);
    std::fs::write(rootfs.join("etc/berth-base"), "base\n").expect("write marker");
    cmd::host("umoci", &["repack", "--image", &image, &b]);
    if whiteout {
        std::fs::remove_file(rootfs.join("etc/berth-base")).expect("remove marker");
        std::fs::write(rootfs.join("etc/berth-top"), "top\n").expect("write marker");
        cmd::host("umoci", &["repack", "--image", &image, &b]);
    }
    cmd::host(
        "umoci",
        &[
            "config",
            "--image",
            &image,
            "--config.cmd",
            "/bin/sh",
            "--config.env",
            "PATH=/bin:/sbin:/usr/bin",
            "--config.workingdir",
            "/",
        ],
    );
    let _ = std::fs::remove_dir_all(&bundle);
}
