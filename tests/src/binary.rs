//! Where the berth binary under test is, and the command line every test
//! runs it with: `<target>/debug/berth`, or the build of the cargo profile
//! named by `BERTH_TEST_PROFILE` (e.g. `release`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Environment variable naming the cargo profile whose `berth` is tested
/// (`debug` when unset).
pub const PROFILE_ENV: &str = "BERTH_TEST_PROFILE";

/// `CARGO_TARGET_DIR` if set, else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace dir");
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => workspace.join(d),
        None => workspace.join("target"),
    }
}

/// The cargo profile under test: `BERTH_TEST_PROFILE`, or `debug`.
fn profile() -> String {
    match std::env::var(PROFILE_ENV) {
        Ok(p) if !p.trim().is_empty() => p.trim().to_string(),
        _ => "debug".into(),
    }
}

/// The berth binary under test; panics when it has not been built.
#[track_caller]
pub fn berth() -> PathBuf {
    berth_or("")
}

/// As [`berth`], with `hint` (another way out) added to the message.
#[track_caller]
pub(crate) fn berth_or(hint: &str) -> PathBuf {
    let profile = profile();
    let bin = target_dir().join(&profile).join("berth");
    if !bin.exists() {
        let flag = match profile.as_str() {
            "debug" => String::new(),
            "release" => " --release".into(),
            p => format!(" --profile {p}"),
        };
        panic!(
            "{} is missing: run `cargo build{flag} -p berth` first{hint}",
            bin.display()
        );
    }
    bin
}

/// The on-disk compile cache of every test root: the plugins are compiled
/// once for all of them.
pub fn plugin_cache() -> PathBuf {
    target_dir().join("berth-test-plugin-cache")
}

/// `berth ARGS` with the shared plugin cache, not yet run.
pub fn command(args: &[&str]) -> Command {
    let mut c = Command::new(berth());
    c.env("BERTH_PLUGIN_CACHE", plugin_cache()).args(args);
    c
}

/// `berth --root ROOT --config CONFIG ARGS` (berth working on that root
/// itself, without a daemon), not yet run.
pub fn on_root(root: &Path, config: &Path, args: &[&str]) -> Command {
    let mut c = command(&[]);
    c.arg("--root")
        .arg(root)
        .arg("--config")
        .arg(config)
        .args(args);
    c
}
