//! The engine's container records as the API's types: `GET
//! /containers/{id}/json` and the rows of `GET /containers/json`.

use std::collections::BTreeMap;

use berth_engine::containers::{Containers, Record, Status};
use berth_engine::store::parse_time;

use crate::api::containers::{
    ContainerConfig, ContainerInspect, ContainerState, ContainerSummary, EndpointInspect,
    GraphDriver, Health, HealthProbe, HostConfig, IpamConfig, MountPoint, NetworkSettings, Port,
    PortBinding, SummaryEndpoint, SummaryHostConfig, SummaryNetworkSettings,
};
use crate::api::units::human;

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn or_zero(s: &str) -> &str {
    if s.is_empty() {
        ZERO_TIME
    } else {
        s
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn since(t: &str) -> String {
    human(now_secs() - parse_time(t).unwrap_or(now_secs()))
}

/// The STATUS column of `ps`.
pub fn status_text(r: &Record, health: Option<&str>) -> String {
    let suffix = match health {
        Some("starting") => " (health: starting)".to_string(),
        Some(h) => format!(" ({h})"),
        None => String::new(),
    };
    match r.status {
        Status::Running => format!("Up {}{suffix}", since(&r.started_at)),
        Status::Created => "Created".into(),
        Status::Paused => format!("Up {} (Paused)", since(&r.started_at)),
        Status::Restarting => format!("Restarting ({}) {} ago", r.exit_code, since(&r.finished_at)),
        Status::Removing => "Removal In Progress".into(),
        Status::Exited => format!("Exited ({}) {} ago", r.exit_code, since(&r.finished_at)),
        Status::Dead => "Dead".into(),
    }
}

/// The container's Config as docker shows it: the image's values filled in.
fn config(c: &Containers, r: &Record) -> ContainerConfig {
    let img = c.image_config(&r.id);
    let icfg = img
        .as_ref()
        .and_then(|i| i.config().clone())
        .unwrap_or_default();
    let mut v = r.config.clone();
    if r.config.hostname.is_empty() {
        v.hostname = r.id[..12].to_string();
    }
    let mut env: Vec<String> = icfg.env().clone().unwrap_or_default();
    for e in &r.config.env {
        let k = e.split('=').next().unwrap_or("");
        env.retain(|x| x.split('=').next() != Some(k));
        env.push(e.clone());
    }
    v.env = env;
    if r.config.cmd.is_none() && r.config.entrypoint.is_none() {
        v.cmd = icfg.cmd().clone();
    }
    if r.config.entrypoint.is_none() {
        v.entrypoint = icfg.entrypoint().clone();
    }
    if r.config.working_dir.is_empty() {
        v.working_dir = icfg.working_dir().clone().unwrap_or_default();
    }
    let mut labels: BTreeMap<String, String> = icfg
        .labels()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    labels.extend(r.config.labels.clone());
    v.labels = labels;
    v
}

fn host_config(r: &Record) -> HostConfig {
    let mut h = r.host_config.clone();
    if h.network_mode.is_empty() {
        h.network_mode = "bridge".into();
    }
    if h.log_config.kind.is_empty() {
        h.log_config.kind = "json-file".into();
    }
    if h.restart_policy.name.is_empty() {
        h.restart_policy.name = "no".into();
    }
    h
}

fn mounts(r: &Record) -> Vec<MountPoint> {
    let mut out = Vec::new();
    for b in &r.host_config.binds {
        let p: Vec<&str> = b.split(':').collect();
        if p.len() < 2 {
            continue;
        }
        let rw = !p.get(2).is_some_and(|o| o.split(',').any(|x| x == "ro"));
        if p[0].starts_with('/') {
            out.push(MountPoint {
                kind: "bind".into(),
                source: Some(p[0].into()),
                destination: p[1].into(),
                mode: Some(p.get(2).copied().unwrap_or("").into()),
                rw,
                propagation: Some("rprivate".into()),
                ..Default::default()
            });
        } else {
            out.push(MountPoint {
                kind: "volume".into(),
                name: Some(p[0].into()),
                driver: Some("local".into()),
                destination: p[1].into(),
                mode: Some(p.get(2).copied().unwrap_or("z").into()),
                rw,
                propagation: Some(String::new()),
                ..Default::default()
            });
        }
    }
    for m in &r.host_config.mounts {
        out.push(MountPoint {
            kind: m.kind.clone(),
            source: Some(m.source.clone()),
            destination: m.target.clone(),
            rw: !m.read_only,
            ..Default::default()
        });
    }
    out
}

/// docker's `NetworkSettings.Ports`: every exposed port, with its host
/// bindings while the container runs (`null` when not published).
fn ports(c: &Containers, r: &Record) -> BTreeMap<String, Option<Vec<PortBinding>>> {
    let mut m = BTreeMap::new();
    let image_exposed = c
        .image_config(&r.id)
        .and_then(|i| i.config().clone())
        .and_then(|c| c.exposed_ports().clone())
        .unwrap_or_default();
    for k in r.config.exposed_ports.keys().cloned().chain(image_exposed) {
        m.insert(k, None);
    }
    for ep in r.endpoints.values() {
        for p in &ep.ports {
            let key = format!("{}/{}", p.container_port, p.proto);
            m.entry(key)
                .or_insert(None)
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: p.host_ip.clone(),
                    host_port: p.host_port.to_string(),
                });
        }
    }
    m
}

fn network_mode(r: &Record) -> &str {
    if r.host_config.network_mode.is_empty() {
        "bridge"
    } else {
        r.host_config.network_mode.as_str()
    }
}

fn network_settings(c: &Containers, r: &Record) -> NetworkSettings {
    let mode = network_mode(r);
    let mut networks = BTreeMap::new();
    let endpoint = |name: &str| {
        let cfg = r.networks.get(name).cloned().unwrap_or_default();
        let ep = r.endpoints.get(name).cloned().unwrap_or_default();
        let id = c.networks.get(name).map(|n| n.id).unwrap_or_default();
        EndpointInspect {
            ipam_config: (!cfg.ipv4_address.is_empty()).then(|| IpamConfig {
                ipv4_address: cfg.ipv4_address.clone(),
            }),
            links: None,
            aliases: (!cfg.aliases.is_empty()).then(|| cfg.aliases.clone()),
            network_id: id,
            endpoint_id: ep.endpoint_id,
            gateway: ep.gateway,
            ip_address: ep.ip_address,
            ip_prefix_len: ep.prefix_len,
            mac_address: ep.mac_address,
            ..Default::default()
        }
    };
    if r.networks.is_empty() {
        networks.insert(mode.to_string(), endpoint(mode));
    }
    for name in r.networks.keys() {
        networks.insert(name.clone(), endpoint(name));
    }
    // The top-level fields describe the default bridge network, as docker's.
    let primary = r.endpoints.get("bridge").cloned().unwrap_or_default();
    NetworkSettings {
        sandbox_key: if r.pid > 0 && r.status.is_live() {
            format!("/proc/{}/ns/net", r.pid)
        } else {
            String::new()
        },
        ports: ports(c, r),
        endpoint_id: primary.endpoint_id,
        gateway: primary.gateway,
        ip_address: primary.ip_address,
        ip_prefix_len: primary.prefix_len,
        mac_address: primary.mac_address,
        bandwidth: r.host_config.network_bandwidth,
        networks,
        ..Default::default()
    }
}

/// `State.Health` while the container runs.
fn health(c: &Containers, r: &Record) -> Option<Health> {
    let h = c.health(&r.id).filter(|_| r.status.is_live())?;
    Some(Health {
        status: h.status,
        failing_streak: h.failing_streak,
        log: h
            .log
            .into_iter()
            .map(|p| HealthProbe {
                start: p.start,
                end: p.end,
                exit_code: p.exit_code,
                output: p.output,
            })
            .collect(),
    })
}

/// `GET /containers/{id}/json`.
pub fn inspect(c: &Containers, r: &Record, execs: Vec<String>) -> ContainerInspect {
    let img = c.image_config(&r.id);
    let (path, args) = r.path_args(img.as_ref());
    ContainerInspect {
        id: r.id.clone(),
        created: r.created.clone(),
        path,
        args,
        state: ContainerState {
            status: r.status.as_str().into(),
            running: r.status.is_live(),
            paused: r.status == Status::Paused,
            restarting: r.status == Status::Restarting,
            oom_killed: r.oom_killed,
            dead: r.status == Status::Dead,
            pid: if r.status.is_live() { r.pid } else { 0 },
            exit_code: r.exit_code,
            error: r.error.clone(),
            started_at: or_zero(&r.started_at).into(),
            finished_at: or_zero(&r.finished_at).into(),
            health: health(c, r),
        },
        image: r.image_id.clone(),
        log_path: c.log_path(&r.id).to_string_lossy().into_owned(),
        name: format!("/{}", r.name),
        restart_count: r.restart_count,
        driver: r.driver.clone(),
        platform: "linux".into(),
        exec_ids: (!execs.is_empty()).then_some(execs),
        host_config: {
            let mut h = host_config(r);
            h.id_mappings =
                c.remap_of(&r.host_config)
                    .map(|m| berth_engine::containers::config::IdMappings {
                        uid_map: vec![format!("0:{}:{}", m.uid.start, m.uid.size)],
                        gid_map: vec![format!("0:{}:{}", m.gid.start, m.gid.size)],
                    });
            h
        },
        graph_driver: GraphDriver {
            name: r.driver.clone(),
            data: BTreeMap::new(),
        },
        mounts: mounts(r),
        config: config(c, r),
        network_settings: network_settings(c, r),
        ..Default::default()
    }
}

/// A row of `GET /containers/json`.
pub fn summary(c: &Containers, r: &Record) -> ContainerSummary {
    let img = c.image_config(&r.id);
    let (path, args) = r.path_args(img.as_ref());
    let command = std::iter::once(path)
        .chain(args)
        .collect::<Vec<_>>()
        .join(" ");
    let mut labels: BTreeMap<String, String> = img
        .as_ref()
        .and_then(|i| i.config().clone())
        .and_then(|c| c.labels().clone())
        .unwrap_or_default()
        .into_iter()
        .collect();
    labels.extend(r.config.labels.clone());
    let health = c
        .health(&r.id)
        .filter(|_| r.status.is_live())
        .map(|h| h.status);
    ContainerSummary {
        id: r.id.clone(),
        names: vec![format!("/{}", r.name)],
        image: r.image.clone(),
        image_id: r.image_id.clone(),
        command,
        created: parse_time(&r.created).unwrap_or(0),
        ports: r
            .endpoints
            .values()
            .flat_map(|e| e.ports.iter())
            .map(|p| Port {
                ip: p.host_ip.clone(),
                private_port: p.container_port,
                public_port: p.host_port,
                kind: p.proto.clone(),
            })
            .collect(),
        labels,
        state: r.status.as_str().into(),
        status: status_text(r, health.as_deref()),
        host_config: SummaryHostConfig {
            network_mode: network_mode(r).into(),
        },
        network_settings: SummaryNetworkSettings {
            networks: r
                .endpoints
                .iter()
                .map(|(n, e)| {
                    (
                        n.clone(),
                        SummaryEndpoint {
                            network_id: e.network_id.clone(),
                            endpoint_id: e.endpoint_id.clone(),
                            gateway: e.gateway.clone(),
                            ip_address: e.ip_address.clone(),
                            ip_prefix_len: e.prefix_len,
                            mac_address: e.mac_address.clone(),
                        },
                    )
                })
                .collect(),
        },
        mounts: mounts(r),
    }
}
