//! docker's JSON for containers: `GET /containers/{id}/json` and the rows
//! of `GET /containers/json`, from the engine's records.

use berth_engine::containers::{Containers, Record, Status};
use berth_engine::store::parse_time;
use serde_json::{json, Value};

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn or_zero(s: &str) -> &str {
    if s.is_empty() {
        ZERO_TIME
    } else {
        s
    }
}

/// docker's "Up 3 seconds", "About a minute", … (units.HumanDuration).
pub fn human(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".into(),
        _ if s < 3600 => format!("{} minutes", s / 60),
        _ if s < 7200 => "About an hour".into(),
        _ if s < 48 * 3600 => format!("{} hours", s / 3600),
        _ if s < 14 * 86400 => format!("{} days", s / 86400),
        _ if s < 60 * 86400 => format!("{} weeks", s / (7 * 86400)),
        _ if s < 365 * 86400 => format!("{} months", s / (30 * 86400)),
        _ => format!("{} years", s / (365 * 86400)),
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
fn config(c: &Containers, r: &Record) -> Value {
    let img = c.image_config(&r.id);
    let icfg = img
        .as_ref()
        .and_then(|i| i.config().clone())
        .unwrap_or_default();
    let mut v = serde_json::to_value(&r.config).unwrap_or_default();
    if r.config.hostname.is_empty() {
        v["Hostname"] = json!(r.id[..12]);
    }
    let mut env: Vec<String> = icfg.env().clone().unwrap_or_default();
    for e in &r.config.env {
        let k = e.split('=').next().unwrap_or("");
        env.retain(|x| x.split('=').next() != Some(k));
        env.push(e.clone());
    }
    v["Env"] = json!(env);
    if r.config.cmd.is_none() && r.config.entrypoint.is_none() {
        v["Cmd"] = json!(icfg.cmd());
    }
    if r.config.entrypoint.is_none() {
        v["Entrypoint"] = json!(icfg.entrypoint());
    }
    if r.config.working_dir.is_empty() {
        v["WorkingDir"] = json!(icfg.working_dir().clone().unwrap_or_default());
    }
    let mut labels = icfg.labels().clone().unwrap_or_default();
    labels.extend(r.config.labels.clone());
    v["Labels"] = json!(labels);
    if r.config.healthcheck.is_none() {
        if let Some(o) = v.as_object_mut() {
            o.remove("Healthcheck");
        }
    }
    v
}

fn host_config(r: &Record) -> Value {
    let mut h = serde_json::to_value(&r.host_config).unwrap_or_default();
    if r.host_config.network_mode.is_empty() {
        h["NetworkMode"] = json!("bridge");
    }
    if r.host_config.log_config.kind.is_empty() {
        h["LogConfig"]["Type"] = json!("json-file");
    }
    if r.host_config.restart_policy.name.is_empty() {
        h["RestartPolicy"]["Name"] = json!("no");
    }
    h
}

fn mounts(r: &Record) -> Value {
    let mut out = Vec::new();
    for b in &r.host_config.binds {
        let p: Vec<&str> = b.split(':').collect();
        if p.len() < 2 {
            continue;
        }
        let rw = !p.get(2).is_some_and(|o| o.split(',').any(|x| x == "ro"));
        if p[0].starts_with('/') {
            out.push(json!({"Type": "bind", "Source": p[0], "Destination": p[1], "Mode": p.get(2).copied().unwrap_or(""), "RW": rw, "Propagation": "rprivate"}));
        } else {
            out.push(json!({"Type": "volume", "Name": p[0], "Driver": "local", "Destination": p[1], "Mode": p.get(2).copied().unwrap_or("z"), "RW": rw, "Propagation": ""}));
        }
    }
    for m in &r.host_config.mounts {
        out.push(json!({"Type": m.kind, "Source": m.source, "Destination": m.target, "RW": !m.read_only}));
    }
    json!(out)
}

/// docker's `NetworkSettings.Ports`: every exposed port, with its host
/// bindings while the container runs (`null` when not published).
fn ports(c: &Containers, r: &Record) -> Value {
    let mut m = serde_json::Map::new();
    let image_exposed = c
        .image_config(&r.id)
        .and_then(|i| i.config().clone())
        .and_then(|c| c.exposed_ports().clone())
        .unwrap_or_default();
    for k in r.config.exposed_ports.keys().cloned().chain(image_exposed) {
        m.insert(k, Value::Null);
    }
    for ep in r.endpoints.values() {
        for p in &ep.ports {
            let key = format!("{}/{}", p.container_port, p.proto);
            let entry = m.entry(key).or_insert(Value::Null);
            if entry.is_null() {
                *entry = json!([]);
            }
            if let Some(a) = entry.as_array_mut() {
                a.push(json!({"HostIp": p.host_ip, "HostPort": p.host_port.to_string()}));
            }
        }
    }
    Value::Object(m)
}

fn network_settings(c: &Containers, r: &Record) -> Value {
    let mode = if r.host_config.network_mode.is_empty() {
        "bridge"
    } else {
        r.host_config.network_mode.as_str()
    };
    let mut networks = serde_json::Map::new();
    let endpoint = |name: &str| {
        let cfg = r.networks.get(name).cloned().unwrap_or_default();
        let ep = r.endpoints.get(name).cloned().unwrap_or_default();
        let id = c.networks.get(name).map(|n| n.id).unwrap_or_default();
        json!({
            "IPAMConfig": if cfg.ipv4_address.is_empty() { Value::Null } else { json!({"IPv4Address": cfg.ipv4_address}) },
            "Links": null,
            "Aliases": if cfg.aliases.is_empty() { Value::Null } else { json!(cfg.aliases) },
            "NetworkID": id, "EndpointID": ep.endpoint_id, "Gateway": ep.gateway,
            "IPAddress": ep.ip_address, "IPPrefixLen": ep.prefix_len, "IPv6Gateway": "",
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "MacAddress": ep.mac_address,
            "DriverOpts": null
        })
    };
    if r.networks.is_empty() {
        networks.insert(mode.to_string(), endpoint(mode));
    }
    for name in r.networks.keys() {
        networks.insert(name.clone(), endpoint(name));
    }
    // The top-level fields describe the default bridge network, as docker's.
    let primary = r.endpoints.get("bridge").cloned().unwrap_or_default();
    let bandwidth = r.host_config.network_bandwidth;
    json!({
        "Bridge": "", "SandboxID": "", "SandboxKey": if r.pid > 0 && r.status.is_live() { format!("/proc/{}/ns/net", r.pid) } else { String::new() },
        "Ports": ports(c, r), "HairpinMode": false,
        "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0, "SecondaryIPAddresses": null,
        "SecondaryIPv6Addresses": null, "EndpointID": primary.endpoint_id, "Gateway": primary.gateway, "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0, "IPAddress": primary.ip_address, "IPPrefixLen": primary.prefix_len, "IPv6Gateway": "", "MacAddress": primary.mac_address,
        "Bandwidth": bandwidth,
        "Networks": networks
    })
}

/// `GET /containers/{id}/json`.
pub fn inspect(c: &Containers, r: &Record, execs: Vec<String>) -> Value {
    let img = c.image_config(&r.id);
    let (path, args) = r.path_args(img.as_ref());
    json!({
        "Id": r.id,
        "Created": r.created,
        "Path": path,
        "Args": args,
        "State": {
            "Status": r.status.as_str(),
            "Running": r.status.is_live(),
            "Paused": r.status == Status::Paused,
            "Restarting": r.status == Status::Restarting,
            "OOMKilled": r.oom_killed,
            "Dead": r.status == Status::Dead,
            "Pid": if r.status.is_live() { r.pid } else { 0 },
            "ExitCode": r.exit_code,
            "Error": r.error,
            "StartedAt": or_zero(&r.started_at),
            "FinishedAt": or_zero(&r.finished_at),
            "Health": c.health(&r.id).filter(|_| r.status.is_live()),
        },
        "Image": r.image_id,
        "ResolvConfPath": "",
        "HostnamePath": "",
        "HostsPath": "",
        "LogPath": c.log_path(&r.id),
        "Name": format!("/{}", r.name),
        "RestartCount": r.restart_count,
        "Driver": r.driver,
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": if execs.is_empty() { Value::Null } else { json!(execs) },
        "HostConfig": host_config(r),
        "GraphDriver": {"Name": r.driver, "Data": {}},
        "Mounts": mounts(r),
        "Config": config(c, r),
        "NetworkSettings": network_settings(c, r),
    })
}

/// A row of `GET /containers/json`.
pub fn summary(c: &Containers, r: &Record) -> Value {
    let img = c.image_config(&r.id);
    let (path, args) = r.path_args(img.as_ref());
    let command = std::iter::once(path)
        .chain(args)
        .collect::<Vec<_>>()
        .join(" ");
    let mut labels = img
        .as_ref()
        .and_then(|i| i.config().clone())
        .and_then(|c| c.labels().clone())
        .unwrap_or_default();
    labels.extend(r.config.labels.clone());
    json!({
        "Id": r.id,
        "Names": [format!("/{}", r.name)],
        "Image": r.image,
        "ImageID": r.image_id,
        "Command": command,
        "Created": parse_time(&r.created).unwrap_or(0),
        "Ports": r.endpoints.values().flat_map(|e| e.ports.iter()).map(|p| json!({
            "IP": p.host_ip, "PrivatePort": p.container_port, "PublicPort": p.host_port, "Type": p.proto,
        })).collect::<Vec<_>>(),
        "Labels": labels,
        "State": r.status.as_str(),
        "Status": status_text(r, c.health(&r.id).filter(|_| r.status.is_live()).map(|h| h.status).as_deref()),
        "HostConfig": {"NetworkMode": if r.host_config.network_mode.is_empty() { "bridge" } else { r.host_config.network_mode.as_str() }},
        "NetworkSettings": {"Networks": r.endpoints.iter().map(|(n, e)| (n.clone(), json!({
            "NetworkID": e.network_id, "EndpointID": e.endpoint_id, "Gateway": e.gateway,
            "IPAddress": e.ip_address, "IPPrefixLen": e.prefix_len, "MacAddress": e.mac_address,
        }))).collect::<serde_json::Map<String, Value>>()},
        "Mounts": mounts(r),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(human(0), "Less than a second");
        assert_eq!(human(5), "5 seconds");
        assert_eq!(human(90), "About a minute");
        assert_eq!(human(600), "10 minutes");
        assert_eq!(human(3 * 3600), "3 hours");
    }
}
