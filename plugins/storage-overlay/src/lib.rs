//! storage-overlay: berth's default storage driver on overlayfs. Layers are
//! unpacked once per chain id and shared; containers get copy-on-write snapshots.
//!
//! The plugin root is preopened by the host at `/`; [`driver`] holds the logic.

pub mod driver;

use berth_sdk::error::PluginError;
use berth_sdk::io::{StreamSource, StreamWriter};
use berth_sdk::storage::{
    layer_fs, ApplyStats, HostLayerFs, InputStream, Layer, Mount, OutputStream, SpaceUsage,
    StorageDriver,
};
use berth_sdk::tar_read::TarReader;

use driver::Overlay;

/// The exported driver.
#[derive(Debug)]
pub struct Plugin;

fn driver<'a>() -> Overlay<HostLayerFs<'a>> {
    Overlay::new(HostLayerFs::default(), HostLayerFs::ROOT)
}

impl StorageDriver for Plugin {
    fn has_layer(id: String) -> bool {
        driver().has_layer(&id)
    }
    fn apply_layer(layer: Layer, tar: &InputStream) -> Result<ApplyStats, PluginError> {
        let mut reader = TarReader::new(StreamSource(tar));
        let s = driver().apply_layer(&layer.id, layer.parent.as_deref(), &mut reader)?;
        Ok(ApplyStats {
            entries: s.entries,
            bytes: s.bytes,
        })
    }
    fn prepare(key: String, parent: Option<String>) -> Result<Vec<Mount>, PluginError> {
        driver().prepare(&key, parent.as_deref())
    }
    fn view(key: String, parent: String) -> Result<Vec<Mount>, PluginError> {
        driver().view(&key, &parent)
    }
    fn mounts(key: String) -> Result<Vec<Mount>, PluginError> {
        driver().mounts(&key)
    }
    fn commit(key: String, id: String) -> Result<(), PluginError> {
        driver().commit(&key, &id)
    }
    fn remove(key: String) -> Result<(), PluginError> {
        driver().remove(&key)
    }
    fn usage(key: String) -> Result<SpaceUsage, PluginError> {
        driver().usage(&key, layer_fs::disk_usage)
    }
    fn diff(key: String, out: &OutputStream) -> Result<(), PluginError> {
        driver().diff(&key, StreamWriter(out)).map(drop)
    }
    fn gc(keep: Vec<String>) -> Result<Vec<String>, PluginError> {
        driver().gc(&keep)
    }
}

berth_sdk::export_storage!(Plugin);
