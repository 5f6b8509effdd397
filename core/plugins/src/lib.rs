//! berth's default plugins, built from `plugins/*` for wasm32-wasip2 by this
//! crate's build script and embedded as component bytes, each with the form
//! wasmtime compiled it to when berth was built (the host's engine settings,
//! for the target berth was built for), so that no start of berth has to
//! compile them.
//!
//! ```
//! assert_eq!(&berth_plugins::STORAGE_VFS[..4], b"\0asm");
//! assert_eq!(&berth_plugins::STORAGE_VFS_PLUGIN.precompiled[..4], b"\x7fELF");
//! ```

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

pub use embedded::ENGINE_SETTINGS;

/// One embedded plugin.
#[derive(Debug)]
pub struct Plugin {
    /// Its name, e.g. `storage-vfs`.
    pub name: &'static str,
    /// The WIT world it implements.
    pub world: &'static str,
    /// The component.
    pub wasm: &'static [u8],
    /// SHA-256 of `wasm`, lowercase hex (computed when berth was built).
    pub wasm_sha256: &'static str,
    /// The component compiled by wasmtime when berth was built (the bytes of
    /// `Engine::precompile_component`), with settings hash [`ENGINE_SETTINGS`].
    pub precompiled: &'static [u8],
    /// SHA-256 of `precompiled`, lowercase hex.
    pub precompiled_sha256: &'static str,
}

macro_rules! plugin {
    ($doc:literal, $static:ident, $precompiled:ident, $name:literal, $world:literal, $stem:literal, $sha:ident, $psha:ident) => {
        #[doc = concat!($doc, " The component.")]
        pub static $static: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/", $stem, ".wasm"));
        #[doc = concat!($doc, " Component and compiled form.")]
        pub static $precompiled: Plugin = Plugin {
            name: $name,
            world: $world,
            wasm: $static,
            wasm_sha256: embedded::$sha,
            precompiled: include_bytes!(concat!(env!("OUT_DIR"), "/", $stem, ".cwasm")),
            precompiled_sha256: embedded::$psha,
        };
    };
}

plugin!(
    "The `storage-vfs` storage driver (full copies; works on any filesystem).",
    STORAGE_VFS,
    STORAGE_VFS_PLUGIN,
    "storage-vfs",
    "storage-driver",
    "storage_vfs",
    STORAGE_VFS_SHA256,
    STORAGE_VFS_PRECOMPILED_SHA256
);
plugin!(
    "The `storage-overlay` storage driver (overlayfs).",
    STORAGE_OVERLAY,
    STORAGE_OVERLAY_PLUGIN,
    "storage-overlay",
    "storage-driver",
    "storage_overlay",
    STORAGE_OVERLAY_SHA256,
    STORAGE_OVERLAY_PRECOMPILED_SHA256
);
plugin!(
    "The `fetch-archive` image fetcher (OCI layouts, OCI archives, `docker save` tars).",
    FETCH_ARCHIVE,
    FETCH_ARCHIVE_PLUGIN,
    "fetch-archive",
    "image-fetcher",
    "fetch_archive",
    FETCH_ARCHIVE_SHA256,
    FETCH_ARCHIVE_PRECOMPILED_SHA256
);
plugin!(
    "The `fetch-registry` image fetcher (OCI distribution over wasi:http).",
    FETCH_REGISTRY,
    FETCH_REGISTRY_PLUGIN,
    "fetch-registry",
    "image-fetcher",
    "fetch_registry",
    FETCH_REGISTRY_SHA256,
    FETCH_REGISTRY_PRECOMPILED_SHA256
);
plugin!(
    "The `network-bridge` network plugin (Linux bridge, veth pairs, IPAM, NAT).",
    NETWORK_BRIDGE,
    NETWORK_BRIDGE_PLUGIN,
    "network-bridge",
    "network-plugin",
    "network_bridge",
    NETWORK_BRIDGE_SHA256,
    NETWORK_BRIDGE_PRECOMPILED_SHA256
);

/// Every embedded plugin.
pub static ALL: [&Plugin; 5] = [
    &STORAGE_VFS_PLUGIN,
    &STORAGE_OVERLAY_PLUGIN,
    &FETCH_ARCHIVE_PLUGIN,
    &FETCH_REGISTRY_PLUGIN,
    &NETWORK_BRIDGE_PLUGIN,
];
