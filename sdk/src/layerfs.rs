//! The filesystem primitives storage drivers work through ([`LayerFs`]) and
//! their types: the host's `layer-fs` interface in a plugin, a fake over a
//! directory in native tests.

use std::path::PathBuf;

use crate::tar_read::{Entry, TarSource};

/// Owner, permission bits and mtime of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Permission bits including setuid, setgid and sticky.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Seconds since the epoch.
    pub mtime: i64,
}

impl Meta {
    /// The meta of a directory a tar implies without listing it.
    pub const IMPLIED_DIR: Meta = Meta {
        mode: 0o755,
        uid: 0,
        gid: 0,
        mtime: 0,
    };

    /// The meta of a tar entry.
    pub fn of(e: &Entry) -> Meta {
        Meta {
            mode: e.mode,
            uid: e.uid,
            gid: e.gid,
            mtime: e.mtime,
        }
    }
}

/// What exists at a path (not following a final symlink).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symlink.
    Symlink,
    /// A device, fifo, socket or whiteout.
    Other,
}

/// Special files `mknod` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// Character device.
    Char,
    /// Block device.
    Block,
    /// Named pipe.
    Fifo,
}

/// What kind of entry [`LayerFs::stat`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symlink.
    Symlink,
    /// A character device (an overlay whiteout is one, 0:0).
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A named pipe.
    Fifo,
    /// A unix socket (no tar can carry one).
    Socket,
}

/// An entry's metadata, as `lstat(2)` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Its type.
    pub kind: FileKind,
    /// Permission bits including setuid, setgid and sticky.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Bytes of a file or of a symlink's target; 0 otherwise.
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Nanoseconds of the modification time.
    pub mtime_nsec: u32,
    /// Major and minor of a device; `(0, 0)` otherwise.
    pub rdev: (u32, u32),
    /// How many names the inode has.
    pub nlink: u64,
    /// Device of the filesystem holding it (with `ino`, the inode's identity).
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
}

impl Stat {
    /// Whether this is an overlayfs whiteout (a character device 0:0).
    pub fn is_whiteout(&self) -> bool {
        self.kind == FileKind::CharDevice && self.rdev == (0, 0)
    }
}

/// Space used by a tree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskUsage {
    /// Bytes allocated.
    pub size: u64,
    /// Inodes (a hard-linked inode once).
    pub inodes: u64,
}

/// The filesystem primitives of a storage driver: the host's `layer-fs`
/// (`crate::storage::HostLayerFs` in a plugin) or a fake
/// ([`crate::testing::DirLayerFs`]). Paths are relative to the plugin root
/// and resolved beneath it.
#[allow(missing_docs)]
pub trait LayerFs {
    /// The stream file contents come from.
    type Source: TarSource;
    /// An error of a primitive.
    type Error: From<crate::SdkError>;

    fn mkdir(&mut self, path: &str, meta: Meta) -> Result<(), Self::Error>;
    /// Writes the next `size` bytes of `src` as the file's content.
    fn write_file(
        &mut self,
        path: &str,
        meta: Meta,
        src: &mut Self::Source,
        size: u64,
    ) -> Result<(), Self::Error>;
    fn symlink(&mut self, path: &str, target: &str, uid: u32, gid: u32) -> Result<(), Self::Error>;
    fn hardlink(&mut self, path: &str, target: &str) -> Result<(), Self::Error>;
    fn mknod(
        &mut self,
        path: &str,
        kind: NodeKind,
        major: u32,
        minor: u32,
        meta: Meta,
    ) -> Result<(), Self::Error>;
    fn set_xattr(&mut self, path: &str, name: &str, value: &[u8]) -> Result<(), Self::Error>;
    fn whiteout(&mut self, path: &str) -> Result<(), Self::Error>;
    fn set_opaque(&mut self, path: &str) -> Result<(), Self::Error>;
    fn remove(&mut self, path: &str) -> Result<(), Self::Error>;
    fn copy_tree(&mut self, src: &str, dst: &str) -> Result<(), Self::Error>;
    /// What is at `path`, if anything (one cheap host call).
    fn kind(&self, path: &str) -> Option<PathKind>;
    /// Bytes and inodes used by the tree at `path`.
    fn disk_usage(&self, path: &str) -> Result<DiskUsage, Self::Error>;
    /// Metadata of the entry at `path`, not following a final symlink.
    fn stat(&self, path: &str) -> Result<Stat, Self::Error>;
    /// A symlink's target as stored (absolute targets too).
    fn read_link(&self, path: &str) -> Result<String, Self::Error>;
    /// The names of the entry's xattrs that the host lets plugins set.
    fn list_xattrs(&self, path: &str) -> Result<Vec<String>, Self::Error>;
    /// The value of one of the entry's xattrs.
    fn get_xattr(&self, path: &str, name: &str) -> Result<Vec<u8>, Self::Error>;
    /// Where a root-relative path is for `std::fs` (listing dirs, reading files).
    fn local(&self, path: &str) -> PathBuf;
}
