//! Reads the ABI version from the WIT package (`sdk/wit/worlds.wit`), the
//! single source of the ABI, so the host's `ABI_VERSION` cannot drift from it.

use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let worlds = dir.join("../../sdk/wit/worlds.wit");
    println!("cargo:rerun-if-changed={}", worlds.display());
    let text = std::fs::read_to_string(&worlds)
        .unwrap_or_else(|e| panic!("reading {}: {e}", worlds.display()));
    let version = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("package berth:plugin@"))
        .and_then(|v| v.strip_suffix(';'))
        .unwrap_or_else(|| {
            panic!(
                "{} has no `package berth:plugin@VERSION;` line",
                worlds.display()
            )
        });
    println!("cargo:rustc-env=BERTH_ABI_VERSION={version}");
}
