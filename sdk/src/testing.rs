//! Test doubles for plugin logic: a [`LayerFs`] over a real directory that
//! records what only the host could do (owners, nodes, whiteouts, xattrs).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::tar_read::ReadSource;
use crate::unpack::{LayerFs, Meta, NodeKind, PathKind};
use crate::SdkError;

/// A [`LayerFs`] over a real directory (the "plugin root").
#[derive(Debug, Default)]
pub struct DirLayerFs {
    /// The directory standing in for the plugin root.
    pub root: PathBuf,
    /// Meta given to each path.
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
}

fn io(e: std::io::Error) -> SdkError {
    SdkError::Io(e)
}

impl LayerFs for DirLayerFs {
    type Source = ReadSource<std::io::Cursor<Vec<u8>>>;
    type Error = SdkError;

    fn mkdir(&mut self, path: &str, meta: Meta) -> Result<(), SdkError> {
        self.call("mkdir", path);
        std::fs::create_dir_all(self.p(path)).map_err(io)?;
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
        self.meta.insert(path.into(), meta);
        Ok(())
    }
    fn symlink(&mut self, path: &str, target: &str, _uid: u32, _gid: u32) -> Result<(), SdkError> {
        self.call("symlink", path);
        let _ = std::fs::remove_file(self.p(path));
        std::os::unix::fs::symlink(target, self.p(path)).map_err(io)
    }
    fn hardlink(&mut self, path: &str, target: &str) -> Result<(), SdkError> {
        self.call("hardlink", path);
        std::fs::hard_link(self.p(target), self.p(path)).map_err(io)
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
        copy_dir(&self.p(src), &self.p(dst)).map_err(io)
    }
    fn kind(&mut self, path: &str) -> Option<PathKind> {
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
    fn local(&self, path: &str) -> PathBuf {
        self.p(path)
    }
}

/// Copies a file or tree (symlinks as symlinks).
pub fn copy_dir(src: &Path, dst: &Path) -> std::io::Result<()> {
    let m = std::fs::symlink_metadata(src)?;
    if let Some(parent) = dst.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if m.is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(src)?, dst)
    } else if m.is_dir() {
        std::fs::create_dir_all(dst)?;
        for e in std::fs::read_dir(src)? {
            let e = e?;
            copy_dir(&e.path(), &dst.join(e.file_name()))?;
        }
        Ok(())
    } else {
        std::fs::copy(src, dst).map(drop)
    }
}

/// A tar stream source over bytes, for [`DirLayerFs`].
pub fn source(bytes: Vec<u8>) -> crate::tar_read::TarReader<ReadSource<std::io::Cursor<Vec<u8>>>> {
    crate::tar_read::TarReader::new(ReadSource(std::io::Cursor::new(bytes)))
}
