//! `inspect`, `top` and `stats`: what the daemon knows of a container (or
//! an image), its processes, its resource usage.

use anyhow::Result;
use hyper::Method;
use serde_json::Value;

use crate::api::containers::{ContainerInspect, ContainerSummary, TopResponse};
use crate::api::stats::Stats;
use crate::client::format;
use crate::client::http::{enc, Client};

/// A container's inspect answer as a template or `--format json` sees it.
async fn container_json(c: &Client, n: &str) -> Result<Value> {
    let v: ContainerInspect = c
        .json(Method::GET, &format!("/containers/{}/json", enc(n)), None)
        .await?;
    Ok(serde_json::to_value(v)?)
}

/// An image's inspect answer: the engine's rendering of its config, which
/// berth passes through as it is (docker's `ImageInspect`).
async fn image_json(c: &Client, n: &str) -> Result<Value> {
    c.json(Method::GET, &format!("/images/{n}/json"), None)
        .await
}

pub async fn inspect(
    c: &Client,
    names: &[String],
    format: Option<&str>,
    kind: Option<&str>,
) -> Result<i32> {
    let mut out = Vec::new();
    let mut code = 0;
    for n in names {
        let container = container_json(c, n).await;
        let v = match (kind, container) {
            (Some("image"), _) | (None, Err(_)) => match image_json(c, n).await {
                Ok(v) => Ok(v),
                Err(_) if kind.is_none() => Err(anyhow::anyhow!("Error: No such object: {n}")),
                Err(e) => Err(e),
            },
            (_, r) => r,
        };
        match v {
            Ok(v) => out.push(v),
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    match format {
        Some(t) => {
            for v in &out {
                say!("{}", format::render(t, v)?);
            }
        }
        None => say!("{}", serde_json::to_string_pretty(&Value::Array(out))?),
    }
    Ok(code)
}

pub async fn top(c: &Client, id: &str, ps_args: &[String]) -> Result<i32> {
    let mut q = format!("/containers/{}/top", enc(id));
    if !ps_args.is_empty() {
        q.push_str(&format!("?ps_args={}", enc(&ps_args.join(" "))));
    }
    let v: TopResponse = c.json(Method::GET, &q, None).await?;
    format::table(&v.titles, &v.processes);
    Ok(0)
}

/// One row of `stats`: CPU % against the previous sample, as docker.
fn stats_row(id: &str, v: &Stats) -> Vec<String> {
    let cpu =
        v.cpu_stats.cpu_usage.total_usage as f64 - v.precpu_stats.cpu_usage.total_usage as f64;
    let sys = v.cpu_stats.system_cpu_usage.unwrap_or(0) as f64
        - v.precpu_stats.system_cpu_usage.unwrap_or(0) as f64;
    let ncpu = v.cpu_stats.online_cpus.unwrap_or(1) as f64;
    let pct = if sys > 0.0 && cpu > 0.0 {
        cpu / sys * ncpu * 100.0
    } else {
        0.0
    };
    let used = v.memory_stats.usage.unwrap_or(0) as f64;
    let limit = v.memory_stats.limit.unwrap_or(0) as f64;
    vec![
        id.chars().take(12).collect(),
        v.name.trim_start_matches('/').to_string(),
        format!("{pct:.2}%"),
        format!("{} / {}", format::bytes(used), format::bytes(limit)),
        format!(
            "{:.2}%",
            if limit > 0.0 {
                used / limit * 100.0
            } else {
                0.0
            }
        ),
        v.pids_stats.current.unwrap_or(0).to_string(),
    ]
}

pub async fn stats(c: &Client, ids: &[String], no_stream: bool) -> Result<i32> {
    let ids: Vec<String> = if ids.is_empty() {
        let rows: Vec<ContainerSummary> = c.json(Method::GET, "/containers/json", None).await?;
        rows.into_iter().map(|r| r.id).collect()
    } else {
        ids.to_vec()
    };
    loop {
        let mut rows = Vec::new();
        for id in &ids {
            let v: Stats = c
                .json(
                    Method::GET,
                    &format!("/containers/{}/stats?stream=0", enc(id)),
                    None,
                )
                .await?;
            rows.push(stats_row(id, &v));
        }
        format::table(
            &[
                "CONTAINER ID",
                "NAME",
                "CPU %",
                "MEM USAGE / LIMIT",
                "MEM %",
                "PIDS",
            ],
            &rows,
        );
        if no_stream {
            return Ok(0);
        }
    }
}
