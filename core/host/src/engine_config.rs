//! The wasmtime settings that compiled plugins depend on, in the one file two
//! crates compile: berth-host builds its engine with [`config`], and the
//! build script of berth-plugins includes this file (`#[path]`) to precompile
//! the default plugins with the very same settings, so the two cannot drift
//! apart. It may use only `wasmtime`, `sha2` and `std`.
//!
//! No CPU feature is inferred from the machine (the target triple is named
//! explicitly, the very triple berth is built for): code compiled when berth
//! is built then runs on every CPU of its architecture, and equals what the
//! daemon would compile itself, so the cache keys of both agree.

use std::hash::{Hash, Hasher};

use sha2::{Digest, Sha256};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// The wasmtime version berth is built with (part of every cache key; the
/// lock file pins it).
pub const WASMTIME_VERSION: &str = "48.0.8";

/// Sizes of the pooling allocator. They do not change compiled code (the
/// host's tests check that the settings hash ignores them), so a build script
/// or a compiling subprocess can leave them out.
#[derive(Debug, Clone, Copy)]
pub struct Pool {
    /// Plugin instances alive at once.
    pub max_instances: u32,
    /// The largest linear memory of any instance.
    pub max_memory: usize,
}

/// The engine configuration for code that runs on `triple`: the target berth
/// is built for (a build script's `TARGET`; at run time
/// `target_lexicon::HOST`, which wasmtime insists the target equals).
pub fn config(triple: &str, pool: Option<Pool>) -> wasmtime::Result<Config> {
    let mut c = Config::new();
    c.target(triple)?;
    c.wasm_component_model(true).epoch_interruption(true);
    if let Some(p) = pool {
        let n = p.max_instances.max(1);
        let mut pooling = PoolingAllocationConfig::new();
        pooling
            .total_component_instances(n)
            .total_core_instances(n * 8)
            .total_memories(n * 2)
            .total_tables(n * 8)
            .total_stacks(n)
            .max_memory_size(p.max_memory);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    }
    Ok(c)
}

/// A `Hasher` feeding SHA-256, so the settings hash is the same in every
/// process (std's `DefaultHasher` promises no such thing).
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        let d = self.0.clone().finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&d[..8]);
        u64::from_le_bytes(first)
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// What compiled code of `engine` depends on (target, CPU flags, tunables,
/// wasm features, wasmtime version), as one number.
pub fn settings_hash(engine: &Engine) -> u64 {
    let mut h = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    h.finish()
}

/// The cache file name of a component whose SHA-256 is `sha256_hex`,
/// compiled with settings `settings`.
pub fn cache_name(sha256_hex: &str, settings: u64) -> String {
    format!("{sha256_hex}-{WASMTIME_VERSION}-{settings:016x}.cwasm")
}
