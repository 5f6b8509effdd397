//! An image fetcher (tests/fixtures/fetch) reaches only granted registries,
//! gets credentials it never sees, and cannot store a blob under a wrong digest.

mod common;

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_host::{
    BlobIngest, ContentStore, Credentials, Descriptor, FetcherPlugin, Grants, HostConfig,
    PluginErrorKind, PluginHost, PluginSpec, Refusal, WasmSource,
};
use sha2::{Digest, Sha256};

const NAME: &str = "fetch-fixture";
const BODY: &[u8] = b"a layer's worth of bytes";

/// An in-memory content store.
#[derive(Default)]
struct Mem(Mutex<HashMap<String, Vec<u8>>>);

struct Ingest(Arc<Mem>, String, Vec<u8>);

impl Write for Ingest {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.2.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BlobIngest for Ingest {
    fn commit(self: Box<Self>) -> io::Result<()> {
        self.0 .0.lock().unwrap().insert(self.1, self.2);
        Ok(())
    }
}

struct Store(Arc<Mem>);

impl ContentStore for Store {
    fn has(&self, digest: &str) -> bool {
        self.0 .0.lock().unwrap().contains_key(digest)
    }
    fn ingest(&self, desc: &Descriptor) -> io::Result<Box<dyn BlobIngest>> {
        Ok(Box::new(Ingest(
            self.0.clone(),
            desc.digest.clone(),
            Vec::new(),
        )))
    }
    fn open(&self, _: &str) -> io::Result<std::fs::File> {
        Err(io::ErrorKind::NotFound.into())
    }
}

/// A one-response-per-connection HTTP server on loopback that records the
/// Authorization header of each request.
fn serve() -> (u16, Arc<Mutex<Vec<Option<String>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut auth = None;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line
                    .strip_prefix("authorization: ")
                    .or(line.strip_prefix("Authorization: "))
                {
                    auth = Some(v.trim().to_string());
                }
            }
            log.lock().unwrap().push(auth);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                BODY.len()
            );
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(BODY);
        }
    });
    (port, seen)
}

fn load(port: u16, creds: bool) -> (tempfile::TempDir, FetcherPlugin) {
    let dir = tempfile::tempdir().unwrap();
    let cache =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/wasm-fixtures/cache");
    let host = PluginHost::new(HostConfig::new(cache)).unwrap();
    let mut grants = Grants::new(dir.path().join("root"));
    grants.timeout = Duration::from_secs(30);
    grants.registries = vec![format!("127.0.0.1:{port}")];
    if creds {
        grants.credentials.insert(
            format!("127.0.0.1:{port}"),
            Credentials::Basic {
                username: "berth".into(),
                password: "secret".into(),
            },
        );
    }
    let plugin = host
        .load_fetcher(PluginSpec {
            name: NAME.into(),
            wasm: WasmSource::Bytes(common::fixture("fetch")),
            grants,
        })
        .unwrap();
    (dir, plugin)
}

fn desc(data: &[u8]) -> Descriptor {
    Descriptor {
        media_type: "application/vnd.oci.image.layer.v1.tar".into(),
        digest: format!("sha256:{}", hex::encode(Sha256::digest(data))),
        size: data.len() as u64,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_blob_is_stored_with_host_credentials() {
    let (port, seen) = serve();
    let (_dir, plugin) = load(port, true);
    let mem = Arc::new(Mem::default());
    let d = desc(BODY);
    for url in ["blob", "blob?finish-in-guest"] {
        mem.0.lock().unwrap().clear();
        plugin
            .fetch(
                &format!("http://127.0.0.1:{port}/{url}"),
                &d,
                Arc::new(Store(mem.clone())),
            )
            .await
            .unwrap();
        assert_eq!(
            mem.0.lock().unwrap().get(&d.digest).map(Vec::as_slice),
            Some(BODY)
        );
    }
    // "berth:secret", added by the host; the plugin never had it.
    assert_eq!(
        seen.lock().unwrap()[0].as_deref(),
        Some("Basic YmVydGg6c2VjcmV0")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_digest_is_refused_and_discarded() {
    let (port, _) = serve();
    let (_dir, plugin) = load(port, false);
    let mem = Arc::new(Mem::default());
    let mut d = desc(b"something else of the same size!");
    d.size = BODY.len() as u64;
    let err = plugin
        .fetch(
            &format!("http://127.0.0.1:{port}/blob"),
            &d,
            Arc::new(Store(mem.clone())),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.plugin_error_kind(),
        Some(PluginErrorKind::Invalid),
        "{err}"
    );
    assert!(err.to_string().contains(NAME), "{err}");
    assert!(
        mem.0.lock().unwrap().is_empty(),
        "nothing stored under a wrong digest"
    );
    // A descriptor shorter than the body fails the stream.
    let mut short = desc(&BODY[..4]);
    short.size = 4;
    let err = plugin
        .fetch(
            &format!("http://127.0.0.1:{port}/blob"),
            &short,
            Arc::new(Store(mem.clone())),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.plugin_error_kind(),
        Some(PluginErrorKind::Invalid),
        "{err}"
    );
    assert!(mem.0.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_was_not_granted_is_refused() {
    let (port, seen) = serve();
    let (_dir, plugin) = load(port, true);
    let mem = Arc::new(Mem::default());
    for url in [
        format!("http://localhost:{port}/blob"),
        format!("http://127.0.0.1:{}/blob", port.wrapping_add(1)),
        "http://169.254.169.254/latest/meta-data".to_string(),
    ] {
        let err = plugin
            .fetch(&url, &desc(BODY), Arc::new(Store(mem.clone())))
            .await
            .unwrap_err();
        assert!(
            matches!(err.refusal(), Some(Refusal::Http(why)) if why.contains("not a registry granted")),
            "{url}: {err}"
        );
        assert!(err.to_string().contains(NAME), "{err}");
    }
    assert!(
        seen.lock().unwrap().is_empty(),
        "no request reached the server"
    );
    assert!(mem.0.lock().unwrap().is_empty());
}
