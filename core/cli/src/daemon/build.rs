//! `POST /build` (docker's classic builder, what the docker CLI sends
//! without buildx) and `POST /build/prune`: the context tar is unpacked to
//! disk as it arrives (gzip-compressed ones too), built, and the
//! output streamed as docker's JSON lines (`{"stream": …}`, the image id as
//! `{"aux": {"ID": …}}`, an error as `{"error": …}`). A client that goes
//! away stops the build.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use berth_engine::build::{BuildLog, BuildOptions, Builder, Context};
use futures_util::StreamExt as _;
use tokio::sync::mpsc;

use crate::api::images::JsonMessage;

use super::api::{self, ApiError, ApiResult};
use super::images::json_stream;
use super::Shared;

/// Build output as docker's JSON messages.
struct JsonLog {
    tx: mpsc::UnboundedSender<JsonMessage>,
    quiet: bool,
}

impl BuildLog for JsonLog {
    fn stream(&self, text: &str) {
        if !self.quiet {
            let _ = self.tx.send(JsonMessage {
                stream: Some(text.to_owned()),
                ..Default::default()
            });
        }
    }

    fn cancelled(&self) -> bool {
        self.tx.is_closed()
    }
}

fn truthy(q: &HashMap<String, String>, k: &str) -> bool {
    q.get(k)
        .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// The request body as a blocking reader (for the tar unpacker): chunks
/// come through a bounded channel.
struct ChannelReader {
    rx: mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    current: bytes::Bytes,
}

impl ChannelReader {
    fn new(depth: usize) -> (mpsc::Sender<std::io::Result<bytes::Bytes>>, ChannelReader) {
        let (tx, rx) = mpsc::channel(depth);
        (
            tx,
            ChannelReader {
                rx,
                current: bytes::Bytes::new(),
            },
        )
    }
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// The build's options from docker's query parameters.
fn options(
    pairs: &[(String, String)],
    headers: &axum::http::HeaderMap,
) -> Result<(BuildOptions, bool), ApiError> {
    let q: HashMap<String, String> = pairs.iter().cloned().collect();
    if q.get("version").is_some_and(|v| v == "2") {
        return Err(ApiError::bad(
            "BuildKit builds (version=2) are not supported: berth serves the classic builder API (version=1)",
        ));
    }
    let json_map = |k: &str| -> Result<BTreeMap<String, Option<String>>, ApiError> {
        match q.get(k).filter(|v| !v.is_empty()) {
            None => Ok(BTreeMap::new()),
            Some(v) => serde_json::from_str(v)
                .map_err(|e| ApiError::bad(format!("{k} is not a JSON object of strings: {e}"))),
        }
    };
    let labels = json_map("labels")?
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect();
    let opts = BuildOptions {
        dockerfile: q.get("dockerfile").cloned().unwrap_or_default(),
        tags: pairs
            .iter()
            .filter(|(k, v)| k == "t" && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect(),
        build_args: json_map("buildargs")?,
        target: q.get("target").cloned().unwrap_or_default(),
        no_cache: truthy(&q, "nocache"),
        pull: truthy(&q, "pull"),
        labels,
        network: q
            .get("networkmode")
            .filter(|n| *n != "default")
            .cloned()
            .unwrap_or_default(),
        registry_auth: super::push::registry_config(headers)?,
        platform: q.get("platform").cloned().unwrap_or_default(),
    };
    Ok((opts, truthy(&q, "q")))
}

pub async fn build(
    State(d): State<Shared>,
    axum::extract::Query(pairs): axum::extract::Query<Vec<(String, String)>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> ApiResult {
    let (opts, quiet) = options(&pairs, &headers)?;
    let internal =
        |e: std::io::Error| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    let dir = d.root.join("build");
    std::fs::create_dir_all(&dir).map_err(internal)?;
    // Unpacked as it arrives, through a bounded channel: a context is
    // never held in memory, nor written twice.
    let (chunks, reader) = ChannelReader::new(4);
    let dockerfile = opts.dockerfile.clone();
    let unpacking = tokio::task::spawn_blocking(move || Context::unpack(reader, &dir, &dockerfile));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let item = chunk.map_err(|e| std::io::Error::other(format!("reading the request: {e}")));
        let failed = item.is_err();
        if chunks.send(item).await.is_err() || failed {
            // The unpacker stopped (a bad tar) or the request broke: its
            // error says which.
            break;
        }
    }
    drop(chunks);
    let ctx = unpacking
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    let (tx, rx) = mpsc::unbounded_channel();
    let builder = Builder::new(d.engine.clone(), d.containers.clone());
    let containers = d.containers.clone();
    tokio::spawn(async move {
        let log = Arc::new(JsonLog {
            tx: tx.clone(),
            quiet,
        });
        match builder.build(&ctx, &opts, log.as_ref()).await {
            Ok(id) => {
                let _ = tx.send(JsonMessage {
                    aux: Some(serde_json::json!({ "ID": id })),
                    ..Default::default()
                });
                if quiet {
                    let _ = tx.send(JsonMessage {
                        stream: Some(format!("{id}\n")),
                        ..Default::default()
                    });
                }
                for t in &opts.tags {
                    containers.emit_other("image", "tag", t);
                }
            }
            Err(e) => {
                let mut m = JsonMessage::error(e.to_string());
                if let (berth_engine::EngineError::BuildStep { code, .. }, Some(d)) =
                    (&e, m.error_detail.as_mut())
                {
                    d.code = Some(*code);
                }
                let _ = tx.send(m);
            }
        }
        drop(ctx);
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        json_stream(rx),
    )
        .into_response())
}

/// `POST /build/prune`: forgets the build cache (the intermediate images
/// stay until nothing is made on them; `image prune -a` takes them).
pub async fn prune(State(d): State<Shared>) -> ApiResult {
    let n = berth_engine::build::cache::BuildCache::open(d.engine.root()).clear()?;
    tracing::debug!("build cache: {n} entries forgotten");
    Ok(api::json(
        StatusCode::OK,
        crate::api::images::BuildPruneResponse::default(),
    ))
}
