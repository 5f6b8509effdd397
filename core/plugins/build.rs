//! Builds the default plugins for wasm32-wasip2 (each in its own cargo run, so
//! the SDK's per-world features never mix) in `target/wasm-plugins`, and
//! copies the components into OUT_DIR for `include_bytes!`.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";
/// (package, file stem) of each embedded plugin.
const PLUGINS: [(&str, &str); 5] = [
    ("storage-vfs", "storage_vfs"),
    ("storage-overlay", "storage_overlay"),
    ("fetch-archive", "fetch_archive"),
    ("fetch-registry", "fetch_registry"),
    ("network-bridge", "network_bridge"),
];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir
        .join("../..")
        .canonicalize()
        .expect("workspace root");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    for watched in ["plugins", "sdk", "Cargo.toml", "Cargo.lock"] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    check_target();
    let target_dir = workspace.join("target/wasm-plugins");
    for (package, stem) in PLUGINS {
        build(&workspace, &target_dir, package);
        let built = target_dir
            .join(TARGET)
            .join("release")
            .join(format!("{stem}.wasm"));
        std::fs::copy(&built, out_dir.join(format!("{stem}.wasm")))
            .unwrap_or_else(|e| panic!("copying {}: {e}", built.display()));
    }
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
