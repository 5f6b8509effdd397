//! Checking the mounts a storage driver describes before the core makes them.
//!
//! Paths in a plugin's mounts are relative to its root. The host makes them
//! absolute and refuses any that is absolute, contains `..`, goes through a
//! symlink, or does not exist; mount kinds and options are allow-listed so a
//! plugin cannot ask for a mount the core should not make.

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

/// Makes a plugin-relative directory absolute after checking it lies beneath
/// the root without `..` or symlinks and exists.
fn resolve(root: &Root, rel: &str) -> Result<String, String> {
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
    match root.open_beneath(rel, OFlags::PATH, ResolveFlags::NO_SYMLINKS) {
        Ok(_) => {}
        Err(FsError::Os { err, .. }) if err.kind() == std::io::ErrorKind::NotFound => {
            return bad("does not exist")
        }
        Err(FsError::Os { err, .. }) if err.raw_os_error() == Some(libc::ELOOP) => {
            return bad("goes through a symlink")
        }
        Err(e) => return Err(format!("mount path `{rel}`: {e}")),
    }
    let clean: Vec<&str> = rel
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    Ok(root
        .path()
        .join(clean.join("/"))
        .to_string_lossy()
        .into_owned())
}

/// Checks and translates the mounts a plugin returned; the error names the
/// refused path or option.
pub(crate) fn translate(root: &Root, mounts: Vec<WitMount>) -> Result<Vec<Mount>, String> {
    mounts.into_iter().map(|m| translate_one(root, m)).collect()
}

fn translate_one(root: &Root, m: WitMount) -> Result<Mount, String> {
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
                source: source.into(),
                options: m.options,
            })
        }
        "overlay" => {
            let mut options = Vec::with_capacity(m.options.len());
            for o in m.options {
                let translated = match o.split_once('=') {
                    Some(("lowerdir", dirs)) => {
                        let abs: Result<Vec<_>, _> =
                            dirs.split(':').map(|d| resolve(root, d)).collect();
                        format!("lowerdir={}", abs?.join(":"))
                    }
                    Some((key @ ("upperdir" | "workdir"), dir)) => {
                        format!("{key}={}", resolve(root, dir)?)
                    }
                    _ if allowed(&o, OVERLAY) => o,
                    _ => return Err(format!("overlay mount option `{o}` is not allowed")),
                };
                options.push(translated);
            }
            if !options.iter().any(|o| o.starts_with("lowerdir=")) {
                return Err("overlay mount without lowerdir".into());
            }
            Ok(Mount {
                kind: m.kind,
                source: "overlay".into(),
                options,
            })
        }
        "tmpfs" => {
            for o in &m.options {
                if !allowed(o, TMPFS) {
                    return Err(format!("tmpfs mount option `{o}` is not allowed"));
                }
            }
            Ok(Mount {
                kind: m.kind,
                source: "tmpfs".into(),
                options: m.options,
            })
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

        let refused = |m: WitMount| translate(&root, vec![m]).unwrap_err();
        assert!(refused(wit("bind", "../../etc", &[])).contains("../../etc"));
        assert!(refused(wit("bind", "/etc", &[])).contains("/etc"));
        assert!(refused(wit("bind", "l/missing", &[])).contains("does not exist"));
        assert!(refused(wit("bind", "l/link", &[])).contains("symlink"));
        assert!(refused(wit("overlay", "overlay", &["lowerdir=l/a:../x"])).contains("../x"));
        assert!(
            refused(wit("overlay", "overlay", &["lowerdir=l/a", "metacopy=on"]))
                .contains("metacopy")
        );
        assert!(refused(wit("proc", "proc", &[])).contains("proc"));
        assert!(refused(wit("tmpfs", "tmpfs", &["size=1m,exec"])).contains("size=1m,exec"));
    }
}
