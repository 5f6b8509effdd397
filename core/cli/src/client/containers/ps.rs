//! `ps`: the container list as docker's table, `--quiet` ids, or
//! `--format` templates and JSON lines.

use anyhow::Result;
use hyper::Method;
use serde::Serialize;

use crate::api::containers::ContainerSummary;
use crate::client::format;
use crate::client::http::{enc, Client};

/// One column of `ps`: its header and how a row's value is shown.
type Column<'a> = Box<dyn Fn(&ContainerSummary) -> String + 'a>;

#[derive(clap::Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Filter output based on conditions provided (status=exited, name=…, label=…).
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output using a template ('{{.ID}} {{.Names}}', 'json', 'table …').
    #[arg(long)]
    pub format: Option<String>,
    /// Don't truncate output.
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Show the latest created container.
    #[arg(short, long)]
    pub latest: bool,
    /// Show n last created containers.
    #[arg(short = 'n', long = "last")]
    pub last: Option<i64>,
}

/// `--filter k=v` flags as docker's `filters` JSON.
fn filters_json(f: &[String]) -> Result<String> {
    let mut m: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for x in f {
        let (k, v) = x
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("bad format of filter (expected name=value): {x}"))?;
        m.entry(k.to_string()).or_default().push(v.to_string());
    }
    Ok(serde_json::to_string(&m)?)
}

/// docker's PORTS column: `0.0.0.0:8080->80/tcp, …`.
fn ports_text(r: &ContainerSummary) -> String {
    r.ports
        .iter()
        .map(|p| format!("{}:{}->{}/{}", p.ip, p.public_port, p.private_port, p.kind))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A row's first name, without docker's leading slash.
fn name(r: &ContainerSummary) -> String {
    r.names
        .first()
        .map(|n| n.trim_start_matches('/').to_string())
        .unwrap_or_default()
}

pub async fn ps(c: &Client, a: &PsArgs) -> Result<i32> {
    let mut q = format!(
        "/containers/json?all={}",
        (a.all || a.latest || a.last.is_some()) as u8
    );
    if !a.filter.is_empty() {
        q.push_str(&format!("&filters={}", enc(&filters_json(&a.filter)?)));
    }
    if let Some(n) = a.last.or(a.latest.then_some(1)) {
        q.push_str(&format!("&limit={n}"));
    }
    let rows: Vec<ContainerSummary> = c.json(Method::GET, &q, None).await?;
    let trunc = |s: &str, n: usize| {
        if a.no_trunc {
            s.to_string()
        } else {
            s.chars().take(n).collect()
        }
    };
    let fields: Vec<(&str, Column)> = vec![
        (
            "CONTAINER ID",
            Box::new(|r: &ContainerSummary| trunc(&r.id, 12)),
        ),
        ("IMAGE", Box::new(|r: &ContainerSummary| r.image.clone())),
        (
            "COMMAND",
            Box::new(|r: &ContainerSummary| {
                let cmd = &r.command;
                if a.no_trunc || cmd.chars().count() <= 20 {
                    format!("\"{cmd}\"")
                } else {
                    format!("\"{}…\"", cmd.chars().take(19).collect::<String>())
                }
            }),
        ),
        (
            "CREATED",
            Box::new(|r: &ContainerSummary| format::ago(r.created)),
        ),
        ("STATUS", Box::new(|r: &ContainerSummary| r.status.clone())),
        ("PORTS", Box::new(ports_text)),
        ("NAMES", Box::new(name)),
    ];
    if a.quiet {
        for r in &rows {
            say!("{}", trunc(&r.id, 12));
        }
        return Ok(0);
    }
    match a.format.as_deref() {
        Some("json") | Some("{{json .}}") => {
            for r in &rows {
                say!("{}", serde_json::to_string(&PsView::of(r, &trunc))?);
            }
            return Ok(0);
        }
        Some(t) => {
            let (table, t) = match t.strip_prefix("table") {
                Some(rest) => (true, rest.trim_start()),
                None => (false, t),
            };
            let views = rows
                .iter()
                .map(|r| serde_json::to_value(PsView::of(r, &trunc)))
                .collect::<Result<Vec<_>, _>>()?;
            format::template_rows(t, &views, table)?;
            return Ok(0);
        }
        None => {}
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| fields.iter().map(|(_, f)| f(r)).collect())
        .collect();
    format::table(&fields.iter().map(|(h, _)| *h).collect::<Vec<_>>(), &table);
    Ok(0)
}

/// The fields docker's `ps --format` templates name (in the order `--format
/// json` has always printed them).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct PsView {
    command: String,
    created_at: String,
    #[serde(rename = "ID")]
    id: String,
    image: String,
    labels: String,
    mounts: String,
    names: String,
    networks: String,
    ports: String,
    running_for: String,
    state: String,
    status: String,
}

impl PsView {
    fn of(r: &ContainerSummary, trunc: &dyn Fn(&str, usize) -> String) -> PsView {
        PsView {
            command: format!("\"{}\"", r.command),
            created_at: berth_engine::store::format_time(r.created, 0),
            id: trunc(&r.id, 12),
            image: r.image.clone(),
            labels: r
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
            mounts: String::new(),
            names: name(r),
            networks: r.host_config.network_mode.clone(),
            ports: ports_text(r),
            running_for: format::ago(r.created),
            state: r.state.clone(),
            status: r.status.clone(),
        }
    }
}
