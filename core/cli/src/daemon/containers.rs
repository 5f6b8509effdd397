//! `/containers/…`: create, start, stop, restart, kill, wait, attach, logs,
//! inspect, list, top, rename, pause, unpause, resize, remove (stats and
//! the archive API have files of their own).

use std::collections::HashMap;

use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use berth_engine::containers::logs;
use berth_engine::containers::stream::AttachOptions;
use berth_engine::containers::{Status, WaitCondition};
use bytes::Bytes;

use crate::api::containers::{CreateRequest, CreateResponse, TopResponse, WaitError, WaitResponse};
use crate::api::Filters;

use super::api::{self, flag, number, ApiError, ApiResult, Query};
use super::render;
use super::Shared;

/// docker's `filters` query: `{"status": ["exited"], "label": ["a=b"], …}`.
fn filters(q: &HashMap<String, String>) -> ApiResult<HashMap<String, Vec<String>>> {
    let Some(f) = q.get("filters").filter(|f| !f.is_empty()) else {
        return Ok(HashMap::new());
    };
    let v: Filters =
        serde_json::from_str(f).map_err(|e| ApiError::bad(format!("invalid filters: {e}")))?;
    let mut out = HashMap::new();
    for (k, vals) in v.0 {
        match k.as_str() {
            "status" | "name" | "id" | "label" | "exited" | "ancestor" => {}
            other => return Err(ApiError::bad(format!("invalid filter '{other}'"))),
        }
        out.insert(k, vals.values());
    }
    Ok(out)
}

pub async fn list(State(d): State<Shared>, q: Query) -> ApiResult {
    let f = filters(&q)?;
    let all = flag(&q, "all") || f.contains_key("status") || f.contains_key("exited");
    let limit: Option<i64> = number(&q, "limit")?;
    let mut out = Vec::new();
    for r in d.containers.list() {
        if !all && !r.status.is_live() {
            continue;
        }
        let ok = f.iter().all(|(k, vals)| {
            vals.iter().any(|v| match k.as_str() {
                "status" => r.status.as_str() == v,
                "name" => r.name.contains(v.trim_start_matches('/')),
                "id" => r.id.starts_with(v.as_str()),
                "exited" => !r.status.is_live() && r.exit_code.to_string() == *v,
                "ancestor" => r.image == *v || r.image_id.contains(v.as_str()),
                "label" => match v.split_once('=') {
                    Some((lk, lv)) => r.config.labels.get(lk).is_some_and(|x| x == lv),
                    None => r.config.labels.contains_key(v.as_str()),
                },
                _ => true,
            })
        });
        if ok {
            out.push(render::summary(&d.containers, &r));
        }
    }
    if let Some(n) = limit.filter(|n| *n > 0) {
        out.truncate(n as usize);
    }
    Ok(api::json(StatusCode::OK, out))
}

pub async fn create(State(d): State<Shared>, q: Query, body: Bytes) -> ApiResult {
    let req: CreateRequest = api::body(&body)?;
    let id = d
        .containers
        .create(q.get("name").map(String::as_str), req)
        .await?;
    Ok(api::json(
        StatusCode::CREATED,
        CreateResponse {
            id,
            warnings: Vec::new(),
        },
    ))
}

pub async fn inspect(State(d): State<Shared>, Path(id): Path<String>) -> ApiResult {
    let r = d.containers.get(&id)?;
    let execs = d.containers.exec_ids(&r.id);
    Ok(api::json(
        StatusCode::OK,
        render::inspect(&d.containers, &r, execs),
    ))
}

pub async fn start(State(d): State<Shared>, Path(id): Path<String>) -> ApiResult {
    if d.containers.start(&id).await? {
        Ok(api::no_content())
    } else {
        Ok(api::not_modified())
    }
}

fn stop_timeout(q: &HashMap<String, String>) -> ApiResult<Option<i64>> {
    Ok(number::<i64>(q, "t")?.or(number::<i64>(q, "timeout")?))
}

pub async fn stop(State(d): State<Shared>, Path(id): Path<String>, q: Query) -> ApiResult {
    let t = stop_timeout(&q)?;
    if d.containers
        .stop(
            &id,
            t,
            q.get("signal")
                .map(String::as_str)
                .filter(|s| !s.is_empty()),
        )
        .await?
    {
        Ok(api::no_content())
    } else {
        Ok(api::not_modified())
    }
}

pub async fn restart(State(d): State<Shared>, Path(id): Path<String>, q: Query) -> ApiResult {
    let t = stop_timeout(&q)?;
    d.containers
        .restart(
            &id,
            t,
            q.get("signal")
                .map(String::as_str)
                .filter(|s| !s.is_empty()),
        )
        .await?;
    Ok(api::no_content())
}

pub async fn kill(State(d): State<Shared>, Path(id): Path<String>, q: Query) -> ApiResult {
    d.containers
        .kill(&id, q.get("signal").map(String::as_str))?;
    Ok(api::no_content())
}

pub async fn wait(State(d): State<Shared>, Path(id): Path<String>, q: Query) -> ApiResult {
    let cond = match q.get("condition").map(String::as_str).unwrap_or("") {
        "" | "not-running" => WaitCondition::NotRunning,
        "next-exit" => WaitCondition::NextExit,
        "removed" => WaitCondition::Removed,
        other => return Err(ApiError::bad(format!("invalid condition: \"{other}\""))),
    };
    // Unknown container: an error now, not in the stream.
    d.containers.get(&id)?;
    // Headers go out at once (docker's client waits for them before it
    // starts the container); the status follows when the condition is met.
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let c = d.containers.clone();
    tokio::spawn(async move {
        let body = match c.wait(&id, cond).await {
            Ok((code, err)) => WaitResponse {
                status_code: code.into(),
                error: err.map(|message| WaitError { message }),
            },
            Err(e) => WaitResponse {
                status_code: -1,
                error: Some(WaitError {
                    message: e.to_string(),
                }),
            },
        };
        let mut b = serde_json::to_vec(&body).unwrap_or_default();
        b.push(b'\n');
        let _ = tx.send(Bytes::from(b)).await;
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        api::stream_body(rx),
    )
        .into_response())
}

pub async fn attach(
    State(d): State<Shared>,
    Path(id): Path<String>,
    q: Query,
    mut req: Request,
) -> ApiResult {
    let opts = AttachOptions {
        stdin: flag(&q, "stdin"),
        stdout: flag(&q, "stdout"),
        stderr: flag(&q, "stderr"),
        detach_keys: q.get("detachKeys").cloned().unwrap_or_default(),
    };
    if !flag(&q, "stream") && !flag(&q, "logs") {
        return Err(ApiError::bad("at least one of stream or logs must be true"));
    }
    let attached = d.containers.attach(&id, opts).await?;
    let ct = if attached.tty() {
        api::RAW_STREAM
    } else {
        api::MUX_STREAM
    };
    Ok(api::hijack(&mut req, ct, move |io| async move {
        if let Err(e) = attached.run(io).await {
            tracing::debug!("attach to {id}: {e}");
        }
    }))
}

/// One log entry as the client reads it.
fn log_chunk(e: &logs::Entry, tty: bool, timestamps: bool) -> Bytes {
    let mut payload = Vec::new();
    if timestamps {
        payload.extend_from_slice(e.time.as_bytes());
        payload.push(b' ');
    }
    payload.extend_from_slice(e.log.as_bytes());
    if tty {
        return Bytes::from(payload);
    }
    let stream = if e.stream == "stderr" { 2u8 } else { 1 };
    let mut out = vec![stream, 0, 0, 0];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&payload);
    Bytes::from(out)
}

pub async fn logs(State(d): State<Shared>, Path(id): Path<String>, q: Query) -> ApiResult {
    let r = d.containers.get(&id)?;
    let (out, err) = (flag(&q, "stdout"), flag(&q, "stderr"));
    if !out && !err {
        return Err(ApiError::bad("You must choose at least one stream"));
    }
    let follow = flag(&q, "follow");
    let timestamps = flag(&q, "timestamps");
    let tail: Option<usize> = match q.get("tail").map(String::as_str) {
        None | Some("") | Some("all") => None,
        Some(n) => Some(
            n.parse()
                .map_err(|_| ApiError::bad(format!("invalid value for tail: {n:?}")))?,
        ),
    };
    let since = q
        .get("since")
        .and_then(|s| s.split('.').next()?.parse::<i64>().ok())
        .filter(|s| *s > 0);
    let until = q
        .get("until")
        .and_then(|s| s.split('.').next()?.parse::<i64>().ok())
        .filter(|s| *s > 0);
    let tty = r.config.tty;
    let want = move |e: &logs::Entry| {
        (e.stream == "stdout" && out || e.stream == "stderr" && err)
            && since
                .is_none_or(|s| berth_engine::store::parse_time(&e.time).is_some_and(|t| t >= s))
            && until.is_none_or(|u| berth_engine::store::parse_time(&e.time).is_some_and(|t| t < u))
    };
    let path = d.containers.log_path(&r.id);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let c = d.containers.clone();
    let cid = r.id.clone();
    tokio::spawn(async move {
        let all: Vec<logs::Entry> = logs::read_all(&path)
            .into_iter()
            .filter(|e| want(e))
            .collect();
        let skip = tail.map_or(0, |n| all.len().saturating_sub(n));
        for e in &all[skip..] {
            if tx.send(log_chunk(e, tty, timestamps)).await.is_err() {
                return;
            }
        }
        if !follow {
            return;
        }
        // Follow the live file from its end while the container runs (or restarts).
        let mut offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        loop {
            let live = c
                .get(&cid)
                .map(|r| r.status.is_live() || r.status == Status::Restarting)
                .unwrap_or(false);
            let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if len < offset {
                offset = 0; // rotated
            }
            if len > offset {
                if let Ok(f) = std::fs::File::open(&path) {
                    use std::io::{Seek, SeekFrom};
                    let mut f = f;
                    if f.seek(SeekFrom::Start(offset)).is_ok() {
                        let (entries, used) = logs::parse(std::io::BufReader::new(f));
                        offset += used;
                        for e in entries.iter().filter(|e| want(e)) {
                            if tx.send(log_chunk(e, tty, timestamps)).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                continue;
            }
            if !live || tx.is_closed() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    });
    let ct = if tty {
        api::RAW_STREAM
    } else {
        api::MUX_STREAM
    };
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, ct)],
        api::stream_body(rx),
    )
        .into_response())
}

pub async fn top(State(d): State<Shared>, Path(id): Path<String>, q: Query) -> ApiResult {
    let (titles, rows) = d
        .containers
        .top(&id, q.get("ps_args").map(String::as_str).unwrap_or(""))
        .await?;
    Ok(api::json(
        StatusCode::OK,
        TopResponse {
            titles,
            processes: rows,
        },
    ))
}

pub async fn rename(State(d): State<Shared>, Path(id): Path<String>, q: Query) -> ApiResult {
    let name = q
        .get("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad("Neither old nor new names may be empty"))?;
    d.containers.rename(&id, name)?;
    Ok(api::no_content())
}

pub async fn pause(State(d): State<Shared>, Path(id): Path<String>) -> ApiResult {
    d.containers.pause(&id)?;
    Ok(api::no_content())
}

pub async fn unpause(State(d): State<Shared>, Path(id): Path<String>) -> ApiResult {
    d.containers.unpause(&id)?;
    Ok(api::no_content())
}

pub async fn resize(State(d): State<Shared>, Path(id): Path<String>, q: Query) -> ApiResult {
    let h: u16 = number(&q, "h")?.unwrap_or(0);
    let w: u16 = number(&q, "w")?.unwrap_or(0);
    d.containers.resize(&id, h, w).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn remove(State(d): State<Shared>, Path(id): Path<String>, q: Query) -> ApiResult {
    d.containers
        .remove(&id, flag(&q, "force"), flag(&q, "v"))
        .await?;
    Ok(api::no_content())
}

/// `GET /containers/{id}/changes`: docker's `diff`.
pub async fn changes(State(d): State<Shared>, Path(id): Path<String>) -> ApiResult {
    let rows: Vec<crate::api::containers::ChangeItem> = d
        .containers
        .changes(&id)
        .await?
        .into_iter()
        .map(|c| crate::api::containers::ChangeItem {
            path: c.path,
            kind: c.kind as u8,
        })
        .collect();
    Ok(api::json(StatusCode::OK, rows))
}

/// `POST /containers/prune`: every container that is not running.
pub async fn prune(State(d): State<Shared>, q: Query) -> ApiResult {
    if let Some(f) = q
        .get("filters")
        .filter(|f| !matches!(f.as_str(), "" | "{}"))
    {
        // Pruning more than was asked for is worse than refusing.
        return Err(ApiError::bad(format!(
            "invalid filters {f}: berth's container prune takes no filters (until, label) yet"
        )));
    }
    let (deleted, space) = d.containers.prune().await?;
    Ok(api::json(
        StatusCode::OK,
        crate::api::containers::ContainerPruneResponse {
            containers_deleted: deleted,
            space_reclaimed: space,
        },
    ))
}

/// `POST /containers/{id}/update`: new limits (and restart policy), kept
/// and applied at once while the container runs.
pub async fn update(State(d): State<Shared>, Path(id): Path<String>, body: Bytes) -> ApiResult {
    let u: berth_engine::containers::config::UpdateConfig = api::body(&body)?;
    let warnings = d.containers.update_container(&id, &u).await?;
    Ok(api::json(
        StatusCode::OK,
        crate::api::containers::UpdateResponse { warnings },
    ))
}
