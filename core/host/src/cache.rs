//! The on-disk cache of compiled components.
//!
//! A component is compiled once; the result is stored under
//! `<sha256 of the component>-<wasmtime version>-<engine settings hash>.cwasm`,
//! written to a temporary name and renamed, so a reader never sees half a
//! file. Any change of component, wasmtime or engine settings is a new name.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

/// A `Hasher` feeding SHA-256, so the settings hash is stable across runs
/// (std's `DefaultHasher` is not guaranteed to be).
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        let d = self.0.clone().finalize();
        u64::from_le_bytes(d[..8].try_into().unwrap_or_default())
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// The wasmtime version compiled in (part of every cache key).
pub(crate) const WASMTIME_VERSION: &str = "48.0.8";

/// The cache file for `wasm` under `dir`.
pub(crate) fn path_for(dir: &Path, engine: &Engine, wasm: &[u8]) -> PathBuf {
    let digest = hex::encode(Sha256::digest(wasm));
    let mut h = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    dir.join(format!(
        "{digest}-{WASMTIME_VERSION}-{:016x}.cwasm",
        h.finish()
    ))
}

/// Where a loaded component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Compiled now (and stored in the cache).
    Compiled,
    /// Loaded from the cache without compiling.
    Cache,
}

/// Loads the compiled `wasm` from the cache, or compiles and caches it.
pub(crate) fn load(
    dir: &Path,
    engine: &Engine,
    wasm: &[u8],
) -> Result<(Component, Origin, PathBuf), String> {
    let path = path_for(dir, engine, wasm);
    if path.exists() {
        // SAFETY: `deserialize_file` trusts the file to be wasmtime's own
        // output. The cache directory is the host's own (not writable by
        // plugins, which only see their roots), and the name is the SHA-256
        // of the component plus the wasmtime version and engine settings, so
        // the file is what this engine compiled from exactly these bytes.
        // wasmtime still checks its header for version and settings.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(c) => return Ok((c, Origin::Cache, path)),
            Err(e) => {
                tracing::warn!(path = %path.display(), "ignoring unusable compiled plugin: {e}")
            }
        }
    }
    let component = Component::new(engine, wasm).map_err(|e| format!("cannot compile: {e:?}"))?;
    if let Err(e) = store(&path, &component) {
        tracing::warn!(path = %path.display(), "cannot cache the compiled plugin: {e}");
    }
    Ok((component, Origin::Compiled, path))
}

fn store(path: &Path, component: &Component) -> std::io::Result<()> {
    let bytes = component
        .serialize()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile_in(dir)?;
    tmp.1.write_all(&bytes)?;
    tmp.1.sync_all()?;
    std::fs::rename(&tmp.0, path)?;
    Ok(())
}

/// A new file with a unique name in `dir`.
fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let mut n = std::process::id() as u64;
    loop {
        let p = dir.join(format!(".tmp-{n:x}.cwasm"));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&p)
        {
            Ok(f) => return Ok((p, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                n = n.wrapping_mul(31).wrapping_add(7)
            }
            Err(e) => return Err(e),
        }
    }
}
