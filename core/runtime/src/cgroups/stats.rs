//! Resource usage of a cgroup (memory, CPU, pids, block I/O, hugetlb) read from the v1 or v2
//! interface files into one serializable shape. Times are in nanoseconds on both versions.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{fs, Cgroup, CgroupError};

/// v1 reports "unlimited" as the largest page-aligned i64.
const V1_UNLIMITED: u64 = 0x7FFF_FFFF_FFFF_F000;
/// `cpuacct.stat` counts in USER_HZ, which is 100 on every architecture Linux's ABI exposes.
const NS_PER_USER_HZ_TICK: u64 = 10_000_000;

/// Everything `stats` could read; a section is `None` (or empty) when its controller is absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Memory usage and limits.
    pub memory: Option<MemoryStats>,
    /// CPU time and throttling.
    pub cpu: Option<CpuStats>,
    /// Process count.
    pub pids: Option<PidsStats>,
    /// Bytes and operations per block device.
    pub io: Vec<IoDeviceStats>,
    /// Hugetlb usage per page size (`2MB`, `1GB`).
    pub hugetlb: BTreeMap<String, HugetlbStats>,
}

/// Memory usage in bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryStats {
    /// Current usage.
    pub usage: u64,
    /// Highest usage seen, where the kernel tracks it.
    pub max_usage: Option<u64>,
    /// The limit; `None` when unlimited.
    pub limit: Option<u64>,
    /// Times the limit was hit.
    pub failcnt: Option<u64>,
    /// Processes killed by the OOM killer.
    pub oom_kills: Option<u64>,
    /// Swap in use, where swap is accounted.
    pub swap_usage: Option<u64>,
}

/// CPU time in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuStats {
    /// Total CPU time.
    pub usage_ns: u64,
    /// Time in user mode.
    pub user_ns: Option<u64>,
    /// Time in kernel mode.
    pub system_ns: Option<u64>,
    /// CFS enforcement periods elapsed.
    pub periods: Option<u64>,
    /// Periods in which the cgroup was throttled.
    pub throttled_periods: Option<u64>,
    /// Total time throttled.
    pub throttled_ns: Option<u64>,
}

/// Process count.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidsStats {
    /// Processes (and threads) now.
    pub current: u64,
    /// The limit; `None` when unlimited.
    pub limit: Option<u64>,
}

/// Block I/O of one device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoDeviceStats {
    /// Device major number.
    pub major: u64,
    /// Device minor number.
    pub minor: u64,
    /// Bytes read.
    pub read_bytes: u64,
    /// Bytes written.
    pub write_bytes: u64,
    /// Read operations.
    pub read_ios: u64,
    /// Write operations.
    pub write_ios: u64,
}

/// Hugetlb usage of one page size, in bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HugetlbStats {
    /// Current usage.
    pub usage: u64,
    /// Highest usage seen (v1 only).
    pub max_usage: Option<u64>,
    /// Times the limit was hit.
    pub failcnt: Option<u64>,
}

pub(crate) fn read(cg: &Cgroup) -> Result<Stats, CgroupError> {
    let v2 = if cg.v1.is_empty() {
        cg.unified_path()
    } else {
        None
    };
    let memory = match (cg.v1_dir("memory"), v2) {
        (Some(d), _) => memory_v1(d)?,
        (None, Some(d)) => memory_v2(d)?,
        _ => None,
    };
    let cpu = match (cg.v1_dir("cpuacct"), v2) {
        (Some(d), _) => cpu_v1(d, cg.v1_dir("cpu"))?,
        (None, Some(d)) => cpu_v2(d)?,
        _ => None,
    };
    let pids = match cg.v1_dir("pids").or(v2) {
        Some(d) => match fs::read_u64_opt(&d.join("pids.current"))? {
            Some(current) => Some(PidsStats {
                current,
                limit: fs::read_max_opt(&d.join("pids.max"))?,
            }),
            None => None,
        },
        None => None,
    };
    let io = match (cg.v1_dir("blkio"), v2) {
        (Some(d), _) => io_v1(d)?,
        (None, Some(d)) => io_v2(d)?,
        _ => Vec::new(),
    };
    let hugetlb = match (cg.v1_dir("hugetlb"), cg.unified_path()) {
        (Some(d), _) => hugetlb(d, false)?,
        (None, Some(d)) => hugetlb(d, true)?,
        _ => BTreeMap::new(),
    };
    Ok(Stats {
        memory,
        cpu,
        pids,
        io,
        hugetlb,
    })
}

fn memory_v1(d: &Path) -> Result<Option<MemoryStats>, CgroupError> {
    let Some(usage) = fs::read_u64_opt(&d.join("memory.usage_in_bytes"))? else {
        return Ok(None);
    };
    let oom = d.join("memory.oom_control");
    let oom_kills = match fs::read_opt(&oom)? {
        Some(text) => fs::flat_key(&oom, &text, "oom_kill")?,
        None => None,
    };
    let memsw = fs::read_u64_opt(&d.join("memory.memsw.usage_in_bytes"))?;
    Ok(Some(MemoryStats {
        usage,
        max_usage: fs::read_u64_opt(&d.join("memory.max_usage_in_bytes"))?,
        limit: fs::read_u64_opt(&d.join("memory.limit_in_bytes"))?.filter(|l| *l < V1_UNLIMITED),
        failcnt: fs::read_u64_opt(&d.join("memory.failcnt"))?,
        oom_kills,
        swap_usage: memsw.map(|m| m.saturating_sub(usage)),
    }))
}

fn memory_v2(d: &Path) -> Result<Option<MemoryStats>, CgroupError> {
    let Some(usage) = fs::read_u64_opt(&d.join("memory.current"))? else {
        return Ok(None);
    };
    let events = d.join("memory.events");
    let text = fs::read_opt(&events)?.unwrap_or_default();
    Ok(Some(MemoryStats {
        usage,
        max_usage: fs::read_u64_opt(&d.join("memory.peak"))?,
        limit: fs::read_max_opt(&d.join("memory.max"))?,
        failcnt: fs::flat_key(&events, &text, "max")?,
        oom_kills: fs::flat_key(&events, &text, "oom_kill")?,
        swap_usage: fs::read_u64_opt(&d.join("memory.swap.current"))?,
    }))
}

fn cpu_v1(acct: &Path, cpu: Option<&Path>) -> Result<Option<CpuStats>, CgroupError> {
    let Some(usage_ns) = fs::read_u64_opt(&acct.join("cpuacct.usage"))? else {
        return Ok(None);
    };
    let mut user_ns = fs::read_u64_opt(&acct.join("cpuacct.usage_user"))?;
    let mut system_ns = fs::read_u64_opt(&acct.join("cpuacct.usage_sys"))?;
    let stat = acct.join("cpuacct.stat");
    if let Some(text) = fs::read_opt(&stat)? {
        let ticks = |k| fs::flat_key(&stat, &text, k).map(|v| v.map(|t| t * NS_PER_USER_HZ_TICK));
        user_ns = user_ns.or(ticks("user")?);
        system_ns = system_ns.or(ticks("system")?);
    }
    let mut s = CpuStats {
        usage_ns,
        user_ns,
        system_ns,
        ..CpuStats::default()
    };
    if let Some(path) = cpu.map(|c| c.join("cpu.stat")) {
        if let Some(text) = fs::read_opt(&path)? {
            s.periods = fs::flat_key(&path, &text, "nr_periods")?;
            s.throttled_periods = fs::flat_key(&path, &text, "nr_throttled")?;
            s.throttled_ns = fs::flat_key(&path, &text, "throttled_time")?;
        }
    }
    Ok(Some(s))
}

fn cpu_v2(d: &Path) -> Result<Option<CpuStats>, CgroupError> {
    let path = d.join("cpu.stat");
    let Some(text) = fs::read_opt(&path)? else {
        return Ok(None);
    };
    let ns = |k| fs::flat_key(&path, &text, k).map(|v| v.map(|us| us * 1000));
    Ok(Some(CpuStats {
        usage_ns: ns("usage_usec")?.unwrap_or(0),
        user_ns: ns("user_usec")?,
        system_ns: ns("system_usec")?,
        periods: fs::flat_key(&path, &text, "nr_periods")?,
        throttled_periods: fs::flat_key(&path, &text, "nr_throttled")?,
        throttled_ns: ns("throttled_usec")?,
    }))
}

fn device(path: &Path, dev: &str) -> Result<(u64, u64), CgroupError> {
    let (maj, min) = dev.split_once(':').ok_or_else(|| CgroupError::Parse {
        path: path.to_path_buf(),
        content: dev.to_string(),
    })?;
    Ok((fs::parse_u64(path, maj)?, fs::parse_u64(path, min)?))
}

fn entry(devs: &mut Vec<IoDeviceStats>, (major, minor): (u64, u64)) -> &mut IoDeviceStats {
    let i = match devs
        .iter()
        .position(|d| d.major == major && d.minor == minor)
    {
        Some(i) => i,
        None => {
            devs.push(IoDeviceStats {
                major,
                minor,
                ..IoDeviceStats::default()
            });
            devs.len() - 1
        }
    };
    &mut devs[i]
}

fn io_v1(d: &Path) -> Result<Vec<IoDeviceStats>, CgroupError> {
    let mut devs = Vec::new();
    for (file, bytes) in [("io_service_bytes", true), ("io_serviced", false)] {
        let recursive = d.join(format!("blkio.throttle.{file}_recursive"));
        let path = if recursive.exists() {
            recursive
        } else {
            d.join(format!("blkio.throttle.{file}"))
        };
        for line in fs::read_opt(&path)?.unwrap_or_default().lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let [dev, op, n] = f[..] else { continue };
            let n = fs::parse_u64(&path, n)?;
            let e = entry(&mut devs, device(&path, dev)?);
            match (op, bytes) {
                ("Read", true) => e.read_bytes = n,
                ("Write", true) => e.write_bytes = n,
                ("Read", false) => e.read_ios = n,
                ("Write", false) => e.write_ios = n,
                _ => {}
            }
        }
    }
    Ok(devs)
}

fn io_v2(d: &Path) -> Result<Vec<IoDeviceStats>, CgroupError> {
    let path = d.join("io.stat");
    let mut devs = Vec::new();
    for line in fs::read_opt(&path)?.unwrap_or_default().lines() {
        let mut f = line.split_whitespace();
        let Some(dev) = f.next() else { continue };
        let e = entry(&mut devs, device(&path, dev)?);
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let v = fs::parse_u64(&path, v)?;
            match k {
                "rbytes" => e.read_bytes = v,
                "wbytes" => e.write_bytes = v,
                "rios" => e.read_ios = v,
                "wios" => e.write_ios = v,
                _ => {}
            }
        }
    }
    Ok(devs)
}

fn hugetlb(d: &Path, v2: bool) -> Result<BTreeMap<String, HugetlbStats>, CgroupError> {
    let usage_suffix = if v2 { ".current" } else { ".usage_in_bytes" };
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(d) else {
        return Ok(out);
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(size) = name
            .strip_prefix("hugetlb.")
            .and_then(|n| n.strip_suffix(usage_suffix))
            .filter(|s| !s.contains('.'))
        else {
            continue;
        };
        let Some(usage) = fs::read_u64_opt(&e.path())? else {
            continue;
        };
        let s = if v2 {
            let events = d.join(format!("hugetlb.{size}.events"));
            let text = fs::read_opt(&events)?.unwrap_or_default();
            HugetlbStats {
                usage,
                max_usage: None,
                failcnt: fs::flat_key(&events, &text, "max")?,
            }
        } else {
            HugetlbStats {
                usage,
                max_usage: fs::read_u64_opt(&d.join(format!("hugetlb.{size}.max_usage_in_bytes")))?,
                failcnt: fs::read_u64_opt(&d.join(format!("hugetlb.{size}.failcnt")))?,
            }
        };
        out.insert(size.to_string(), s);
    }
    Ok(out)
}
