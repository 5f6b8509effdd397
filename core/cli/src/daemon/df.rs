//! `GET /system/df` (docker's `system df`): images with their sizes and
//! the part other images share, containers with their writable layers'
//! sizes, volumes with their sizes and how many containers use them. berth
//! has no build cache yet: `BuildCache` is empty.

use std::path::Path;

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{json, Value};

use super::api::{self, ApiResult, Query};
use super::{render, Shared};

/// The bytes of the files under `dir` (as `du --apparent-size` counts them).
fn tree_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total += m.len();
            }
        }
    }
    total
}

/// Which kinds to answer (`type=` repeated, API 1.42); all when none is named.
fn wanted(q: &Query, kind: &str) -> bool {
    match q.get("type").filter(|t| !t.is_empty()) {
        None => true,
        Some(t) => t.split(',').any(|k| k == kind),
    }
}

pub async fn df(State(d): State<Shared>, q: Query) -> ApiResult {
    let records = d.containers.list();
    let mut out = serde_json::Map::new();
    if wanted(&q, "image") {
        let (layers, images) = d.engine.images_usage()?;
        let rows: Vec<Value> = images
            .into_iter()
            .map(|u| {
                let used = records.iter().filter(|r| r.image_id == u.id).count();
                json!({
                    "Id": u.id,
                    "ParentId": "",
                    "RepoTags": u.names,
                    "RepoDigests": [],
                    "Created": berth_engine::store::parse_time(&u.created).unwrap_or(0),
                    "Size": u.size,
                    "SharedSize": u.shared_size,
                    "VirtualSize": u.size,
                    "Labels": {},
                    "Containers": used,
                })
            })
            .collect();
        out.insert("LayersSize".into(), json!(layers));
        out.insert("Images".into(), json!(rows));
    }
    if wanted(&q, "container") {
        let mut rows = Vec::new();
        for r in &records {
            let mut v = serde_json::to_value(render::summary(&d.containers, r))
                .unwrap_or_else(|_| json!({}));
            let size = d.containers.size_rw(&r.id).await;
            v["SizeRw"] = json!(size);
            v["SizeRootFs"] = json!(size);
            rows.push(v);
        }
        out.insert("Containers".into(), json!(rows));
    }
    if wanted(&q, "volume") {
        let mut rows = Vec::new();
        for v in d.containers.volumes.list() {
            let users = d.containers.volume_users(&v.name).len();
            let dir = v.mountpoint.clone();
            let size = tokio::task::spawn_blocking(move || tree_size(&dir))
                .await
                .unwrap_or(0);
            let mut row = serde_json::to_value(&v).unwrap_or_else(|_| json!({}));
            row["UsageData"] = json!({"Size": size, "RefCount": users});
            rows.push(row);
        }
        out.insert("Volumes".into(), json!(rows));
    }
    if wanted(&q, "build-cache") {
        out.insert("BuildCache".into(), json!([]));
    }
    Ok(api::json(StatusCode::OK, Value::Object(out)))
}
