//! Paths for the kernel: resolving a path inside a container's root
//! filesystem the way the kernel would after pivot_root (symlinks are
//! followed, but `..` and absolute link targets never leave the root, as
//! securejoin does for runc), and turning paths and strings into the C
//! strings the init passes to syscalls.

use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::error::{Result, RuntimeError};

/// Joins `unsafe_path` under `root`, resolving symlinks within `root`.
/// Components that do not exist yet are appended as they are.
pub fn secure_join(root: &Path, unsafe_path: &Path) -> PathBuf {
    let mut rest: Vec<PathBuf> = vec![unsafe_path.to_path_buf()];
    let mut cur = PathBuf::new(); // relative to root
    let mut links = 0;
    while let Some(p) = rest.pop() {
        let comps: Vec<_> = p.components().collect();
        let mut iter = comps.into_iter();
        while let Some(c) = iter.next() {
            match c {
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
                Component::ParentDir => {
                    cur.pop();
                }
                Component::Normal(name) => {
                    let candidate = cur.join(name);
                    let full = root.join(&candidate);
                    match std::fs::symlink_metadata(&full) {
                        Ok(md) if md.file_type().is_symlink() && links < 255 => {
                            links += 1;
                            let target = std::fs::read_link(&full).unwrap_or_default();
                            let remaining: PathBuf = iter.by_ref().collect();
                            if !remaining.as_os_str().is_empty() {
                                rest.push(remaining);
                            }
                            if target.is_absolute() {
                                cur = PathBuf::new();
                            }
                            rest.push(target);
                            break;
                        }
                        _ => cur = candidate,
                    }
                }
            }
        }
    }
    root.join(cur)
}

/// The bytes of a path, for building C strings.
pub fn bytes(p: &Path) -> &[u8] {
    OsStr::as_bytes(p.as_os_str())
}

pub(crate) fn cstr(b: &[u8]) -> Result<CString> {
    CString::new(b).map_err(|_| RuntimeError::NulByte {
        value: String::from_utf8_lossy(b).into_owned(),
    })
}

pub(crate) fn cpath(p: &Path) -> Result<CString> {
    cstr(bytes(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_stay_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("usr/lib")).unwrap();
        symlink("/etc", r.join("abs")).unwrap();
        symlink("../../../../..", r.join("usr/up")).unwrap();
        symlink("usr/lib", r.join("lib")).unwrap();
        assert_eq!(
            secure_join(r, Path::new("/abs/passwd")),
            r.join("etc/passwd")
        );
        assert_eq!(secure_join(r, Path::new("/usr/up/etc")), r.join("etc"));
        assert_eq!(secure_join(r, Path::new("/lib/x")), r.join("usr/lib/x"));
        assert_eq!(secure_join(r, Path::new("/../../x")), r.join("x"));
        assert_eq!(secure_join(r, Path::new("/new/dir")), r.join("new/dir"));
    }

    #[test]
    fn symlink_loops_end() {
        let t = tempfile::tempdir().unwrap();
        symlink("b", t.path().join("a")).unwrap();
        symlink("a", t.path().join("b")).unwrap();
        let p = secure_join(t.path(), Path::new("/a/x"));
        assert!(p.starts_with(t.path()));
    }
}
