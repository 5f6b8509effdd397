//! `/networks`: create, list, inspect, remove, connect, disconnect, prune —
//! docker's network objects over berth's network plugins.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use berth_engine::containers::config::EndpointSettings;
use berth_engine::networks::{CreateNetwork, EndpointConfig, NetworkRecord};
use serde_json::{json, Value};

use super::api::{self, ApiError, ApiResult, Query};
use super::Shared;

fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de> + Default,
{
    use serde::Deserialize as _;
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct IpamPool {
    subnet: String,
    #[serde(rename = "IPRange")]
    ip_range: String,
    gateway: String,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Ipam {
    driver: String,
    #[serde(deserialize_with = "nullable")]
    config: Vec<IpamPool>,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    name: String,
    driver: String,
    internal: bool,
    #[serde(rename = "EnableIPv6")]
    enable_ipv6: Option<bool>,
    #[serde(rename = "IPAM")]
    ipam: Option<Ipam>,
    #[serde(deserialize_with = "nullable")]
    options: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable")]
    labels: BTreeMap<String, String>,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct ConnectBody {
    container: String,
    endpoint_config: Option<EndpointSettings>,
    force: bool,
}

/// docker's network object.
fn render(d: &Shared, n: &NetworkRecord) -> Value {
    let containers: serde_json::Map<String, Value> = d
        .containers
        .network_users(&n.id)
        .into_iter()
        .map(|(id, name, e)| {
            (
                id,
                json!({"Name": name, "EndpointID": e.endpoint_id, "MacAddress": e.mac_address,
                       "IPv4Address": format!("{}/{}", e.ip_address, e.prefix_len), "IPv6Address": ""}),
            )
        })
        .collect();
    let mut pool = json!({"Subnet": n.subnet});
    if !n.gateway.is_empty() {
        pool["Gateway"] = json!(n.gateway);
    }
    if !n.ip_range.is_empty() {
        pool["IPRange"] = json!(n.ip_range);
    }
    let config = if n.subnet.is_empty() {
        json!([])
    } else {
        json!([pool])
    };
    json!({
        "Name": n.name, "Id": n.id, "Created": n.created, "Scope": "local", "Driver": n.driver,
        "EnableIPv6": false, "EnableIPv4": true,
        "IPAM": {"Driver": "default", "Options": null, "Config": config},
        "Internal": n.internal, "Attachable": false, "Ingress": false,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": false,
        "Containers": containers, "Options": n.options, "Labels": n.labels,
    })
}

/// Docker's `filters` query (`{"name":["x"],"driver":{"bridge":true}}`): the values per key.
fn filters(q: &Query) -> ApiResult<BTreeMap<String, Vec<String>>> {
    let Some(raw) = q.get("filters").filter(|f| !f.is_empty()) else {
        return Ok(BTreeMap::new());
    };
    let v: Value = serde_json::from_str(raw)
        .map_err(|e| ApiError::bad(format!("invalid filters {raw:?}: {e}")))?;
    let mut out = BTreeMap::new();
    if let Some(m) = v.as_object() {
        for (k, vals) in m {
            let list = match vals {
                Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect(),
                Value::Object(o) => o.keys().cloned().collect(),
                _ => Vec::new(),
            };
            out.insert(k.clone(), list);
        }
    }
    Ok(out)
}

fn matches(n: &NetworkRecord, f: &BTreeMap<String, Vec<String>>) -> bool {
    f.iter().all(|(k, vals)| {
        vals.is_empty()
            || vals.iter().any(|v| match k.as_str() {
                "name" => n.name.contains(v.as_str()),
                "id" => n.id.starts_with(v.as_str()),
                "driver" => &n.driver == v,
                "type" => match v.as_str() {
                    "builtin" => ["bridge", "host", "none"].contains(&n.name.as_str()),
                    "custom" => !["bridge", "host", "none"].contains(&n.name.as_str()),
                    _ => false,
                },
                "label" => match v.split_once('=') {
                    Some((lk, lv)) => n.labels.get(lk).is_some_and(|x| x == lv),
                    None => n.labels.contains_key(v.as_str()),
                },
                _ => true,
            })
    })
}

pub async fn list(State(d): State<Shared>, q: Query) -> ApiResult {
    let f = filters(&q)?;
    let out: Vec<Value> = d
        .containers
        .networks
        .list()
        .iter()
        .filter(|n| matches(n, &f))
        .map(|n| render(&d, n))
        .collect();
    Ok(api::json(StatusCode::OK, json!(out)))
}

pub async fn inspect(State(d): State<Shared>, Path(id): Path<String>) -> ApiResult {
    let n = d.containers.networks.get(&id)?;
    Ok(api::json(StatusCode::OK, render(&d, &n)))
}

pub async fn create(State(d): State<Shared>, body: bytes::Bytes) -> ApiResult {
    let b: CreateBody = api::body(&body)?;
    if b.name.is_empty() {
        return Err(ApiError::bad("network name is required"));
    }
    if b.enable_ipv6 == Some(true) {
        return Err(ApiError::bad(
            "IPv6 networks are not supported by berth yet",
        ));
    }
    let ipam = b.ipam.unwrap_or_default();
    if !(ipam.driver.is_empty() || ipam.driver == "default") {
        return Err(ApiError::bad(format!(
            "IPAM driver {:?} is not supported (berth's network plugins do their own address management)",
            ipam.driver
        )));
    }
    if ipam.config.len() > 1 {
        return Err(ApiError::bad("berth networks have one IPv4 subnet"));
    }
    let pool = ipam.config.into_iter().next().unwrap_or_default();
    let n = d
        .containers
        .networks
        .create(CreateNetwork {
            name: b.name,
            driver: Some(b.driver).filter(|x| !x.is_empty()),
            subnet: pool.subnet,
            gateway: pool.gateway,
            ip_range: pool.ip_range,
            internal: b.internal,
            options: b.options,
            labels: b.labels,
        })
        .await?;
    d.containers.emit_other("network", "create", &n.id);
    Ok(api::json(
        StatusCode::CREATED,
        json!({"Id": n.id, "Warning": ""}),
    ))
}

pub async fn remove(State(d): State<Shared>, Path(id): Path<String>) -> ApiResult {
    let n = d.containers.networks.get(&id)?;
    let users: Vec<String> = d
        .containers
        .network_users(&n.id)
        .into_iter()
        .map(|(_, name, _)| name)
        .collect();
    d.containers.networks.remove(&n.id, &users).await?;
    d.containers.emit_other("network", "destroy", &n.id);
    Ok(api::no_content())
}

pub async fn connect(
    State(d): State<Shared>,
    Path(id): Path<String>,
    body: bytes::Bytes,
) -> ApiResult {
    let b: ConnectBody = api::body(&body)?;
    let n = d.containers.networks.get(&id)?;
    let ep = b.endpoint_config.unwrap_or_default();
    let cfg = EndpointConfig {
        aliases: ep.aliases,
        ipv4_address: ep.ipam_config.map(|i| i.ipv4_address).unwrap_or_default(),
    };
    d.containers.connect(&b.container, &n, cfg).await?;
    d.containers.emit_other("network", "connect", &n.id);
    Ok(api::json(StatusCode::OK, json!(null)))
}

pub async fn disconnect(
    State(d): State<Shared>,
    Path(id): Path<String>,
    body: bytes::Bytes,
) -> ApiResult {
    let b: ConnectBody = api::body(&body)?;
    let n = d.containers.networks.get(&id)?;
    d.containers.disconnect(&b.container, &n, b.force).await?;
    d.containers.emit_other("network", "disconnect", &n.id);
    Ok(api::json(StatusCode::OK, json!(null)))
}

pub async fn prune(State(d): State<Shared>) -> ApiResult {
    let mut deleted = Vec::new();
    for n in d.containers.networks.list() {
        if berth_engine::networks::PREDEFINED.contains(&n.name.as_str())
            || !d.containers.network_users(&n.id).is_empty()
            || !d.containers.network_configured(&n.name).is_empty()
        {
            continue;
        }
        if d.containers.networks.remove(&n.id, &[]).await.is_ok() {
            d.containers.emit_other("network", "destroy", &n.id);
            deleted.push(n.name);
        }
    }
    Ok(api::json(
        StatusCode::OK,
        json!({"NetworksDeleted": deleted}),
    ))
}
