//! Image commands as a client of the daemon: pull (docker's JSON progress
//! stream shown as bars or lines), images, rmi, tag, save, load.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use berth_engine::Progress;
use hyper::Method;
use serde_json::Value;

use super::format;
use super::http::{enc, next_chunk, Client};
use crate::progress::Display;

/// Pulls an image, showing progress (on stderr when `on_stderr`, as `run` does).
pub async fn pull(
    c: &Client,
    image: &str,
    platform: Option<&str>,
    quiet: bool,
    on_stderr: bool,
) -> Result<i32> {
    let mut q = format!("/images/create?fromImage={}", enc(image));
    if let Some(p) = platform {
        q.push_str(&format!("&platform={}", enc(p)));
    }
    let display: Option<Arc<Display>> = if quiet {
        None
    } else if on_stderr {
        Some(Arc::new(Display::on_stderr()))
    } else {
        Some(Arc::new(Display::new()))
    };
    let mut body = c.stream(Method::POST, &q, None).await?;
    let mut pending = Vec::new();
    let mut lines = Vec::new();
    while let Some(chunk) = next_chunk(&mut body).await {
        pending.extend_from_slice(&chunk?);
        while let Some(pos) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=pos).collect();
            let Ok(v) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            if let Some(e) = v["error"].as_str() {
                drop(display);
                bail!("Error response from daemon: {e}");
            }
            let status = v["status"].as_str().unwrap_or("");
            match (v["id"].as_str(), &display) {
                (Some(id), Some(d)) if !status.starts_with("Pulling from") => {
                    match v["progressDetail"]["current"].as_u64() {
                        Some(cur) => {
                            d.bytes(id, cur, v["progressDetail"]["total"].as_u64().unwrap_or(0))
                        }
                        None => d.status(id, status),
                    }
                }
                // The first message: shown before the layers, as docker does.
                (Some(id), _) if status.starts_with("Pulling from") && !quiet => {
                    if on_stderr {
                        eprintln!("{id}: {status}");
                    } else {
                        say!("{id}: {status}");
                    }
                }
                (None, _) => lines.push(status.to_string()),
                _ => {}
            }
        }
    }
    drop(display);
    if !quiet {
        for l in lines {
            if on_stderr {
                eprintln!("{l}");
            } else {
                say!("{l}");
            }
        }
    }
    if !on_stderr {
        let r = berth_engine::reference::Reference::parse(image)?;
        say!("{}", r.full());
    }
    Ok(0)
}

pub async fn images(c: &Client, quiet: bool, format_: Option<&str>) -> Result<i32> {
    let v = c.json(Method::GET, "/images/json", None).await?;
    let rows = v.as_array().cloned().unwrap_or_default();
    if quiet {
        for r in &rows {
            say!(
                "{}",
                r["Id"]
                    .as_str()
                    .unwrap_or("")
                    .trim_start_matches("sha256:")
                    .chars()
                    .take(12)
                    .collect::<String>()
            );
        }
        return Ok(0);
    }
    let mut table = Vec::new();
    for r in &rows {
        for t in r["RepoTags"].as_array().cloned().unwrap_or_default() {
            let t = t.as_str().unwrap_or("<none>:<none>");
            let (repo, tag) = t.rsplit_once(':').unwrap_or((t, "<none>"));
            table.push(vec![
                repo.to_string(),
                tag.to_string(),
                r["Id"]
                    .as_str()
                    .unwrap_or("")
                    .trim_start_matches("sha256:")
                    .chars()
                    .take(12)
                    .collect(),
                format::ago(r["Created"].as_i64().unwrap_or(0)),
                crate::images::human_size(r["Size"].as_u64().unwrap_or(0)),
            ]);
        }
    }
    if format_ == Some("json") {
        for r in &table {
            say!(
                "{}",
                serde_json::json!({"Repository": r[0], "Tag": r[1], "ID": r[2], "CreatedSince": r[3], "Size": r[4]})
            );
        }
        return Ok(0);
    }
    if let Some(f) = format_ {
        bail!("unknown --format {f:?}: berth supports json");
    }
    format::table(
        &["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"],
        &table,
    );
    Ok(0)
}

pub async fn rmi(c: &Client, names: &[String], force: bool) -> Result<i32> {
    let mut code = 0;
    for n in names {
        match c
            .json(
                Method::DELETE,
                &format!("/images/{n}?force={}", force as u8),
                None,
            )
            .await
        {
            Ok(v) => {
                for e in v.as_array().cloned().unwrap_or_default() {
                    if let Some(u) = e["Untagged"].as_str() {
                        say!("Untagged: {u}");
                    }
                    if let Some(d) = e["Deleted"].as_str() {
                        say!("Deleted: {d}");
                    }
                }
            }
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

pub async fn tag(c: &Client, source: &str, target: &str) -> Result<i32> {
    let r = berth_engine::reference::Reference::parse(target)?;
    let repo = match r.registry.as_str() {
        "docker.io" => r.short_repository(),
        reg => format!("{reg}/{}", r.repository),
    };
    let mut q = format!("/images/{source}/tag?repo={}", enc(&repo));
    if let Some(t) = &r.tag {
        q.push_str(&format!("&tag={}", enc(t)));
    }
    c.call(Method::POST, &q, None).await?;
    Ok(0)
}

pub async fn save(c: &Client, out: &std::path::Path, names: &[String]) -> Result<i32> {
    if names.is_empty() {
        bail!("save: name at least one image");
    }
    let q: Vec<String> = names.iter().map(|n| format!("names={}", enc(n))).collect();
    let (_, data) = c
        .call(Method::GET, &format!("/images/get?{}", q.join("&")), None)
        .await?;
    let tmp = out.with_extension("berth-tmp");
    std::fs::write(&tmp, &data).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, out).with_context(|| format!("writing {}", out.display()))?;
    Ok(0)
}

pub async fn load(c: &Client, input: &std::path::Path, quiet: bool) -> Result<i32> {
    let data = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    let b = c
        .upload(
            Method::POST,
            &format!("/images/load?quiet={}", quiet as u8),
            data.into(),
            "application/x-tar",
        )
        .await?;
    for l in String::from_utf8_lossy(&b).lines() {
        if let Ok(v) = serde_json::from_str::<Value>(l) {
            if let Some(s) = v["stream"].as_str() {
                print!("{s}");
            }
        }
    }
    Ok(0)
}
