//! `/containers/{id}/archive` (`cp`): HEAD and GET a path's stat and
//! contents, PUT a tar into the container, through the chrooted
//! `berth archive` helper.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use bytes::Bytes;

use crate::api::containers::PathStat;

use super::api::{ApiError, ApiResult, Query};
use super::Shared;

fn path_param(q: &std::collections::HashMap<String, String>) -> ApiResult<String> {
    q.get("path")
        .filter(|p| !p.is_empty())
        .cloned()
        .ok_or_else(|| ApiError::bad("path is required"))
}

async fn stat_of(d: &Shared, id: &str, path: &str) -> ApiResult<(String, PathStat)> {
    let (cid, rootfs, ours) = d.containers.rootfs(id).await?;
    let out = d
        .containers
        .archive_cmd(&rootfs)
        .arg("--stat")
        .arg(path)
        .output()
        .await;
    if ours {
        d.containers.release_rootfs(&cid).await;
    }
    let out = out.map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    if !out.status.success() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("Could not find the file {path} in container {id}"),
        ));
    }
    let v: PathStat = serde_json::from_slice(&out.stdout).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading the stat of {path}: {e}"),
        )
    })?;
    Ok((cid, v))
}

fn stat_header(v: &PathStat) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(serde_json::to_string(v).unwrap_or_default())
}

pub async fn archive_head(State(d): State<Shared>, Path(id): Path<String>, q: Query) -> ApiResult {
    let path = path_param(&q)?;
    let (_, v) = stat_of(&d, &id, &path).await?;
    Ok((
        StatusCode::OK,
        [("X-Docker-Container-Path-Stat", stat_header(&v))],
    )
        .into_response())
}

pub async fn archive_get(State(d): State<Shared>, Path(id): Path<String>, q: Query) -> ApiResult {
    let path = path_param(&q)?;
    let (_, v) = stat_of(&d, &id, &path).await?;
    let (cid, rootfs, ours) = d.containers.rootfs(&id).await?;
    let out = d
        .containers
        .archive_cmd(&rootfs)
        .arg("--get")
        .arg(&path)
        .output()
        .await;
    if ours {
        d.containers.release_rootfs(&cid).await;
    }
    let out = out.map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    if !out.status.success() {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok((
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE.as_str(),
                "application/x-tar".to_string(),
            ),
            ("X-Docker-Container-Path-Stat", stat_header(&v)),
        ],
        out.stdout,
    )
        .into_response())
}

pub async fn archive_put(
    State(d): State<Shared>,
    Path(id): Path<String>,
    q: Query,
    body: Bytes,
) -> ApiResult {
    let path = path_param(&q)?;
    d.containers.put_archive(&id, &path, &body[..]).await?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /containers/{id}/export`: the container's whole filesystem as a
/// tar, streamed from the chrooted `berth archive` helper as it writes it.
pub async fn export(State(d): State<Shared>, Path(id): Path<String>) -> ApiResult {
    use tokio::io::AsyncReadExt as _;
    let internal =
        |e: std::io::Error| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    let (cid, rootfs, ours) = d.containers.rootfs(&id).await?;
    let spawned = d
        .containers
        .archive_cmd(&rootfs)
        .arg("--get")
        .arg("/")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            if ours {
                d.containers.release_rootfs(&cid).await;
            }
            return Err(internal(e));
        }
    };
    let mut stdout = child.stdout.take().expect("piped");
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let containers = d.containers.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 256 << 10];
        loop {
            match stdout.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                        // The client went away: stop the helper.
                        let _ = child.start_kill();
                        break;
                    }
                }
            }
        }
        match child.wait_with_output().await {
            Ok(out) if !out.status.success() => tracing::warn!(
                "export of {cid}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(e) => tracing::warn!("export of {cid}: {e}"),
            Ok(_) => {}
        }
        if ours {
            containers.release_rootfs(&cid).await;
        }
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-tar")],
        super::api::stream_body(rx),
    )
        .into_response())
}
