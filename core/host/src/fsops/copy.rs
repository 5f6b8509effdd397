//! `layer-fs.copy-tree`: a tree copied beneath the plugin's root with its
//! owners, modes, times, links, special files and the xattrs a plugin may set.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, XattrFlags};
use rustix::io::Errno;

use super::{
    children, file_type, proc_path, set_meta_at, spare, stat_at, xattr_allowed, Meta, MAX_DEPTH,
};
use crate::beneath::{FsError, Root};
use crate::journal::Journal;
/// `layer-fs.copy-tree`: copies `src` to `dst` (which must not exist) with
/// owners, modes, times, symlinks, hard links within the tree, special files
/// and the xattrs a plugin may set. `dst` is journaled as a whole.
pub(crate) fn copy_tree(root: &Root, src: &str, dst: &str, j: &mut Journal) -> Result<(), FsError> {
    let s = root.parent(src)?;
    let d = root.parent(dst)?;
    if stat_at(d.dir.as_fd(), &d.name)
        .map_err(|e| FsError::os(dst, e))?
        .is_some()
    {
        return Err(FsError::os(
            dst,
            io::Error::from(io::ErrorKind::AlreadyExists),
        ));
    }
    if stat_at(s.dir.as_fd(), &s.name)
        .map_err(|e| FsError::os(src, e))?
        .is_none()
    {
        return Err(FsError::os(src, io::Error::from(io::ErrorKind::NotFound)));
    }
    j.record(dst);
    let mut cx = CopyCx {
        root,
        links: HashMap::new(),
    };
    cx.entry(s.dir.as_fd(), &s.name, d.dir.as_fd(), &d.name, dst, 0)
}

struct CopyCx<'r> {
    root: &'r Root,
    /// (dev, ino) of multiply-linked source files → the copy's path.
    links: HashMap<(u64, u64), String>,
}

impl CopyCx<'_> {
    fn entry(
        &mut self,
        sdir: BorrowedFd<'_>,
        sname: &str,
        ddir: BorrowedFd<'_>,
        dname: &str,
        dpath: &str,
        depth: usize,
    ) -> Result<(), FsError> {
        let os = |e: io::Error| FsError::os(dpath, e);
        let st = stat_at(sdir, sname)
            .map_err(os)?
            .ok_or_else(|| os(io::ErrorKind::NotFound.into()))?;
        let ft = file_type(&st);
        match ft {
            FileType::Directory => {
                if depth > MAX_DEPTH {
                    return Err(FsError::Invalid(format!(
                        "copy-tree: {dpath}: tree too deep"
                    )));
                }
                rfs::mkdirat(ddir, dname, Mode::from_raw_mode(0o700)).map_err(|e| os(e.into()))?;
                let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                let s = rfs::openat(sdir, sname, flags, Mode::empty()).map_err(|e| os(e.into()))?;
                let d = rfs::openat(ddir, dname, flags, Mode::empty()).map_err(|e| os(e.into()))?;
                for child in children(s.as_fd()).map_err(os)? {
                    let cpath = format!("{dpath}/{child}");
                    self.entry(s.as_fd(), &child, d.as_fd(), &child, &cpath, depth + 1)?;
                }
            }
            FileType::RegularFile => {
                let key = (st.st_dev, st.st_ino);
                if st.st_nlink > 1 {
                    if let Some(first) = self.links.get(&key) {
                        let t = self.root.parent(first)?;
                        return rfs::linkat(&t.dir, t.name.as_str(), ddir, dname, AtFlags::empty())
                            .map_err(|e| os(e.into()));
                    }
                    self.links.insert(key, dpath.to_owned());
                }
                let mut from = File::from(
                    rfs::openat(
                        sdir,
                        sname,
                        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| os(e.into()))?,
                );
                let mut to = File::from(
                    rfs::openat(
                        ddir,
                        dname,
                        OFlags::WRONLY
                            | OFlags::CREATE
                            | OFlags::EXCL
                            | OFlags::NOFOLLOW
                            | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o600),
                    )
                    .map_err(|e| os(e.into()))?,
                );
                io::copy(&mut from, &mut to).map_err(os)?;
            }
            FileType::Symlink => {
                let target = rfs::readlinkat(sdir, sname, Vec::new()).map_err(|e| os(e.into()))?;
                rfs::symlinkat(target.as_c_str(), ddir, dname).map_err(|e| os(e.into()))?;
            }
            _ => {
                rfs::mknodat(ddir, dname, ft, Mode::empty(), st.st_rdev)
                    .map_err(|e| os(e.into()))?;
            }
        }
        let meta = Meta {
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            mtime: st.st_mtime,
        };
        copy_xattrs(sdir, sname, ddir, dname).map_err(os)?;
        set_meta_at(ddir, dname, &meta, st.st_mtime_nsec as i64).map_err(os)
    }
}

/// Copies the xattrs a plugin could have set itself; others (e.g.
/// `security.selinux`) stay behind.
fn copy_xattrs(
    sdir: BorrowedFd<'_>,
    sname: &str,
    ddir: BorrowedFd<'_>,
    dname: &str,
) -> io::Result<()> {
    let src = proc_path(sdir, Some(sname));
    let dst = proc_path(ddir, Some(dname));
    let mut names = Vec::new();
    match rfs::llistxattr(&src, spare(&mut names, 64 << 10)) {
        Ok(n) => names.truncate(n),
        Err(Errno::NOTSUP) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        if !xattr_allowed(name) {
            continue;
        }
        let mut value = Vec::new();
        let n = rfs::lgetxattr(&src, name, spare(&mut value, 64 << 10))?;
        value.truncate(n);
        rfs::lsetxattr(&dst, name, &value, XattrFlags::empty())?;
    }
    Ok(())
}
