//! `_ping`, `version`, `info`, `events`, and berth's own `/berth/plugins`.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_engine::containers::Status;
use bytes::Bytes;
use serde_json::json;

use super::api::{self, ApiResult, Query};
use super::{Shared, API_VERSION, MIN_API};

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

pub async fn version() -> Response {
    let v = env!("CARGO_PKG_VERSION");
    api::json(
        StatusCode::OK,
        json!({
            "Platform": {"Name": "berth"},
            "Components": [{"Name": "Engine", "Version": v, "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": format!("{}.{}", MIN_API.0, MIN_API.1), "Os": "linux", "Arch": std::env::consts::ARCH, "KernelVersion": kernel()}}],
            "Version": v,
            "ApiVersion": API_VERSION,
            "MinAPIVersion": format!("{}.{}", MIN_API.0, MIN_API.1),
            "GitCommit": "",
            "GoVersion": "",
            "Os": "linux",
            "Arch": if std::env::consts::ARCH == "x86_64" { "amd64" } else { std::env::consts::ARCH },
            "KernelVersion": kernel(),
            "BuildTime": "",
        }),
    )
}

pub async fn info(State(d): State<Shared>) -> ApiResult {
    let list = d.containers.list();
    let count = |s: Status| list.iter().filter(|r| r.status == s).count();
    let images = d.engine.list_images()?.len();
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
        json!({
            "ID": "berth",
            "Containers": list.len(),
            "ContainersRunning": count(Status::Running),
            "ContainersPaused": count(Status::Paused),
            "ContainersStopped": list.len() - count(Status::Running) - count(Status::Paused),
            "Images": images,
            "Driver": d.engine.storage_driver(),
            "DriverStatus": [],
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"], "Authorization": null, "Log": ["json-file"]},
            "MemoryLimit": true, "SwapLimit": true, "CpuCfsPeriod": true, "CpuCfsQuota": true, "CPUShares": true, "CPUSet": true, "PidsLimit": true,
            "IPv4Forwarding": false, "Debug": false, "NFd": 0, "OomKillDisable": false, "NGoroutines": 0,
            "SystemTime": berth_engine::store::now(),
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": if cgv2 { "2" } else { "1" },
            "NEventsListener": 0,
            "KernelVersion": kernel(),
            "OperatingSystem": "berth",
            "OSVersion": "",
            "OSType": "linux",
            "Architecture": std::env::consts::ARCH,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {"IndexConfigs": {}, "InsecureRegistryCIDRs": [], "Mirrors": []},
            "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "MemTotal": mem,
            "DockerRootDir": d.root,
            "Name": hostname,
            "Labels": [],
            "ExperimentalBuild": false,
            "ServerVersion": env!("CARGO_PKG_VERSION"),
            "Runtimes": {"berth": {"path": "berth-runtime"}},
            "DefaultRuntime": "berth",
            "Swarm": {"LocalNodeState": "inactive", "NodeID": "", "NodeAddr": "", "ControlAvailable": false, "Error": "", "RemoteManagers": null},
            "LiveRestoreEnabled": true,
            "Isolation": "",
            "InitBinary": "",
            "SecurityOptions": ["name=seccomp,profile=default", "name=cgroupns"],
            "Warnings": [],
        }),
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
            let v = json!({
                "status": ev.action, "id": ev.id, "from": ev.attributes.get("image"),
                "Type": ev.kind, "Action": ev.action,
                "Actor": {"ID": ev.id, "Attributes": ev.attributes},
                "scope": "local", "time": ev.time_nano / 1_000_000_000, "timeNano": ev.time_nano,
            });
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
