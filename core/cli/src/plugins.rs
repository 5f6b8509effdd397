//! The default plugins embedded in the binary (with the compiled forms made
//! when berth was built), for the engine the daemon and the daemonless mode
//! open; and who compiles any other plugin: `berth plugin-compile`.

use anyhow::{Context, Result};
use berth_engine::berth_host::{Builtin, Compiler};
use berth_engine::Builtins;

/// The embedded storage, fetcher and network plugins.
pub fn builtins() -> Builtins {
    let b = |p: &'static berth_plugins::Plugin| Builtin {
        wasm: p.wasm,
        wasm_sha256: p.wasm_sha256,
        precompiled: p.precompiled,
        precompiled_sha256: p.precompiled_sha256,
        settings: berth_plugins::ENGINE_SETTINGS,
    };
    Builtins {
        storage_overlay: b(&berth_plugins::STORAGE_OVERLAY_PLUGIN),
        storage_vfs: b(&berth_plugins::STORAGE_VFS_PLUGIN),
        fetch_registry: b(&berth_plugins::FETCH_REGISTRY_PLUGIN),
        fetch_archive: b(&berth_plugins::FETCH_ARCHIVE_PLUGIN),
        network_bridge: b(&berth_plugins::NETWORK_BRIDGE_PLUGIN),
    }
}

/// Who compiles a plugin that is neither built in nor in the cache: this
/// binary's `berth plugin-compile`, in a process of its own, so that
/// compiling leaves nothing behind in the daemon (or in a long `pull`).
pub fn compiler() -> Compiler {
    match std::env::current_exe() {
        Ok(program) => Compiler::Command {
            program,
            args: vec!["plugin-compile".into()],
        },
        Err(e) => {
            tracing::warn!(
                "cannot find berth's own executable ({e}): plugins compile in this process"
            );
            Compiler::InProcess
        }
    }
}

/// `berth plugin-compile OUT`: compiles the component on stdin with the
/// daemon's engine settings and writes it to OUT (atomically).
pub fn compile(out: &std::path::Path) -> Result<i32> {
    use std::io::Read as _;
    let mut wasm = Vec::new();
    std::io::stdin()
        .read_to_end(&mut wasm)
        .context("reading the component from stdin")?;
    berth_engine::berth_host::compile_to_file(&wasm, out)?;
    Ok(0)
}
