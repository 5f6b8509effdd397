//! What a plugin call costs the host (issue 3): a fresh instance of a
//! precompiled plugin plus one cheap export, and one host call.
//!
//! - instantiate + call: `has-layer` of the embedded storage-vfs driver (and,
//!   for comparison, an empty `has-layer` of the escape fixture), timed one
//!   call at a time through the public [`StoragePlugin`] API, as berth calls it;
//! - one host call: the escape fixture's `has-layer("bench:<import>:<n>")`
//!   makes `n` calls of `<import>`; a call costs (time(n) − time(0)) / n.
//!
//! Each plugin is loaded twice into an empty cache: the first load compiles,
//! the second — from a new host, as after a restart — takes the compiled code
//! from disk; the calls run on the second (load times are printed, not judged). No tracing subscriber is installed, so `log`
//! costs what a level-filtered log line costs in berth.
//!
//! ```text
//! cargo run --release --example plugin_bench -p berth-host -- \
//!     [--iters 10000] [--host-calls 100000] [--rounds 21]
//! ```
//!
//! `bench/plugin.sh` runs it. Figures of a debug build are not meaningful.

#[path = "../tests/common/mod.rs"]
mod common;

use std::error::Error;
use std::path::Path;
use std::time::{Duration, Instant};

use berth_host::{Grants, HostConfig, Origin, PluginHost, PluginSpec, StoragePlugin, WasmSource};

type Res<T> = Result<T, Box<dyn Error>>;

/// issue 3: instantiate + one call of a precompiled plugin, p50.
const INSTANTIATE_TARGET: (Duration, &str) = (Duration::from_micros(50), "≤ 50 µs");
/// issue 3: one host call (p50).
const HOST_CALL_TARGET: (Duration, &str) = (Duration::from_micros(1), "≤ 1 µs");

/// A layer id the vfs driver accepts (`sha256:<64 hex>`).
const LAYER: &str = "sha256:abababababababababababababababababababababababababababababababab";

struct Args {
    iters: usize,
    host_calls: u64,
    rounds: usize,
}

fn args() -> Res<Args> {
    let mut a = Args {
        iters: 10_000,
        host_calls: 100_000,
        rounds: 21,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--iters" => a.iters = value.parse()?,
            "--host-calls" => a.host_calls = value.parse()?,
            "--rounds" => a.rounds = value.parse()?,
            _ => {
                return Err(
                    format!("unknown option {flag} (--iters, --host-calls, --rounds)").into(),
                )
            }
        }
    }
    if a.iters == 0 || a.host_calls == 0 || a.rounds == 0 {
        return Err("--iters, --host-calls and --rounds must be at least 1".into());
    }
    Ok(a)
}

/// Loads `wasm` into an empty cache (compiling), then again from a new host
/// (from the cache); returns the second plugin and both load times.
fn load_twice(
    dir: &Path,
    name: &str,
    wasm: &'static [u8],
) -> Res<(StoragePlugin, Duration, Duration)> {
    let cache = dir.join("cache");
    let spec = || PluginSpec {
        name: name.into(),
        wasm: WasmSource::Bytes(wasm),
        grants: Grants::new(dir.join(name)),
    };
    let t = Instant::now();
    let first = PluginHost::new(HostConfig::new(&cache))?.load_storage(spec())?;
    let compile = t.elapsed();
    let t = Instant::now();
    let plugin = PluginHost::new(HostConfig::new(&cache))?.load_storage(spec())?;
    let cached = t.elapsed();
    if first.info().origin != Origin::Compiled || plugin.info().origin != Origin::Cache {
        return Err(format!("{name}: expected a compile, then a cache hit").into());
    }
    Ok((plugin, compile, cached))
}

/// The time of each of `n` calls of `has-layer(id)`, after `n / 20` unmeasured ones.
async fn time_calls(p: &StoragePlugin, id: &str, n: usize) -> Res<Vec<Duration>> {
    for _ in 0..n / 20 {
        p.has_layer(id).await?;
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let found = p.has_layer(id).await?;
        out.push(t.elapsed());
        if !found {
            return Err(format!("{}: has-layer({id}) answered false", p.info().name).into());
        }
    }
    Ok(out)
}

/// p50, p90 and p99 of `v`.
fn percentiles(mut v: Vec<Duration>) -> [Duration; 3] {
    v.sort_unstable();
    [0.50, 0.90, 0.99].map(|q| v[((v.len() - 1) as f64 * q).round() as usize])
}

fn fmt(d: Duration) -> String {
    let ns = d.as_nanos();
    match ns {
        0..10_000 => format!("{ns} ns"),
        10_000..10_000_000 => format!("{:.1} µs", ns as f64 / 1e3),
        _ => format!("{:.0} ms", ns as f64 / 1e6),
    }
}

/// A row of the table: the p50, p90 and p99 of `what`, and whether its p50
/// meets `target` (with the target's label).
fn row(what: &str, p: [Duration; 3], target: Option<(Duration, &str)>) {
    let mut line = format!(
        "{what:<48} {:>9} {:>9} {:>9}",
        fmt(p[0]),
        fmt(p[1]),
        fmt(p[2])
    );
    if let Some((t, label)) = target {
        let verdict = if p[0] <= t { "PASS" } else { "MISS" };
        line.push_str(&format!("   {label:<8} {verdict}"));
    }
    println!("{line}");
}

/// One call of `import`: p50/p90/p99 over `rounds` calls of `has-layer`
/// making `n` host calls each, less `empty` (an instance with none), over `n`.
async fn host_call(
    p: &StoragePlugin,
    import: &str,
    a: &Args,
    empty: Duration,
) -> Res<[Duration; 3]> {
    let id = format!("bench:{import}:{}", a.host_calls);
    let n = u32::try_from(a.host_calls)?;
    let rounds = time_calls(p, &id, a.rounds).await?;
    Ok(percentiles(
        rounds
            .into_iter()
            .map(|t| t.saturating_sub(empty) / n)
            .collect(),
    ))
}

async fn run(a: &Args) -> Res<()> {
    let dir = tempfile::tempdir()?;
    let (vfs, vfs_compile, vfs_cached) =
        load_twice(dir.path(), "storage-vfs", berth_plugins::STORAGE_VFS)?;
    let (fixture, fix_compile, fix_cached) =
        load_twice(dir.path(), "escape-fixture", common::fixture("escape"))?;
    let tar = common::tar(&[("etc/", b'5', b""), ("etc/hostname", b'0', b"berth\n")]);
    vfs.apply_layer(LAYER, None, Box::new(std::io::Cursor::new(tar)))
        .await?;

    let vfs_call = percentiles(time_calls(&vfs, LAYER, a.iters).await?);
    let empty = percentiles(time_calls(&fixture, "bench:log:0", a.iters).await?);
    let log = host_call(&fixture, "log", a, empty[0]).await?;
    let kind = host_call(&fixture, "kind", a, empty[0]).await?;

    println!(
        "load: storage-vfs compile {} then from cache {}; escape-fixture {} then {}",
        fmt(vfs_compile),
        fmt(vfs_cached),
        fmt(fix_compile),
        fmt(fix_cached)
    );
    println!(
        "{} calls of each export; host calls: {} rounds of {} calls{}\n",
        a.iters,
        a.rounds,
        a.host_calls,
        if cfg!(debug_assertions) {
            " (DEBUG BUILD: not meaningful)"
        } else {
            ""
        }
    );
    println!("{:<48} {:>9} {:>9} {:>9}   target", "", "p50", "p90", "p99");
    row(
        "instantiate + has-layer (storage-vfs)",
        vfs_call,
        Some(INSTANTIATE_TARGET),
    );
    row(
        "instantiate + empty has-layer (escape fixture)",
        empty,
        None,
    );
    row(
        "host call: log, filtered level",
        log,
        Some(HOST_CALL_TARGET),
    );
    row("host call: layer-fs.kind (a stat in the root)", kind, None);
    Ok(())
}

fn main() -> Res<()> {
    let a = args()?;
    // The daemon's runtime: calls leave the worker pool while they run.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(&a))
}
