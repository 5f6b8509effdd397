//! berth's default plugins, built from `plugins/*` for wasm32-wasip2 by this
//! crate's build script and embedded as component bytes, each with the form
//! wasmtime compiled it to when berth was built (the host's engine settings,
//! for the target berth was built for), so that no start of berth has to
//! compile them. Which plugins is [`DEFAULTS`], the one list of them: each
//! entry there becomes a `<PACKAGE>` static (the component), a
//! `<PACKAGE>_PLUGIN` static (a [`Plugin`]) and an entry of [`ALL`].
//!
//! ```
//! assert_eq!(&berth_plugins::STORAGE_VFS[..4], b"\0asm");
//! assert_eq!(&berth_plugins::STORAGE_VFS_PLUGIN.precompiled[..4], b"\x7fELF");
//! assert_eq!(berth_plugins::ALL.len(), berth_plugins::DEFAULTS.len());
//! ```

mod defaults;

pub use defaults::{DefaultPlugin, Kind, DEFAULTS};

/// One embedded plugin.
#[derive(Debug)]
pub struct Plugin {
    /// Its kind.
    pub kind: Kind,
    /// The name berth.toml uses, e.g. `vfs`.
    pub name: &'static str,
    /// Its crate, e.g. `storage-vfs`.
    pub package: &'static str,
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

// ENGINE_SETTINGS, then per default plugin its statics, then ALL (written by
// build.rs from DEFAULTS).
include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
