//! `/networks`: create, list, inspect, remove, connect, disconnect, prune —
//! docker's network objects over berth's network plugins.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use berth_engine::networks::{CreateNetwork, EndpointConfig, NetworkRecord};

use crate::api::networks::{
    ConfigReference, Ipam, IpamPool, NetworkConnectRequest, NetworkContainer, NetworkCreateRequest,
    NetworkCreateResponse, NetworkPruneResponse, NetworkResource,
};
use crate::api::Filters;

use super::api::{self, ApiError, ApiResult, Query};
use super::Shared;

/// docker's network object.
fn render(d: &Shared, n: &NetworkRecord) -> NetworkResource {
    let containers = d
        .containers
        .network_users(&n.id)
        .into_iter()
        .map(|(id, name, e)| {
            (
                id,
                NetworkContainer {
                    name,
                    endpoint_id: e.endpoint_id,
                    mac_address: e.mac_address,
                    ipv4_address: format!("{}/{}", e.ip_address, e.prefix_len),
                    ipv6_address: String::new(),
                },
            )
        })
        .collect();
    let config = if n.subnet.is_empty() {
        Vec::new()
    } else {
        vec![IpamPool {
            subnet: n.subnet.clone(),
            ip_range: n.ip_range.clone(),
            gateway: n.gateway.clone(),
        }]
    };
    NetworkResource {
        name: n.name.clone(),
        id: n.id.clone(),
        created: n.created.clone(),
        scope: "local".into(),
        driver: n.driver.clone(),
        enable_ipv6: false,
        enable_ipv4: true,
        ipam: Ipam {
            driver: "default".into(),
            options: None,
            config,
        },
        internal: n.internal,
        attachable: false,
        ingress: false,
        config_from: ConfigReference::default(),
        config_only: false,
        containers,
        options: n.options.clone(),
        labels: n.labels.clone(),
    }
}

/// Docker's `filters` query (`{"name":["x"],"driver":{"bridge":true}}`): the values per key.
fn filters(q: &Query) -> ApiResult<BTreeMap<String, Vec<String>>> {
    let Some(raw) = q.get("filters").filter(|f| !f.is_empty()) else {
        return Ok(BTreeMap::new());
    };
    let v: Filters = serde_json::from_str(raw)
        .map_err(|e| ApiError::bad(format!("invalid filters {raw:?}: {e}")))?;
    Ok(v.0.into_iter().map(|(k, v)| (k, v.values())).collect())
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
    let out: Vec<NetworkResource> = d
        .containers
        .networks
        .list()
        .iter()
        .filter(|n| matches(n, &f))
        .map(|n| render(&d, n))
        .collect();
    Ok(api::json(StatusCode::OK, out))
}

pub async fn inspect(State(d): State<Shared>, Path(id): Path<String>) -> ApiResult {
    let n = d.containers.networks.get(&id)?;
    Ok(api::json(StatusCode::OK, render(&d, &n)))
}

pub async fn create(State(d): State<Shared>, body: bytes::Bytes) -> ApiResult {
    let b: NetworkCreateRequest = api::body(&body)?;
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
        NetworkCreateResponse {
            id: n.id,
            warning: String::new(),
        },
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
    let b: NetworkConnectRequest = api::body(&body)?;
    let n = d.containers.networks.get(&id)?;
    let ep = b.endpoint_config.unwrap_or_default();
    let cfg = EndpointConfig {
        aliases: ep.aliases,
        ipv4_address: ep.ipam_config.map(|i| i.ipv4_address).unwrap_or_default(),
    };
    d.containers.connect(&b.container, &n, cfg).await?;
    d.containers.emit_other("network", "connect", &n.id);
    Ok(api::json(StatusCode::OK, ()))
}

pub async fn disconnect(
    State(d): State<Shared>,
    Path(id): Path<String>,
    body: bytes::Bytes,
) -> ApiResult {
    let b: NetworkConnectRequest = api::body(&body)?;
    let n = d.containers.networks.get(&id)?;
    d.containers.disconnect(&b.container, &n, b.force).await?;
    d.containers.emit_other("network", "disconnect", &n.id);
    Ok(api::json(StatusCode::OK, ()))
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
        NetworkPruneResponse {
            networks_deleted: deleted,
        },
    ))
}
