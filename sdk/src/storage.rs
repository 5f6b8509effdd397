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
use crate::layerfs::{DiskUsage, FileKind, LayerFs, Meta, NodeKind, PathKind, Stat};

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
    fn kind(&self, path: &str) -> Option<PathKind> {
        layer_fs::kind(path).map(|k| match k {
            layer_fs::EntryKind::File => PathKind::File,
            layer_fs::EntryKind::Directory => PathKind::Directory,
            layer_fs::EntryKind::Symlink => PathKind::Symlink,
            layer_fs::EntryKind::Other => PathKind::Other,
        })
    }
    fn disk_usage(&self, path: &str) -> Result<DiskUsage, Error> {
        let u = layer_fs::disk_usage(path)?;
        Ok(DiskUsage {
            size: u.size,
            inodes: u.inodes,
        })
    }
    fn stat(&self, path: &str) -> Result<Stat, Error> {
        let s = layer_fs::stat(path)?;
        Ok(Stat {
            kind: match s.kind {
                layer_fs::FileKind::File => FileKind::File,
                layer_fs::FileKind::Directory => FileKind::Directory,
                layer_fs::FileKind::Symlink => FileKind::Symlink,
                layer_fs::FileKind::CharDevice => FileKind::CharDevice,
                layer_fs::FileKind::BlockDevice => FileKind::BlockDevice,
                layer_fs::FileKind::Fifo => FileKind::Fifo,
                layer_fs::FileKind::Socket => FileKind::Socket,
            },
            mode: s.mode,
            uid: s.uid,
            gid: s.gid,
            size: s.size,
            mtime: s.mtime,
            mtime_nsec: s.mtime_nsec,
            rdev: (s.rdev_major, s.rdev_minor),
            nlink: s.nlink,
            dev: s.dev,
            ino: s.ino,
        })
    }
    fn read_link(&self, path: &str) -> Result<String, Error> {
        layer_fs::read_link(path)
    }
    fn list_xattrs(&self, path: &str) -> Result<Vec<String>, Error> {
        layer_fs::list_xattrs(path)
    }
    fn get_xattr(&self, path: &str, name: &str) -> Result<Vec<u8>, Error> {
        layer_fs::get_xattr(path, name)
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

/// The `storage` export of a [`Driver`] over [`HostLayerFs`], in the export's
/// types: [`crate::export_storage_driver!`] forwards each verb here.
pub mod verbs {
    use super::*;
    use crate::driver::Driver;
    use crate::io::StreamWriter;
    use crate::tar_read::TarReader;

    /// `apply-layer`: reads the layer from the call's stream.
    pub fn apply_layer<'a, D: Driver<Fs = HostLayerFs<'a>>>(
        mut d: D,
        layer: Layer,
        tar: &'a InputStream,
    ) -> Result<ApplyStats, Error> {
        let mut reader = TarReader::new(StreamSource(tar));
        let s = d.apply_layer(&layer.id, layer.parent.as_deref(), &mut reader)?;
        Ok(ApplyStats {
            entries: s.entries,
            bytes: s.bytes,
        })
    }

    /// `usage`.
    pub fn usage<'a, D: Driver<Fs = HostLayerFs<'a>>>(
        d: D,
        key: &str,
    ) -> Result<SpaceUsage, Error> {
        let u = d.usage(key)?;
        Ok(SpaceUsage {
            size: u.size,
            inodes: u.inodes,
        })
    }

    /// `diff`: file contents are spliced into `out` by the host.
    pub fn diff<'a, D: Driver<Fs = HostLayerFs<'a>>>(
        d: D,
        key: &str,
        out: &OutputStream,
    ) -> Result<(), Error> {
        d.diff(key, StreamWriter(out)).map(drop)
    }
}

/// Exports a storage driver: `$plugin` is a unit struct to implement
/// [`StorageDriver`] for, `$driver` a function returning a fresh
/// [`crate::driver::Driver`] over [`HostLayerFs`] (one per call).
///
/// ```ignore
/// fn driver<'a>() -> Vfs<HostLayerFs<'a>> {
///     Vfs::new(HostLayerFs::default(), HostLayerFs::ROOT)
/// }
/// pub struct Plugin;
/// berth_sdk::export_storage_driver!(Plugin, driver);
/// ```
#[macro_export]
macro_rules! export_storage_driver {
    ($plugin:ident, $driver:path) => {
        impl $crate::storage::StorageDriver for $plugin {
            fn has_layer(id: String) -> bool {
                $crate::driver::Driver::has_layer(&$driver(), &id)
            }
            fn apply_layer(
                layer: $crate::storage::Layer,
                tar: &$crate::storage::InputStream,
            ) -> Result<$crate::storage::ApplyStats, $crate::storage::Error> {
                $crate::storage::verbs::apply_layer($driver(), layer, tar)
            }
            fn prepare(
                key: String,
                parent: Option<String>,
            ) -> Result<Vec<$crate::storage::Mount>, $crate::storage::Error> {
                $crate::driver::Driver::prepare(&mut $driver(), &key, parent.as_deref())
            }
            fn view(
                key: String,
                parent: String,
            ) -> Result<Vec<$crate::storage::Mount>, $crate::storage::Error> {
                $crate::driver::Driver::view(&mut $driver(), &key, &parent)
            }
            fn mounts(key: String) -> Result<Vec<$crate::storage::Mount>, $crate::storage::Error> {
                $crate::driver::Driver::mounts(&$driver(), &key)
            }
            fn commit(key: String, id: String) -> Result<(), $crate::storage::Error> {
                $crate::driver::Driver::commit(&mut $driver(), &key, &id)
            }
            fn remove(key: String) -> Result<(), $crate::storage::Error> {
                $crate::driver::Driver::remove(&mut $driver(), &key)
            }
            fn usage(key: String) -> Result<$crate::storage::SpaceUsage, $crate::storage::Error> {
                $crate::storage::verbs::usage($driver(), &key)
            }
            fn diff(
                key: String,
                out: &$crate::storage::OutputStream,
            ) -> Result<(), $crate::storage::Error> {
                $crate::storage::verbs::diff($driver(), &key, out)
            }
            fn gc(keep: Vec<String>) -> Result<Vec<String>, $crate::storage::Error> {
                $crate::driver::Driver::gc(&mut $driver(), &keep)
            }
        }
        $crate::export_storage!($plugin);
    };
}
