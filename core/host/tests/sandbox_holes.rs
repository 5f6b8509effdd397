//! What a plugin cannot do to the host from inside its sandbox: hold host
//! threads past a call's deadline with blocking filesystem calls (opening
//! a FIFO it made, through WASI), drive the host's memory past the call's
//! cap with host-side objects (directory listings, `wasi:http` header
//! maps), or go on after a refused request. Fixture plugins try each; the
//! host keeps serving other calls meanwhile.

mod common;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use berth_host::{
    BlobIngest, ContentStore, Descriptor, FetcherPlugin, Grants, HostConfig, HostError, PluginHost,
    PluginSpec, Refusal, StoragePlugin, WasmSource,
};

/// Host-side allocations are counted only with berth-host's allocator.
#[global_allocator]
static ALLOC: berth_host::CountingAlloc = berth_host::CountingAlloc;

const LIMIT: usize = 64 << 20;

fn host() -> PluginHost {
    PluginHost::new(HostConfig::new(common::shared_cache())).unwrap()
}

fn storage(dir: &tempfile::TempDir, timeout: Duration) -> StoragePlugin {
    let mut grants = Grants::new(dir.path().join("root"));
    grants.timeout = timeout;
    grants.memory_limit = LIMIT;
    host()
        .load_storage(PluginSpec {
            name: "escape-fixture".into(),
            wasm: WasmSource::Bytes(common::fixture("escape")),
            grants,
        })
        .unwrap()
}

fn fetcher(dir: &tempfile::TempDir) -> FetcherPlugin {
    let mut grants = Grants::new(dir.path().join("root"));
    grants.timeout = Duration::from_secs(30);
    grants.memory_limit = LIMIT;
    grants.registries = vec!["127.0.0.1:9".into()];
    host()
        .load_fetcher(PluginSpec {
            name: "fetch-fixture".into(),
            wasm: WasmSource::Bytes(common::fixture("fetch")),
            grants,
        })
        .unwrap()
}

fn layer() -> Box<dyn std::io::Read + Send> {
    Box::new(std::io::Cursor::new(common::tar(&[
        ("etc/", b'5', b""),
        ("etc/hostname", b'0', b"berth\n"),
    ])))
}

/// A content store that throws away what it is given.
struct Refusing;

struct Sink;

impl io::Write for Sink {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BlobIngest for Sink {
    fn commit(self: Box<Self>) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

impl ContentStore for Refusing {
    fn has(&self, _: &str) -> bool {
        false
    }
    fn ingest(&self, _: &Descriptor) -> io::Result<Box<dyn BlobIngest>> {
        Ok(Box::new(Sink))
    }
    fn open(&self, _: &str) -> io::Result<std::fs::File> {
        Err(io::ErrorKind::NotFound.into())
    }
}

fn desc() -> Descriptor {
    Descriptor {
        media_type: "application/octet-stream".into(),
        digest: format!("sha256:{}", "0".repeat(64)),
        size: 1,
    }
}

/// The process's resident memory in bytes.
fn rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// `err` is the cap's, and the process grew by less than a few caps since
/// its resident size was `before`.
fn out_of_memory(err: &HostError, before: usize) {
    assert!(
        matches!(err, HostError::OutOfMemory { limit, .. } if *limit == LIMIT),
        "{err}"
    );
    let grown = rss().saturating_sub(before);
    assert!(
        grown < 4 * LIMIT,
        "the host grew by {grown} bytes for a {LIMIT}-byte cap"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_opens_are_cut_off_at_the_deadline_while_other_calls_go_on() {
    assert!(
        berth_host::counting(),
        "the counting allocator is installed"
    );
    let dir = tempfile::tempdir().unwrap();
    // Long enough for the well-behaved call to finish first on a loaded machine.
    let timeout = Duration::from_secs(8);
    let plugin = storage(&dir, timeout);
    // More blocked calls than the runtime has worker threads.
    let blocked: Vec<_> = (0..4)
        .map(|i| {
            let p = plugin.clone();
            tokio::spawn(async move {
                p.apply_layer(&format!("block-fifo-{i}"), None, layer())
                    .await
            })
        })
        .collect();
    let good = plugin.apply_layer("ok", None, layer()).await.unwrap();
    assert_eq!(good.entries, 2);
    assert!(
        blocked.iter().all(|b| !b.is_finished()),
        "a well-behaved call finished while the blocked calls still wait for their deadline"
    );
    for b in blocked {
        let err = b.await.unwrap().unwrap_err();
        assert!(
            matches!(err, HostError::Timeout { after, .. } if after == timeout),
            "{err}"
        );
    }
    assert!(plugin.has_layer("ok").await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_streams_count_against_the_memory_cap() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = storage(&dir, Duration::from_secs(60));
    let before = rss();
    let err = plugin
        .apply_layer("hoard-dirs", None, layer())
        .await
        .unwrap_err();
    out_of_memory(&err, before);
    assert_eq!(
        plugin
            .apply_layer("ok", None, layer())
            .await
            .unwrap()
            .entries,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_header_maps_count_against_the_memory_cap() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = fetcher(&dir);
    let before = rss();
    let err = plugin
        .fetch("hoard-fields", &desc(), Arc::new(Refusing))
        .await
        .unwrap_err();
    out_of_memory(&err, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wasi_path_out_of_the_root_ends_the_call() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = storage(&dir, Duration::from_secs(30));
    let err = plugin
        .apply_layer("wasi-escape", None, layer())
        .await
        .unwrap_err();
    assert!(
        matches!(err.refusal(), Some(Refusal::WasiPath { path, .. }) if path.starts_with("..")),
        "{err}"
    );
    assert!(!dir.path().join("outside").exists());
    // Rolled back like any failed call: the layer the plugin went on to
    // unpack is not there.
    assert!(!plugin.has_layer("ok").await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_request_ends_the_call() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = fetcher(&dir);
    // The fixture shrugs the refusal off and spins: the call still ends,
    // as denied, long before its 30 s deadline.
    let err = plugin
        .fetch(
            "ignore-denied:http://169.254.169.254/latest/meta-data",
            &desc(),
            Arc::new(Refusing),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err.refusal(), Some(Refusal::Http(why)) if why.contains("not a registry granted")),
        "{err}"
    );
}
