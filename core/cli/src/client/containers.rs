//! Container commands as a client of the daemon, with docker's flags and
//! output: run, create, start, stop, restart, kill, rm, ps, logs, exec,
//! inspect, wait, top, stats, rename, pause, unpause.

use std::io::Write as _;

use anyhow::{bail, Result};
use hyper::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::create::{self, ContainerArgs};
use super::format;
use super::http::{enc, next_chunk, Client, DaemonError};

/// Copies a hijacked stream to our stdout/stderr (demultiplexing docker's
/// frames unless `tty`) and our stdin to it; returns when the output ends.
/// With `keys` (the detach sequence), typing it ends the stream (the daemon
/// stops the attach) and `pump` returns true: the container runs on.
pub async fn pump<S>(io: S, tty: bool, stdin: bool, keys: Option<Vec<u8>>) -> Result<bool>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut r, mut w) = tokio::io::split(io);
    let detached = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = detached.clone();
    let input = tokio::spawn(async move {
        if !stdin {
            return;
        }
        let mut inp = tokio::io::stdin();
        let mut buf = vec![0u8; 16 << 10];
        let mut matched = 0usize;
        loop {
            match inp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Some(k) = keys.as_deref().filter(|k| !k.is_empty()) {
                        for &b in &buf[..n] {
                            matched = if b == k[matched] {
                                matched + 1
                            } else {
                                usize::from(b == k[0])
                            };
                            if matched == k.len() {
                                seen.store(true, std::sync::atomic::Ordering::SeqCst);
                                matched = 0;
                            }
                        }
                    }
                    if w.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
        // End of our input: half-close, the container sees EOF.
        let _ = w.shutdown().await;
        std::future::pending::<()>().await;
    });
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    if tty {
        let mut buf = vec![0u8; 32 << 10];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let _ = out.write_all(&buf[..n]);
                    let _ = out.flush();
                }
            }
        }
    } else {
        let mut hdr = [0u8; 8];
        let mut buf = Vec::new();
        while r.read_exact(&mut hdr).await.is_ok() {
            let n = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]) as usize;
            buf.resize(n, 0);
            if r.read_exact(&mut buf).await.is_err() {
                break;
            }
            if hdr[0] == 2 {
                let _ = err.write_all(&buf);
                let _ = err.flush();
            } else {
                let _ = out.write_all(&buf);
                let _ = out.flush();
            }
        }
    }
    input.abort();
    Ok(detached.load(std::sync::atomic::Ordering::SeqCst))
}

/// The detach sequence a client watches for (docker's default ctrl-p,ctrl-q).
fn detach_sequence(keys: Option<&str>) -> Result<Vec<u8>> {
    Ok(berth_engine::containers::stream::parse_detach_keys(
        keys.unwrap_or(""),
    )?)
}

/// Creates a container; pulls the image first when the daemon has none.
async fn create_container(
    c: &Client,
    a: &ContainerArgs,
    auto_remove: bool,
    attach: bool,
) -> Result<String> {
    let req = create::request(a, auto_remove, attach)?;
    let body = serde_json::to_value(&req)?;
    let mut path = "/containers/create".to_string();
    if let Some(n) = &a.name {
        path.push_str(&format!("?name={}", enc(n)));
    }
    let v = match c.json(Method::POST, &path, Some(&body)).await {
        Ok(v) => v,
        Err(e)
            if e.downcast_ref::<DaemonError>()
                .is_some_and(|d| d.status == 404 && d.message.contains("No such image")) =>
        {
            eprintln!("Unable to find image '{}' locally", a.image);
            super::images::pull(c, &a.image, a.platform.as_deref(), false, true).await?;
            c.json(Method::POST, &path, Some(&body)).await?
        }
        Err(e) => return Err(e),
    };
    Ok(v["Id"].as_str().unwrap_or_default().to_string())
}

pub async fn create(c: &Client, a: &ContainerArgs) -> Result<i32> {
    let id = create_container(c, a, false, false).await?;
    say!("{id}");
    Ok(0)
}

/// Keeps the container's terminal the size of ours (now and on SIGWINCH).
fn watch_size(c: &Client, path: String) -> tokio::task::JoinHandle<()> {
    let c = c.clone();
    tokio::spawn(async move {
        let send = |c: Client, path: String| async move {
            let (h, w) = create::terminal_size();
            if h > 0 {
                let _ = c
                    .call(Method::POST, &format!("{path}?h={h}&w={w}"), None)
                    .await;
            }
        };
        send(c.clone(), path.clone()).await;
        let Ok(mut sig) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        else {
            return;
        };
        while sig.recv().await.is_some() {
            send(c.clone(), path.clone()).await;
        }
    })
}

/// Forwards SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2 to the container (docker's sig-proxy).
fn proxy_signals(c: &Client, id: &str) -> tokio::task::JoinHandle<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let c = c.clone();
    let id = id.to_string();
    tokio::spawn(async move {
        let kinds = [
            (SignalKind::interrupt(), "SIGINT"),
            (SignalKind::terminate(), "SIGTERM"),
            (SignalKind::hangup(), "SIGHUP"),
            (SignalKind::quit(), "SIGQUIT"),
            (SignalKind::user_defined1(), "SIGUSR1"),
            (SignalKind::user_defined2(), "SIGUSR2"),
        ];
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
        for (k, name) in kinds {
            if let Ok(mut s) = signal(k) {
                let tx = tx.clone();
                tokio::spawn(async move {
                    while s.recv().await.is_some() {
                        let _ = tx.send(name);
                    }
                });
            }
        }
        while let Some(name) = rx.recv().await {
            let _ = c
                .call(
                    Method::POST,
                    &format!("/containers/{id}/kill?signal={name}"),
                    None,
                )
                .await;
        }
    })
}

/// docker's exit codes for a failed start: 127 not found, 126 not runnable, 125 other.
fn start_failure(e: &anyhow::Error) -> i32 {
    let m = e.to_string();
    if m.contains("executable file not found") || m.contains("no such file or directory") {
        127
    } else if m.contains("permission denied") {
        126
    } else {
        125
    }
}

pub async fn run(
    c: &Client,
    a: &ContainerArgs,
    detach: bool,
    rm: bool,
    detach_keys: Option<&str>,
) -> Result<i32> {
    let id = create_container(c, a, rm, !detach).await?;
    if detach {
        if let Err(e) = c
            .call(Method::POST, &format!("/containers/{id}/start"), None)
            .await
        {
            eprintln!("berth: {e}");
            return Ok(start_failure(&e));
        }
        say!("{id}");
        return Ok(0);
    }
    let mut q = format!("/containers/{id}/attach?stream=1&stdout=1&stderr=1");
    if a.interactive {
        q.push_str("&stdin=1");
    }
    if let Some(k) = detach_keys {
        q.push_str(&format!("&detachKeys={}", enc(k)));
    }
    let io = c.hijack(&q, None).await?;
    let cond = if rm { "removed" } else { "next-exit" };
    let mut wait = c
        .stream(
            Method::POST,
            &format!("/containers/{id}/wait?condition={cond}"),
            None,
        )
        .await?;
    let raw = if a.tty && a.interactive {
        berth_runtime::tty::RawMode::stdin()
    } else {
        None
    };
    if let Err(e) = c
        .call(Method::POST, &format!("/containers/{id}/start"), None)
        .await
    {
        drop(raw);
        eprintln!("berth: {e}");
        return Ok(start_failure(&e));
    }
    let resize = a
        .tty
        .then(|| watch_size(c, format!("/containers/{id}/resize")));
    let proxy = (!a.tty).then(|| proxy_signals(c, &id));
    let keys = a
        .interactive
        .then(|| detach_sequence(detach_keys))
        .transpose()?;
    let detached = pump(io, a.tty, a.interactive, keys).await?;
    drop(raw);
    if let Some(r) = resize {
        r.abort();
    }
    if detached {
        if let Some(p) = proxy {
            p.abort();
        }
        return Ok(0);
    }
    let mut body = Vec::new();
    while let Some(chunk) = next_chunk(&mut wait).await {
        body.extend_from_slice(&chunk?);
    }
    if let Some(p) = proxy {
        p.abort();
    }
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let Some(m) = v["Error"]["Message"].as_str().filter(|m| !m.is_empty()) {
        // Detached with the detach keys: the container runs on.
        eprintln!("berth: {m}");
    }
    Ok(v["StatusCode"].as_i64().unwrap_or(125) as i32)
}

pub async fn start(c: &Client, ids: &[String], attach: bool, interactive: bool) -> Result<i32> {
    if attach || interactive {
        let [id] = ids else {
            bail!("you cannot start and attach multiple containers at once");
        };
        let info = c
            .json(Method::GET, &format!("/containers/{}/json", enc(id)), None)
            .await?;
        let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
        let full = info["Id"].as_str().unwrap_or(id).to_string();
        let mut q = format!("/containers/{full}/attach?stream=1&stdout=1&stderr=1");
        if interactive {
            q.push_str("&stdin=1");
        }
        let io = c.hijack(&q, None).await?;
        let mut wait = c
            .stream(
                Method::POST,
                &format!("/containers/{full}/wait?condition=next-exit"),
                None,
            )
            .await?;
        let raw = if tty && interactive {
            berth_runtime::tty::RawMode::stdin()
        } else {
            None
        };
        c.call(Method::POST, &format!("/containers/{full}/start"), None)
            .await?;
        let keys = interactive.then(|| detach_sequence(None)).transpose()?;
        let detached = pump(io, tty, interactive, keys).await?;
        drop(raw);
        if detached {
            return Ok(0);
        }
        let mut body = Vec::new();
        while let Some(chunk) = next_chunk(&mut wait).await {
            body.extend_from_slice(&chunk?);
        }
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        return Ok(v["StatusCode"].as_i64().unwrap_or(1) as i32);
    }
    each(ids, |id| async move {
        c.call(
            Method::POST,
            &format!("/containers/{}/start", enc(&id)),
            None,
        )
        .await
        .map(|_| say!("{id}"))
    })
    .await
}

/// Runs `f` for every id; prints errors as docker does and returns 1 if any failed.
async fn each<F, Fut>(ids: &[String], f: F) -> Result<i32>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut code = 0;
    for id in ids {
        if let Err(e) = f(id.clone()).await {
            eprintln!("{e}");
            code = 1;
        }
    }
    Ok(code)
}

pub async fn stop(
    c: &Client,
    ids: &[String],
    time: Option<i64>,
    signal: Option<&str>,
    restart: bool,
) -> Result<i32> {
    let verb = if restart { "restart" } else { "stop" };
    each(ids, |id| async move {
        let mut q = format!("/containers/{}/{verb}?", enc(&id));
        if let Some(t) = time {
            q.push_str(&format!("t={t}&"));
        }
        if let Some(s) = signal {
            q.push_str(&format!("signal={}", enc(s)));
        }
        c.call(Method::POST, &q, None).await.map(|_| say!("{id}"))
    })
    .await
}

pub async fn kill(c: &Client, ids: &[String], signal: &str) -> Result<i32> {
    each(ids, |id| async move {
        c.call(
            Method::POST,
            &format!("/containers/{}/kill?signal={}", enc(&id), enc(signal)),
            None,
        )
        .await
        .map(|_| say!("{id}"))
    })
    .await
}

pub async fn rm(c: &Client, ids: &[String], force: bool, volumes: bool) -> Result<i32> {
    each(ids, |id| async move {
        c.call(
            Method::DELETE,
            &format!(
                "/containers/{}?force={}&v={}",
                enc(&id),
                force as u8,
                volumes as u8
            ),
            None,
        )
        .await
        .map(|_| say!("{id}"))
    })
    .await
}

pub async fn simple(c: &Client, ids: &[String], verb: &str) -> Result<i32> {
    each(ids, |id| async move {
        c.call(
            Method::POST,
            &format!("/containers/{}/{verb}", enc(&id)),
            None,
        )
        .await
        .map(|_| say!("{id}"))
    })
    .await
}

pub async fn rename(c: &Client, old: &str, new: &str) -> Result<i32> {
    c.call(
        Method::POST,
        &format!("/containers/{}/rename?name={}", enc(old), enc(new)),
        None,
    )
    .await?;
    Ok(0)
}

pub async fn wait(c: &Client, ids: &[String]) -> Result<i32> {
    each(ids, |id| async move {
        let v = c
            .json(
                Method::POST,
                &format!("/containers/{}/wait", enc(&id)),
                None,
            )
            .await?;
        say!("{}", v["StatusCode"]);
        Ok(())
    })
    .await
}

/// One column of `ps`: its header and how a row's value is shown.
type Column<'a> = Box<dyn Fn(&Value) -> String + 'a>;

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
fn ports_text(r: &Value) -> String {
    r["Ports"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    format!(
                        "{}:{}->{}/{}",
                        p["IP"].as_str().unwrap_or("0.0.0.0"),
                        p["PublicPort"],
                        p["PrivatePort"],
                        p["Type"].as_str().unwrap_or("tcp")
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
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
    let v = c.json(Method::GET, &q, None).await?;
    let rows: Vec<Value> = v.as_array().cloned().unwrap_or_default();
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
            Box::new(|r: &Value| trunc(r["Id"].as_str().unwrap_or(""), 12)),
        ),
        (
            "IMAGE",
            Box::new(|r: &Value| r["Image"].as_str().unwrap_or("").to_string()),
        ),
        (
            "COMMAND",
            Box::new(|r: &Value| {
                let cmd = r["Command"].as_str().unwrap_or("");
                if a.no_trunc || cmd.chars().count() <= 20 {
                    format!("\"{cmd}\"")
                } else {
                    format!("\"{}…\"", cmd.chars().take(19).collect::<String>())
                }
            }),
        ),
        (
            "CREATED",
            Box::new(|r: &Value| format::ago(r["Created"].as_i64().unwrap_or(0))),
        ),
        (
            "STATUS",
            Box::new(|r: &Value| r["Status"].as_str().unwrap_or("").to_string()),
        ),
        ("PORTS", Box::new(ports_text)),
        (
            "NAMES",
            Box::new(|r: &Value| {
                r["Names"]
                    .as_array()
                    .and_then(|n| n.first())
                    .and_then(|n| n.as_str())
                    .unwrap_or("")
                    .trim_start_matches('/')
                    .to_string()
            }),
        ),
    ];
    if a.quiet {
        for r in &rows {
            say!("{}", trunc(r["Id"].as_str().unwrap_or(""), 12));
        }
        return Ok(0);
    }
    match a.format.as_deref() {
        Some("json") | Some("{{json .}}") => {
            for r in &rows {
                say!("{}", serde_json::to_string(&ps_view(r, &trunc))?);
            }
            return Ok(0);
        }
        Some(t) => {
            let (table, t) = match t.strip_prefix("table") {
                Some(rest) => (true, rest.trim_start()),
                None => (false, t),
            };
            let views: Vec<Value> = rows.iter().map(|r| ps_view(r, &trunc)).collect();
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

/// The fields docker's `ps --format` templates name.
fn ps_view(r: &Value, trunc: &dyn Fn(&str, usize) -> String) -> Value {
    let labels = r["Labels"].as_object().map(|m| {
        m.iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect::<Vec<_>>()
            .join(",")
    });
    json!({
        "ID": trunc(r["Id"].as_str().unwrap_or(""), 12),
        "Image": r["Image"],
        "Command": format!("\"{}\"", r["Command"].as_str().unwrap_or("")),
        "CreatedAt": berth_engine::store::format_time(r["Created"].as_i64().unwrap_or(0), 0),
        "RunningFor": format::ago(r["Created"].as_i64().unwrap_or(0)),
        "Status": r["Status"],
        "State": r["State"],
        "Names": r["Names"].as_array().and_then(|n| n.first()).and_then(|n| n.as_str()).unwrap_or("").trim_start_matches('/'),
        "Labels": labels.unwrap_or_default(),
        "Ports": ports_text(r),
        "Mounts": "",
        "Networks": r["HostConfig"]["NetworkMode"],
    })
}

pub async fn logs(
    c: &Client,
    id: &str,
    follow: bool,
    tail: Option<&str>,
    timestamps: bool,
    since: Option<&str>,
) -> Result<i32> {
    let info = c
        .json(Method::GET, &format!("/containers/{}/json", enc(id)), None)
        .await?;
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let mut q = format!(
        "/containers/{}/logs?stdout=1&stderr=1&follow={}&timestamps={}",
        enc(id),
        follow as u8,
        timestamps as u8
    );
    if let Some(t) = tail {
        q.push_str(&format!("&tail={}", enc(t)));
    }
    if let Some(s) = since {
        q.push_str(&format!("&since={}", enc(s)));
    }
    let mut body = c.stream(Method::GET, &q, None).await?;
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    let mut pending: Vec<u8> = Vec::new();
    while let Some(chunk) = next_chunk(&mut body).await {
        let chunk = chunk?;
        if tty {
            let _ = out.write_all(&chunk);
            let _ = out.flush();
            continue;
        }
        pending.extend_from_slice(&chunk);
        while pending.len() >= 8 {
            let n = u32::from_be_bytes([pending[4], pending[5], pending[6], pending[7]]) as usize;
            if pending.len() < 8 + n {
                break;
            }
            let frame: Vec<u8> = pending.drain(..8 + n).collect();
            if frame[0] == 2 {
                let _ = err.write_all(&frame[8..]);
            } else {
                let _ = out.write_all(&frame[8..]);
                let _ = out.flush();
            }
        }
    }
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    /// Detached mode: run the command in the background.
    #[arg(short, long)]
    pub detach: bool,
    /// Keep stdin open.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables.
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: name|uid[:group|gid]).
    #[arg(short, long)]
    pub user: Option<String>,
    /// Give extended privileges to the command.
    #[arg(long)]
    pub privileged: bool,
    /// Override the key sequence for detaching.
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    pub container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

pub async fn exec(c: &Client, a: &ExecArgs) -> Result<i32> {
    let (h, w) = if a.tty {
        create::terminal_size()
    } else {
        (0, 0)
    };
    let body = json!({
        "AttachStdin": a.interactive && !a.detach,
        "AttachStdout": !a.detach,
        "AttachStderr": !a.detach,
        "Tty": a.tty,
        "Env": a.env,
        "Cmd": a.command,
        "WorkingDir": a.workdir.clone().unwrap_or_default(),
        "User": a.user.clone().unwrap_or_default(),
        "Privileged": a.privileged,
        "DetachKeys": a.detach_keys.clone().unwrap_or_default(),
        "ConsoleSize": if h > 0 { json!([h, w]) } else { Value::Null },
    });
    let v = c
        .json(
            Method::POST,
            &format!("/containers/{}/exec", enc(&a.container)),
            Some(&body),
        )
        .await?;
    let eid = v["Id"].as_str().unwrap_or_default().to_string();
    let start = json!({"Detach": a.detach, "Tty": a.tty, "ConsoleSize": if h > 0 { json!([h, w]) } else { Value::Null }});
    if a.detach {
        c.call(Method::POST, &format!("/exec/{eid}/start"), Some(&start))
            .await?;
        return Ok(0);
    }
    let io = c
        .hijack(&format!("/exec/{eid}/start"), Some(&start))
        .await?;
    let raw = if a.tty && a.interactive {
        berth_runtime::tty::RawMode::stdin()
    } else {
        None
    };
    let resize = a.tty.then(|| watch_size(c, format!("/exec/{eid}/resize")));
    pump(io, a.tty, a.interactive, None).await?;
    drop(raw);
    if let Some(r) = resize {
        r.abort();
    }
    let v = c
        .json(Method::GET, &format!("/exec/{eid}/json"), None)
        .await?;
    Ok(v["ExitCode"].as_i64().unwrap_or(126) as i32)
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
        let container = c
            .json(Method::GET, &format!("/containers/{}/json", enc(n)), None)
            .await;
        let v = match (kind, container) {
            (Some("image"), _) | (None, Err(_)) => match c
                .json(Method::GET, &format!("/images/{n}/json"), None)
                .await
            {
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
    let v = c.json(Method::GET, &q, None).await?;
    let titles: Vec<&str> = v["Titles"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    let rows: Vec<Vec<String>> = v["Processes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    r.as_array()
                        .map(|c| {
                            c.iter()
                                .map(|x| x.as_str().unwrap_or("").to_string())
                                .collect()
                        })
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default();
    format::table(&titles, &rows);
    Ok(0)
}

pub async fn stats(c: &Client, ids: &[String], no_stream: bool) -> Result<i32> {
    let ids: Vec<String> = if ids.is_empty() {
        c.json(Method::GET, "/containers/json", None)
            .await?
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|r| r["Id"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        ids.to_vec()
    };
    loop {
        let mut rows = Vec::new();
        for id in &ids {
            let v = c
                .json(
                    Method::GET,
                    &format!("/containers/{}/stats?stream=0", enc(id)),
                    None,
                )
                .await?;
            let cpu = v["cpu_stats"]["cpu_usage"]["total_usage"]
                .as_f64()
                .unwrap_or(0.0)
                - v["precpu_stats"]["cpu_usage"]["total_usage"]
                    .as_f64()
                    .unwrap_or(0.0);
            let sys = v["cpu_stats"]["system_cpu_usage"].as_f64().unwrap_or(0.0)
                - v["precpu_stats"]["system_cpu_usage"]
                    .as_f64()
                    .unwrap_or(0.0);
            let ncpu = v["cpu_stats"]["online_cpus"].as_f64().unwrap_or(1.0);
            let pct = if sys > 0.0 && cpu > 0.0 {
                cpu / sys * ncpu * 100.0
            } else {
                0.0
            };
            let used = v["memory_stats"]["usage"].as_f64().unwrap_or(0.0);
            let limit = v["memory_stats"]["limit"].as_f64().unwrap_or(0.0);
            rows.push(vec![
                id.chars().take(12).collect(),
                v["name"]
                    .as_str()
                    .unwrap_or("")
                    .trim_start_matches('/')
                    .to_string(),
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
                v["pids_stats"]["current"].as_u64().unwrap_or(0).to_string(),
            ]);
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
