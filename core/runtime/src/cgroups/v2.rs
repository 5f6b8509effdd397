//! cgroup v2 resource writers for one cgroup2 directory: the whole cgroup on a v2 host, and on
//! a hybrid host the side mount's directory (hugetlb, unified keys, device programs).

use std::collections::HashMap;
use std::path::Path;

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxRdma, LinuxResources,
};

use super::{devices, fs, CgroupError};

/// Applies every resource of `r` to the cgroup2 directory `dir` (a pure v2 host).
pub(crate) fn apply(dir: &Path, r: &LinuxResources) -> Result<(), CgroupError> {
    if let Some(cpu) = r.cpu() {
        self::cpu(dir, cpu)?;
    }
    if let Some(m) = r.memory() {
        memory(dir, m)?;
    }
    if let Some(p) = r.pids() {
        fs::write_setting(dir, "pids.max", &pids_value(p.limit()), "pids.limit")?;
    }
    if let Some(b) = r.block_io() {
        io(dir, b)?;
    }
    if let Some(h) = r.hugepage_limits() {
        hugetlb(dir, h)?;
    }
    if let Some(n) = r.network() {
        if n.class_id().is_some() || n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            return Err(unsupported(
                "network",
                "cgroup v2 has no net_cls/net_prio controllers; classify traffic with nftables or BPF instead",
            ));
        }
    }
    if let Some(rdma) = r.rdma() {
        self::rdma(dir, rdma)?;
    }
    if let Some(d) = r.devices() {
        devices::attach_device_filter(dir, d)?;
    }
    if let Some(u) = r.unified() {
        unified(dir, u)?;
    }
    Ok(())
}

pub(crate) fn unsupported(setting: &str, reason: &str) -> CgroupError {
    CgroupError::Unsupported {
        setting: setting.to_string(),
        reason: reason.to_string(),
    }
}

pub(crate) fn invalid(setting: &str, reason: String) -> CgroupError {
    CgroupError::InvalidValue {
        setting: setting.to_string(),
        reason,
    }
}

/// Turns on, in every ancestor of `root/rel`, the controllers that ancestor has, so the new
/// cgroup gets their interface files. Failures are logged, not fatal: a controller that cannot
/// be enabled only matters if a limit needs it, and that write then says which file is missing.
pub(crate) fn enable_controllers(root: &Path, rel: &Path) {
    let mut dir = root.to_path_buf();
    for comp in rel.components() {
        let available = fs::read_opt(&dir.join("cgroup.controllers")).ok().flatten();
        let enabled = fs::read_opt(&dir.join("cgroup.subtree_control"))
            .ok()
            .flatten()
            .unwrap_or_default();
        for c in available.as_deref().unwrap_or("").split_whitespace() {
            if enabled.split_whitespace().any(|e| e == c) {
                continue;
            }
            let file = dir.join("cgroup.subtree_control");
            if let Err(e) = fs::write_file(&file, &format!("+{c}")) {
                tracing::warn!(error = %e, "cannot enable a cgroup2 controller");
            }
        }
        dir.push(comp);
    }
}

/// `cpu.weight` from OCI (v1) `cpu.shares`, the conversion runc and crun use.
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// `io.weight` from an OCI (v1) blkio weight.
pub(crate) fn blkio_to_io_weight(weight: u16) -> u64 {
    let w = u64::from(weight.clamp(10, 1000));
    1 + ((w - 10) * 9999) / 990
}

pub(crate) fn pids_value(limit: i64) -> String {
    if limit <= 0 {
        "max".into()
    } else {
        limit.to_string()
    }
}

fn max_or(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

fn cpu(dir: &Path, cpu: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(shares) = cpu.shares().filter(|s| *s != 0) {
        let weight = shares_to_weight(shares).to_string();
        fs::write_setting(dir, "cpu.weight", &weight, "cpu.shares")?;
    }
    let quota = cpu.quota().filter(|q| *q != 0);
    let period = cpu.period().filter(|p| *p != 0);
    if quota.is_some() || period.is_some() {
        let path = dir.join("cpu.max");
        let current = fs::read_opt(&path)?.unwrap_or_default();
        let mut cur = current.split_whitespace();
        let cur_quota = cur.next().unwrap_or("max").to_string();
        let cur_period = cur.next().unwrap_or("100000").to_string();
        let quota = quota.map_or(
            cur_quota,
            |q| if q < 0 { "max".into() } else { q.to_string() },
        );
        let period = period.map_or(cur_period, |p| p.to_string());
        fs::write_setting(dir, "cpu.max", &format!("{quota} {period}"), "cpu.quota")?;
    }
    if let Some(burst) = cpu.burst() {
        fs::write_setting(dir, "cpu.max.burst", &burst.to_string(), "cpu.burst")?;
    }
    if let Some(idle) = cpu.idle() {
        fs::write_setting(dir, "cpu.idle", &idle.to_string(), "cpu.idle")?;
    }
    if cpu.realtime_runtime().is_some_and(|v| v != 0)
        || cpu.realtime_period().is_some_and(|v| v != 0)
    {
        return Err(unsupported(
            "cpu.realtimeRuntime/realtimePeriod",
            "cgroup v2 has no realtime group scheduling",
        ));
    }
    if let Some(cpus) = cpu.cpus().as_deref().filter(|s| !s.is_empty()) {
        fs::write_setting(dir, "cpuset.cpus", cpus, "cpu.cpus")?;
    }
    if let Some(mems) = cpu.mems().as_deref().filter(|s| !s.is_empty()) {
        fs::write_setting(dir, "cpuset.mems", mems, "cpu.mems")?;
    }
    Ok(())
}

/// `memory.swap.max` from OCI `memory.swap` (memory+swap, as v1 has it) and `memory.limit`.
/// `None` when there is nothing to write (a swap of 0 means unset, as in runc).
pub(crate) fn swap_value(swap: i64, limit: Option<i64>) -> Result<Option<String>, CgroupError> {
    match (swap, limit) {
        (0, _) => Ok(None),
        (s, _) if s < 0 => Ok(Some("max".into())),
        (s, Some(l)) if l > 0 && s >= l => Ok(Some((s - l).to_string())),
        (s, Some(l)) if l > 0 => Err(invalid(
            "memory.swap",
            format!("memory+swap {s} is below the memory limit {l}"),
        )),
        _ => Err(invalid(
            "memory.swap",
            "a swap limit needs a memory limit on cgroup v2".into(),
        )),
    }
}

fn memory(dir: &Path, m: &LinuxMemory) -> Result<(), CgroupError> {
    if m.check_before_update() == Some(true) {
        if let Some(limit) = m.limit().filter(|l| *l > 0) {
            check_usage(&dir.join("memory.current"), limit)?;
        }
    }
    if let Some(swap) = m.swap() {
        if let Some(v) = swap_value(swap, m.limit())? {
            fs::write_setting(dir, "memory.swap.max", &v, "memory.swap")?;
        }
    } else if m.limit() == Some(-1) && dir.join("memory.swap.max").exists() {
        fs::write_setting(dir, "memory.swap.max", "max", "memory.swap")?;
    }
    if let Some(limit) = m.limit() {
        fs::write_setting(dir, "memory.max", &max_or(limit), "memory.limit")?;
    }
    if let Some(low) = m.reservation() {
        fs::write_setting(dir, "memory.low", &max_or(low), "memory.reservation")?;
    }
    if m.swappiness().is_some() {
        return Err(unsupported(
            "memory.swappiness",
            "cgroup v2 has no per-cgroup swappiness",
        ));
    }
    if m.disable_oom_killer() == Some(true) {
        return Err(unsupported(
            "memory.disableOOMKiller",
            "cgroup v2 cannot disable the OOM killer",
        ));
    }
    if m.kernel().is_some() || m.kernel_tcp().is_some() {
        return Err(unsupported(
            "memory.kernel/kernelTCP",
            "cgroup v2 counts kernel memory in memory.max; drop the setting",
        ));
    }
    if m.use_hierarchy() == Some(false) {
        return Err(unsupported(
            "memory.useHierarchy",
            "cgroup v2 is always hierarchical",
        ));
    }
    Ok(())
}

/// Refuses a memory limit below current usage (OCI `checkBeforeUpdate`).
pub(crate) fn check_usage(usage_file: &Path, limit: i64) -> Result<(), CgroupError> {
    if let Some(usage) = fs::read_u64_opt(usage_file)? {
        if (limit as u64) < usage {
            return Err(invalid(
                "memory.limit",
                format!(
                    "{limit} is below the current usage {usage} ({})",
                    usage_file.display()
                ),
            ));
        }
    }
    Ok(())
}

fn io(dir: &Path, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    let bfq = dir.join("io.bfq.weight").exists();
    let weight_file = if bfq { "io.bfq.weight" } else { "io.weight" };
    let weight = |w: u16| {
        if bfq {
            w.to_string()
        } else {
            blkio_to_io_weight(w).to_string()
        }
    };
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        fs::write_setting(dir, weight_file, &weight(w), "blockIO.weight")?;
    }
    if b.leaf_weight().is_some() {
        return Err(unsupported(
            "blockIO.leafWeight",
            "cgroup v2 has no leaf weights",
        ));
    }
    for d in b.weight_device().iter().flatten() {
        if d.leaf_weight().is_some() {
            return Err(unsupported(
                "blockIO.weightDevice.leafWeight",
                "cgroup v2 has no leaf weights",
            ));
        }
        if let Some(w) = d.weight() {
            let line = format!("{}:{} {}", d.major(), d.minor(), weight(w));
            fs::write_setting(dir, weight_file, &line, "blockIO.weightDevice")?;
        }
    }
    let throttles = [
        ("rbps", b.throttle_read_bps_device()),
        ("wbps", b.throttle_write_bps_device()),
        ("riops", b.throttle_read_iops_device()),
        ("wiops", b.throttle_write_iops_device()),
    ];
    for (key, devs) in throttles {
        for d in devs.iter().flatten() {
            let rate = if d.rate() == 0 {
                "max".to_string()
            } else {
                d.rate().to_string()
            };
            let line = format!("{}:{} {key}={rate}", d.major(), d.minor());
            fs::write_setting(dir, "io.max", &line, "blockIO.throttle")?;
        }
    }
    Ok(())
}

/// Checks a hugepage size such as `2MB` before it becomes part of a file name.
pub(crate) fn page_size(size: &str) -> Result<&str, CgroupError> {
    let digits = size.trim_end_matches(['K', 'M', 'G', 'B']);
    let unit = &size[digits.len()..];
    if !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && ["KB", "MB", "GB"].contains(&unit)
    {
        Ok(size)
    } else {
        Err(invalid(
            "hugepageLimits.pageSize",
            format!("{size:?} is not like 2MB or 1GB"),
        ))
    }
}

pub(crate) fn hugetlb(dir: &Path, limits: &[LinuxHugepageLimit]) -> Result<(), CgroupError> {
    for h in limits {
        let size = page_size(h.page_size())?;
        let value = max_or(h.limit());
        let setting = format!("hugepageLimits[{size}]");
        fs::write_setting(dir, &format!("hugetlb.{size}.max"), &value, &setting)?;
        let rsvd = format!("hugetlb.{size}.rsvd.max");
        if dir.join(&rsvd).exists() {
            fs::write_setting(dir, &rsvd, &value, &setting)?;
        }
    }
    Ok(())
}

pub(crate) fn rdma(dir: &Path, rdma: &HashMap<String, LinuxRdma>) -> Result<(), CgroupError> {
    for (dev, l) in rdma {
        if dev.is_empty() || dev.contains(char::is_whitespace) {
            return Err(invalid("rdma", format!("bad device name {dev:?}")));
        }
        let mut line = dev.clone();
        if let Some(h) = l.hca_handles() {
            line += &format!(" hca_handle={h}");
        }
        if let Some(o) = l.hca_objects() {
            line += &format!(" hca_object={o}");
        }
        if line.len() > dev.len() {
            fs::write_setting(dir, "rdma.max", &line, &format!("rdma[{dev}]"))?;
        }
    }
    Ok(())
}

/// Writes `linux.resources.unified` verbatim, each key being an interface file of `dir`.
pub(crate) fn unified(dir: &Path, map: &HashMap<String, String>) -> Result<(), CgroupError> {
    let mut keys: Vec<_> = map.keys().collect();
    keys.sort();
    for key in keys {
        let setting = format!("unified[{key:?}]");
        if key.is_empty() || key.contains('/') || key.starts_with('.') {
            return Err(invalid(
                &setting,
                "a key must be an interface file name".into(),
            ));
        }
        fs::write_setting(dir, key, &map[key], &setting)?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "v2_tests.rs"]
mod tests;
