//! For storage drivers: the `storage-driver` world's types, the export macro's
//! trait, and [`HostLayerFs`], the host's `layer-fs` behind [`LayerFs`].

use std::path::PathBuf;

pub use crate::wit::common::berth::plugin::types::{Error, Mount};
pub use crate::wit::common::wasi::io::streams::{InputStream, OutputStream};
pub use crate::wit::storage::berth::plugin::layer_fs;
pub use crate::wit::storage::exports::berth::plugin::storage::{
    ApplyStats, Guest as StorageDriver, Layer, SpaceUsage,
};

use crate::io::StreamSource;
use crate::unpack::{LayerFs, Meta, NodeKind, PathKind};

impl From<Meta> for layer_fs::Meta {
    fn from(m: Meta) -> Self {
        layer_fs::Meta {
            mode: m.mode,
            uid: m.uid,
            gid: m.gid,
            mtime: m.mtime,
        }
    }
}

/// The host's `layer-fs` primitives. Paths are relative to the plugin root,
/// which the host preopens at `/` for `std::fs`.
#[derive(Debug, Default)]
pub struct HostLayerFs<'a>(std::marker::PhantomData<&'a ()>);

impl HostLayerFs<'_> {
    /// Where the plugin root is visible to `std::fs`.
    pub const ROOT: &'static str = "/";
}

impl<'a> LayerFs for HostLayerFs<'a> {
    type Source = StreamSource<'a>;
    type Error = Error;

    fn mkdir(&mut self, path: &str, meta: Meta) -> Result<(), Error> {
        layer_fs::mkdir(path, meta.into())
    }
    fn write_file(
        &mut self,
        path: &str,
        meta: Meta,
        src: &mut Self::Source,
        size: u64,
    ) -> Result<(), Error> {
        layer_fs::write_file(path, meta.into(), src.0, size)
    }
    fn symlink(&mut self, path: &str, target: &str, uid: u32, gid: u32) -> Result<(), Error> {
        layer_fs::symlink(path, target, uid, gid)
    }
    fn hardlink(&mut self, path: &str, target: &str) -> Result<(), Error> {
        layer_fs::hardlink(path, target)
    }
    fn mknod(
        &mut self,
        path: &str,
        kind: NodeKind,
        major: u32,
        minor: u32,
        meta: Meta,
    ) -> Result<(), Error> {
        let kind = match kind {
            NodeKind::Char => layer_fs::NodeKind::CharDevice,
            NodeKind::Block => layer_fs::NodeKind::BlockDevice,
            NodeKind::Fifo => layer_fs::NodeKind::Fifo,
        };
        layer_fs::mknod(path, kind, major, minor, meta.into())
    }
    fn set_xattr(&mut self, path: &str, name: &str, value: &[u8]) -> Result<(), Error> {
        layer_fs::set_xattr(path, name, value)
    }
    fn whiteout(&mut self, path: &str) -> Result<(), Error> {
        layer_fs::whiteout(path)
    }
    fn set_opaque(&mut self, path: &str) -> Result<(), Error> {
        layer_fs::set_opaque(path)
    }
    fn remove(&mut self, path: &str) -> Result<(), Error> {
        layer_fs::remove(path)
    }
    fn copy_tree(&mut self, src: &str, dst: &str) -> Result<(), Error> {
        layer_fs::copy_tree(src, dst)
    }
    fn kind(&mut self, path: &str) -> Option<PathKind> {
        layer_fs::kind(path).map(|k| match k {
            layer_fs::EntryKind::File => PathKind::File,
            layer_fs::EntryKind::Directory => PathKind::Directory,
            layer_fs::EntryKind::Symlink => PathKind::Symlink,
            layer_fs::EntryKind::Other => PathKind::Other,
        })
    }
    fn local(&self, path: &str) -> PathBuf {
        PathBuf::from(Self::ROOT).join(path)
    }
}

/// Exports a type implementing [`StorageDriver`] as the plugin's `storage` interface.
#[macro_export]
macro_rules! export_storage {
    ($ty:ident) => {
        // Only a wasm component exports the ABI; native builds (tests) skip it.
        #[cfg(target_arch = "wasm32")]
        $crate::wit::storage::__export_storage_driver!($ty with_types_in $crate::wit::storage);
    };
}
