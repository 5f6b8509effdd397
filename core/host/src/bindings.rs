//! Host bindings generated from the WIT package in `sdk/wit` (one module per world).
//!
//! The fetcher world reuses the storage world's `types` and `log` so both
//! kinds share one implementation of them.

#![allow(missing_docs, missing_debug_implementations)]

/// The `storage-driver` world.
pub(crate) mod storage {
    wasmtime::component::bindgen!({
        path: "../../sdk/wit",
        world: "berth:plugin/storage-driver",
        imports: { default: async | trappable },
        exports: { default: async },
        require_store_data_send: true,
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
        },
    });
}

/// The `image-fetcher` world.
pub(crate) mod fetcher {
    wasmtime::component::bindgen!({
        path: "../../sdk/wit",
        world: "berth:plugin/image-fetcher",
        imports: { default: async | trappable },
        exports: { default: async },
        require_store_data_send: true,
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "berth:plugin/types": super::storage::berth::plugin::types,
            "berth:plugin/log": super::storage::berth::plugin::log,
            "berth:plugin/blobs.blob-writer": crate::blobs::BlobWriter,
            "berth:plugin/blobs.blob-reader": crate::blobs::BlobReader,
        },
    });
}

/// The `network-plugin` world.
pub(crate) mod network {
    wasmtime::component::bindgen!({
        path: "../../sdk/wit",
        world: "berth:plugin/network-plugin",
        imports: { default: async | trappable },
        exports: { default: async },
        require_store_data_send: true,
        with: {
            "berth:plugin/types": super::storage::berth::plugin::types,
            "berth:plugin/log": super::storage::berth::plugin::log,
        },
    });
}
