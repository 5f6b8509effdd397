//! Writing a snapshot's changes as an OCI layer tar: entries read with
//! `std::fs` (WASI filesystem in a plugin), whiteouts for deletions.
//!
//! WASI does not report owners or permission bits, so entries get root
//! ownership and 0755 (directories) or 0644 (files) until the host offers a
//! `stat` primitive.

use std::io::{self, Read, Write};
use std::path::Path;

use crate::tar_read::{Entry, EntryKind};
use crate::tar_write::TarWriter;
use crate::whiteout;

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

/// What a path in a snapshot is, as far as WASI can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Its kind.
    pub kind: EntryKind,
    /// Bytes, for a file.
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Symlink target.
    pub link: String,
    /// Whether the symlink's target could be read (WASI refuses absolute targets).
    pub link_readable: bool,
}

/// Reads what is at `local` without following a final symlink.
pub fn stat(local: &Path) -> io::Result<Node> {
    let m = std::fs::symlink_metadata(local)?;
    let ft = m.file_type();
    let mtime = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64);
    let (kind, link) = if ft.is_dir() {
        (EntryKind::Directory, Some(String::new()))
    } else if ft.is_symlink() {
        let target = std::fs::read_link(local).ok();
        (
            EntryKind::Symlink,
            target.map(|t| t.to_string_lossy().into_owned()),
        )
    } else if ft.is_file() {
        (EntryKind::File, Some(String::new()))
    } else {
        (EntryKind::CharDevice, Some(String::new()))
    };
    let size = if kind == EntryKind::File { m.len() } else { 0 };
    let link_readable = link.is_some();
    Ok(Node {
        kind,
        size,
        mtime,
        link: link.unwrap_or_default(),
        link_readable,
    })
}

/// Sorted names in a directory.
pub fn list(local: &Path) -> io::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(local)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}

/// Whether two nodes differ (content compared when only the mtime differs).
pub fn changed(a: &Node, a_path: &Path, b: &Node, b_path: &Path) -> io::Result<bool> {
    if a.kind != b.kind || a.size != b.size {
        return Ok(true);
    }
    if a.kind == EntryKind::Symlink && !(a.link_readable && b.link_readable) {
        return Ok(a.mtime != b.mtime);
    }
    if a.link != b.link {
        return Ok(true);
    }
    if a.kind != EntryKind::File || a.mtime == b.mtime {
        return Ok(false);
    }
    Ok(std::fs::read(a_path)? != std::fs::read(b_path)?)
}

/// Writes diff entries into a tar.
#[derive(Debug)]
pub struct DiffWriter<W: FileSink> {
    tar: TarWriter<W>,
}

impl<W: FileSink> DiffWriter<W> {
    /// A diff writer onto `out`.
    pub fn new(out: W) -> Self {
        DiffWriter {
            tar: TarWriter::new(out),
        }
    }

    /// Adds the entry at `local` as `rel` (not its children).
    pub fn add(&mut self, rel: &str, local: &Path, node: &Node) -> io::Result<()> {
        if !node.link_readable {
            return Err(io::Error::other(format!(
                "cannot read the target of symlink {rel}: WASI refuses absolute targets \
                 (the host needs a layer-fs read-link primitive)"
            )));
        }
        let mode = if node.kind == EntryKind::Directory {
            0o755
        } else {
            0o644
        };
        let mode = if node.kind == EntryKind::Symlink {
            0o777
        } else {
            mode
        };
        let mut e = Entry::new(rel, node.kind, mode);
        e.mtime = node.mtime;
        e.size = node.size;
        e.link = node.link.clone();
        self.tar.append_header(&e)?;
        if node.kind == EntryKind::File {
            self.tar.inner_mut().copy_file(local, node.size)?;
            self.tar.pad(node.size)?;
        }
        Ok(())
    }

    /// Adds `local` as `rel` and, for a directory, everything beneath it.
    pub fn add_tree(&mut self, rel: &str, local: &Path) -> io::Result<()> {
        let node = stat(local)?;
        self.add(rel, local, &node)?;
        if node.kind == EntryKind::Directory {
            for name in list(local)? {
                self.add_tree(&crate::path::join(rel, &name), &local.join(&name))?;
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

/// Writes the changes of tree `upper` against `lower` (`None`: everything new).
pub fn compare_trees<W: FileSink>(
    out: &mut DiffWriter<W>,
    rel: &str,
    upper: &Path,
    lower: Option<&Path>,
) -> io::Result<()> {
    let lower_names = match lower {
        Some(l) if l.is_dir() => list(l)?,
        _ => Vec::new(),
    };
    for name in list(upper)? {
        let (u, r) = (upper.join(&name), crate::path::join(rel, &name));
        let un = stat(&u)?;
        let below = lower
            .map(|l| l.join(&name))
            .filter(|_| lower_names.contains(&name));
        match below {
            None => out.add_tree(&r, &u)?,
            Some(l) => {
                let ln = stat(&l)?;
                if un.kind == EntryKind::Directory && ln.kind == EntryKind::Directory {
                    if un.mtime != ln.mtime {
                        out.add(&r, &u, &un)?;
                    }
                    compare_trees(out, &r, &u, Some(&l))?;
                } else if changed(&un, &u, &ln, &l)? {
                    out.add_tree(&r, &u)?;
                }
            }
        }
    }
    let upper_names = list(upper)?;
    for name in lower_names.iter().filter(|n| !upper_names.contains(n)) {
        out.whiteout(&crate::path::join(rel, name))?;
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::tar_read::{ReadSource, TarReader};

    #[test]
    fn diff_of_two_trees() {
        let tmp = tempfile::tempdir().unwrap();
        let (lower, upper) = (tmp.path().join("lower"), tmp.path().join("upper"));
        for d in [&lower, &upper] {
            std::fs::create_dir_all(d.join("etc")).unwrap();
            std::fs::write(d.join("etc/same"), "same").unwrap();
        }
        std::fs::write(lower.join("etc/gone"), "x").unwrap();
        std::fs::write(lower.join("etc/edit"), "old").unwrap();
        std::fs::write(upper.join("etc/edit"), "new!").unwrap();
        std::fs::create_dir_all(upper.join("new/sub")).unwrap();
        std::fs::write(upper.join("new/sub/f"), "f").unwrap();
        std::os::unix::fs::symlink("/x", upper.join("ln")).unwrap();

        let mut w = DiffWriter::new(Vec::new());
        compare_trees(&mut w, "", &upper, Some(&lower)).unwrap();
        let bytes = w.finish().unwrap();
        let mut r = TarReader::new(ReadSource(&bytes[..]));
        let mut got = Vec::new();
        while let Some(e) = r.next_entry().unwrap() {
            let data = r.read_content_to_vec(100).unwrap();
            got.push(format!("{} {}", e.path, String::from_utf8(data).unwrap()));
        }
        let want = [
            "etc/edit new!",
            "etc/.wh.gone ",
            "ln ",
            "new ",
            "new/sub ",
            "new/sub/f f",
        ];
        let mut got_sorted = got.clone();
        got_sorted.retain(|g| !g.starts_with("etc ")); // the dir's mtime may differ
        assert_eq!(got_sorted, want, "{got:?}");
    }
}
