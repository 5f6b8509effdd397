//! Bindings generated from `sdk/wit` (the single source of berth's host ABI).
//!
//! `common` holds what every plugin kind shares (types, log, wasi:io and the
//! wasi:filesystem descriptors used to splice files); each world module reuses
//! it through `with`, so an `Error` or an `InputStream` is one Rust type.
//!
//! The `@version` of `berth:plugin` below is the WIT package's, written
//! again, and must stay a literal: `generate!` is a procedural macro that
//! reads string literals (no `concat!`, no constant), its `inline` world
//! imports a versioned package by its exact version, and its `with` and
//! `additional_type_attributes` keys must carry `@version` too. The compiler
//! keeps them honest: when `sdk/wit` moves to another version, each stale
//! import fails to resolve and each stale key is refused as unused, so the
//! SDK does not build until they are updated. The one version constant in
//! Rust is `berth_host::ABI_VERSION`, read from `sdk/wit/worlds.wit`.
#![allow(missing_docs, missing_debug_implementations, clippy::all)]

/// Shared interfaces: `berth:plugin/types`, `berth:plugin/log`, wasi:io, wasi:filesystem.
pub mod common {
    wit_bindgen::generate!({
        path: "wit",
        inline: "
            package berth:sdk-common;
            world common {
                import berth:plugin/types@0.1.3;
                import berth:plugin/log@0.1.3;
                import wasi:io/streams@0.2.12;
                import wasi:filesystem/preopens@0.2.12;
            }
        ",
        world: "berth:sdk-common/common",
        additional_type_attributes: {
            "berth:plugin/types@0.1.3/mount": [#[derive(PartialEq, Eq)]],
            "berth:plugin/types@0.1.3/descriptor": [#[derive(PartialEq, Eq)]],
            "berth:plugin/types@0.1.3/error": [#[derive(PartialEq, Eq)]],
        },
        generate_all,
    });
}

/// The `storage-driver` world.
#[cfg(feature = "storage-driver")]
pub mod storage {
    wit_bindgen::generate!({
        path: "wit",
        world: "berth:plugin/storage-driver",
        with: {
            "berth:plugin/types@0.1.3": crate::wit::common::berth::plugin::types,
            "berth:plugin/log@0.1.3": crate::wit::common::berth::plugin::log,
            "wasi:io/streams@0.2.12": crate::wit::common::wasi::io::streams,
            "wasi:io/error@0.2.12": crate::wit::common::wasi::io::error,
            "wasi:io/poll@0.2.12": crate::wit::common::wasi::io::poll,
        },
        generate_all,
        pub_export_macro: true,
        export_macro_name: "__export_storage_driver",
        default_bindings_module: "::berth_sdk::wit::storage",
    });
}

/// The `image-fetcher` world.
#[cfg(feature = "image-fetcher")]
pub mod fetcher {
    wit_bindgen::generate!({
        path: "wit",
        world: "berth:plugin/image-fetcher",
        with: {
            "berth:plugin/types@0.1.3": crate::wit::common::berth::plugin::types,
            "berth:plugin/log@0.1.3": crate::wit::common::berth::plugin::log,
            "wasi:io/streams@0.2.12": crate::wit::common::wasi::io::streams,
            "wasi:io/error@0.2.12": crate::wit::common::wasi::io::error,
            "wasi:io/poll@0.2.12": crate::wit::common::wasi::io::poll,
        },
        generate_all,
        pub_export_macro: true,
        export_macro_name: "__export_image_fetcher",
        default_bindings_module: "::berth_sdk::wit::fetcher",
    });
}

/// The `network-plugin` world.
#[cfg(feature = "network-plugin")]
pub mod network {
    wit_bindgen::generate!({
        path: "wit",
        world: "berth:plugin/network-plugin",
        with: {
            "berth:plugin/types@0.1.3": crate::wit::common::berth::plugin::types,
            "berth:plugin/log@0.1.3": crate::wit::common::berth::plugin::log,
        },
        // Plans are plain data: plugins compare them in their native tests,
        // and build them from `Plan::default()`.
        additional_derives: [PartialEq, Eq],
        additional_type_attributes: {
            "berth:plugin/network@0.1.3/plan": [#[derive(Default)]],
            "berth:plugin/network@0.1.3/rules": [#[derive(Default)]],
        },
        generate_all,
        pub_export_macro: true,
        export_macro_name: "__export_network_plugin",
        default_bindings_module: "::berth_sdk::wit::network",
    });
}
