//! berth's default plugins, built from `plugins/*` for wasm32-wasip2 by this
//! crate's build script and embedded as component bytes.
//!
//! ```
//! assert_eq!(&berth_plugins::STORAGE_VFS[..4], b"\0asm");
//! ```

/// The `storage-vfs` storage driver (full copies; works on any filesystem).
pub static STORAGE_VFS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/storage_vfs.wasm"));
/// The `storage-overlay` storage driver (overlayfs).
pub static STORAGE_OVERLAY: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/storage_overlay.wasm"));
/// The `fetch-archive` image fetcher (OCI layouts, OCI archives, `docker save` tars).
pub static FETCH_ARCHIVE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/fetch_archive.wasm"));
/// The `fetch-registry` image fetcher (OCI distribution over wasi:http).
pub static FETCH_REGISTRY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/fetch_registry.wasm"));
/// The `network-bridge` network plugin (Linux bridge, veth pairs, IPAM, NAT).
pub static NETWORK_BRIDGE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/network_bridge.wasm"));

/// Every embedded plugin: (name, world, component bytes).
pub static ALL: [(&str, &str, &[u8]); 5] = [
    ("storage-vfs", "storage-driver", STORAGE_VFS),
    ("storage-overlay", "storage-driver", STORAGE_OVERLAY),
    ("fetch-archive", "image-fetcher", FETCH_ARCHIVE),
    ("fetch-registry", "image-fetcher", FETCH_REGISTRY),
    ("network-bridge", "network-plugin", NETWORK_BRIDGE),
];
