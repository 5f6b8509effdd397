//! `/images/…`: pull (`create`, streaming docker's JSON progress), list,
//! inspect, tag, remove, save (`get`) and load.

use std::ops::Not as _;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use berth_engine::reference::Reference;
use berth_engine::Progress;
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::api::images::{HistoryItem, ImageDeleteItem, ImageSummary, JsonMessage, ProgressDetail};

use super::api::{self, flag, ApiError, ApiResult, Query};
use super::Shared;

pub async fn list(State(d): State<Shared>, q: Query) -> ApiResult {
    let mut by_id: Vec<ImageSummary> = Vec::new();
    for i in d.engine.list_images(flag(&q, "all"))? {
        // An image no name points at has no tags (docker's clients show it as <none>).
        let tag = berth_engine::images::dangling(&i.full_name)
            .not()
            .then(|| format!("{}:{}", i.repository, i.tag));
        if let Some(v) = by_id.iter_mut().find(|v| v.id == i.id) {
            v.repo_tags.extend(tag);
            continue;
        }
        by_id.push(ImageSummary {
            created: berth_engine::store::parse_time(&i.created).unwrap_or(0),
            id: i.id,
            repo_tags: tag.into_iter().collect(),
            size: i.size,
            shared_size: -1,
            virtual_size: i.size,
            containers: -1,
            ..Default::default()
        });
    }
    Ok(api::json(StatusCode::OK, by_id))
}

/// Progress as docker's JSON message stream; byte counts carry the status
/// of the step they belong to (`Downloading`, `Extracting`, `Pushing`).
pub(super) struct JsonProgress {
    tx: mpsc::UnboundedSender<JsonMessage>,
    steps: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

impl JsonProgress {
    pub(super) fn new(tx: mpsc::UnboundedSender<JsonMessage>) -> JsonProgress {
        JsonProgress {
            tx,
            steps: Default::default(),
        }
    }
}

impl Progress for JsonProgress {
    fn status(&self, id: &str, status: &str) {
        self.steps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_owned(), status.to_owned());
        let _ = self.tx.send(JsonMessage {
            progress_detail: Some(ProgressDetail::default()),
            id: Some(id.into()),
            ..JsonMessage::status(status)
        });
    }
    fn bytes(&self, id: &str, done: u64, total: u64) {
        let step = self
            .steps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
            .unwrap_or_else(|| "Downloading".into());
        let _ = self.tx.send(JsonMessage {
            progress_detail: Some(ProgressDetail {
                current: Some(done),
                total: Some(total),
            }),
            id: Some(id.into()),
            ..JsonMessage::status(step)
        });
    }
}

pub(super) fn json_stream(mut rx: mpsc::UnboundedReceiver<JsonMessage>) -> axum::body::Body {
    let (tx, out) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        while let Some(v) = rx.recv().await {
            let mut b = serde_json::to_vec(&v).unwrap_or_default();
            b.extend_from_slice(b"\r\n");
            if tx.send(Bytes::from(b)).await.is_err() {
                return;
            }
        }
    });
    api::stream_body(out)
}

pub async fn create(
    State(d): State<Shared>,
    axum::extract::Query(pairs): axum::extract::Query<Vec<(String, String)>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> ApiResult {
    let q: std::collections::HashMap<String, String> = pairs.iter().cloned().collect();
    if let Some(src) = q.get("fromSrc").filter(|s| !s.is_empty()) {
        if src != "-" {
            return Err(ApiError::bad(format!(
                "importing from {src:?} is not supported: send the archive as the body with fromSrc=-"
            )));
        }
        let changes = pairs
            .iter()
            .filter(|(k, _)| k == "changes")
            .map(|(_, v)| v.clone())
            .collect();
        return import(d, &q, changes, body).await;
    }
    let image = q
        .get("fromImage")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad("fromImage is required"))?;
    let tag = q.get("tag").map(String::as_str).unwrap_or("");
    let reference = if tag.is_empty() {
        image.clone()
    } else if tag.starts_with("sha256:") {
        format!("{image}@{tag}")
    } else {
        format!("{image}:{tag}")
    };
    let r = Reference::parse(&reference).map_err(|e| ApiError::bad(e.to_string()))?;
    let platform = q.get("platform").filter(|p| !p.is_empty()).cloned();
    let credentials = super::push::registry_auth(&headers)?;
    let (tx, rx) = mpsc::unbounded_channel();
    let engine = d.engine.clone();
    let containers = d.containers.clone();
    tokio::spawn(async move {
        let short = r.short();
        let before = engine.image(&reference).ok().map(|(_, rec)| rec.manifest);
        let _ = tx.send(JsonMessage {
            id: Some(r.tag.clone().unwrap_or_else(|| "latest".into())),
            ..JsonMessage::status(format!("Pulling from {}", r.short_repository()))
        });
        let p: Arc<dyn Progress> = Arc::new(JsonProgress::new(tx.clone()));
        match engine
            .pull_as(&reference, platform.as_deref(), credentials, p)
            .await
        {
            Ok(digest) => {
                let _ = tx.send(JsonMessage::status(format!("Digest: {digest}")));
                let status = if before.as_deref() == Some(digest.as_str()) {
                    format!("Status: Image is up to date for {short}")
                } else {
                    format!("Status: Downloaded newer image for {short}")
                };
                let _ = tx.send(JsonMessage::status(status));
                containers.emit_other("image", "pull", &r.full());
            }
            Err(e) => {
                let _ = tx.send(JsonMessage::error(e.to_string()));
            }
        }
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        json_stream(rx),
    )
        .into_response())
}

/// `POST /images/create?fromSrc=-` (docker's `import`): the body, a tar of
/// a filesystem, becomes a one-layer image; answers with its id as a
/// status line.
async fn import(
    d: Shared,
    q: &std::collections::HashMap<String, String>,
    changes: Vec<String>,
    body: axum::body::Body,
) -> ApiResult {
    use futures_util::StreamExt as _;
    use std::io::Write as _;
    let reference = match (q.get("repo").filter(|r| !r.is_empty()), q.get("tag")) {
        (Some(repo), Some(tag)) if !tag.is_empty() => Some(format!("{repo}:{tag}")),
        (Some(repo), _) => Some(repo.clone()),
        (None, _) => None,
    };
    let full_name = reference
        .as_deref()
        .map(|r| Reference::parse(r).map(|r| r.full()))
        .transpose()
        .map_err(|e| ApiError::bad(e.to_string()))?;
    let list = berth_engine::dockerfile::parse_changes(&changes)?;
    let mut config = serde_json::Map::new();
    berth_engine::dockerfile::Changes::apply(&mut config, &list);
    // The archive is spooled to a file under the root, not held in memory.
    let internal =
        |e: std::io::Error| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    let mut spool = tempfile::tempfile_in(&d.root).map_err(internal)?;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad(format!("reading the archive: {e}")))?;
        spool.write_all(&chunk).map_err(internal)?;
    }
    use std::io::Seek as _;
    spool.rewind().map_err(internal)?;
    let meta = berth_engine::engine::CommitMeta {
        comment: q
            .get("message")
            .filter(|m| !m.is_empty())
            .cloned()
            .unwrap_or_else(|| "Imported from -".into()),
        ..Default::default()
    };
    let id = d
        .engine
        .import_image(spool, config, &meta, full_name.as_deref())
        .await?;
    d.containers.emit_other("image", "import", &id);
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        format!(
            "{}\r\n",
            serde_json::to_string(&JsonMessage::status(id)).unwrap_or_default()
        ),
    )
        .into_response())
}

/// `GET /images/{name}/json` (names contain slashes, so the path is matched here).
pub async fn by_name(State(d): State<Shared>, Path(rest): Path<String>) -> ApiResult {
    if let Some(name) = rest.strip_suffix("/history") {
        let rows: Vec<HistoryItem> = d
            .engine
            .image_history(name)?
            .into_iter()
            .map(HistoryItem::from)
            .collect();
        return Ok(api::json(StatusCode::OK, rows));
    }
    let Some(name) = rest.strip_suffix("/json") else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("page not found: /images/{rest}"),
        ));
    };
    Ok(api::json(StatusCode::OK, d.engine.inspect_image(name)?))
}

/// `POST /images/{name}/tag?repo=&tag=`.
pub async fn by_name_post(
    State(d): State<Shared>,
    Path(rest): Path<String>,
    q: Query,
    headers: axum::http::HeaderMap,
) -> ApiResult {
    if let Some(name) = rest.strip_suffix("/push") {
        return super::push::push(d, name, &q, &headers).await;
    }
    let Some(name) = rest.strip_suffix("/tag") else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("page not found: /images/{rest}"),
        ));
    };
    let repo = q
        .get("repo")
        .filter(|r| !r.is_empty())
        .ok_or_else(|| ApiError::bad("repo is required"))?;
    let target = match q.get("tag").filter(|t| !t.is_empty()) {
        Some(t) => format!("{repo}:{t}"),
        None => repo.clone(),
    };
    d.engine.tag(name, &target)?;
    d.containers.emit_other("image", "tag", &target);
    Ok(StatusCode::CREATED.into_response())
}

pub async fn remove(State(d): State<Shared>, Path(name): Path<String>, q: Query) -> ApiResult {
    let lines = d.engine.remove_image(&name, flag(&q, "force")).await?;
    d.containers.emit_other("image", "delete", &name);
    Ok(api::json(StatusCode::OK, delete_items(&lines)))
}

/// `POST /images/prune?filters={"dangling":["false"]}`: images no container
/// uses — only those without a name unless `dangling` is false.
pub async fn prune(State(d): State<Shared>, q: Query) -> ApiResult {
    let filters: std::collections::HashMap<String, serde_json::Value> = match q.get("filters") {
        Some(f) if !f.is_empty() => serde_json::from_str(f)
            .map_err(|e| ApiError::bad(format!("invalid filters {f:?}: {e}")))?,
        _ => Default::default(),
    };
    let mut all = false;
    for (k, v) in &filters {
        // docker sends ["false"] or {"false": true}.
        let values: Vec<String> = match v {
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect(),
            serde_json::Value::Object(o) => o.keys().cloned().collect(),
            _ => Vec::new(),
        };
        match k.as_str() {
            "dangling" => all = values.iter().any(|v| v == "false" || v == "0"),
            other => {
                return Err(ApiError::bad(format!(
                    "invalid filter '{other}': berth prunes by dangling only"
                )))
            }
        }
    }
    let (lines, space) = d.engine.prune_images(all).await?;
    for l in lines.iter().filter_map(|l| l.strip_prefix("Deleted: ")) {
        d.containers.emit_other("image", "delete", l);
    }
    Ok(api::json(
        StatusCode::OK,
        crate::api::images::ImagePruneResponse {
            images_deleted: delete_items(&lines),
            space_reclaimed: space,
        },
    ))
}

/// The engine's `Untagged: …`/`Deleted: …` lines as docker's items.
fn delete_items(lines: &[String]) -> Vec<ImageDeleteItem> {
    lines
        .iter()
        .map(|l| match l.split_once(": ") {
            Some(("Untagged", v)) => ImageDeleteItem {
                untagged: Some(v.into()),
                deleted: None,
            },
            Some((_, v)) => ImageDeleteItem {
                untagged: None,
                deleted: Some(v.into()),
            },
            None => ImageDeleteItem {
                untagged: None,
                deleted: Some(l.clone()),
            },
        })
        .collect()
}

/// `GET /images/get?names=…`: a `docker save` tar.
pub async fn get(
    State(d): State<Shared>,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> ApiResult {
    let names: Vec<String> = raw
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.strip_prefix("names="))
        .map(percent_decode)
        .collect();
    if names.is_empty() {
        return Err(ApiError::bad("names is required"));
    }
    let tmp = tempfile::NamedTempFile::new_in(&d.root)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let path = tmp.path().to_path_buf();
    let engine = d.engine.clone();
    tokio::task::spawn_blocking(move || engine.save(&names, &path))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    let data = tokio::fs::read(tmp.path())
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-tar")],
        data,
    )
        .into_response())
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match h {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `POST /images/load`: the body is a tar (docker save or OCI layout).
pub async fn load(State(d): State<Shared>, q: Query, body: axum::body::Body) -> ApiResult {
    use futures_util::StreamExt as _;
    use tokio::io::AsyncWriteExt as _;
    // An OCI archive whose index names only a tag ("latest") is named after
    // its file, as `berth load -i DIR` names a layout after its directory;
    // an upload has no name of its own: it becomes `localhost/loaded:TAG`.
    let tmpdir = tempfile::Builder::new()
        .prefix(".load-")
        .tempdir_in(&d.root)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let path = tmpdir.path().join("loaded.tar");
    let mut f = tokio::fs::File::create(&path)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let mut s = body.into_data_stream();
    while let Some(chunk) = s.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad(format!("reading the archive: {e}")))?;
        f.write_all(&chunk)
            .await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    }
    f.flush().await.ok();
    drop(f);
    let names = d.engine.load(&path, Arc::new(berth_engine::Quiet)).await?;
    let quiet = flag(&q, "quiet");
    let mut out = Vec::new();
    for n in names {
        let short = Reference::parse(&n).map(|r| r.short()).unwrap_or(n);
        if !quiet {
            out.extend_from_slice(
                serde_json::to_string(&JsonMessage {
                    stream: Some(format!("Loaded image: {short}\n")),
                    ..Default::default()
                })
                .unwrap_or_default()
                .as_bytes(),
            );
            out.extend_from_slice(b"\r\n");
        }
        d.containers.emit_other("image", "load", &short);
    }
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        out,
    )
        .into_response())
}

/// `POST /commit?container=…&repo=…&tag=…&author=…&comment=…&pause=…&changes=…`
/// (`changes` repeated): a container's writable layer as a new image.
pub async fn commit(
    State(d): State<Shared>,
    axum::extract::Query(q): axum::extract::Query<Vec<(String, String)>>,
) -> ApiResult {
    let one = |k: &str| q.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let container = one("container")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad("container is required: POST /commit?container=NAME"))?;
    let reference = match (one("repo").filter(|r| !r.is_empty()), one("tag")) {
        (Some(repo), Some(tag)) if !tag.is_empty() => Some(format!("{repo}:{tag}")),
        (Some(repo), _) => Some(repo),
        (None, Some(tag)) if !tag.is_empty() => {
            return Err(ApiError::bad(format!(
                "a tag ({tag}) needs a repository: POST /commit?repo=NAME&tag={tag}"
            )))
        }
        (None, _) => None,
    };
    let opts = berth_engine::containers::CommitOptions {
        reference,
        author: one("author").unwrap_or_default(),
        comment: one("comment").unwrap_or_default(),
        changes: q
            .iter()
            .filter(|(k, _)| k == "changes")
            .map(|(_, v)| v.clone())
            .collect(),
        // docker pauses unless told not to.
        pause: one("pause").is_none_or(|p| !matches!(p.as_str(), "0" | "false" | "False")),
    };
    let id = d.containers.commit(&container, opts).await?;
    d.containers.emit_other("image", "create", &id);
    Ok(api::json(
        StatusCode::CREATED,
        crate::api::IdResponse { id },
    ))
}
