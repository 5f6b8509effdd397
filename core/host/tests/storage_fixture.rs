//! A misbehaving storage driver (tests/fixtures/escape) is refused or
//! stopped within its deadline, its effects are rolled back, nothing appears
//! outside its root, and the host goes on working.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_host::{
    Grants, HostConfig, HostError, Origin, PluginErrorKind, PluginHost, PluginSpec, Refusal,
    StoragePlugin, WasmSource,
};

const NAME: &str = "escape-fixture";

struct Env {
    dir: tempfile::TempDir,
    plugin: StoragePlugin,
}

impl Env {
    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// Only the root exists in the test directory: nothing was made beside it.
    fn assert_nothing_outside(&self) {
        let names: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            names,
            vec!["root".to_string()],
            "entries beside the plugin's root"
        );
    }
}

fn load(timeout: Duration) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let host = PluginHost::new(HostConfig::new(common::shared_cache())).unwrap();
    let mut grants = Grants::new(dir.path().join("root"));
    grants.timeout = timeout;
    let plugin = host
        .load_storage(PluginSpec {
            name: NAME.into(),
            wasm: WasmSource::Bytes(common::fixture("escape")),
            grants,
        })
        .unwrap();
    Env { dir, plugin }
}

fn layer() -> Box<dyn std::io::Read + Send> {
    Box::new(std::io::Cursor::new(common::tar(&[
        ("etc/", b'5', b""),
        ("etc/hostname", b'0', b"berth\n"),
        ("bin/", b'5', b""),
        ("bin/sh", b'0', &[7u8; 1500]),
        ("bin/ash", b'2', b"/bin/sh"),
    ])))
}

/// A following well-behaved call still works.
async fn still_works(env: &Env, id: &str) {
    let stats = env.plugin.apply_layer(id, None, layer()).await.unwrap();
    assert_eq!((stats.entries, stats.bytes), (5, 1506));
    assert!(env.plugin.has_layer(id).await.unwrap());
}

fn assert_names(err: &HostError, call: &str) {
    let msg = err.to_string();
    assert!(msg.contains(NAME), "no plugin name in: {msg}");
    assert!(msg.contains(call), "no call in: {msg}");
}

#[tokio::test]
async fn ok_unpacks_through_host_primitives() {
    let env = load(Duration::from_secs(30));
    still_works(&env, "ok").await;
    let l = env.root().join("layers/ok");
    assert_eq!(std::fs::read(l.join("etc/hostname")).unwrap(), b"berth\n");
    let md = std::fs::metadata(l.join("bin/sh")).unwrap();
    assert_eq!(
        (md.len(), md.uid(), md.gid(), md.mtime()),
        (1500, 1000, 1000, 0o14000000000)
    );
    assert_eq!(
        std::fs::read_link(l.join("bin/ash")).unwrap(),
        Path::new("/bin/sh")
    );
    assert_eq!(
        std::fs::read_to_string(env.root().join("state.json")).unwrap(),
        r#"{"last":"ok"}"#
    );
    assert!(!env.plugin.has_layer("other").await.unwrap());
    let u = env.plugin.usage("ok").await.unwrap();
    assert_eq!(u.inodes, 6);
    env.assert_nothing_outside();
}

#[tokio::test]
async fn dotdot_is_refused() {
    let env = load(Duration::from_secs(30));
    let err = env
        .plugin
        .apply_layer("escape-dotdot", None, layer())
        .await
        .unwrap_err();
    assert!(
        matches!(err.refusal(), Some(Refusal::Path { path, .. }) if path.contains("../outside")),
        "{err}"
    );
    assert_names(&err, "apply-layer escape-dotdot");
    still_works(&env, "ok").await;
    env.assert_nothing_outside();
}

#[tokio::test]
async fn absolute_path_is_refused() {
    let env = load(Duration::from_secs(30));
    let err = env
        .plugin
        .apply_layer("escape-absolute", None, layer())
        .await
        .unwrap_err();
    assert!(
        matches!(err.refusal(), Some(Refusal::Path { path, .. }) if path.contains("/tmp/outside")),
        "{err}"
    );
    assert!(!Path::new("/tmp/outside").exists());
    still_works(&env, "ok").await;
}

#[tokio::test]
async fn writing_through_a_symlink_out_is_refused_and_rolled_back() {
    let env = load(Duration::from_secs(30));
    let err = env
        .plugin
        .apply_layer("escape-symlink", None, layer())
        .await
        .unwrap_err();
    assert!(
        matches!(err.refusal(), Some(Refusal::Path { path, .. }) if path.contains("link/etc/x")),
        "{err}"
    );
    assert_names(&err, "apply-layer escape-symlink");
    assert!(!Path::new("/etc/x").exists());
    assert!(
        std::fs::symlink_metadata(env.root().join("link")).is_err(),
        "the symlink was rolled back"
    );
    still_works(&env, "ok").await;
    env.assert_nothing_outside();
}

#[tokio::test]
async fn an_infinite_loop_is_stopped_at_the_deadline() {
    let env = load(Duration::from_secs(2));
    let start = Instant::now();
    let err = env
        .plugin
        .apply_layer("loop", None, layer())
        .await
        .unwrap_err();
    let took = start.elapsed();
    assert!(
        matches!(err, HostError::Timeout { after, .. } if after == Duration::from_secs(2)),
        "{err}"
    );
    assert_names(&err, "apply-layer loop");
    assert!(took < Duration::from_secs(10), "stopped after {took:?}");
    still_works(&env, "ok").await;
}

#[tokio::test]
async fn a_huge_allocation_is_out_of_memory() {
    let env = load(Duration::from_secs(30));
    let err = env
        .plugin
        .apply_layer("oom", None, layer())
        .await
        .unwrap_err();
    assert!(
        matches!(err, HostError::OutOfMemory { limit, .. } if limit == 256 << 20),
        "{err}"
    );
    assert_names(&err, "apply-layer oom");
    still_works(&env, "ok").await;
}

#[tokio::test]
async fn a_panic_is_a_trap_that_shows_the_message() {
    let env = load(Duration::from_secs(30));
    let err = env
        .plugin
        .apply_layer("panic", None, layer())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, HostError::Trap { cause, .. } if cause.contains("deliberate panic in the fixture")),
        "{err}"
    );
    assert_names(&err, "apply-layer panic");
    still_works(&env, "ok").await;
}

#[tokio::test]
async fn a_failed_call_leaves_nothing_behind() {
    let env = load(Duration::from_secs(30));
    let err = env
        .plugin
        .apply_layer("fail-after-create", None, layer())
        .await
        .unwrap_err();
    assert_eq!(
        err.plugin_error_kind(),
        Some(PluginErrorKind::Invalid),
        "{err}"
    );
    assert_names(&err, "apply-layer fail-after-create");
    assert!(!env.root().join("made").exists(), "rolled back");
    still_works(&env, "ok").await;
}

#[tokio::test]
async fn mounts_are_checked_and_made_absolute() {
    let env = load(Duration::from_secs(30));
    still_works(&env, "base").await;
    let root = env.root().canonicalize().unwrap();
    let m = env.plugin.prepare("c1", Some("base")).await.unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].kind, "overlay");
    let abs = |p: &str| root.join(p).to_string_lossy().into_owned();
    assert_eq!(
        m[0].options,
        vec![
            format!("lowerdir={}", abs("layers/base")),
            format!("upperdir={}", abs("snapshots/c1/upper")),
            format!("workdir={}", abs("snapshots/c1/work")),
        ]
    );
    let v = env.plugin.view("v1", "base").await.unwrap();
    assert_eq!(v[0].source, root.join("layers/base"));
    assert_eq!(
        env.plugin.mounts("c1").await.unwrap()[0].source,
        root.join("snapshots/c1/upper")
    );

    let err = env.plugin.prepare("escape", None).await.unwrap_err();
    assert!(
        matches!(err.refusal(), Some(Refusal::Mount(why)) if why.contains("../../etc")),
        "{err}"
    );
    assert_names(&err, "prepare escape");
    let err = env.plugin.prepare("missing", None).await.unwrap_err();
    assert!(
        matches!(err.refusal(), Some(Refusal::Mount(why)) if why.contains("layers/nope")),
        "{err}"
    );
}

#[tokio::test]
async fn other_verbs() {
    let env = load(Duration::from_secs(30));
    still_works(&env, "x").await;
    let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    env.plugin
        .diff("x", Box::new(common::Sink(buf.clone())))
        .await
        .unwrap();
    assert_eq!(&*buf.lock().unwrap(), b"diff of x");
    assert_eq!(
        env.plugin.gc(&["a".into()]).await.unwrap(),
        vec!["a".to_string()]
    );
    let err = env.plugin.commit("x", "y").await.unwrap_err();
    assert_eq!(err.plugin_error_kind(), Some(PluginErrorKind::Other));
    env.plugin.remove("x").await.unwrap();
    assert!(!env.plugin.has_layer("x").await.unwrap());
}

/// The `plugin_bench` example's modes run; an unknown mode answers false.
#[tokio::test]
async fn bench_modes_make_host_calls() {
    let env = load(Duration::from_secs(30));
    for mode in ["bench:log:0", "bench:log:1000", "bench:kind:1000"] {
        assert!(env.plugin.has_layer(mode).await.unwrap(), "{mode}");
    }
    assert!(!env.plugin.has_layer("bench:nope:1").await.unwrap());
    assert!(!env.plugin.has_layer("bench:log:many").await.unwrap());
    env.assert_nothing_outside();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_each_get_an_instance() {
    let env = load(Duration::from_secs(30));
    let p = env.plugin.clone();
    let calls: Vec<_> = (0..4)
        .map(|i| {
            let p = p.clone();
            tokio::spawn(async move { p.apply_layer(&format!("c{i}"), None, layer()).await })
        })
        .collect();
    for c in calls {
        assert_eq!(c.await.unwrap().unwrap().entries, 5);
    }
}

#[tokio::test]
async fn the_compile_cache_is_used_on_the_second_load() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let spec = || PluginSpec {
        name: NAME.into(),
        wasm: WasmSource::Bytes(common::fixture("escape")),
        grants: Grants::new(dir.path().join("root")),
    };
    let host = PluginHost::new(HostConfig::new(&cache)).unwrap();
    let first = host.load_storage(spec()).unwrap();
    assert_eq!(first.info().origin, Origin::Compiled);
    assert!(first.info().cache_file.starts_with(&cache) && first.info().cache_file.exists());
    // A second host (a restarted daemon) takes the compiled code from disk.
    let host2 = PluginHost::new(HostConfig::new(&cache)).unwrap();
    let second = host2.load_storage(spec()).unwrap();
    assert_eq!(second.info().origin, Origin::Cache);
    assert_eq!(second.info().cache_file, first.info().cache_file);
    assert!(second.has_layer("nothing").await.is_ok());
    // Only the finished file is in the cache directory (written tmp + rename).
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 1);
}

/// Rewrites every `berth:plugin/…@<from>` name in the component to `@<to>`
/// (same length, so the binary stays valid).
fn with_abi(wasm: &[u8], from: &str, to: &str) -> Vec<u8> {
    let mut out = wasm.to_vec();
    for iface in ["storage", "layer-fs", "log", "types"] {
        let a = format!("berth:plugin/{iface}@{from}");
        let b = format!("berth:plugin/{iface}@{to}");
        let mut i = 0;
        while let Some(pos) = find(&out[i..], a.as_bytes()) {
            out[i + pos..i + pos + a.len()].copy_from_slice(b.as_bytes());
            i += pos + a.len();
        }
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Loads `wasm` (a patched fixture) with its root in `dir`.
fn load_patched(dir: &Path, cache: &Path, wasm: Vec<u8>) -> Result<StoragePlugin, HostError> {
    PluginHost::new(HostConfig::new(cache))
        .unwrap()
        .load_storage(PluginSpec {
            name: NAME.into(),
            wasm: WasmSource::Bytes(Box::leak(wasm.into_boxed_slice())),
            grants: Grants::new(dir.join("root")),
        })
}

/// The ABI version the fixture is built for (the WIT in the tree).
const ABI: &str = berth_host::ABI_VERSION;

#[test]
fn another_abi_version_is_refused_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let patched = with_abi(common::fixture("escape"), ABI, "0.2.0");
    assert_ne!(
        patched,
        common::fixture("escape"),
        "the fixture names berth:plugin@{ABI}"
    );
    let err = load_patched(dir.path(), &common::shared_cache(), patched).unwrap_err();
    assert!(
        matches!(&err, HostError::Version { found, supported, .. } if found == "0.2.0" && supported == ABI),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(NAME) && msg.contains("0.2.0") && msg.contains(ABI),
        "{msg}"
    );
}

/// 0.1.1 only added functions to `layer-fs`: a plugin built for 0.1.0 (the
/// fixture with every `berth:plugin` name rewritten to `@0.1.0`; it calls
/// nothing added since) loads, its imports resolve to the host's 0.1.1 and
/// its 0.1.0 export is found.
#[tokio::test]
async fn a_plugin_built_for_0_1_0_still_loads_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let patched = with_abi(common::fixture("escape"), ABI, "0.1.0");
    assert!(find(&patched, b"berth:plugin/layer-fs@0.1.0").is_some());
    assert!(find(&patched, format!("@{ABI}").as_bytes()).is_none());
    let plugin = load_patched(dir.path(), &dir.path().join("cache"), patched).unwrap();
    let stats = plugin.apply_layer("old", None, layer()).await.unwrap();
    assert_eq!(stats.entries, 5);
    assert!(plugin.has_layer("old").await.unwrap());
    assert!(!plugin.has_layer("new").await.unwrap());
}

#[test]
fn an_import_outside_the_kind_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut wasm = common::fixture("escape").to_vec();
    // Turn an import the fixture has into one no plugin may have.
    let (a, b) = (
        b"wasi:cli/environment@".as_slice(),
        b"wasi:cli/environmenX@".as_slice(),
    );
    let pos = find(&wasm, a).expect("the fixture imports wasi:cli/environment");
    wasm[pos..pos + a.len()].copy_from_slice(b);
    let err = load_patched(dir.path(), &common::shared_cache(), wasm).unwrap_err();
    assert!(
        matches!(&err, HostError::Load { reason, .. } if reason.contains("wasi:cli/environmenX")),
        "{err}"
    );
}

#[test]
fn a_storage_driver_is_not_a_fetcher() {
    let dir = tempfile::tempdir().unwrap();
    let host = PluginHost::new(HostConfig::new(common::shared_cache())).unwrap();
    let err = host
        .load_fetcher(PluginSpec {
            name: NAME.into(),
            wasm: WasmSource::Bytes(common::fixture("escape")),
            grants: Grants::new(dir.path().join("root")),
        })
        .unwrap_err();
    assert!(
        matches!(&err, HostError::Load { reason, .. } if reason.contains("layer-fs")),
        "{err}"
    );
}
