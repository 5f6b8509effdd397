//! Image commands as a client of the daemon: pull (docker's JSON progress
//! stream shown as bars or lines), images, rmi, tag, save, load.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use berth_engine::Progress;
use hyper::Method;
use serde::Serialize;

use super::format;
use super::http::{enc, next_chunk, Client, JsonLines};
use crate::api::images::{ImageDeleteItem, ImageSummary, JsonMessage};
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
    let registry = berth_engine::reference::Reference::parse(image)?.registry;
    let auth = super::credentials::header_for(&registry)?;
    let body = c
        .stream_with(Method::POST, &q, &[("X-Registry-Auth", &auth)])
        .await?;
    let mut lines = Vec::new();
    let mut messages = JsonLines::new(body);
    while let Some(v) = messages.next::<JsonMessage>().await {
        let v = v?;
        if let Some(e) = v.error {
            drop(display);
            bail!("Error response from daemon: {e}");
        }
        let status = v.status.as_deref().unwrap_or("");
        let current = v.progress_detail.as_ref().and_then(|p| p.current);
        match (v.id.as_deref(), &display) {
            (Some(id), Some(d)) if !status.starts_with("Pulling from") => match current {
                Some(cur) => d.bytes(
                    id,
                    cur,
                    v.progress_detail.and_then(|p| p.total).unwrap_or(0),
                ),
                None => d.status(id, status),
            },
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

/// A line of `images --format json` (its fields in the order berth has
/// always printed them).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ImageLine {
    created_since: String,
    #[serde(rename = "ID")]
    id: String,
    repository: String,
    size: String,
    tag: String,
}

pub async fn images(c: &Client, all: bool, quiet: bool, format_: Option<&str>) -> Result<i32> {
    let path = if all {
        "/images/json?all=1"
    } else {
        "/images/json"
    };
    let rows: Vec<ImageSummary> = c.json(Method::GET, path, None).await?;
    let short =
        |id: &str| -> String { id.trim_start_matches("sha256:").chars().take(12).collect() };
    if quiet {
        for r in &rows {
            say!("{}", short(&r.id));
        }
        return Ok(0);
    }
    let mut table = Vec::new();
    let none = ["<none>:<none>".to_string()];
    for r in &rows {
        // An image without a name is shown as docker shows it: <none> <none>.
        let tags = if r.repo_tags.is_empty() {
            &none[..]
        } else {
            &r.repo_tags[..]
        };
        for t in tags {
            let (repo, tag) = t.rsplit_once(':').unwrap_or((t, "<none>"));
            table.push(vec![
                repo.to_string(),
                tag.to_string(),
                short(&r.id),
                format::ago(r.created),
                crate::api::units::human_size(r.size),
            ]);
        }
    }
    if format_ == Some("json") {
        for r in table {
            let [repository, tag, id, created_since, size] =
                <[String; 5]>::try_from(r).expect("five columns");
            let line = ImageLine {
                created_since,
                id,
                repository,
                size,
                tag,
            };
            say!("{}", serde_json::to_string(&line)?);
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
                let items: Vec<ImageDeleteItem> = v;
                for e in items {
                    if let Some(u) = e.untagged {
                        say!("Untagged: {u}");
                    }
                    if let Some(d) = e.deleted {
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
    let q = format!(
        "/images/{source}/tag?{}",
        &super::flags::repo_tag_query(target)?[1..]
    );
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
        if let Ok(JsonMessage {
            stream: Some(s), ..
        }) = serde_json::from_str(l)
        {
            print!("{s}");
        }
    }
    Ok(0)
}

/// `history IMAGE`: docker's table, newest first.
pub async fn history(c: &Client, a: &crate::local::HistoryArgs) -> Result<i32> {
    let path = format!("/images/{}/history", a.image);
    let rows: Vec<crate::api::images::HistoryItem> = c.json(Method::GET, &path, None).await?;
    print_history(&rows, a);
    Ok(0)
}

/// Prints an image's history as docker does (`--no-trunc`, `-q`).
pub fn print_history(rows: &[crate::api::images::HistoryItem], a: &crate::local::HistoryArgs) {
    let id = |i: &str| -> String {
        if a.no_trunc || i == "<missing>" {
            i.to_string()
        } else {
            i.trim_start_matches("sha256:").chars().take(12).collect()
        }
    };
    if a.quiet {
        for r in rows {
            say!("{}", id(&r.id));
        }
        return;
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let by = r.created_by.replace('\t', " ");
            let by = if a.no_trunc || by.chars().count() <= 45 {
                by
            } else {
                by.chars().take(44).chain(std::iter::once('…')).collect()
            };
            vec![
                id(&r.id),
                format::ago(r.created),
                by,
                crate::api::units::human_size(r.size),
                r.comment.clone(),
            ]
        })
        .collect();
    format::table(
        &["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
        &table,
    );
}

/// `export [-o FILE] CONTAINER`: the container's filesystem as a tar, to
/// FILE or to stdout (never to a terminal, as docker refuses too).
pub async fn export(c: &Client, container: &str, output: Option<&std::path::Path>) -> Result<i32> {
    use std::io::{IsTerminal as _, Write as _};
    let mut out: Box<dyn std::io::Write> = match output {
        Some(p) => {
            Box::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?)
        }
        None if std::io::stdout().is_terminal() => {
            bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect")
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let path = format!("/containers/{}/export", enc(container));
    let mut body = c.stream(Method::GET, &path, None).await?;
    while let Some(chunk) = next_chunk(&mut body).await {
        out.write_all(&chunk?)?;
    }
    out.flush()?;
    Ok(0)
}

/// `import [-c CHANGE]… [-m MSG] FILE|- [REPO[:TAG]]`: a tar of a
/// filesystem as a one-layer image; prints its id.
pub async fn import(
    c: &Client,
    file: &str,
    reference: Option<&str>,
    changes: &[String],
    message: Option<&str>,
) -> Result<i32> {
    use std::io::Read as _;
    let data = if file == "-" {
        let mut v = Vec::new();
        std::io::stdin().lock().read_to_end(&mut v)?;
        v
    } else {
        std::fs::read(file).with_context(|| format!("reading {file}"))?
    };
    let mut q = String::from("/images/create?fromSrc=-");
    if let Some(r) = reference {
        q.push_str(&super::flags::repo_tag_query(r)?);
    }
    if let Some(m) = message {
        q.push_str(&format!("&message={}", enc(m)));
    }
    for ch in changes {
        q.push_str(&format!("&changes={}", enc(ch)));
    }
    let b = c
        .upload(Method::POST, &q, data.into(), "application/x-tar")
        .await?;
    for l in String::from_utf8_lossy(&b).lines() {
        match serde_json::from_str::<JsonMessage>(l) {
            Ok(JsonMessage { error: Some(e), .. }) => bail!("{e}"),
            Ok(JsonMessage {
                status: Some(s), ..
            }) => say!("{s}"),
            _ => {}
        }
    }
    Ok(0)
}
