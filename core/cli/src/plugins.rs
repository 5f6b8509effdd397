//! The default plugins embedded in the binary, for the engine the daemon
//! and the daemonless mode open.

use berth_engine::Builtins;

/// The embedded storage, fetcher and network plugins.
pub fn builtins() -> Builtins {
    Builtins {
        storage_overlay: berth_plugins::STORAGE_OVERLAY,
        storage_vfs: berth_plugins::STORAGE_VFS,
        fetch_registry: berth_plugins::FETCH_REGISTRY,
        fetch_archive: berth_plugins::FETCH_ARCHIVE,
        network_bridge: berth_plugins::NETWORK_BRIDGE,
    }
}
