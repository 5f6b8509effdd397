//! Writing a snapshot's changes as an OCI layer tar, with whiteouts for
//! deletions: [`compare_trees`] for a full copy against its parent layer
//! (vfs), [`overlay_upper`] for an overlayfs upper directory.
//!
//! Metadata comes from the host's `layer-fs` (`stat`, `read-link`, the xattr
//! reads), so entries keep their owners, modes (setuid, setgid, sticky),
//! device numbers, absolute symlink targets, hard links and the xattrs a
//! layer may carry ([`crate::unpack::xattr_allowed`]). Directories are
//! listed and file contents read with `std::fs` (WASI in a plugin).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::Path;

use crate::layerfs::{FileKind, LayerFs, Stat};
use crate::tar_read::{Entry, EntryKind};
use crate::tar_write::TarWriter;
use crate::unpack::xattr_allowed;
use crate::{path, whiteout};

/// A writer that can copy a file's content into itself (a native `Write`
/// reads the file; a wasi output stream splices it on the host side).
pub trait FileSink: Write {
    /// Appends the `size` bytes of the file at `local`.
    fn copy_file(&mut self, local: &Path, size: u64) -> io::Result<()> {
        let copied = io::copy(&mut std::fs::File::open(local)?.take(size), self)?;
        if copied != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} shrank while read", local.display()),
            ));
        }
        Ok(())
    }
}

impl FileSink for Vec<u8> {}

/// An i/o error of the tar or a file as a [`LayerFs`] error.
fn io<E: From<crate::SdkError>>(e: io::Error) -> E {
    crate::SdkError::Io(e).into()
}

/// The overlayfs xattr that marks a directory opaque.
const OPAQUE: &str = "trusted.overlay.opaque";

/// What is at a path in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Its metadata.
    pub stat: Stat,
    /// A symlink's target (empty otherwise).
    pub link: String,
    /// The xattrs a layer may carry, sorted by name.
    pub xattrs: Vec<(String, Vec<u8>)>,
    /// Whether overlayfs marked the directory opaque.
    pub opaque: bool,
}

/// Reads what is at `path` (relative to the plugin root) without following
/// a final symlink.
pub fn node<F: LayerFs>(fs: &F, path: &str) -> Result<Node, F::Error> {
    let stat = fs.stat(path)?;
    let link = if stat.kind == FileKind::Symlink {
        fs.read_link(path)?
    } else {
        String::new()
    };
    let mut xattrs = Vec::new();
    let mut opaque = false;
    for name in fs.list_xattrs(path)? {
        if name == OPAQUE {
            opaque = fs.get_xattr(path, &name)? == b"y";
        } else if xattr_allowed(&name) {
            let value = fs.get_xattr(path, &name)?;
            xattrs.push((name, value));
        }
    }
    xattrs.sort();
    Ok(Node {
        stat,
        link,
        xattrs,
        opaque,
    })
}

/// Sorted names in the directory at `path` (relative to the plugin root).
pub fn list<F: LayerFs>(fs: &F, path: &str) -> Result<Vec<String>, F::Error> {
    let mut names: Vec<String> = std::fs::read_dir(fs.local(path))
        .map_err(io::<F::Error>)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}

/// Whether the entry changed between `a` (at `a_path`) and `b` (at
/// `b_path`): its type, owner, mode, device, target, xattrs or, for a file,
/// its content (compared only when size matches and mtime does not).
pub fn changed<F: LayerFs>(
    fs: &F,
    a: &Node,
    a_path: &str,
    b: &Node,
    b_path: &str,
) -> Result<bool, F::Error> {
    let (s, t) = (&a.stat, &b.stat);
    if (s.kind, s.mode, s.uid, s.gid, s.size, s.rdev)
        != (t.kind, t.mode, t.uid, t.gid, t.size, t.rdev)
        || a.link != b.link
        || a.xattrs != b.xattrs
    {
        return Ok(true);
    }
    if s.kind != FileKind::File || (s.mtime, s.mtime_nsec) == (t.mtime, t.mtime_nsec) {
        return Ok(false);
    }
    let read = |p: &str| std::fs::read(fs.local(p)).map_err(io::<F::Error>);
    Ok(read(a_path)? != read(b_path)?)
}

/// Writes diff entries into a tar; a file whose inode was written already is
/// a hard link to its first name.
#[derive(Debug)]
pub struct DiffWriter<W: FileSink> {
    tar: TarWriter<W>,
    /// (dev, ino) of files with several names → the first name written.
    links: HashMap<(u64, u64), String>,
}

impl<W: FileSink> DiffWriter<W> {
    /// A diff writer onto `out`.
    pub fn new(out: W) -> Self {
        DiffWriter {
            tar: TarWriter::new(out),
            links: HashMap::new(),
        }
    }

    /// Adds the entry at `path` (relative to the plugin root) as `rel` (not
    /// its children). Sockets, which no tar can carry, are skipped.
    pub fn add<F: LayerFs>(
        &mut self,
        fs: &F,
        rel: &str,
        path: &str,
        node: &Node,
    ) -> Result<(), F::Error> {
        let s = &node.stat;
        let kind = match s.kind {
            FileKind::File => EntryKind::File,
            FileKind::Directory => EntryKind::Directory,
            FileKind::Symlink => EntryKind::Symlink,
            FileKind::CharDevice => EntryKind::CharDevice,
            FileKind::BlockDevice => EntryKind::BlockDevice,
            FileKind::Fifo => EntryKind::Fifo,
            FileKind::Socket => {
                crate::log::debug(&format!("diff: skipping socket {rel}"));
                return Ok(());
            }
        };
        let mut e = Entry::new(rel, kind, s.mode);
        (e.uid, e.gid, e.mtime) = (s.uid, s.gid, s.mtime);
        (e.major, e.minor) = s.rdev;
        e.link = node.link.clone();
        e.xattrs = node.xattrs.clone();
        if kind == EntryKind::File && s.nlink > 1 {
            if let Some(first) = self.links.get(&(s.dev, s.ino)) {
                (e.kind, e.link) = (EntryKind::HardLink, first.clone());
                return self.tar.append_header(&e).map_err(io);
            }
            self.links.insert((s.dev, s.ino), rel.to_string());
        }
        if kind == EntryKind::File {
            e.size = s.size;
        }
        self.tar.append_header(&e).map_err(io)?;
        if kind == EntryKind::File {
            let local = fs.local(path);
            self.tar.inner_mut().copy_file(&local, s.size).map_err(io)?;
            self.tar.pad(s.size).map_err(io)?;
        }
        Ok(())
    }

    /// Adds `path` as `rel` and, for a directory, everything beneath it.
    pub fn add_tree<F: LayerFs>(&mut self, fs: &F, rel: &str, path: &str) -> Result<(), F::Error> {
        let n = node(fs, path)?;
        self.add(fs, rel, path, &n)?;
        if n.stat.kind == FileKind::Directory {
            for name in list(fs, path)? {
                self.add_tree(fs, &path::join(rel, &name), &path::join(path, &name))?;
            }
        }
        Ok(())
    }

    /// Adds a whiteout deleting `rel`.
    pub fn whiteout(&mut self, rel: &str) -> io::Result<()> {
        self.tar.append(
            &Entry::new(whiteout::remove_marker(rel), EntryKind::File, 0o644),
            &[],
        )
    }

    /// Adds the opaque marker of directory `rel`.
    pub fn opaque(&mut self, rel: &str) -> io::Result<()> {
        self.tar.append(
            &Entry::new(whiteout::opaque_marker(rel), EntryKind::File, 0o644),
            &[],
        )
    }

    /// Ends the tar.
    pub fn finish(self) -> io::Result<W> {
        self.tar.finish()
    }
}

/// Writes the changes of tree `upper` against `lower` (`None`: everything
/// new), both relative to the plugin root, as entries under `rel`.
pub fn compare_trees<F: LayerFs, W: FileSink>(
    fs: &F,
    out: &mut DiffWriter<W>,
    rel: &str,
    upper: &str,
    lower: Option<&str>,
) -> Result<(), F::Error> {
    let lower_names = match lower {
        Some(l) if fs.kind(l) == Some(crate::layerfs::PathKind::Directory) => list(fs, l)?,
        _ => Vec::new(),
    };
    let upper_names = list(fs, upper)?;
    for name in &upper_names {
        let (u, r) = (path::join(upper, name), path::join(rel, name));
        let below = lower
            .map(|l| path::join(l, name))
            .filter(|_| lower_names.binary_search(name).is_ok());
        let Some(l) = below else {
            out.add_tree(fs, &r, &u)?;
            continue;
        };
        let (un, ln) = (node(fs, &u)?, node(fs, &l)?);
        let dirs = un.stat.kind == FileKind::Directory && ln.stat.kind == FileKind::Directory;
        if dirs {
            let meta = |n: &Node| (n.stat.mode, n.stat.uid, n.stat.gid, n.stat.mtime);
            if meta(&un) != meta(&ln) || un.xattrs != ln.xattrs {
                out.add(fs, &r, &u, &un)?;
            }
            compare_trees(fs, out, &r, &u, Some(&l))?;
        } else if changed(fs, &un, &u, &ln, &l)? {
            out.add_tree(fs, &r, &u)?;
        }
    }
    for name in lower_names
        .iter()
        .filter(|n| upper_names.binary_search(n).is_err())
    {
        out.whiteout(&path::join(rel, name))
            .map_err(io::<F::Error>)?;
    }
    Ok(())
}

/// Writes an overlayfs upper directory `upper` (relative to the plugin root)
/// as entries under `rel`: everything in it is a change; whiteouts
/// (character devices 0:0) become `.wh.` entries and opaque directories get
/// an opaque marker.
pub fn overlay_upper<F: LayerFs, W: FileSink>(
    fs: &F,
    out: &mut DiffWriter<W>,
    rel: &str,
    upper: &str,
) -> Result<(), F::Error> {
    for name in list(fs, upper)? {
        let (p, r) = (path::join(upper, &name), path::join(rel, &name));
        let n = node(fs, &p)?;
        if n.stat.is_whiteout() {
            out.whiteout(&r).map_err(io::<F::Error>)?;
            continue;
        }
        out.add(fs, &r, &p, &n)?;
        if n.stat.kind == FileKind::Directory {
            if n.opaque {
                out.opaque(&r).map_err(io::<F::Error>)?;
            }
            overlay_upper(fs, out, &r, &p)?;
        }
    }
    Ok(())
}

#[cfg(all(test, unix))]
#[path = "diff_tests.rs"]
mod tests;
