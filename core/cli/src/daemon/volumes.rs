//! `/volumes`: create, list, inspect, remove, prune (docker's `local` driver).

use axum::extract::{Path, State};
use axum::http::StatusCode;

use crate::api::volumes::{VolumeCreateRequest, VolumeListResponse, VolumePruneResponse};

use super::api::{self, flag, ApiError, ApiResult, Query};
use super::Shared;

pub async fn create(State(d): State<Shared>, body: bytes::Bytes) -> ApiResult {
    let b: VolumeCreateRequest = api::body(&body)?;
    if !(b.driver.is_empty() || b.driver == "local") {
        return Err(ApiError::bad(format!(
            "volume driver {:?} is not supported (berth has local)",
            b.driver
        )));
    }
    if !b.driver_opts.is_empty() {
        return Err(ApiError::bad(
            "driver options are not supported by berth's local volumes",
        ));
    }
    let name = if b.name.is_empty() {
        berth_engine::store::new_id()?
    } else {
        b.name
    };
    let v = d.containers.volumes.create(&name, b.labels)?;
    d.containers.emit_other("volume", "create", &name);
    Ok(api::json(StatusCode::CREATED, v))
}

pub async fn list(State(d): State<Shared>) -> ApiResult {
    Ok(api::json(
        StatusCode::OK,
        VolumeListResponse {
            volumes: d.containers.volumes.list(),
            warnings: Vec::new(),
        },
    ))
}

pub async fn inspect(State(d): State<Shared>, Path(name): Path<String>) -> ApiResult {
    Ok(api::json(
        StatusCode::OK,
        d.containers.volumes.inspect(&name)?,
    ))
}

pub async fn remove(State(d): State<Shared>, Path(name): Path<String>, q: Query) -> ApiResult {
    let users = d.containers.volume_users(&name);
    let _ = flag(&q, "force");
    d.containers
        .volumes
        .remove(&name, users.first().map(String::as_str))?;
    d.containers.emit_other("volume", "destroy", &name);
    Ok(api::no_content())
}

pub async fn prune(State(d): State<Shared>) -> ApiResult {
    let mut deleted = Vec::new();
    for v in d.containers.volumes.list() {
        if d.containers.volume_users(&v.name).is_empty()
            && d.containers.volumes.remove(&v.name, None).is_ok()
        {
            d.containers.emit_other("volume", "destroy", &v.name);
            deleted.push(v.name);
        }
    }
    Ok(api::json(
        StatusCode::OK,
        VolumePruneResponse {
            volumes_deleted: deleted,
            space_reclaimed: 0,
        },
    ))
}
