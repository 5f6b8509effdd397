//! `/volumes`: create, list, inspect, remove, prune (docker's `local` driver).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::json;

use super::api::{self, flag, ApiError, ApiResult, Query};
use super::Shared;

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    name: String,
    driver: String,
    #[serde(deserialize_with = "nullable")]
    labels: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable")]
    driver_opts: BTreeMap<String, String>,
}

fn nullable<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    use serde::Deserialize as _;
    Ok(Option::<BTreeMap<String, String>>::deserialize(d)?.unwrap_or_default())
}

pub async fn create(State(d): State<Shared>, body: bytes::Bytes) -> ApiResult {
    let b: CreateBody = api::body(&body)?;
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
    Ok(api::json(
        StatusCode::CREATED,
        serde_json::to_value(v).unwrap_or_default(),
    ))
}

pub async fn list(State(d): State<Shared>) -> ApiResult {
    Ok(api::json(
        StatusCode::OK,
        json!({"Volumes": d.containers.volumes.list(), "Warnings": []}),
    ))
}

pub async fn inspect(State(d): State<Shared>, Path(name): Path<String>) -> ApiResult {
    Ok(api::json(
        StatusCode::OK,
        serde_json::to_value(d.containers.volumes.inspect(&name)?).unwrap_or_default(),
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
        json!({"VolumesDeleted": deleted, "SpaceReclaimed": 0}),
    ))
}
