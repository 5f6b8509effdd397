//! The native side of `layer-fs`: owners, modes, links, device nodes,
//! whiteouts and xattrs, each confined beneath the plugin's root.
//!
//! Every function resolves its path with [`Root::parent`] and then works on
//! the final name with `*at` calls that never follow it. What a function
//! creates is recorded in the call's [`Journal`] so a failed call can be
//! rolled back. The primitives that only read (`stat`, `read-link`, xattrs)
//! are in [`inspect`]; `copy-tree` is in [`copy`].

use std::collections::HashSet;
use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::fs::{
    self as rfs, AtFlags, FileType, Gid, Mode, OFlags, ResolveFlags, Timespec, Timestamps, Uid,
    XattrFlags,
};
use rustix::io::Errno;

use crate::beneath::{components, FsError, Root};
use crate::journal::Journal;

/// Owner, permission bits and modification time of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
}

/// What `mknod` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeKind {
    Char,
    Block,
    Fifo,
}

/// What exists at a path (not following a final symlink).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    File,
    Directory,
    Symlink,
    Other,
}

/// Space used by a tree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    pub size: u64,
    pub inodes: u64,
}

/// Character devices any plugin may make: null, zero, full, random, urandom, tty, ptmx.
const HARMLESS_CHAR_DEVICES: &[(u32, u32)] =
    &[(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 2)];

/// Deepest tree the recursive primitives walk (each level holds a descriptor).
const MAX_DEPTH: usize = 512;

fn proc_path(dir: BorrowedFd<'_>, name: Option<&str>) -> String {
    match name {
        Some(n) => format!("/proc/self/fd/{}/{}", dir.as_raw_fd(), n),
        None => format!("/proc/self/fd/{}", dir.as_raw_fd()),
    }
}

fn times(sec: i64, nsec: i64) -> Timestamps {
    let t = Timespec {
        tv_sec: sec,
        tv_nsec: nsec as _,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// Sets owner, mode (unless a symlink) and times on the entry `fd` refers to
/// (an `O_PATH` or an open descriptor). Owner first: `chown` clears setuid.
fn set_meta_fd(fd: BorrowedFd<'_>, meta: &Meta, mtime_nsec: i64, symlink: bool) -> io::Result<()> {
    rfs::chownat(
        fd,
        c"",
        Some(Uid::from_raw(meta.uid)),
        Some(Gid::from_raw(meta.gid)),
        AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
    )?;
    if !symlink {
        let mode = Mode::from_raw_mode(meta.mode & 0o7777);
        match rfs::fchmod(fd, mode) {
            // An O_PATH descriptor: go through its /proc link, which names
            // exactly this inode.
            Err(Errno::BADF) => rfs::chmod(proc_path(fd, None), mode)?,
            r => r?,
        }
    }
    rfs::utimensat(
        fd,
        c"",
        &times(meta.mtime, mtime_nsec),
        AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}

fn set_meta_at(dir: BorrowedFd<'_>, name: &str, meta: &Meta, nsec: i64) -> io::Result<()> {
    let fd = rfs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let symlink = FileType::from_raw_mode(rfs::fstat(&fd)?.st_mode) == FileType::Symlink;
    set_meta_fd(fd.as_fd(), meta, nsec, symlink)
}

fn stat_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<Option<rfs::Stat>> {
    match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn file_type(st: &rfs::Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

/// Makes room for a new non-directory entry: removes a file, link or node
/// already there; refuses to replace a directory.
fn clear_for_create(dir: BorrowedFd<'_>, name: &str, path: &str) -> Result<(), FsError> {
    match stat_at(dir, name).map_err(|e| FsError::os(path, e))? {
        None => Ok(()),
        Some(st) if file_type(&st) == FileType::Directory => Err(FsError::os(
            path,
            io::Error::new(io::ErrorKind::AlreadyExists, "a directory is in the way"),
        )),
        Some(_) => rfs::unlinkat(dir, name, AtFlags::empty()).map_err(|e| FsError::os(path, e)),
    }
}

/// `layer-fs.mkdir`: creates `path` and missing parents (0755, root-owned);
/// the final directory gets `meta`, also when it already exists.
pub(crate) fn mkdir(root: &Root, path: &str, meta: &Meta, j: &mut Journal) -> Result<(), FsError> {
    let comps = components(path)?;
    if comps.is_empty() {
        return Err(FsError::Invalid("mkdir of the plugin's root".into()));
    }
    for i in 0..comps.len() {
        let prefix = comps[..=i].join("/");
        let last = i + 1 == comps.len();
        let nofollow = if last {
            OFlags::NOFOLLOW
        } else {
            OFlags::empty()
        };
        match root.open_beneath(
            &prefix,
            OFlags::PATH | OFlags::DIRECTORY | nofollow,
            ResolveFlags::empty(),
        ) {
            Ok(fd) if last => {
                return set_meta_fd(fd.as_fd(), meta, 0, false).map_err(|e| FsError::os(path, e))
            }
            Ok(_) => {}
            Err(FsError::Os { err, .. }) if err.kind() == io::ErrorKind::NotFound => {
                let p = root.parent(&prefix)?;
                match rfs::mkdirat(&p.dir, p.name.as_str(), Mode::from_raw_mode(0o755)) {
                    Ok(()) => j.record(&prefix),
                    // Another call of this plugin made it meanwhile: not ours
                    // to journal. Open it as an existing entry would be
                    // (beneath the root, not following a final symlink).
                    Err(e) if e == rustix::io::Errno::EXIST => {
                        let fd = root.open_beneath(
                            &prefix,
                            OFlags::PATH | OFlags::DIRECTORY | nofollow,
                            ResolveFlags::empty(),
                        )?;
                        if last {
                            return set_meta_fd(fd.as_fd(), meta, 0, false)
                                .map_err(|e| FsError::os(path, e));
                        }
                        continue;
                    }
                    Err(e) => return Err(FsError::os(path, e)),
                }
                if last {
                    set_meta_at(p.dir.as_fd(), &p.name, meta, 0)
                        .map_err(|e| FsError::os(path, e))?;
                }
            }
            Err(FsError::Escape { why, .. }) => {
                return Err(FsError::Escape {
                    path: path.to_owned(),
                    why,
                })
            }
            Err(FsError::Os { err, .. }) => return Err(FsError::os(path, err)),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// First half of `layer-fs.write-file`: an empty regular file at `path`
/// (replacing a non-directory), journaled. The caller copies the content
/// and then calls [`finish_file`].
pub(crate) fn create_file(root: &Root, path: &str, j: &mut Journal) -> Result<File, FsError> {
    let p = root.parent(path)?;
    clear_for_create(p.dir.as_fd(), &p.name, path)?;
    let fd = rfs::openat(
        &p.dir,
        p.name.as_str(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(|e| FsError::os(path, e))?;
    j.record(path);
    Ok(File::from(fd))
}

/// Second half of `layer-fs.write-file`: owner, mode and time.
pub(crate) fn finish_file(file: &File, path: &str, meta: &Meta) -> Result<(), FsError> {
    set_meta_fd(file.as_fd(), meta, 0, false).map_err(|e| FsError::os(path, e))
}

/// `layer-fs.symlink`: `target` is stored as is (absolute targets too).
pub(crate) fn symlink(
    root: &Root,
    path: &str,
    target: &str,
    uid: u32,
    gid: u32,
    j: &mut Journal,
) -> Result<(), FsError> {
    if target.is_empty() || target.contains('\0') {
        return Err(FsError::Invalid(format!(
            "symlink {path}: bad target {target:?}"
        )));
    }
    let p = root.parent(path)?;
    clear_for_create(p.dir.as_fd(), &p.name, path)?;
    rfs::symlinkat(target, &p.dir, p.name.as_str()).map_err(|e| FsError::os(path, e))?;
    j.record(path);
    rfs::chownat(
        &p.dir,
        p.name.as_str(),
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| FsError::os(path, e))
}

/// `layer-fs.hardlink`: `path` becomes another name of `target`.
pub(crate) fn hardlink(
    root: &Root,
    path: &str,
    target: &str,
    j: &mut Journal,
) -> Result<(), FsError> {
    let t = root.parent(target)?;
    let p = root.parent(path)?;
    clear_for_create(p.dir.as_fd(), &p.name, path)?;
    rfs::linkat(
        &t.dir,
        t.name.as_str(),
        &p.dir,
        p.name.as_str(),
        AtFlags::empty(),
    )
    .map_err(|e| FsError::os(path, e))?;
    j.record(path);
    Ok(())
}

/// `layer-fs.mknod`: fifos always; character devices only the harmless ones
/// unless the plugin is granted device nodes; block devices only if granted.
pub(crate) fn mknod(
    root: &Root,
    path: &str,
    kind: NodeKind,
    (major, minor): (u32, u32),
    meta: &Meta,
    devices_granted: bool,
    j: &mut Journal,
) -> Result<(), FsError> {
    let allowed = match kind {
        NodeKind::Fifo => true,
        NodeKind::Char => devices_granted || HARMLESS_CHAR_DEVICES.contains(&(major, minor)),
        NodeKind::Block => devices_granted,
    };
    if !allowed {
        return Err(FsError::Denied(format!(
            "device node {major}:{minor} at {path}: this plugin is not granted device nodes"
        )));
    }
    let ft = match kind {
        NodeKind::Char => FileType::CharacterDevice,
        NodeKind::Block => FileType::BlockDevice,
        NodeKind::Fifo => FileType::Fifo,
    };
    make_node(root, path, ft, rfs::makedev(major, minor), j)?;
    let p = root.parent(path)?;
    set_meta_at(p.dir.as_fd(), &p.name, meta, 0).map_err(|e| FsError::os(path, e))
}

fn make_node(
    root: &Root,
    path: &str,
    ft: FileType,
    dev: u64,
    j: &mut Journal,
) -> Result<(), FsError> {
    let p = root.parent(path)?;
    clear_for_create(p.dir.as_fd(), &p.name, path)?;
    rfs::mknodat(&p.dir, p.name.as_str(), ft, Mode::empty(), dev)
        .map_err(|e| FsError::os(path, e))?;
    j.record(path);
    Ok(())
}

/// `layer-fs.whiteout`: an overlayfs whiteout, a 0:0 character device.
pub(crate) fn whiteout(root: &Root, path: &str, j: &mut Journal) -> Result<(), FsError> {
    make_node(root, path, FileType::CharacterDevice, rfs::makedev(0, 0), j)
}

/// Whether a plugin may set the extended attribute `name`.
pub(crate) fn xattr_allowed(name: &str) -> bool {
    (name.starts_with("user.") || name.starts_with("trusted.") || name == "security.capability")
        && !name.contains('\0')
}

/// `layer-fs.set-xattr` (names limited by [`xattr_allowed`]).
pub(crate) fn set_xattr(root: &Root, path: &str, name: &str, value: &[u8]) -> Result<(), FsError> {
    if !xattr_allowed(name) {
        return Err(FsError::Denied(format!(
            "xattr {name} on {path}: only user.*, trusted.* and security.capability may be set"
        )));
    }
    let p = root.parent(path)?;
    // The /proc link pins the parent; lsetxattr does not follow the final name.
    rfs::lsetxattr(
        proc_path(p.dir.as_fd(), Some(&p.name)),
        name,
        value,
        XattrFlags::empty(),
    )
    .map_err(|e| FsError::os(path, e))
}

/// `layer-fs.set-opaque`: `trusted.overlay.opaque=y` on a directory.
pub(crate) fn set_opaque(root: &Root, path: &str) -> Result<(), FsError> {
    set_xattr(root, path, "trusted.overlay.opaque", b"y")
}

/// `layer-fs.remove`: removes an entry, a directory recursively; a missing
/// path is fine.
pub(crate) fn remove(root: &Root, path: &str) -> Result<(), FsError> {
    let p = match root.parent(path) {
        Err(FsError::Os { err, .. }) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        r => r?,
    };
    remove_at(p.dir.as_fd(), &p.name, 0).map_err(|e| FsError::os(path, e))
}

/// Opens the directory `name` in `dir` (never through a symlink) to walk
/// into it from `depth`, refusing trees deeper than [`MAX_DEPTH`].
fn open_subdir(dir: BorrowedFd<'_>, name: &str, depth: usize) -> io::Result<OwnedFd> {
    if depth > MAX_DEPTH {
        return Err(io::Error::other("directory tree too deep"));
    }
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    Ok(rfs::openat(dir, name, flags, Mode::empty())?)
}

fn remove_at(dir: BorrowedFd<'_>, name: &str, depth: usize) -> io::Result<()> {
    let Some(st) = stat_at(dir, name)? else {
        return Ok(());
    };
    if file_type(&st) != FileType::Directory {
        return rfs::unlinkat(dir, name, AtFlags::empty()).map_err(Into::into);
    }
    let d = open_subdir(dir, name, depth)?;
    for child in children(d.as_fd())? {
        remove_at(d.as_fd(), &child, depth + 1)?;
    }
    match rfs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Err(Errno::NOENT) => Ok(()),
        r => r.map_err(Into::into),
    }
}

/// The names in a directory opened for reading, without `.` and `..`.
fn children(dir: BorrowedFd<'_>) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in rfs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        out.push(name_str(name)?);
    }
    Ok(out)
}

fn name_str(name: &CStr) -> io::Result<String> {
    name.to_str().map(str::to_owned).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("file name {name:?} is not UTF-8"),
        )
    })
}

/// `layer-fs.kind`: what is at `path`, not following a final symlink.
pub(crate) fn kind(root: &Root, path: &str) -> Result<Option<EntryKind>, FsError> {
    if components(path)?.is_empty() {
        return Ok(Some(EntryKind::Directory));
    }
    let p = match root.parent(path) {
        Err(FsError::Os { err, .. })
            if err.kind() == io::ErrorKind::NotFound
                || err.raw_os_error() == Some(libc::ENOTDIR) =>
        {
            return Ok(None)
        }
        r => r?,
    };
    let st = stat_at(p.dir.as_fd(), &p.name).map_err(|e| FsError::os(path, e))?;
    Ok(st.map(|st| match file_type(&st) {
        FileType::RegularFile => EntryKind::File,
        FileType::Directory => EntryKind::Directory,
        FileType::Symlink => EntryKind::Symlink,
        _ => EntryKind::Other,
    }))
}

/// `layer-fs.disk-usage`: allocated bytes and inodes of the tree at `path`,
/// each hard-linked inode counted once.
pub(crate) fn disk_usage(root: &Root, path: &str) -> Result<Usage, FsError> {
    let mut usage = Usage::default();
    let mut seen = HashSet::new();
    let result = if components(path)?.is_empty() {
        usage_dir(root.fd(), ".", &mut usage, &mut seen, 0)
    } else {
        let p = root.parent(path)?;
        usage_dir(p.dir.as_fd(), &p.name, &mut usage, &mut seen, 0)
    };
    result.map_err(|e| FsError::os(path, e))?;
    Ok(usage)
}

fn usage_dir(
    dir: BorrowedFd<'_>,
    name: &str,
    usage: &mut Usage,
    seen: &mut HashSet<(u64, u64)>,
    depth: usize,
) -> io::Result<()> {
    let Some(st) = stat_at(dir, name)? else {
        return Err(io::Error::from(io::ErrorKind::NotFound));
    };
    if st.st_nlink > 1 && !seen.insert((st.st_dev, st.st_ino)) {
        return Ok(());
    }
    usage.size += st.st_blocks as u64 * 512;
    usage.inodes += 1;
    if file_type(&st) == FileType::Directory {
        let d = open_subdir(dir, name, depth)?;
        for child in children(d.as_fd())? {
            usage_dir(d.as_fd(), &child, usage, seen, depth + 1)?;
        }
    }
    Ok(())
}

fn spare(buf: &mut Vec<u8>, len: usize) -> &mut [u8] {
    buf.resize(len, 0);
    buf.as_mut_slice()
}

mod copy;
pub(crate) use copy::copy_tree;

mod inspect;
pub(crate) use inspect::{get_xattr, list_xattrs, read_link, stat, FileKind, StatInfo};

#[cfg(test)]
mod tests;
