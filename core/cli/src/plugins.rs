//! The default plugins embedded in the binary (with the compiled forms made
//! when berth was built), for the engine the daemon and the daemonless mode
//! open; and who compiles any other plugin: `berth plugin-compile`.

use anyhow::{Context, Result};
use berth_engine::berth_host::{Builtin, Compiler};
use berth_engine::config::PluginKind;
use berth_engine::Builtins;

/// The embedded storage, fetcher and network plugins: every one in
/// berth-plugins' list of defaults, under its kind and name.
pub fn builtins() -> Builtins {
    berth_plugins::ALL
        .iter()
        .map(|p| {
            let builtin = Builtin {
                wasm: p.wasm,
                wasm_sha256: p.wasm_sha256,
                precompiled: p.precompiled,
                precompiled_sha256: p.precompiled_sha256,
                settings: berth_plugins::ENGINE_SETTINGS,
            };
            (kind(p.kind), p.name, builtin)
        })
        .collect()
}

/// A plugin kind as berth-plugins names it, as the engine does.
fn kind(kind: berth_plugins::Kind) -> PluginKind {
    match kind {
        berth_plugins::Kind::Storage => PluginKind::Storage,
        berth_plugins::Kind::Fetcher => PluginKind::Fetcher,
        berth_plugins::Kind::Network => PluginKind::Network,
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

#[cfg(test)]
mod tests {
    #[test]
    fn every_default_plugin_is_built_in_under_its_kind_and_name() {
        let builtins = super::builtins();
        for d in berth_plugins::DEFAULTS {
            let b = builtins.get(super::kind(d.kind), d.name);
            assert!(b.is_some_and(|b| !b.wasm.is_empty()), "{}", d.package);
        }
    }
}
