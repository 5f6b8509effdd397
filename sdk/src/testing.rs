//! Test doubles for plugin logic: a [`LayerFs`] over a real directory that
//! records what only the host could do (owners, nodes, whiteouts, xattrs)
//! and shows it back through [`LayerFs::stat`] and the xattr reads, so tests
//! need not run as root.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::layerfs::{DiskUsage, FileKind, LayerFs, Meta, NodeKind, PathKind, Stat};
use crate::tar_read::ReadSource;
use crate::SdkError;

/// A [`LayerFs`] over a real directory (the "plugin root").
#[derive(Debug, Default)]
pub struct DirLayerFs {
    /// The directory standing in for the plugin root.
    pub root: PathBuf,
    /// Meta given to each path (symlinks: mode 0o777 and their owner).
    pub meta: BTreeMap<String, Meta>,
    /// Device nodes and fifos made (also created as empty files).
    pub nodes: BTreeMap<String, (NodeKind, u32, u32)>,
    /// Overlay whiteouts made (also created as empty files).
    pub whiteouts: BTreeSet<String>,
    /// Directories marked opaque.
    pub opaque: BTreeSet<String>,
    /// Extended attributes set.
    pub xattrs: BTreeMap<(String, String), Vec<u8>>,
    /// Every primitive called, in order (`"mkdir a/b"`).
    pub calls: Vec<String>,
}

impl DirLayerFs {
    /// A fake rooted at `root`.
    pub fn new(root: &Path) -> Self {
        DirLayerFs {
            root: root.to_path_buf(),
            ..Default::default()
        }
    }

    fn p(&self, path: &str) -> PathBuf {
        self.root.join(path)
    }

    fn call(&mut self, what: &str, path: &str) {
        self.calls.push(format!("{what} {path}"));
    }

    /// Makes what is recorded for `src` and beneath it also hold for `dst`.
    fn carry(&mut self, src: &str, dst: &str) {
        let moved = |p: &str| -> Option<String> {
            let rest = p.strip_prefix(src)?;
            (rest.is_empty() || rest.starts_with('/')).then(|| format!("{dst}{rest}"))
        };
        fn dup<K: Ord + Clone, V: Clone>(m: &mut BTreeMap<K, V>, f: impl Fn(&K) -> Option<K>) {
            let add: Vec<(K, V)> = m
                .iter()
                .filter_map(|(k, v)| Some((f(k)?, v.clone())))
                .collect();
            m.extend(add);
        }
        dup(&mut self.meta, |k| moved(k));
        dup(&mut self.nodes, |k| moved(k));
        dup(&mut self.xattrs, |(p, n)| Some((moved(p)?, n.clone())));
        for set in [&mut self.whiteouts, &mut self.opaque] {
            let add: Vec<String> = set.iter().filter_map(|p| moved(p)).collect();
            set.extend(add);
        }
    }
}

fn io(e: std::io::Error) -> SdkError {
    SdkError::Io(e)
}

/// Sets the real mtime (owners and modes are only recorded: they need root).
fn set_mtime(p: &Path, mtime: i64) -> Result<(), SdkError> {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime.max(0) as u64);
    std::fs::File::open(p)
        .and_then(|f| f.set_modified(t))
        .map_err(io)
}

impl LayerFs for DirLayerFs {
    type Source = ReadSource<std::io::Cursor<Vec<u8>>>;
    type Error = SdkError;

    fn mkdir(&mut self, path: &str, meta: Meta) -> Result<(), SdkError> {
        self.call("mkdir", path);
        std::fs::create_dir_all(self.p(path)).map_err(io)?;
        set_mtime(&self.p(path), meta.mtime)?;
        self.meta.insert(path.into(), meta);
        Ok(())
    }
    fn write_file(
        &mut self,
        path: &str,
        meta: Meta,
        src: &mut Self::Source,
        size: u64,
    ) -> Result<(), SdkError> {
        self.call("write", path);
        let mut data = Vec::new();
        (&mut src.0).take(size).read_to_end(&mut data).map_err(io)?;
        let _ = std::fs::remove_file(self.p(path));
        std::fs::write(self.p(path), data).map_err(io)?;
        set_mtime(&self.p(path), meta.mtime)?;
        self.meta.insert(path.into(), meta);
        Ok(())
    }
    fn symlink(&mut self, path: &str, target: &str, uid: u32, gid: u32) -> Result<(), SdkError> {
        self.call("symlink", path);
        let _ = std::fs::remove_file(self.p(path));
        std::os::unix::fs::symlink(target, self.p(path)).map_err(io)?;
        let meta = Meta {
            mode: 0o777,
            uid,
            gid,
            mtime: 0,
        };
        self.meta.insert(path.into(), meta);
        Ok(())
    }
    fn hardlink(&mut self, path: &str, target: &str) -> Result<(), SdkError> {
        self.call("hardlink", path);
        std::fs::hard_link(self.p(target), self.p(path)).map_err(io)?;
        self.carry(target, path);
        Ok(())
    }
    fn mknod(
        &mut self,
        path: &str,
        kind: NodeKind,
        major: u32,
        minor: u32,
        meta: Meta,
    ) -> Result<(), SdkError> {
        self.call("mknod", path);
        std::fs::write(self.p(path), b"").map_err(io)?;
        set_mtime(&self.p(path), meta.mtime)?;
        self.nodes.insert(path.into(), (kind, major, minor));
        self.meta.insert(path.into(), meta);
        Ok(())
    }
    fn set_xattr(&mut self, path: &str, name: &str, value: &[u8]) -> Result<(), SdkError> {
        self.call("xattr", path);
        self.xattrs
            .insert((path.into(), name.into()), value.to_vec());
        Ok(())
    }
    fn whiteout(&mut self, path: &str) -> Result<(), SdkError> {
        self.call("whiteout", path);
        std::fs::write(self.p(path), b"").map_err(io)?;
        self.whiteouts.insert(path.into());
        Ok(())
    }
    fn set_opaque(&mut self, path: &str) -> Result<(), SdkError> {
        self.call("opaque", path);
        self.opaque.insert(path.into());
        Ok(())
    }
    fn remove(&mut self, path: &str) -> Result<(), SdkError> {
        self.call("remove", path);
        let p = self.p(path);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&p).map_err(io),
            Ok(_) => std::fs::remove_file(&p).map_err(io),
            Err(_) => Ok(()),
        }
    }
    fn copy_tree(&mut self, src: &str, dst: &str) -> Result<(), SdkError> {
        self.call("copy", dst);
        copy_dir(&self.p(src), &self.p(dst)).map_err(io)?;
        self.carry(src, dst);
        Ok(())
    }
    fn kind(&self, path: &str) -> Option<PathKind> {
        let m = std::fs::symlink_metadata(self.p(path)).ok()?;
        Some(if m.is_dir() {
            PathKind::Directory
        } else if m.is_symlink() {
            PathKind::Symlink
        } else if self.nodes.contains_key(path) || self.whiteouts.contains(path) {
            PathKind::Other
        } else {
            PathKind::File
        })
    }
    fn disk_usage(&self, path: &str) -> Result<DiskUsage, SdkError> {
        let mut usage = DiskUsage::default();
        usage_of(&self.p(path), &mut usage, &mut HashSet::new()).map_err(io)?;
        Ok(usage)
    }
    /// The real entry's `lstat`, with what the fake recorded in its place:
    /// owners and modes, node kinds and numbers, whiteouts.
    fn stat(&self, path: &str) -> Result<Stat, SdkError> {
        let m = std::fs::symlink_metadata(self.p(path)).map_err(io)?;
        let ft = m.file_type();
        let mut st = Stat {
            kind: if ft.is_dir() {
                FileKind::Directory
            } else if ft.is_symlink() {
                FileKind::Symlink
            } else {
                file_kind(&ft)
            },
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            size: if ft.is_file() || ft.is_symlink() {
                m.len()
            } else {
                0
            },
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec() as u32,
            rdev: (0, 0),
            nlink: m.nlink(),
            dev: m.dev(),
            ino: m.ino(),
        };
        if let Some(meta) = self.meta.get(path) {
            (st.mode, st.uid, st.gid) = (meta.mode, meta.uid, meta.gid);
        }
        if let Some((kind, major, minor)) = self.nodes.get(path) {
            st.kind = match kind {
                NodeKind::Char => FileKind::CharDevice,
                NodeKind::Block => FileKind::BlockDevice,
                NodeKind::Fifo => FileKind::Fifo,
            };
            st.rdev = (*major, *minor);
            st.size = 0;
        }
        if self.whiteouts.contains(path) {
            (st.kind, st.rdev, st.size) = (FileKind::CharDevice, (0, 0), 0);
        }
        Ok(st)
    }
    fn read_link(&self, path: &str) -> Result<String, SdkError> {
        let t = std::fs::read_link(self.p(path)).map_err(io)?;
        Ok(t.to_string_lossy().into_owned())
    }
    fn list_xattrs(&self, path: &str) -> Result<Vec<String>, SdkError> {
        std::fs::symlink_metadata(self.p(path)).map_err(io)?;
        let mut names: Vec<String> = self
            .xattrs
            .keys()
            .filter(|(p, _)| p == path)
            .map(|(_, n)| n.clone())
            .collect();
        if self.opaque.contains(path) {
            names.push(OPAQUE.into());
        }
        Ok(names)
    }
    fn get_xattr(&self, path: &str, name: &str) -> Result<Vec<u8>, SdkError> {
        if name == OPAQUE && self.opaque.contains(path) {
            return Ok(b"y".to_vec());
        }
        self.xattrs
            .get(&(path.to_string(), name.to_string()))
            .cloned()
            .ok_or_else(|| {
                let e =
                    std::io::Error::new(std::io::ErrorKind::NotFound, format!("no xattr {name}"));
                io(e)
            })
    }
    fn local(&self, path: &str) -> PathBuf {
        self.p(path)
    }
}

/// The overlayfs opaque xattr [`LayerFs::set_opaque`] sets.
const OPAQUE: &str = "trusted.overlay.opaque";

fn file_kind(ft: &std::fs::FileType) -> FileKind {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_char_device() {
        FileKind::CharDevice
    } else if ft.is_block_device() {
        FileKind::BlockDevice
    } else if ft.is_fifo() {
        FileKind::Fifo
    } else if ft.is_socket() {
        FileKind::Socket
    } else {
        FileKind::File
    }
}

fn usage_of(p: &Path, u: &mut DiskUsage, seen: &mut HashSet<(u64, u64)>) -> std::io::Result<()> {
    let m = std::fs::symlink_metadata(p)?;
    if !seen.insert((m.dev(), m.ino())) {
        return Ok(());
    }
    u.size += m.blocks() * 512;
    u.inodes += 1;
    if m.is_dir() {
        for e in std::fs::read_dir(p)? {
            usage_of(&e?.path(), u, seen)?;
        }
    }
    Ok(())
}

/// Copies a file or tree as the host's `copy-tree` does: symlinks as
/// symlinks, hard links within the tree as hard links, mtimes kept.
pub fn copy_dir(src: &Path, dst: &Path) -> std::io::Result<()> {
    if let Some(parent) = dst.parent() {
        std::fs::create_dir_all(parent)?;
    }
    copy_entry(src, dst, &mut std::collections::HashMap::new())
}

fn copy_entry(
    src: &Path,
    dst: &Path,
    links: &mut std::collections::HashMap<(u64, u64), PathBuf>,
) -> std::io::Result<()> {
    let m = std::fs::symlink_metadata(src)?;
    if m.is_symlink() {
        return std::os::unix::fs::symlink(std::fs::read_link(src)?, dst);
    }
    if m.is_dir() {
        std::fs::create_dir_all(dst)?;
        for e in std::fs::read_dir(src)? {
            let e = e?;
            copy_entry(&e.path(), &dst.join(e.file_name()), links)?;
        }
    } else if m.nlink() > 1 && links.contains_key(&(m.dev(), m.ino())) {
        return std::fs::hard_link(&links[&(m.dev(), m.ino())], dst);
    } else {
        links.insert((m.dev(), m.ino()), dst.to_path_buf());
        std::fs::copy(src, dst)?;
    }
    std::fs::File::open(dst)?.set_modified(m.modified()?)
}

/// A tar stream source over bytes, for [`DirLayerFs`].
pub fn source(bytes: Vec<u8>) -> crate::tar_read::TarReader<ReadSource<std::io::Cursor<Vec<u8>>>> {
    crate::tar_read::TarReader::new(ReadSource(std::io::Cursor::new(bytes)))
}

/// A layer tar of regular files (mode 0644, root-owned): `(path, content)`.
pub fn files_tar(files: &[(&str, &str)]) -> Vec<u8> {
    let mut w = crate::tar_write::TarWriter::new(Vec::new());
    for (path, content) in files {
        let e = crate::tar_read::Entry::new(*path, crate::tar_read::EntryKind::File, 0o644);
        w.append(&e, content.as_bytes()).expect("writing to a Vec");
    }
    w.finish().expect("writing to a Vec")
}
