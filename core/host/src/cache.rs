//! The on-disk cache of compiled components, and how components get there.
//!
//! A compiled component is the file `<sha256 of the component>-<wasmtime
//! version>-<engine settings hash>.cwasm` (written to a temporary name and
//! renamed, so a reader never sees half a file; any change of component,
//! wasmtime or settings is a new name). It is loaded with `deserialize_file`:
//! its pages are the file's — clean, shared with the page cache, never a
//! copy in the daemon's heap.
//!
//! A component gets there in one of three ways, each logged with its reason:
//! - a default plugin's compiled form, made when berth was built, is copied
//!   out of the executable file (not through the process's own mapping of
//!   it, so those pages are never touched) and checked against its build-time
//!   digest: nothing is compiled;
//! - a separate process compiles it (`berth plugin-compile`), and its memory
//!   goes back to the system when it exits;
//! - this process compiles it (library use, or when no separate process can
//!   be started), and returns what the allocator kept afterwards.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

use crate::config::{Builtin, Compiler};
use crate::engine_config;

/// Where a loaded component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Compiled now (in this process or a separate one) and stored in the cache.
    Compiled,
    /// The compiled form built into berth, copied into the cache now.
    Precompiled,
    /// Loaded from the cache.
    Cache,
}

/// A component to load.
pub(crate) enum Source<'a> {
    /// A default plugin: digest and compiled form known at build time.
    Builtin(&'a Builtin),
    /// Component bytes (read from a file, or embedded without a compiled form).
    Wasm(&'a [u8]),
}

/// Loads compiled components for one engine.
#[derive(Debug)]
pub(crate) struct Cache {
    dir: PathBuf,
    /// [`engine_config::settings_hash`] of the engine.
    settings: u64,
    compiler: Compiler,
    /// Components compiled by this host so far (in or out of process).
    compiled: AtomicU64,
}

impl Cache {
    pub(crate) fn new(dir: PathBuf, engine: &Engine, compiler: Compiler) -> Cache {
        Cache {
            dir,
            settings: engine_config::settings_hash(engine),
            compiler,
            compiled: AtomicU64::new(0),
        }
    }

    /// How many components this host compiled (the rest came from berth's
    /// build or from the cache).
    pub(crate) fn compiled(&self) -> u64 {
        self.compiled.load(Ordering::Relaxed)
    }

    /// The component from the cache; else the built-in compiled form
    /// installed there; else compiled and cached.
    pub(crate) fn load(
        &self,
        engine: &Engine,
        plugin: &str,
        source: Source<'_>,
    ) -> Result<(Component, Origin, PathBuf), String> {
        let digest = match &source {
            Source::Builtin(b) => b.wasm_sha256.to_owned(),
            Source::Wasm(w) => hex::encode(Sha256::digest(w)),
        };
        let path = self
            .dir
            .join(engine_config::cache_name(&digest, self.settings));
        if path.exists() {
            match deserialize(engine, &path) {
                Ok(c) => return Ok((c, Origin::Cache, path)),
                Err(e) => {
                    tracing::warn!(
                        plugin,
                        "ignoring the unusable compiled plugin {}: {e}",
                        path.display()
                    );
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let (wasm, why) = match source {
            Source::Wasm(w) => (w, "it is not in the compile cache".to_owned()),
            Source::Builtin(b) => match self.install(engine, b, &path) {
                Ok(c) => {
                    tracing::info!(
                        plugin,
                        "installed the compiled form built into berth as {} (nothing compiled)",
                        path.display()
                    );
                    return Ok((c, Origin::Precompiled, path));
                }
                Err(why) => {
                    tracing::warn!(plugin, "{why}: compiling it");
                    (b.wasm, why)
                }
            },
        };
        let c = self.compile(engine, plugin, wasm, &path, &why)?;
        Ok((c, Origin::Compiled, path))
    }

    /// Copies `b`'s compiled form to `path` and loads it; says why not when
    /// it cannot be used.
    fn install(&self, engine: &Engine, b: &Builtin, path: &Path) -> Result<Component, String> {
        if b.settings != self.settings {
            return Err(format!(
                "the compiled form built into berth was made with engine settings {:016x}, \
                 this engine's are {:016x}",
                b.settings, self.settings
            ));
        }
        write_atomically(path, |f| copy_builtin(b, f))
            .map_err(|e| format!("cannot write its compiled form to {}: {e}", path.display()))?;
        deserialize(engine, path).map_err(|e| {
            let _ = std::fs::remove_file(path);
            format!("wasmtime refuses the compiled form built into berth: {e}")
        })
    }

    /// Compiles `wasm` into `path` (out of process when configured) and
    /// loads the result.
    fn compile(
        &self,
        engine: &Engine,
        plugin: &str,
        wasm: &[u8],
        path: &Path,
        why: &str,
    ) -> Result<Component, String> {
        let start = Instant::now();
        if let Compiler::Command { program, args } = &self.compiler {
            match compile_with(program, args, wasm, path) {
                Ok(()) => match deserialize(engine, path) {
                    Ok(c) => {
                        self.compiled.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(
                            plugin,
                            "compiled by {} in {} ms ({why}); cached as {}",
                            program.display(),
                            start.elapsed().as_millis(),
                            path.display()
                        );
                        return Ok(c);
                    }
                    Err(e) => {
                        let _ = std::fs::remove_file(path);
                        tracing::warn!(
                            plugin,
                            "what {} compiled is unusable ({e}); compiling in this process",
                            program.display()
                        );
                    }
                },
                Err(ChildError::Failed(msg)) => return Err(format!("cannot compile: {msg}")),
                Err(ChildError::Start(e)) => tracing::warn!(
                    plugin,
                    "cannot run {} to compile ({e}); compiling in this process",
                    program.display()
                ),
            }
        }
        let bytes = engine
            .precompile_component(wasm)
            .map_err(|e| format!("cannot compile: {e:?}"))?;
        let stored = write_atomically(path, |f| f.write_all(&bytes));
        let component = match &stored {
            Ok(()) => deserialize(engine, path),
            Err(e) => {
                tracing::warn!(
                    plugin,
                    "cannot cache the compiled plugin in {}: {e}",
                    path.display()
                );
                // SAFETY: `bytes` is what this engine's `precompile_component`
                // returned a moment ago, unmodified.
                unsafe { Component::deserialize(engine, &bytes) }
            }
        }
        .map_err(|e| format!("cannot load what was compiled: {e:?}"))?;
        drop(bytes);
        release_heap();
        self.compiled.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            plugin,
            "compiled in this process in {} ms ({why}); cached as {}",
            start.elapsed().as_millis(),
            path.display()
        );
        Ok(component)
    }
}

/// Loads a compiled component from the cache.
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: `deserialize_file` trusts the file to be wasmtime's own output.
    // The cache directory is the host's own (plugins only see their roots,
    // never it), and every file in it was written by wasmtime's
    // `precompile_component` — in this process, in a `berth plugin-compile`
    // of this same binary, or at berth's build (copied here and checked
    // against the digest taken then) — for the component and engine settings
    // its name says. wasmtime still checks the header for its version and
    // the engine settings.
    unsafe { Component::deserialize_file(engine, path) }
}

/// Writes `b`'s compiled form to `out`: copied from the executable file when
/// the bytes are found in a mapping of it (the kernel copies; the process's
/// own pages of them stay untouched) and the copy has the build-time digest,
/// else from memory.
fn copy_builtin(b: &Builtin, out: &mut std::fs::File) -> std::io::Result<()> {
    if let Some((file, offset)) = mapped_from(b.precompiled) {
        let copied = (|| {
            let mut f = std::fs::File::open(&file)?;
            f.seek(std::io::SeekFrom::Start(offset))?;
            let n = std::io::copy(&mut f.take(b.precompiled.len() as u64), out)?;
            out.flush()?;
            Ok::<_, std::io::Error>(n == b.precompiled.len() as u64)
        })();
        if matches!(copied, Ok(true)) && file_sha256(out)? == b.precompiled_sha256 {
            return Ok(());
        }
        tracing::debug!(
            "copying from {} failed; writing from memory",
            file.display()
        );
        out.set_len(0)?;
        out.rewind()?;
    }
    out.write_all(b.precompiled)
}

/// The file and offset `bytes` are mapped from, per `/proc/self/maps`.
fn mapped_from(bytes: &[u8]) -> Option<(PathBuf, u64)> {
    let (start, end) = (
        bytes.as_ptr() as u64,
        bytes.as_ptr() as u64 + bytes.len() as u64,
    );
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    for line in maps.lines() {
        // start-end perms offset dev inode path
        let mut f = line.split_whitespace();
        let (range, _perms, off, _dev, inode) =
            (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
        let path = f.next().unwrap_or("");
        let (lo, hi) = range.split_once('-')?;
        let (lo, hi) = (
            u64::from_str_radix(lo, 16).ok()?,
            u64::from_str_radix(hi, 16).ok()?,
        );
        if lo <= start && end <= hi {
            if inode == "0" || !path.starts_with('/') {
                return None;
            }
            let offset = u64::from_str_radix(off, 16).ok()? + (start - lo);
            // The running executable even if its path was replaced since.
            let exe = std::fs::read_link("/proc/self/exe").ok();
            let file = if exe.as_deref() == Some(Path::new(path)) {
                PathBuf::from("/proc/self/exe")
            } else {
                PathBuf::from(path)
            };
            return Some((file, offset));
        }
    }
    None
}

/// SHA-256 (hex) of what `f` holds, read from the start.
fn file_sha256(f: &mut std::fs::File) -> std::io::Result<String> {
    f.rewind()?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match f.read(&mut buf)? {
            0 => break,
            n => h.update(&buf[..n]),
        }
    }
    Ok(hex::encode(h.finalize()))
}

/// Why a compiling process did not deliver.
enum ChildError {
    /// It could not be started (or fed): compiling here may still work.
    Start(std::io::Error),
    /// It ran and failed: its message.
    Failed(String),
}

/// Runs `program args… OUT` with `wasm` on its stdin; it writes the
/// compiled component to OUT.
fn compile_with(
    program: &Path,
    args: &[String],
    wasm: &[u8],
    out: &Path,
) -> Result<(), ChildError> {
    let mut child = Command::new(program)
        .args(args)
        .arg(out)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(ChildError::Start)?;
    let fed = child
        .stdin
        .take()
        .map(|mut i| i.write_all(wasm))
        .unwrap_or(Ok(()));
    let output = child.wait_with_output().map_err(ChildError::Start)?;
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    if output.status.success() && fed.is_ok() && out.exists() {
        return Ok(());
    }
    match (output.status.code(), fed) {
        // It ran and said why it failed.
        (Some(_), _) if !stderr.is_empty() => Err(ChildError::Failed(stderr)),
        (_, Err(e)) => Err(ChildError::Start(e)),
        _ => Err(ChildError::Start(std::io::Error::other(format!(
            "it ended with {} and wrote nothing",
            output.status
        )))),
    }
}

/// Compiles `wasm` with berth's engine settings (for this machine's
/// architecture) and writes the result to `out` atomically: what `berth
/// plugin-compile` runs, in a process of its own.
pub fn compile_to_file(wasm: &[u8], out: &Path) -> Result<(), crate::CompileError> {
    use crate::CompileError;
    let engine = engine_config::config(&target_lexicon::HOST.to_string(), None)
        .and_then(|c| Engine::new(&c))
        .map_err(|e| CompileError::Engine {
            reason: e.to_string(),
        })?;
    let bytes = engine
        .precompile_component(wasm)
        .map_err(|e| CompileError::Invalid {
            reason: format!("{e:?}"),
        })?;
    write_atomically(out, |f| f.write_all(&bytes)).map_err(|source| CompileError::Write {
        path: out.to_owned(),
        source,
    })
}

/// Creates `path` through a temporary file in its directory: `fill` writes
/// it, then it is synced and renamed into place.
fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let (tmp, mut f) = tempfile_in(dir)?;
    let r = fill(&mut f)
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// A new file with a unique name in `dir`.
fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let mut n = std::process::id() as u64;
    loop {
        let p = dir.join(format!(".tmp-{n:x}.cwasm"));
        match std::fs::OpenOptions::new()
            .read(true)
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

/// Gives the memory a compile left free in the allocator back to the system
/// (glibc keeps it in its arenas otherwise).
fn release_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory of the allocator's own
    // arenas to the system; it is thread-safe and touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pool: Option<engine_config::Pool>) -> u64 {
        let c = engine_config::config(&target_lexicon::HOST.to_string(), pool).unwrap();
        engine_config::settings_hash(&Engine::new(&c).unwrap())
    }

    /// The build script and `berth plugin-compile` make their engines
    /// without the pooling allocator: compiled code must not depend on it.
    #[test]
    fn the_pooling_allocator_does_not_change_the_settings() {
        let plain = settings(None);
        for (max_instances, max_memory) in [(64, 4 << 30), (1, 64 << 20), (500, 1 << 30)] {
            let pool = engine_config::Pool {
                max_instances,
                max_memory,
            };
            assert_eq!(
                settings(Some(pool)),
                plain,
                "{max_instances} instances, {max_memory} bytes"
            );
        }
    }

    #[test]
    fn the_target_is_named_so_no_cpu_feature_is_inferred() {
        let c = engine_config::config(&target_lexicon::HOST.to_string(), None).unwrap();
        let native = {
            let mut n = wasmtime::Config::new();
            n.wasm_component_model(true).epoch_interruption(true);
            n
        };
        let (e, n) = (Engine::new(&c).unwrap(), Engine::new(&native).unwrap());
        // Two processes (or a build and a daemon) agree on the settings.
        assert_eq!(engine_config::settings_hash(&e), settings(None));
        // Code compiled for it loads into this machine's engine.
        let wasm = b"\0asm\x0d\0\x01\0";
        let compiled = e.precompile_component(wasm).unwrap();
        // SAFETY: `compiled` is the unmodified output of precompile_component.
        unsafe { Component::deserialize(&n, &compiled) }.unwrap();
    }
}
