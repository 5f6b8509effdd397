//! storage-vfs: berth's fallback storage driver. Every layer and snapshot is a
//! full copy, so it works on any filesystem (no overlayfs needed).
//!
//! The plugin root is preopened by the host at `/`; [`driver`] holds the logic.

pub mod driver;

use berth_sdk::storage::HostLayerFs;

use driver::Vfs;

/// The exported driver.
#[derive(Debug)]
pub struct Plugin;

/// A driver over the host's primitives, for one call.
fn driver<'a>() -> Vfs<HostLayerFs<'a>> {
    Vfs::new(HostLayerFs::default(), HostLayerFs::ROOT)
}

berth_sdk::export_storage_driver!(Plugin, driver);
