//! Checking the mounts a storage driver describes before the core makes them.
//!
//! Paths in a plugin's mounts are relative to its root. The host makes them
//! absolute and refuses any that is absolute, contains `..`, goes through a
//! symlink, or does not exist; mount kinds and options are allow-listed so a
//! plugin cannot ask for a mount the core should not make. Each checked
//! directory stays open, and the mount is made through that descriptor
//! (see [`Mount::mount_source`]), so what is mounted is what was checked.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use rustix::fs::{OFlags, ResolveFlags};

use crate::beneath::{FsError, Root};
use crate::bindings::storage::berth::plugin::types::Mount as WitMount;
use crate::types::Mount;

/// Options any mount may carry.
const FLAGS: &[&str] = &[
    "ro",
    "rw",
    "nosuid",
    "suid",
    "nodev",
    "dev",
    "noexec",
    "exec",
    "relatime",
    "noatime",
    "nodiratime",
    "strictatime",
];
/// Extra options per kind (a trailing `=` allows any value).
const BIND: &[&str] = &[
    "bind", "rbind", "private", "rprivate", "slave", "rslave", "shared", "rshared",
];
const OVERLAY: &[&str] = &[
    "index=off",
    "index=on",
    "xino=",
    "redirect_dir=off",
    "redirect_dir=nofollow",
    "metacopy=off",
    "volatile",
    "userxattr",
];
const TMPFS: &[&str] = &["size=", "mode=", "uid=", "gid=", "nr_inodes="];

fn allowed(option: &str, extra: &[&str]) -> bool {
    FLAGS.contains(&option)
        || extra.iter().any(|a| {
            *a == option || (a.ends_with('=') && option.starts_with(a) && !option.contains(','))
        })
}

/// A checked directory: its absolute path, and the same directory open.
struct Checked {
    path: String,
    fd: Arc<OwnedFd>,
}

impl Checked {
    /// The directory as a path to the open descriptor.
    fn pinned(&self) -> String {
        format!("/proc/self/fd/{}", self.fd.as_raw_fd())
    }
}

/// Opens a plugin-relative directory after checking it lies beneath the root
/// without `..` or symlinks, and makes its path absolute.
fn resolve(root: &Root, rel: &str) -> Result<Checked, String> {
    let bad = |why: &str| Err(format!("mount path `{rel}` {why}"));
    if rel.is_empty() || rel.starts_with('/') {
        return bad("must be relative to the plugin's root");
    }
    if rel.split('/').any(|c| c == "..") {
        return bad("contains `..`");
    }
    if rel.contains([',', ':', '\\', '\0']) {
        return bad("contains `,`, `:`, `\\` or NUL");
    }
    let fd = match root.open_beneath(
        rel,
        OFlags::PATH | OFlags::DIRECTORY,
        ResolveFlags::NO_SYMLINKS,
    ) {
        Ok(fd) => fd,
        Err(FsError::Os { err, .. }) if err.kind() == std::io::ErrorKind::NotFound => {
            return bad("does not exist")
        }
        Err(FsError::Os { err, .. }) if err.raw_os_error() == Some(libc::ELOOP) => {
            return bad("goes through a symlink")
        }
        Err(FsError::Os { err, .. }) if err.raw_os_error() == Some(libc::ENOTDIR) => {
            return bad("is not a directory")
        }
        Err(e) => return Err(format!("mount path `{rel}`: {e}")),
    };
    let clean: Vec<&str> = rel
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    Ok(Checked {
        path: root
            .path()
            .join(clean.join("/"))
            .to_string_lossy()
            .into_owned(),
        fd: Arc::new(fd),
    })
}

/// Checks and translates the mounts a plugin returned; the error names the
/// refused path or option.
pub(crate) fn translate(root: &Root, mounts: Vec<WitMount>) -> Result<Vec<Mount>, String> {
    mounts.into_iter().map(|m| translate_one(root, m)).collect()
}

fn translate_one(root: &Root, m: WitMount) -> Result<Mount, String> {
    let plain = |kind: String, source: &str, options: Vec<String>| Mount {
        kind,
        source: source.into(),
        pinned_source: source.into(),
        pinned_options: options.clone(),
        options,
        pins: Vec::new(),
    };
    match m.kind.as_str() {
        "bind" => {
            let source = resolve(root, &m.source)?;
            for o in &m.options {
                if !allowed(o, BIND) {
                    return Err(format!("bind mount option `{o}` is not allowed"));
                }
            }
            Ok(Mount {
                kind: m.kind,
                pinned_source: source.pinned().into(),
                source: source.path.into(),
                pinned_options: m.options.clone(),
                options: m.options,
                pins: vec![source.fd],
            })
        }
        "overlay" => {
            let mut options = Vec::with_capacity(m.options.len());
            let mut pinned_options = Vec::with_capacity(m.options.len());
            let mut pins = Vec::new();
            for o in m.options {
                let dirs = match o.split_once('=') {
                    Some(("lowerdir", dirs)) => Some(("lowerdir", dirs.split(':').collect())),
                    Some((key @ ("upperdir" | "workdir"), dir)) => Some((key, vec![dir])),
                    _ if allowed(&o, OVERLAY) => None,
                    _ => return Err(format!("overlay mount option `{o}` is not allowed")),
                };
                let Some((key, dirs)) = dirs else {
                    pinned_options.push(o.clone());
                    options.push(o);
                    continue;
                };
                let checked = dirs
                    .into_iter()
                    .map(|d| resolve(root, d))
                    .collect::<Result<Vec<_>, _>>()?;
                let join = |f: &dyn Fn(&Checked) -> String| {
                    checked.iter().map(f).collect::<Vec<_>>().join(":")
                };
                options.push(format!("{key}={}", join(&|c| c.path.clone())));
                pinned_options.push(format!("{key}={}", join(&Checked::pinned)));
                pins.extend(checked.into_iter().map(|c| c.fd));
            }
            if !options.iter().any(|o| o.starts_with("lowerdir=")) {
                return Err("overlay mount without lowerdir".into());
            }
            Ok(Mount {
                kind: m.kind,
                source: "overlay".into(),
                pinned_source: "overlay".into(),
                options,
                pinned_options,
                pins,
            })
        }
        "tmpfs" => {
            for o in &m.options {
                if !allowed(o, TMPFS) {
                    return Err(format!("tmpfs mount option `{o}` is not allowed"));
                }
            }
            Ok(plain(m.kind, "tmpfs", m.options))
        }
        other => Err(format!(
            "mount kind `{other}` is not allowed (bind, overlay or tmpfs)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wit(kind: &str, source: &str, options: &[&str]) -> WitMount {
        WitMount {
            kind: kind.into(),
            source: source.into(),
            options: options.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn paths_are_made_absolute_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        let r = root.path().to_owned();
        for d in ["l/a", "l/b", "s/up", "s/work"] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        std::os::unix::fs::symlink("/etc", r.join("l/link")).unwrap();
        let ok = translate(
            &root,
            vec![
                wit(
                    "overlay",
                    "overlay",
                    &[
                        "lowerdir=l/a:l/b",
                        "upperdir=s/up",
                        "workdir=s/work",
                        "index=off",
                    ],
                ),
                wit("bind", "l/a", &["rbind", "ro"]),
            ],
        )
        .unwrap();
        let s = |p: &str| r.join(p).to_string_lossy().into_owned();
        assert_eq!(
            ok[0].options,
            vec![
                format!("lowerdir={}:{}", s("l/a"), s("l/b")),
                format!("upperdir={}", s("s/up")),
                format!("workdir={}", s("s/work")),
                "index=off".to_string()
            ]
        );
        assert_eq!(ok[1].source, r.join("l/a"));
        // The pinned forms name the directories that were checked, open.
        let fd_of = |p: &str| {
            let n: i32 = p.strip_prefix("/proc/self/fd/").unwrap().parse().unwrap();
            std::fs::read_link(format!("/proc/self/fd/{n}")).unwrap()
        };
        assert_eq!(fd_of(ok[1].mount_source().to_str().unwrap()), r.join("l/a"));
        let lower = ok[0].mount_options()[0].strip_prefix("lowerdir=").unwrap();
        let lowers: Vec<_> = lower.split(':').map(fd_of).collect();
        assert_eq!(lowers, vec![r.join("l/a"), r.join("l/b")]);
        assert_eq!(
            fd_of(&ok[0].mount_options()[1]["upperdir=".len()..]),
            r.join("s/up")
        );
        assert_eq!(ok[0].mount_options()[3], "index=off");
        // Swapping a checked directory for a symlink afterwards changes nothing.
        std::fs::rename(r.join("l/a"), r.join("l/a-moved")).unwrap();
        std::os::unix::fs::symlink("/etc", r.join("l/a")).unwrap();
        assert_eq!(
            fd_of(ok[1].mount_source().to_str().unwrap()),
            r.join("l/a-moved")
        );
        std::fs::remove_file(r.join("l/a")).unwrap();
        std::fs::rename(r.join("l/a-moved"), r.join("l/a")).unwrap();

        let refused = |m: WitMount| translate(&root, vec![m]).unwrap_err();
        assert!(refused(wit("bind", "../../etc", &[])).contains("../../etc"));
        assert!(refused(wit("bind", "/etc", &[])).contains("/etc"));
        assert!(refused(wit("bind", "l/missing", &[])).contains("does not exist"));
        assert!(refused(wit("bind", "l/link", &[])).contains("symlink"));
        std::fs::write(r.join("l/file"), "").unwrap();
        assert!(refused(wit("bind", "l/file", &[])).contains("not a directory"));
        assert!(refused(wit("overlay", "overlay", &["lowerdir=l/a:../x"])).contains("../x"));
        assert!(
            refused(wit("overlay", "overlay", &["lowerdir=l/a", "metacopy=on"]))
                .contains("metacopy")
        );
        assert!(refused(wit("proc", "proc", &[])).contains("proc"));
        assert!(refused(wit("tmpfs", "tmpfs", &["size=1m,exec"])).contains("size=1m,exec"));
    }
}
