//! `GET /containers/{id}/stats`: a container's resource usage from its
//! cgroup, one sample or a stream of them a second apart.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use bytes::Bytes;

use crate::api::stats::{
    BlkioEntry, BlkioStats, CpuStats, CpuUsage, MemoryStats, PidsStats, Stats, ThrottlingData,
};

use super::api::{self, flag, ApiResult, Query};
use super::Shared;

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
