//! Builds the fixture components for the integration tests (once per test
//! process; cargo's lock serializes concurrent builds) and helpers around them.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

/// The workspace's target directory.
fn target_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../../target"))
}

/// Builds `tests/fixtures/<name>` for wasm32-wasip2 into `target/wasm-fixtures`
/// and returns the component's bytes.
pub fn fixture(name: &str) -> &'static [u8] {
    static ESCAPE: OnceLock<Vec<u8>> = OnceLock::new();
    static FETCH: OnceLock<Vec<u8>> = OnceLock::new();
    static NET_FAULTY: OnceLock<Vec<u8>> = OnceLock::new();
    let cell = match name {
        "escape" => &ESCAPE,
        "fetch" => &FETCH,
        "net-faulty" => &NET_FAULTY,
        other => panic!("no fixture {other}"),
    };
    cell.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        let out = target_dir().join("wasm-fixtures");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "--target",
                "wasm32-wasip2",
                "--target-dir",
            ])
            .arg(&out)
            .current_dir(&dir)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET")
            .status()
            .expect("run cargo to build the fixture");
        assert!(status.success(), "building fixture {name} failed");
        let wasm = out
            .join("wasm32-wasip2/debug")
            .join(format!("{}_fixture.wasm", name.replace('-', "_")));
        std::fs::read(&wasm).unwrap_or_else(|e| panic!("{}: {e}", wasm.display()))
    })
}

/// A minimal ustar archive of `(path, kind, data)` entries: kind `'5'` is a
/// directory, `'0'` a file, `'2'` a symlink (data = target).
pub fn tar(entries: &[(&str, u8, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (path, kind, data) in entries {
        let mut h = [0u8; 512];
        h[..path.len()].copy_from_slice(path.as_bytes());
        let mode = if *kind == b'5' {
            "0000755\0"
        } else {
            "0000644\0"
        };
        h[100..108].copy_from_slice(mode.as_bytes());
        h[108..116].copy_from_slice(b"0001750\0");
        h[116..124].copy_from_slice(b"0001750\0");
        let size = if *kind == b'0' { data.len() } else { 0 };
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        h[136..148].copy_from_slice(b"14000000000\0");
        h[156] = *kind;
        if *kind == b'2' {
            h[157..157 + data.len()].copy_from_slice(data);
        }
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        out.extend_from_slice(&h);
        if *kind == b'0' {
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// A compile cache shared by the test processes, so each compiles a
/// component at most once.
pub fn shared_cache() -> PathBuf {
    target_dir().join("wasm-fixtures/cache")
}

/// A writer into a shared buffer (what a plugin's `diff` wrote).
pub struct Sink(pub Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
