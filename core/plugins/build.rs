//! Builds the default plugins for wasm32-wasip2 (each in its own cargo run, so
//! the SDK's per-world features never mix) in `target/wasm-plugins`, copies
//! the components into OUT_DIR for `include_bytes!`, and compiles each one
//! with wasmtime for the target berth is built for, with the host's own
//! engine settings (`core/host/src/engine_config.rs`, included below), so no
//! daemon start has to compile them. The compiled forms are kept in
//! `target/wasm-plugins/precompiled` under the host's cache names, so a
//! component compiles once for every profile and build. Which plugins: the
//! table in `src/defaults.rs` (included below), the one list of them.
//! `embedded.rs` in OUT_DIR holds, for each, the statics that embed its
//! component and compiled form with their digests, and the settings hash, as
//! constants: the daemon needs not hash the embedded bytes at start.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use sha2::{Digest, Sha256};

#[path = "../host/src/engine_config.rs"]
#[allow(dead_code)] // the runtime-only parts (pooling sizes)
mod engine_config;

#[path = "src/defaults.rs"]
#[allow(dead_code)] // what only the library uses (Kind::world)
mod defaults;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir
        .join("../..")
        .canonicalize()
        .expect("workspace root");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    for watched in [
        "plugins",
        "sdk",
        "Cargo.toml",
        "Cargo.lock",
        "core/host/src/engine_config.rs",
        "core/plugins/src/defaults.rs",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    check_target();
    let target_dir = workspace.join("target/wasm-plugins");
    let engine = precompiling_engine();
    let settings = engine_config::settings_hash(&engine);
    let mut embedded = format!(
        "/// The engine settings hash the embedded plugins were compiled with.\n\
         pub const ENGINE_SETTINGS: u64 = {settings:#018x};\n"
    );
    let mut all = String::new();
    for (i, plugin) in defaults::DEFAULTS.iter().enumerate() {
        let package = plugin.package;
        let stem = package.replace('-', "_");
        build(&workspace, &target_dir, package);
        let built = target_dir
            .join(TARGET)
            .join("release")
            .join(format!("{stem}.wasm"));
        let wasm =
            std::fs::read(&built).unwrap_or_else(|e| panic!("reading {}: {e}", built.display()));
        std::fs::write(out_dir.join(format!("{stem}.wasm")), &wasm)
            .unwrap_or_else(|e| panic!("writing {stem}.wasm to OUT_DIR: {e}"));
        let wasm_sha256 = hex(&Sha256::digest(&wasm));
        let cwasm = precompile(
            &engine,
            &target_dir.join("precompiled"),
            package,
            &wasm,
            &engine_config::cache_name(&wasm_sha256, settings),
        );
        std::fs::write(out_dir.join(format!("{stem}.cwasm")), &cwasm)
            .unwrap_or_else(|e| panic!("writing {stem}.cwasm to OUT_DIR: {e}"));
        let upper = stem.to_uppercase();
        let doc = format!("The `{package}` {} ({}).", plugin.kind.noun(), plugin.about);
        let _ = write!(
            embedded,
            "#[doc = {component_doc:?}]\n\
             pub static {upper}: &[u8] = include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{stem}.wasm\"));\n\
             #[doc = {plugin_doc:?}]\n\
             pub static {upper}_PLUGIN: Plugin = Plugin {{\n    \
                 kind: DEFAULTS[{i}].kind,\n    \
                 name: DEFAULTS[{i}].name,\n    \
                 package: DEFAULTS[{i}].package,\n    \
                 world: DEFAULTS[{i}].kind.world(),\n    \
                 wasm: {upper},\n    \
                 wasm_sha256: \"{wasm_sha256}\",\n    \
                 precompiled: include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{stem}.cwasm\")),\n    \
                 precompiled_sha256: \"{cwasm_sha256}\",\n\
             }};\n",
            component_doc = format!("{doc} The component."),
            plugin_doc = format!("{doc} Component and compiled form."),
            cwasm_sha256 = hex(&Sha256::digest(&cwasm)),
        );
        let _ = write!(all, "&{upper}_PLUGIN, ");
    }
    let _ = write!(
        embedded,
        "/// Every embedded plugin, in the order of [`DEFAULTS`].\n\
         pub static ALL: [&Plugin; {}] = [{all}];\n",
        defaults::DEFAULTS.len()
    );
    std::fs::write(out_dir.join("embedded.rs"), embedded).expect("writing embedded.rs");
}

/// An engine with the host's settings for the target being built.
fn precompiling_engine() -> wasmtime::Engine {
    let target = std::env::var("TARGET").expect("set by cargo");
    let config = engine_config::config(&target, None)
        .unwrap_or_else(|e| panic!("wasmtime cannot compile for {target}: {e}"));
    wasmtime::Engine::new(&config)
        .unwrap_or_else(|e| panic!("creating the wasmtime engine for {target}: {e}"))
}

/// The compiled form of `wasm`: from `dir/name` when an earlier build made
/// it, else compiled now and kept there.
fn precompile(
    engine: &wasmtime::Engine,
    dir: &Path,
    package: &str,
    wasm: &[u8],
    name: &str,
) -> Vec<u8> {
    let kept = dir.join(name);
    if let Ok(bytes) = std::fs::read(&kept) {
        return bytes;
    }
    let start = Instant::now();
    let bytes = engine
        .precompile_component(wasm)
        .unwrap_or_else(|e| panic!("compiling plugin {package} with wasmtime: {e:?}"));
    println!(
        "compiled {package} ({} KiB of wasm) to {} KiB in {:.1?}",
        wasm.len() / 1024,
        bytes.len() / 1024,
        start.elapsed()
    );
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    // A temporary name, then rename: a concurrent build never reads half a file.
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    std::fs::write(&tmp, &bytes)
        .and_then(|()| std::fs::rename(&tmp, &kept))
        .unwrap_or_else(|e| panic!("writing {}: {e}", kept.display()));
    bytes
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Fails with what to do when the wasm target's standard library is missing.
fn check_target() {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .expect("running rustc");
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_string();
    if !Path::new(&sysroot)
        .join("lib/rustlib")
        .join(TARGET)
        .exists()
    {
        panic!(
            "berth-plugins builds the default plugins for {TARGET}, but that target is not installed \
             for this toolchain ({sysroot}). Install it with: rustup target add {TARGET}"
        );
    }
}

fn build(workspace: &Path, target_dir: &Path, package: &str) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args([
            "build",
            "--release",
            "--target",
            TARGET,
            "-p",
            package,
            "--target-dir",
        ])
        .arg(target_dir);
    // The outer build's settings are for the host target and this build script:
    // keep only what locates cargo itself and its jobserver.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let keep = matches!(
            key.as_ref(),
            "CARGO_HOME" | "CARGO_MAKEFLAGS" | "CARGO_NET_OFFLINE"
        ) || key.starts_with("CARGO_REGISTRIES_")
            || key.starts_with("CARGO_HTTP_");
        let drop = (key.starts_with("CARGO_") && !keep)
            || matches!(
                key.as_ref(),
                "RUSTFLAGS"
                    | "RUSTDOCFLAGS"
                    | "TARGET"
                    | "HOST"
                    | "OUT_DIR"
                    | "PROFILE"
                    | "OPT_LEVEL"
                    | "DEBUG"
                    | "NUM_JOBS"
                    | "RUSTC_LINKER"
                    | "RUSTC_WORKSPACE_WRAPPER"
            );
        if drop {
            cmd.env_remove(key.as_ref());
        }
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("running cargo for {package}: {e}"));
    if !status.success() {
        panic!(
            "building plugin {package} for {TARGET} failed ({status}); see the cargo output above"
        );
    }
}
