//! The reading half of `layer-fs` (ABI 0.1.1): `stat`, `read-link`,
//! `list-xattrs` and `get-xattr`, which show a plugin what WASI hides
//! (owners, modes, device numbers, hard links, absolute symlink targets,
//! xattrs). Paths resolve beneath the root like every primitive; nothing is
//! created, so nothing is journaled.

use std::io;
use std::os::fd::AsFd;

use rustix::fs::{self as rfs, AtFlags, FileType};
use rustix::io::Errno;

use super::{file_type, proc_path, spare, xattr_allowed};
use crate::beneath::{components, FsError, Root};

/// The type of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    File,
    Directory,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
    Socket,
}

/// An entry's metadata (`lstat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StatInfo {
    pub kind: FileKind,
    /// Permission bits with setuid, setgid and sticky.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// A file's bytes, a symlink target's length, else 0.
    pub size: u64,
    pub mtime: i64,
    pub mtime_nsec: u32,
    /// Major and minor of a device, else (0, 0).
    pub rdev: (u32, u32),
    pub nlink: u64,
    pub dev: u64,
    pub ino: u64,
}

/// Longest xattr name list and value the kernel allows (XATTR_LIST_MAX, XATTR_SIZE_MAX).
const XATTR_MAX: usize = 64 << 10;

/// `lstat` of `path` beneath the root (`""`: the root itself).
fn lstat(root: &Root, path: &str) -> Result<rfs::Stat, FsError> {
    if components(path)?.is_empty() {
        return rfs::fstat(root.fd()).map_err(|e| FsError::os(path, e));
    }
    let p = root.parent(path)?;
    rfs::statat(&p.dir, p.name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| FsError::os(path, e))
}

/// `layer-fs.stat`: what is at `path`, not following a final symlink.
pub(crate) fn stat(root: &Root, path: &str) -> Result<StatInfo, FsError> {
    let st = lstat(root, path)?;
    let kind = match file_type(&st) {
        FileType::RegularFile => FileKind::File,
        FileType::Directory => FileKind::Directory,
        FileType::Symlink => FileKind::Symlink,
        FileType::CharacterDevice => FileKind::CharDevice,
        FileType::BlockDevice => FileKind::BlockDevice,
        FileType::Fifo => FileKind::Fifo,
        FileType::Socket => FileKind::Socket,
        FileType::Unknown => {
            return Err(FsError::Invalid(format!(
                "stat {path}: unknown file type (mode {:o})",
                st.st_mode
            )))
        }
    };
    let device = matches!(kind, FileKind::CharDevice | FileKind::BlockDevice);
    let sized = matches!(kind, FileKind::File | FileKind::Symlink);
    Ok(StatInfo {
        kind,
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
        size: if sized { st.st_size as u64 } else { 0 },
        mtime: st.st_mtime,
        mtime_nsec: st.st_mtime_nsec as u32,
        rdev: if device {
            (rfs::major(st.st_rdev), rfs::minor(st.st_rdev))
        } else {
            (0, 0)
        },
        // u64 on x86_64, u32 on some other architectures.
        #[allow(clippy::unnecessary_cast)]
        nlink: st.st_nlink as u64,
        dev: st.st_dev,
        ino: st.st_ino,
    })
}

/// `layer-fs.read-link`: the stored target of the symlink at `path`.
pub(crate) fn read_link(root: &Root, path: &str) -> Result<String, FsError> {
    let p = root.parent(path)?;
    let target = match rfs::readlinkat(&p.dir, p.name.as_str(), Vec::new()) {
        Err(Errno::INVAL) => {
            return Err(FsError::Invalid(format!("read-link {path}: not a symlink")))
        }
        r => r.map_err(|e| FsError::os(path, e))?,
    };
    target
        .into_string()
        .map_err(|_| FsError::Invalid(format!("read-link {path}: the target is not UTF-8")))
}

/// Runs `f` on a `/proc` path naming the entry at `path`, with whether the
/// path must be followed: an entry beneath the root is its parent's
/// descriptor link plus the name (the `l*xattr` calls do not follow that
/// name); the root itself is its own descriptor's link (followed). The
/// parent's descriptor stays open while `f` runs.
fn with_entry<T>(
    root: &Root,
    path: &str,
    f: impl FnOnce(&str, bool) -> Result<T, FsError>,
) -> Result<T, FsError> {
    if components(path)?.is_empty() {
        return f(&proc_path(root.fd(), None), true);
    }
    let parent = root.parent(path)?;
    f(&proc_path(parent.dir.as_fd(), Some(&parent.name)), false)
}

/// `layer-fs.list-xattrs`: the names a plugin may set that the entry has.
pub(crate) fn list_xattrs(root: &Root, path: &str) -> Result<Vec<String>, FsError> {
    with_entry(root, path, |p, follow| {
        let mut buf = Vec::new();
        let r = if follow {
            rfs::listxattr(p, spare(&mut buf, XATTR_MAX))
        } else {
            rfs::llistxattr(p, spare(&mut buf, XATTR_MAX))
        };
        match r {
            Ok(n) => buf.truncate(n),
            Err(Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(FsError::os(path, e)),
        }
        Ok(buf
            .split(|b| *b == 0)
            .filter_map(|n| std::str::from_utf8(n).ok())
            .filter(|n| !n.is_empty() && xattr_allowed(n))
            .map(str::to_owned)
            .collect())
    })
}

/// `layer-fs.get-xattr`: the value of `name` (one a plugin may set).
pub(crate) fn get_xattr(root: &Root, path: &str, name: &str) -> Result<Vec<u8>, FsError> {
    if !xattr_allowed(name) {
        return Err(FsError::Denied(format!(
            "xattr {name} of {path}: only user.*, trusted.* and security.capability may be read"
        )));
    }
    with_entry(root, path, |p, follow| {
        let mut value = Vec::new();
        let r = if follow {
            rfs::getxattr(p, name, spare(&mut value, XATTR_MAX))
        } else {
            rfs::lgetxattr(p, name, spare(&mut value, XATTR_MAX))
        };
        match r {
            Ok(n) => {
                value.truncate(n);
                Ok(value)
            }
            Err(Errno::NODATA | Errno::NOTSUP) => Err(FsError::os(
                path,
                io::Error::new(io::ErrorKind::NotFound, format!("no xattr {name}")),
            )),
            Err(e) => Err(FsError::os(path, e)),
        }
    })
}
