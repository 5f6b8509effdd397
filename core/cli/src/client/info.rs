//! What the daemon tells about itself and its objects, printed as docker's
//! CLI prints it: `version`, `info`, `events` and `port`.

use anyhow::{bail, Result};
use hyper::Method;

use super::http::{enc, Client, JsonLines};
use crate::api::containers::ContainerInspect;
use crate::api::system::{EventMessage, Info, Version};

/// `berth version`: this client, and the daemon it talks to.
pub async fn version(c: &Client) -> Result<i32> {
    say!("Client:");
    say!(" Version:           {}", env!("CARGO_PKG_VERSION"));
    say!(" API version:       {}", crate::api::API_VERSION);
    say!(
        " OS/Arch:           linux/{}",
        std::env::consts::ARCH
            .replace("x86_64", "amd64")
            .replace("aarch64", "arm64")
    );
    say!("");
    let v: Version = c.json(Method::GET, "/version", None).await?;
    say!("Server: {}", v.platform.name);
    say!(" Engine:");
    say!("  Version:          {}", v.version);
    say!(
        "  API version:      {} (minimum version {})",
        v.api_version,
        v.min_api_version
    );
    say!("  OS/Arch:          {}/{}", v.os, v.arch);
    say!("  Kernel Version:   {}", v.kernel_version);
    for comp in v.components.iter().filter(|c| c.name != "Engine") {
        say!(" {}:", comp.name);
        say!("  Version:          {}", comp.version);
    }
    Ok(0)
}

/// `berth info`: docker's summary of the daemon.
pub async fn info(c: &Client) -> Result<i32> {
    let i: Info = c.json(Method::GET, "/info", None).await?;
    say!("Server:");
    say!(" Containers: {}", i.containers);
    say!("  Running: {}", i.containers_running);
    say!("  Paused: {}", i.containers_paused);
    say!("  Stopped: {}", i.containers_stopped);
    say!(" Images: {}", i.images);
    say!(" Server Version: {}", i.server_version);
    say!(" Storage Driver: {}", i.driver);
    for [k, v] in &i.driver_status {
        say!("  {k}: {v}");
    }
    say!(" Logging Driver: {}", i.logging_driver);
    say!(" Cgroup Driver: {}", i.cgroup_driver);
    say!(" Cgroup Version: {}", i.cgroup_version);
    say!(" Plugins:");
    say!("  Volume: {}", i.plugins.volume.join(" "));
    say!("  Network: {}", i.plugins.network.join(" "));
    say!(
        " Runtimes: {}",
        i.runtimes.keys().cloned().collect::<Vec<_>>().join(" ")
    );
    say!(" Default Runtime: {}", i.default_runtime);
    say!(" Init Binary: {}", i.init_binary);
    say!(" Security Options:");
    for o in &i.security_options {
        say!("  {o}");
    }
    say!(" Kernel Version: {}", i.kernel_version);
    say!(" Operating System: {}", i.operating_system);
    say!(" OSType: {}", i.os_type);
    say!(" Architecture: {}", i.architecture);
    say!(" CPUs: {}", i.ncpu);
    say!(
        " Total Memory: {}",
        crate::api::units::human_binary(i.mem_total)
    );
    say!(" Name: {}", i.name);
    say!(" ID: {}", i.id);
    say!(" Docker Root Dir: {}", i.docker_root_dir);
    say!(" Debug Mode: {}", i.debug);
    say!(" Live Restore Enabled: {}", i.live_restore_enabled);
    for w in &i.warnings {
        eprintln!("{w}");
    }
    Ok(0)
}

/// `berth events [--since T] [--until T] [--filter K=V]…`: one line per
/// event as docker prints them; filters by type, event, container and image.
pub async fn events(
    c: &Client,
    since: Option<&str>,
    until: Option<&str>,
    filters: &[String],
) -> Result<i32> {
    let mut wanted: Vec<(String, String)> = Vec::new();
    for f in filters {
        let Some((k, v)) = f.split_once('=') else {
            bail!("bad format of filter (expected name=value): {f}");
        };
        if !matches!(k, "type" | "event" | "container" | "image") {
            bail!("invalid filter '{k}': berth filters events by type, event, container and image");
        }
        wanted.push((k.to_string(), v.to_string()));
    }
    let mut path = String::from("/events?");
    for (k, v) in [("since", since), ("until", until)] {
        if let Some(v) = v {
            path.push_str(&format!("{k}={}&", enc(v)));
        }
    }
    let body = c
        .stream(Method::GET, path.trim_end_matches(['?', '&']), None)
        .await?;
    let mut lines = JsonLines::new(body);
    while let Some(e) = lines.next::<EventMessage>().await {
        let e = e?;
        if matches(&e, &wanted) {
            say!("{}", render(&e));
        }
    }
    Ok(0)
}

/// Whether an event passes the filters: each key, if given, must match
/// one of its values.
fn matches(e: &EventMessage, wanted: &[(String, String)]) -> bool {
    let attr = |k: &str| e.actor.attributes.get(k).cloned().unwrap_or_default();
    let keys: std::collections::BTreeSet<&str> = wanted.iter().map(|(k, _)| k.as_str()).collect();
    keys.into_iter().all(|key| {
        wanted
            .iter()
            .filter(|(k, _)| k == key)
            .any(|(_, v)| match key {
                "type" => &e.kind == v,
                "event" => &e.action == v,
                "container" => {
                    e.kind == "container"
                        && (e.actor.id.starts_with(v.as_str()) || attr("name") == *v)
                }
                "image" => attr("image") == *v || e.from.as_deref() == Some(v.as_str()),
                _ => false,
            })
    })
}

/// docker's line: `TIME TYPE ACTION ID (k=v, …)`.
fn render(e: &EventMessage) -> String {
    let secs = e.time_nano.div_euclid(1_000_000_000);
    let nanos = e.time_nano.rem_euclid(1_000_000_000) as u32;
    let attrs: Vec<String> = e
        .actor
        .attributes
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mut line = format!(
        "{} {} {} {}",
        berth_engine::store::format_time(secs, nanos),
        e.kind,
        e.action,
        e.actor.id
    );
    if !attrs.is_empty() {
        line.push_str(&format!(" ({})", attrs.join(", ")));
    }
    line
}

/// `berth port CONTAINER [PRIVATE_PORT[/PROTO]]`: the published ports.
pub async fn port(c: &Client, container: &str, private: Option<&str>) -> Result<i32> {
    let path = format!("/containers/{}/json", enc(container));
    let i: ContainerInspect = c.json(Method::GET, &path, None).await?;
    let want = private.map(|p| {
        if p.contains('/') {
            p.to_string()
        } else {
            format!("{p}/tcp")
        }
    });
    let mut found = false;
    for (port, bindings) in &i.network_settings.ports {
        if want.as_ref().is_some_and(|w| w != port) {
            continue;
        }
        for b in bindings.iter().flatten() {
            found = true;
            let line = format!("{}:{}", b.host_ip, b.host_port);
            if want.is_some() {
                say!("{line}");
            } else {
                say!("{port} -> {line}");
            }
        }
    }
    if let (Some(w), false) = (want, found) {
        bail!("no public port '{w}' published for {container}");
    }
    Ok(0)
}
