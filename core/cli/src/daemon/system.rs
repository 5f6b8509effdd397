//! `_ping`, `version`, `info`, `events`, and berth's own `/berth/plugins`.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_engine::containers::Status;
use bytes::Bytes;

use crate::api::system::{
    Actor, Component, EventMessage, Info, Platform, PluginsInfo, RegistryConfig, Runtime,
    SwarmInfo, Version,
};
use crate::api::{API_VERSION, MIN_API};

use super::api::{self, ApiResult, Query};
use super::Shared;

fn kernel() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub async fn ping() -> Response {
    let mut r = (StatusCode::OK, "OK").into_response();
    let h = r.headers_mut();
    h.insert("API-Version", HeaderValue::from_static(API_VERSION));
    h.insert("OSType", HeaderValue::from_static("linux"));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Builder-Version", HeaderValue::from_static("1"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    r
}

fn min_api() -> String {
    format!("{}.{}", MIN_API.0, MIN_API.1)
}

pub async fn version() -> Response {
    let v = env!("CARGO_PKG_VERSION");
    let details = [
        ("ApiVersion", API_VERSION.to_string()),
        ("MinAPIVersion", min_api()),
        ("Os", "linux".into()),
        ("Arch", std::env::consts::ARCH.into()),
        ("KernelVersion", kernel()),
    ];
    api::json(
        StatusCode::OK,
        Version {
            platform: Platform {
                name: "berth".into(),
            },
            components: vec![Component {
                name: "Engine".into(),
                version: v.into(),
                details: details
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            }],
            version: v.into(),
            api_version: API_VERSION.into(),
            min_api_version: min_api(),
            git_commit: String::new(),
            go_version: String::new(),
            os: "linux".into(),
            arch: if std::env::consts::ARCH == "x86_64" {
                "amd64"
            } else {
                std::env::consts::ARCH
            }
            .into(),
            kernel_version: kernel(),
            build_time: String::new(),
        },
    )
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

pub async fn info(State(d): State<Shared>) -> ApiResult {
    let list = d.containers.list();
    let count = |s: Status| list.iter().filter(|r| r.status == s).count();
    // Images, not names: docker counts an image tagged twice once.
    let images = d
        .engine
        .list_images(true)?
        .into_iter()
        .map(|i| i.id)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024;
    let cgv2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let hostname = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(api::json(
        StatusCode::OK,
        Info {
            id: "berth".into(),
            containers: list.len(),
            containers_running: count(Status::Running),
            containers_paused: count(Status::Paused),
            containers_stopped: list.len() - count(Status::Running) - count(Status::Paused),
            images,
            driver: d.engine.storage_driver().to_string(),
            driver_status: Vec::new(),
            plugins: PluginsInfo {
                volume: strings(&["local"]),
                network: strings(&["bridge", "host", "null"]),
                authorization: None,
                log: strings(&["json-file"]),
            },
            memory_limit: true,
            swap_limit: true,
            cpu_cfs_period: true,
            cpu_cfs_quota: true,
            cpu_shares: true,
            cpu_set: true,
            pids_limit: true,
            system_time: berth_engine::store::now(),
            logging_driver: "json-file".into(),
            cgroup_driver: "cgroupfs".into(),
            cgroup_version: if cgv2 { "2" } else { "1" }.into(),
            kernel_version: kernel(),
            operating_system: "berth".into(),
            os_type: "linux".into(),
            architecture: std::env::consts::ARCH.into(),
            index_server_address: "https://index.docker.io/v1/".into(),
            registry_config: RegistryConfig::default(),
            ncpu: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            mem_total: mem,
            docker_root_dir: d.root.to_string_lossy().into_owned(),
            name: hostname,
            server_version: env!("CARGO_PKG_VERSION").into(),
            runtimes: [(
                "berth".to_string(),
                Runtime {
                    path: "berth-runtime".into(),
                },
            )]
            .into(),
            default_runtime: "berth".into(),
            swarm: SwarmInfo {
                local_node_state: "inactive".into(),
                ..Default::default()
            },
            live_restore_enabled: true,
            security_options: {
                let mut o = strings(&["name=seccomp,profile=default", "name=cgroupns"]);
                if d.engine.remap().is_some() {
                    o.push("name=userns".into());
                }
                o
            },
            ..Default::default()
        },
    ))
}

pub async fn events(State(d): State<Shared>, q: Query) -> ApiResult {
    let until = q
        .get("until")
        .and_then(|u| u.split('.').next()?.parse::<i64>().ok());
    let mut rx = d.containers.subscribe();
    let (tx, out) = tokio::sync::mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let deadline = until.map(|u| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            tokio::time::Instant::now() + std::time::Duration::from_secs((u - now).max(0) as u64)
        });
        loop {
            let ev = match deadline {
                Some(dl) => match tokio::time::timeout_at(dl, rx.recv()).await {
                    Ok(e) => e,
                    Err(_) => return,
                },
                None => rx.recv().await,
            };
            let ev = match ev {
                Ok(e) => e,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            };
            let v = EventMessage {
                status: ev.action.clone(),
                id: ev.id.clone(),
                from: ev.attributes.get("image").cloned(),
                kind: ev.kind.into(),
                action: ev.action,
                actor: Actor {
                    id: ev.id,
                    attributes: ev.attributes,
                },
                scope: "local".into(),
                time: ev.time_nano / 1_000_000_000,
                time_nano: ev.time_nano,
            };
            let mut b = serde_json::to_vec(&v).unwrap_or_default();
            b.push(b'\n');
            if tx.send(Bytes::from(b)).await.is_err() {
                return;
            }
        }
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        api::stream_body(out),
    )
        .into_response())
}
