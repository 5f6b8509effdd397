//! `/containers/…`: create, start, stop, restart, kill, wait, attach, logs,
//! inspect, list, top, stats, rename, pause, unpause, resize, remove.

use std::collections::HashMap;

use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use berth_engine::containers::logs;
use berth_engine::containers::stream::AttachOptions;
use berth_engine::containers::{Status, WaitCondition};
use bytes::Bytes;

use crate::api::containers::{
    CreateRequest, CreateResponse, PathStat, TopResponse, WaitError, WaitResponse,
};
use crate::api::stats::{
    BlkioEntry, BlkioStats, CpuStats, CpuUsage, MemoryStats, PidsStats, Stats, ThrottlingData,
};
use crate::api::Filters;

use super::api::{self, flag, number, ApiError, ApiResult, Query};
use super::render;
use super::Shared;

/// docker's `filters` query: `{"status": ["exited"], "label": ["a=b"], …}`.
fn filters(q: &HashMap<String, String>) -> ApiResult<HashMap<String, Vec<String>>> {
    let Some(f) = q.get("filters").filter(|f| !f.is_empty()) else {
        return Ok(HashMap::new());
    };
    let v: Filters =
        serde_json::from_str(f).map_err(|e| ApiError::bad(format!("invalid filters: {e}")))?;
    let mut out = HashMap::new();
    for (k, vals) in v.0 {
        match k.as_str() {
            "status" | "name" | "id" | "label" | "exited" | "ancestor" => {}
            other => return Err(ApiError::bad(format!("invalid filter '{other}'"))),
        }
        out.insert(k, vals.values());
    }
    Ok(out)
}

pub async fn list(State(d): State<Shared>, q: Query) -> ApiResult {
    let f = filters(&q)?;
    let all = flag(&q, "all") || f.contains_key("status") || f.contains_key("exited");
    let limit: Option<i64> = number(&q, "limit")?;
    let mut out = Vec::new();
    for r in d.containers.list() {
        if !all && !r.status.is_live() {
            continue;
        }
        let ok = f.iter().all(|(k, vals)| {
            vals.iter().any(|v| match k.as_str() {
                "status" => r.status.as_str() == v,
                "name" => r.name.contains(v.trim_start_matches('/')),
                "id" => r.id.starts_with(v.as_str()),
                "exited" => !r.status.is_live() && r.exit_code.to_string() == *v,
                "ancestor" => r.image == *v || r.image_id.contains(v.as_str()),
                "label" => match v.split_once('=') {
                    Some((lk, lv)) => r.config.labels.get(lk).is_some_and(|x| x == lv),
                    None => r.config.labels.contains_key(v.as_str()),
                },
                _ => true,
            })
        });
        if ok {
            out.push(render::summary(&d.containers, &r));
        }
    }
    if let Some(n) = limit.filter(|n| *n > 0) {
        out.truncate(n as usize);
    }
    Ok(api::json(StatusCode::OK, out))
}

pub async fn create(State(d): State<Shared>, q: Query, body: Bytes) -> ApiResult {
    let req: CreateRequest = api::body(&body)?;
    let id = d
        .containers
        .create(q.get("name").map(String::as_str), req)
        .await?;
    Ok(api::json(
        StatusCode::CREATED,
        CreateResponse {
            id,
            warnings: Vec::new(),
        },
    ))
}

pub async fn inspect(State(d): State<Shared>, Path(id): Path<String>) -> ApiResult {
    let r = d.containers.get(&id)?;
    let execs = d.containers.exec_ids(&r.id);
    Ok(api::json(
        StatusCode::OK,
        render::inspect(&d.containers, &r, execs),
    ))
}

pub async fn start(State(d): State<Shared>, Path(id): Path<String>) -> ApiResult {
    if d.containers.start(&id).await? {
        Ok(api::no_content())
    } else {
        Ok(api::not_modified())
    }
}

fn stop_timeout(q: &HashMap<String, String>) -> ApiResult<Option<i64>> {
    Ok(number::<i64>(q, "t")?.or(number::<i64>(q, "timeout")?))
}

pub async fn stop(State(d): State<Shared>, Path(id): Path<String>, q: Query) -> ApiResult {
    let t = stop_timeout(&q)?;
    if d.containers
        .stop(
            &id,
            t,
            q.get("signal")
                .map(String::as_str)
                .filter(|s| !s.is_empty()),
        )
        .await?
    {
        Ok(api::no_content())
    } else {
        Ok(api::not_modified())
    }
}

pub async fn restart(State(d): State<Shared>, Path(id): Path<String>, q: Query) -> ApiResult {
    let t = stop_timeout(&q)?;
    d.containers
        .restart(
            &id,
            t,
            q.get("signal")
                .map(String::as_str)
                .filter(|s| !s.is_empty()),
        )
        .await?;
    Ok(api::no_content())
}

pub async fn kill(State(d): State<Shared>, Path(id): Path<String>, q: Query) -> ApiResult {
    d.containers
        .kill(&id, q.get("signal").map(String::as_str))?;
    Ok(api::no_content())
}

pub async fn wait(State(d): State<Shared>, Path(id): Path<String>, q: Query) -> ApiResult {
    let cond = match q.get("condition").map(String::as_str).unwrap_or("") {
        "" | "not-running" => WaitCondition::NotRunning,
        "next-exit" => WaitCondition::NextExit,
        "removed" => WaitCondition::Removed,
        other => return Err(ApiError::bad(format!("invalid condition: \"{other}\""))),
    };
    // Unknown container: an error now, not in the stream.
    d.containers.get(&id)?;
    // Headers go out at once (docker's client waits for them before it
    // starts the container); the status follows when the condition is met.
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let c = d.containers.clone();
    tokio::spawn(async move {
        let body = match c.wait(&id, cond).await {
            Ok((code, err)) => WaitResponse {
                status_code: code.into(),
                error: err.map(|message| WaitError { message }),
            },
            Err(e) => WaitResponse {
                status_code: -1,
                error: Some(WaitError {
                    message: e.to_string(),
                }),
            },
        };
        let mut b = serde_json::to_vec(&body).unwrap_or_default();
        b.push(b'\n');
        let _ = tx.send(Bytes::from(b)).await;
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        api::stream_body(rx),
    )
        .into_response())
}

pub async fn attach(
    State(d): State<Shared>,
    Path(id): Path<String>,
    q: Query,
    mut req: Request,
) -> ApiResult {
    let opts = AttachOptions {
        stdin: flag(&q, "stdin"),
        stdout: flag(&q, "stdout"),
        stderr: flag(&q, "stderr"),
        detach_keys: q.get("detachKeys").cloned().unwrap_or_default(),
    };
    if !flag(&q, "stream") && !flag(&q, "logs") {
        return Err(ApiError::bad("at least one of stream or logs must be true"));
    }
    let attached = d.containers.attach(&id, opts).await?;
    let ct = if attached.tty() {
        api::RAW_STREAM
    } else {
        api::MUX_STREAM
    };
    Ok(api::hijack(&mut req, ct, move |io| async move {
        if let Err(e) = attached.run(io).await {
            tracing::debug!("attach to {id}: {e}");
        }
    }))
}

/// One log entry as the client reads it.
fn log_chunk(e: &logs::Entry, tty: bool, timestamps: bool) -> Bytes {
    let mut payload = Vec::new();
    if timestamps {
        payload.extend_from_slice(e.time.as_bytes());
        payload.push(b' ');
    }
    payload.extend_from_slice(e.log.as_bytes());
    if tty {
        return Bytes::from(payload);
    }
    let stream = if e.stream == "stderr" { 2u8 } else { 1 };
    let mut out = vec![stream, 0, 0, 0];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&payload);
    Bytes::from(out)
}

pub async fn logs(State(d): State<Shared>, Path(id): Path<String>, q: Query) -> ApiResult {
    let r = d.containers.get(&id)?;
    let (out, err) = (flag(&q, "stdout"), flag(&q, "stderr"));
    if !out && !err {
        return Err(ApiError::bad("You must choose at least one stream"));
    }
    let follow = flag(&q, "follow");
    let timestamps = flag(&q, "timestamps");
    let tail: Option<usize> = match q.get("tail").map(String::as_str) {
        None | Some("") | Some("all") => None,
        Some(n) => Some(
            n.parse()
                .map_err(|_| ApiError::bad(format!("invalid value for tail: {n:?}")))?,
        ),
    };
    let since = q
        .get("since")
        .and_then(|s| s.split('.').next()?.parse::<i64>().ok())
        .filter(|s| *s > 0);
    let until = q
        .get("until")
        .and_then(|s| s.split('.').next()?.parse::<i64>().ok())
        .filter(|s| *s > 0);
    let tty = r.config.tty;
    let want = move |e: &logs::Entry| {
        (e.stream == "stdout" && out || e.stream == "stderr" && err)
            && since
                .is_none_or(|s| berth_engine::store::parse_time(&e.time).is_some_and(|t| t >= s))
            && until.is_none_or(|u| berth_engine::store::parse_time(&e.time).is_some_and(|t| t < u))
    };
    let path = d.containers.log_path(&r.id);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let c = d.containers.clone();
    let cid = r.id.clone();
    tokio::spawn(async move {
        let all: Vec<logs::Entry> = logs::read_all(&path)
            .into_iter()
            .filter(|e| want(e))
            .collect();
        let skip = tail.map_or(0, |n| all.len().saturating_sub(n));
        for e in &all[skip..] {
            if tx.send(log_chunk(e, tty, timestamps)).await.is_err() {
                return;
            }
        }
        if !follow {
            return;
        }
        // Follow the live file from its end while the container runs (or restarts).
        let mut offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        loop {
            let live = c
                .get(&cid)
                .map(|r| r.status.is_live() || r.status == Status::Restarting)
                .unwrap_or(false);
            let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if len < offset {
                offset = 0; // rotated
            }
            if len > offset {
                if let Ok(f) = std::fs::File::open(&path) {
                    use std::io::{Seek, SeekFrom};
                    let mut f = f;
                    if f.seek(SeekFrom::Start(offset)).is_ok() {
                        let (entries, used) = logs::parse(std::io::BufReader::new(f));
                        offset += used;
                        for e in entries.iter().filter(|e| want(e)) {
                            if tx.send(log_chunk(e, tty, timestamps)).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                continue;
            }
            if !live || tx.is_closed() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    });
    let ct = if tty {
        api::RAW_STREAM
    } else {
        api::MUX_STREAM
    };
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, ct)],
        api::stream_body(rx),
    )
        .into_response())
}

pub async fn top(State(d): State<Shared>, Path(id): Path<String>, q: Query) -> ApiResult {
    let (titles, rows) = d
        .containers
        .top(&id, q.get("ps_args").map(String::as_str).unwrap_or(""))
        .await?;
    Ok(api::json(
        StatusCode::OK,
        TopResponse {
            titles,
            processes: rows,
        },
    ))
}

/// Host CPU time in nanoseconds (the first line of /proc/stat).
fn system_cpu_ns() -> u64 {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = s
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    ticks * (1_000_000_000 / hz)
}

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// One stats sample; `pre` is the previous one (its CPU figures are the base
/// of a percentage).
fn stats_sample(d: &Shared, id: &str, name: &str, pre: Option<&Stats>) -> ApiResult<Stats> {
    let s = d.containers.stats(id)?;
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let Some(s) = s else {
        return Ok(Stats {
            read: ZERO_TIME.into(),
            preread: ZERO_TIME.into(),
            id: id.into(),
            name: format!("/{name}"),
            ..Default::default()
        });
    };
    let cpu = s.cpu.unwrap_or_default();
    let mem = s.memory.unwrap_or_default();
    let io =
        s.io.iter()
            .flat_map(|d| {
                [("read", d.read_bytes), ("write", d.write_bytes)].map(|(op, value)| BlkioEntry {
                    major: d.major,
                    minor: d.minor,
                    op: op.into(),
                    value,
                })
            })
            .collect();
    Ok(Stats {
        read: berth_engine::store::now(),
        preread: pre.map_or_else(|| ZERO_TIME.into(), |p| p.read.clone()),
        id: id.into(),
        name: format!("/{name}"),
        num_procs: Some(0),
        pids_stats: PidsStats {
            current: Some(s.pids.as_ref().map(|p| p.current).unwrap_or(0)),
            limit: Some(s.pids.as_ref().and_then(|p| p.limit)),
        },
        blkio_stats: BlkioStats {
            io_service_bytes_recursive: Some(io),
        },
        cpu_stats: CpuStats {
            cpu_usage: CpuUsage {
                total_usage: cpu.usage_ns,
                usage_in_usermode: Some(cpu.user_ns.unwrap_or(0)),
                usage_in_kernelmode: Some(cpu.system_ns.unwrap_or(0)),
            },
            system_cpu_usage: Some(system_cpu_ns()),
            online_cpus: Some(ncpu),
            throttling_data: ThrottlingData {
                periods: Some(cpu.periods.unwrap_or(0)),
                throttled_periods: Some(cpu.throttled_periods.unwrap_or(0)),
                throttled_time: Some(cpu.throttled_ns.unwrap_or(0)),
            },
        },
        precpu_stats: pre.map(|p| p.cpu_stats.clone()).unwrap_or_default(),
        memory_stats: MemoryStats {
            usage: Some(mem.usage),
            max_usage: Some(mem.max_usage),
            limit: Some(mem.limit.unwrap_or_else(host_memory)),
            failcnt: Some(mem.failcnt),
            stats: Some(Default::default()),
        },
    })
}

fn host_memory() -> u64 {
    let s = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|k| k * 1024)
        .unwrap_or(0)
}

pub async fn stats(State(d): State<Shared>, Path(id): Path<String>, q: Query) -> ApiResult {
    let r = d.containers.get(&id)?;
    let stream = q
        .get("stream")
        .is_none_or(|v| flag(&q, "stream") || v.is_empty());
    let one_shot = flag(&q, "one-shot");
    if !stream {
        // docker samples twice a second apart unless one-shot, so CPU % has a base.
        let pre = if one_shot {
            None
        } else {
            let p = stats_sample(&d, &r.id, &r.name, None)?;
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            Some(p)
        };
        return Ok(api::json(
            StatusCode::OK,
            stats_sample(&d, &r.id, &r.name, pre.as_ref())?,
        ));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    tokio::spawn(async move {
        let mut pre = None;
        loop {
            let Ok(v) = stats_sample(&d, &r.id, &r.name, pre.as_ref()) else {
                return;
            };
            let mut b = serde_json::to_vec(&v).unwrap_or_default();
            b.push(b'\n');
            if tx.send(Bytes::from(b)).await.is_err() {
                return;
            }
            pre = Some(v);
            if !d.containers.get(&r.id).is_ok_and(|r| r.status.is_live()) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        api::stream_body(rx),
    )
        .into_response())
}

pub async fn rename(State(d): State<Shared>, Path(id): Path<String>, q: Query) -> ApiResult {
    let name = q
        .get("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad("Neither old nor new names may be empty"))?;
    d.containers.rename(&id, name)?;
    Ok(api::no_content())
}

pub async fn pause(State(d): State<Shared>, Path(id): Path<String>) -> ApiResult {
    d.containers.pause(&id)?;
    Ok(api::no_content())
}

pub async fn unpause(State(d): State<Shared>, Path(id): Path<String>) -> ApiResult {
    d.containers.unpause(&id)?;
    Ok(api::no_content())
}

pub async fn resize(State(d): State<Shared>, Path(id): Path<String>, q: Query) -> ApiResult {
    let h: u16 = number(&q, "h")?.unwrap_or(0);
    let w: u16 = number(&q, "w")?.unwrap_or(0);
    d.containers.resize(&id, h, w).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn remove(State(d): State<Shared>, Path(id): Path<String>, q: Query) -> ApiResult {
    d.containers
        .remove(&id, flag(&q, "force"), flag(&q, "v"))
        .await?;
    Ok(api::no_content())
}

/// Runs `berth archive` on a container's root filesystem.
fn archive_cmd(rootfs: &std::path::Path) -> tokio::process::Command {
    let exe = std::env::current_exe().unwrap_or_else(|_| "berth".into());
    let mut c = tokio::process::Command::new(exe);
    c.arg("archive")
        .arg("--rootfs")
        .arg(rootfs)
        .kill_on_drop(true);
    c
}

fn path_param(q: &std::collections::HashMap<String, String>) -> ApiResult<String> {
    q.get("path")
        .filter(|p| !p.is_empty())
        .cloned()
        .ok_or_else(|| ApiError::bad("path is required"))
}

async fn stat_of(d: &Shared, id: &str, path: &str) -> ApiResult<(String, PathStat)> {
    let (cid, rootfs, ours) = d.containers.rootfs(id).await?;
    let out = archive_cmd(&rootfs).arg("--stat").arg(path).output().await;
    if ours {
        d.containers.release_rootfs(&cid).await;
    }
    let out = out.map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    if !out.status.success() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("Could not find the file {path} in container {id}"),
        ));
    }
    let v: PathStat = serde_json::from_slice(&out.stdout).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading the stat of {path}: {e}"),
        )
    })?;
    Ok((cid, v))
}

fn stat_header(v: &PathStat) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(serde_json::to_string(v).unwrap_or_default())
}

pub async fn archive_head(State(d): State<Shared>, Path(id): Path<String>, q: Query) -> ApiResult {
    let path = path_param(&q)?;
    let (_, v) = stat_of(&d, &id, &path).await?;
    Ok((
        StatusCode::OK,
        [("X-Docker-Container-Path-Stat", stat_header(&v))],
    )
        .into_response())
}

pub async fn archive_get(State(d): State<Shared>, Path(id): Path<String>, q: Query) -> ApiResult {
    let path = path_param(&q)?;
    let (_, v) = stat_of(&d, &id, &path).await?;
    let (cid, rootfs, ours) = d.containers.rootfs(&id).await?;
    let out = archive_cmd(&rootfs).arg("--get").arg(&path).output().await;
    if ours {
        d.containers.release_rootfs(&cid).await;
    }
    let out = out.map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    if !out.status.success() {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok((
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE.as_str(),
                "application/x-tar".to_string(),
            ),
            ("X-Docker-Container-Path-Stat", stat_header(&v)),
        ],
        out.stdout,
    )
        .into_response())
}

pub async fn archive_put(
    State(d): State<Shared>,
    Path(id): Path<String>,
    q: Query,
    body: Bytes,
) -> ApiResult {
    use tokio::io::AsyncWriteExt as _;
    let path = path_param(&q)?;
    let (cid, rootfs, ours) = d.containers.rootfs(&id).await?;
    let run = async {
        let mut child = archive_cmd(&rootfs)
            .arg("--put")
            .arg(&path)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        if let Some(mut i) = child.stdin.take() {
            i.write_all(&body).await?;
        }
        child.wait_with_output().await
    };
    let out = run.await;
    if ours {
        d.containers.release_rootfs(&cid).await;
    }
    let out = out.map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr)
            .trim()
            .trim_start_matches("berth: ")
            .to_string();
        let status = if msg.contains("Could not find") {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::BAD_REQUEST
        };
        return Err(ApiError::new(status, msg));
    }
    Ok(StatusCode::OK.into_response())
}
