//! storage-overlay: berth's default storage driver on overlayfs. Layers are
//! unpacked once per chain id and shared; containers get copy-on-write snapshots.
//!
//! The plugin root is preopened by the host at `/`; [`driver`] holds the logic.

pub mod driver;

use berth_sdk::storage::HostLayerFs;

use driver::Overlay;

/// The exported driver.
#[derive(Debug)]
pub struct Plugin;

/// A driver over the host's primitives, for one call.
fn driver<'a>() -> Overlay<HostLayerFs<'a>> {
    Overlay::new(HostLayerFs::default(), HostLayerFs::ROOT)
}

berth_sdk::export_storage_driver!(Plugin, driver);
