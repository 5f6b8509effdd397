//! Resolving a plugin's paths beneath its root, never through a symlink out of it.
//!
//! Every path a plugin names is split into a parent and a final name. The
//! parent is opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`
//! relative to the root's file descriptor, so `..`, absolute symlinks and
//! symlinks pointing outside fail with `EXDEV` instead of leaving the root;
//! the final name is then operated on with `*at` calls that do not follow it.
//! A path that would leave the root is an [`FsError::Escape`]: a policy
//! violation that ends the plugin's call.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{openat2, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// A failed filesystem primitive.
#[derive(Debug)]
pub(crate) enum FsError {
    /// The path leaves the plugin's root: a policy violation (trap).
    Escape { path: String, why: &'static str },
    /// The primitive is outside the plugin's grants; reported to the plugin.
    Denied(String),
    /// The request is malformed; reported to the plugin.
    Invalid(String),
    /// An OS error on `path`; reported to the plugin.
    Os { path: String, err: io::Error },
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsError::Escape { path, why } => write!(f, "path `{path}` {why}"),
            FsError::Denied(m) | FsError::Invalid(m) => f.write_str(m),
            FsError::Os { path, err } => write!(f, "{path}: {err}"),
        }
    }
}

impl FsError {
    pub(crate) fn os(path: &str, err: impl Into<io::Error>) -> FsError {
        FsError::Os {
            path: path.to_owned(),
            err: err.into(),
        }
    }

    /// Maps an error from resolving `path` beneath the root.
    fn resolving(path: &str, e: Errno) -> FsError {
        match e {
            Errno::XDEV => FsError::Escape {
                path: path.to_owned(),
                why: "leaves the plugin's root (through `..` or a symlink)",
            },
            _ => FsError::os(path, e),
        }
    }
}

/// A plugin's root directory, held open.
#[derive(Debug)]
pub(crate) struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

/// A path split into the directory holding its final component and that name.
#[derive(Debug)]
pub(crate) struct Parent {
    pub dir: OwnedFd,
    pub name: String,
}

const BENEATH: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_MAGICLINKS);

impl Root {
    /// Opens (creating with mode 0700 if missing) the root directory.
    pub(crate) fn open(path: &Path) -> io::Result<Root> {
        if !path.exists() {
            std::fs::create_dir_all(path)?;
            std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
        }
        let path = path.canonicalize()?;
        let fd = rustix::fs::open(
            &path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root { fd, path })
    }

    /// The root's absolute host path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Opens `rel` (already checked by [`components`]) beneath the root.
    pub(crate) fn open_beneath(
        &self,
        rel: &str,
        flags: OFlags,
        extra: ResolveFlags,
    ) -> Result<OwnedFd, FsError> {
        let rel = if rel.is_empty() { "." } else { rel };
        let mut tries = 0;
        loop {
            match openat2(
                &self.fd,
                rel,
                flags | OFlags::CLOEXEC,
                Mode::empty(),
                BENEATH | extra,
            ) {
                // The kernel asks for a retry when a rename raced with `..`.
                Err(Errno::AGAIN) if tries < 16 => tries += 1,
                Err(e) => return Err(FsError::resolving(rel, e)),
                Ok(fd) => return Ok(fd),
            }
        }
    }

    /// Splits `path` and opens its parent directory beneath the root.
    /// The final component must be a real name (not empty, `.` or `..`).
    pub(crate) fn parent(&self, path: &str) -> Result<Parent, FsError> {
        let comps = components(path)?;
        let Some((name, dirs)) = comps.split_last() else {
            return Err(FsError::Invalid(
                "the plugin's root itself cannot be the target".into(),
            ));
        };
        if *name == ".." {
            return Err(FsError::Escape {
                path: path.to_owned(),
                why: "ends in `..`",
            });
        }
        let dir = self
            .open_beneath(
                &dirs.join("/"),
                OFlags::PATH | OFlags::DIRECTORY,
                ResolveFlags::empty(),
            )
            .map_err(|e| with_path(e, path))?;
        Ok(Parent {
            dir,
            name: (*name).to_owned(),
        })
    }
}

/// Reports an error about `path` (the plugin's whole path, not the prefix).
fn with_path(e: FsError, path: &str) -> FsError {
    match e {
        FsError::Escape { why, .. } => FsError::Escape {
            path: path.to_owned(),
            why,
        },
        FsError::Os { err, .. } => FsError::Os {
            path: path.to_owned(),
            err,
        },
        e => e,
    }
}

/// Checks a plugin path lexically: relative, no NUL, and returns its
/// components without empty and `.` parts. `..` is kept: the kernel decides
/// whether it stays beneath the root.
pub(crate) fn components(path: &str) -> Result<Vec<&str>, FsError> {
    if path.starts_with('/') {
        return Err(FsError::Escape {
            path: path.to_owned(),
            why: "is absolute (plugin paths are relative to the plugin's root)",
        });
    }
    if path.contains('\0') {
        return Err(FsError::Invalid(format!(
            "path {path:?} contains a NUL byte"
        )));
    }
    Ok(path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escape(r: Result<Parent, FsError>) -> bool {
        matches!(r, Err(FsError::Escape { .. }))
    }

    #[test]
    fn lexical_checks() {
        assert!(matches!(components("/etc"), Err(FsError::Escape { .. })));
        assert!(matches!(components("a\0b"), Err(FsError::Invalid(_))));
        assert_eq!(components("./a//b/.").unwrap(), vec!["a", "b"]);
        assert!(components("").unwrap().is_empty());
    }

    #[test]
    fn dotdot_out_of_root_is_an_escape() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(&dir.path().join("root")).unwrap();
        assert!(escape(root.parent("../outside")));
        assert!(escape(root.parent("..")));
        std::fs::create_dir(root.path().join("a")).unwrap();
        assert!(escape(root.parent("a/../../outside")));
        // `..` that stays inside is fine.
        assert!(root.parent("a/../b").is_ok());
    }

    #[test]
    fn absolute_path_is_an_escape() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        assert!(escape(root.parent("/etc/passwd")));
    }

    #[test]
    fn symlink_out_of_root_is_an_escape() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(&dir.path().join("root")).unwrap();
        std::os::unix::fs::symlink("/", root.path().join("abs")).unwrap();
        std::os::unix::fs::symlink("../..", root.path().join("rel")).unwrap();
        assert!(escape(root.parent("abs/etc/x")));
        assert!(escape(root.parent("rel/x")));
        // A symlink that stays inside is followed.
        std::fs::create_dir(root.path().join("d")).unwrap();
        std::os::unix::fs::symlink("d", root.path().join("in")).unwrap();
        assert!(root.parent("in/x").is_ok());
    }

    #[test]
    fn root_is_created_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(&dir.path().join("new/root")).unwrap();
        let mode = std::fs::metadata(root.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}
