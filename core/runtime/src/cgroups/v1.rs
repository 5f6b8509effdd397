//! cgroup v1 resource writers, one controller directory each; in hybrid mode the settings only
//! the cgroup2 side mount can take (hugetlb when not mounted as v1, device programs when the
//! devices controller is missing, unified keys) go to the container's directory there.

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxNetwork, LinuxResources};

use super::v2::{check_usage, invalid, page_size, pids_value, unsupported};
use super::{devices, fs, v2, Cgroup, CgroupError};

/// Applies every resource of `r` to a v1 (or hybrid) cgroup.
pub(crate) fn apply(cg: &Cgroup, r: &LinuxResources) -> Result<(), CgroupError> {
    if let Some(cpu) = r.cpu() {
        self::cpu(cg, cpu)?;
    }
    if let Some(m) = r.memory() {
        memory(dir(cg, "memory", "memory")?, m)?;
    }
    if let Some(p) = r.pids() {
        let d = dir(cg, "pids", "pids.limit")?;
        fs::write_setting(d, "pids.max", &pids_value(p.limit()), "pids.limit")?;
    }
    if let Some(b) = r.block_io() {
        blkio(dir(cg, "blkio", "blockIO")?, b)?;
    }
    if let Some(h) = r.hugepage_limits().as_ref().filter(|h| !h.is_empty()) {
        match (cg.v1_dir("hugetlb"), cg.unified_path()) {
            (Some(d), _) => hugetlb(d, h)?,
            (None, Some(u)) => v2::hugetlb(u, h)?,
            (None, None) => return Err(not_mounted("hugepageLimits", "hugetlb")),
        }
    }
    if let Some(n) = r.network() {
        network(cg, n)?;
    }
    if let Some(rdma) = r.rdma().as_ref().filter(|r| !r.is_empty()) {
        match (cg.v1_dir("rdma"), cg.unified_path()) {
            (Some(d), _) | (None, Some(d)) => v2::rdma(d, rdma)?,
            (None, None) => return Err(not_mounted("rdma", "rdma")),
        }
    }
    if let Some(d) = r.devices() {
        match (cg.v1_dir("devices"), cg.unified_path()) {
            (Some(dir), _) => devices::apply_v1(dir, d)?,
            (None, Some(u)) => devices::attach_device_filter(u, d)?,
            (None, None) => return Err(not_mounted("devices", "devices")),
        }
    }
    if let Some(u) = r.unified().as_ref().filter(|u| !u.is_empty()) {
        match cg.unified_path() {
            Some(dir) => v2::unified(dir, u)?,
            None => {
                return Err(unsupported(
                    "unified",
                    "this host has only cgroup v1 hierarchies; use the v1 settings instead",
                ))
            }
        }
    }
    Ok(())
}

fn not_mounted(setting: &str, controller: &str) -> CgroupError {
    unsupported(
        setting,
        &format!("the {controller} controller is not mounted"),
    )
}

fn dir<'a>(cg: &'a Cgroup, controller: &str, setting: &str) -> Result<&'a Path, CgroupError> {
    cg.v1_dir(controller)
        .ok_or_else(|| not_mounted(setting, controller))
}

/// Gives every new cpuset directory below `mount` the CPUs and memory nodes of its parent: a
/// v1 cpuset starts empty and would refuse processes.
pub(crate) fn init_cpuset(mount: &Path, rel: &Path) -> Result<(), CgroupError> {
    let mut parent = mount.to_path_buf();
    for comp in rel.components() {
        let dir = parent.join(comp);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let own = fs::read_opt(&dir.join(file))?;
            if own.is_some_and(|v| v.trim().is_empty()) {
                if let Some(p) = fs::read_opt(&parent.join(file))?.filter(|p| !p.trim().is_empty())
                {
                    fs::write_file(&dir.join(file), p.trim())?;
                }
            }
        }
        parent = dir;
    }
    Ok(())
}

fn cpu(cg: &Cgroup, cpu: &LinuxCpu) -> Result<(), CgroupError> {
    let has_cpu_setting = cpu.shares().is_some_and(|v| v != 0)
        || cpu.quota().is_some_and(|v| v != 0)
        || cpu.period().is_some_and(|v| v != 0)
        || cpu.burst().is_some()
        || cpu.idle().is_some()
        || cpu.realtime_runtime().is_some_and(|v| v != 0)
        || cpu.realtime_period().is_some_and(|v| v != 0);
    if has_cpu_setting {
        let d = dir(cg, "cpu", "cpu")?;
        if let Some(shares) = cpu.shares().filter(|s| *s != 0) {
            fs::write_setting(d, "cpu.shares", &shares.to_string(), "cpu.shares")?;
            let path = d.join("cpu.shares");
            let got = fs::parse_u64(&path, &fs::read(&path)?)?;
            if got != shares {
                return Err(invalid(
                    "cpu.shares",
                    format!("the kernel took {shares} as {got}; use a value in 2..=262144"),
                ));
            }
        }
        cfs(d, cpu)?;
        if let Some(burst) = cpu.burst() {
            fs::write_setting(d, "cpu.cfs_burst_us", &burst.to_string(), "cpu.burst")?;
        }
        if let Some(idle) = cpu.idle() {
            fs::write_setting(d, "cpu.idle", &idle.to_string(), "cpu.idle")?;
        }
        // The period first: the runtime must fit in it.
        if let Some(p) = cpu.realtime_period().filter(|v| *v != 0) {
            fs::write_setting(d, "cpu.rt_period_us", &p.to_string(), "cpu.realtimePeriod")?;
        }
        if let Some(r) = cpu.realtime_runtime().filter(|v| *v != 0) {
            fs::write_setting(
                d,
                "cpu.rt_runtime_us",
                &r.to_string(),
                "cpu.realtimeRuntime",
            )?;
        }
    }
    let cpus = cpu.cpus().as_deref().filter(|s| !s.is_empty());
    let mems = cpu.mems().as_deref().filter(|s| !s.is_empty());
    if cpus.is_some() || mems.is_some() {
        let d = dir(cg, "cpuset", "cpu.cpus/mems")?;
        if let Some(c) = cpus {
            fs::write_setting(d, "cpuset.cpus", c, "cpu.cpus")?;
        }
        if let Some(m) = mems {
            fs::write_setting(d, "cpuset.mems", m, "cpu.mems")?;
        }
    }
    Ok(())
}

/// CFS bandwidth. A new period can be refused (EINVAL) until the new quota is in place, so on
/// EINVAL the quota goes first.
fn cfs(d: &Path, cpu: &LinuxCpu) -> Result<(), CgroupError> {
    let quota = cpu.quota().filter(|q| *q != 0).map(|q| {
        if q < 0 {
            "-1".to_string()
        } else {
            q.to_string()
        }
    });
    let write_quota = |q: &str| fs::write_setting(d, "cpu.cfs_quota_us", q, "cpu.quota");
    let mut quota_done = false;
    if let Some(p) = cpu.period().filter(|p| *p != 0).map(|p| p.to_string()) {
        match fs::write_setting(d, "cpu.cfs_period_us", &p, "cpu.period") {
            Err(CgroupError::Write { ref source, .. })
                if source.raw_os_error() == Some(libc::EINVAL) && quota.is_some() =>
            {
                write_quota(quota.as_deref().expect("checked"))?;
                quota_done = true;
                fs::write_setting(d, "cpu.cfs_period_us", &p, "cpu.period")?;
            }
            other => other?,
        }
    }
    match quota {
        Some(q) if !quota_done => write_quota(&q),
        _ => Ok(()),
    }
}

/// Whether `memory.memsw.limit_in_bytes` must be written before `memory.limit_in_bytes`: the
/// kernel keeps memsw >= limit at every step, so when memory+swap grows past the current limit
/// (or becomes unlimited) it goes first, otherwise the limit goes first.
pub(crate) fn swap_first(current_limit: Option<u64>, new_swap: i64) -> bool {
    new_swap < 0 || current_limit.is_some_and(|cur| cur < new_swap as u64)
}

fn memory(d: &Path, m: &LinuxMemory) -> Result<(), CgroupError> {
    let memsw_exists = d.join("memory.memsw.limit_in_bytes").exists();
    let swap = match (m.swap().filter(|s| *s != 0), m.limit()) {
        (None, Some(-1)) if memsw_exists => Some(-1),
        (s, _) => s,
    };
    if m.check_before_update() == Some(true) {
        if let Some(limit) = m.limit().filter(|l| *l > 0) {
            check_usage(&d.join("memory.usage_in_bytes"), limit)?;
        }
    }
    let limit = m.limit().filter(|l| *l != 0);
    let write_limit =
        |l: i64| fs::write_setting(d, "memory.limit_in_bytes", &l.to_string(), "memory.limit");
    let write_swap = |s: i64| {
        fs::write_setting(
            d,
            "memory.memsw.limit_in_bytes",
            &s.to_string(),
            "memory.swap",
        )
    };
    match (limit, swap) {
        (Some(l), Some(s)) => {
            let current = fs::read_u64_opt(&d.join("memory.limit_in_bytes"))?;
            if swap_first(current, s) {
                write_swap(s)?;
                write_limit(l)?;
            } else {
                write_limit(l)?;
                write_swap(s)?;
            }
        }
        (Some(l), None) => write_limit(l)?,
        (None, Some(s)) => write_swap(s)?,
        (None, None) => {}
    }
    let files: [(&str, &str, Option<String>); 6] = [
        (
            "memory.soft_limit_in_bytes",
            "memory.reservation",
            m.reservation().map(|v| v.to_string()),
        ),
        (
            "memory.kmem.limit_in_bytes",
            "memory.kernel",
            m.kernel().map(|v| v.to_string()),
        ),
        (
            "memory.kmem.tcp.limit_in_bytes",
            "memory.kernelTCP",
            m.kernel_tcp().map(|v| v.to_string()),
        ),
        (
            "memory.oom_control",
            "memory.disableOOMKiller",
            m.disable_oom_killer().map(|v| u8::from(v).to_string()),
        ),
        (
            "memory.use_hierarchy",
            "memory.useHierarchy",
            m.use_hierarchy().map(|v| u8::from(v).to_string()),
        ),
        (
            "memory.swappiness",
            "memory.swappiness",
            m.swappiness().map(|v| v.to_string()),
        ),
    ];
    if let Some(s) = m.swappiness().filter(|s| *s > 100) {
        return Err(invalid("memory.swappiness", format!("{s} is above 100")));
    }
    for (file, setting, value) in files {
        if let Some(v) = value {
            fs::write_setting(d, file, &v, setting)?;
        }
    }
    Ok(())
}

fn blkio(d: &Path, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    // Kernels without CFQ only have BFQ's files.
    let pick = |plain: &str, bfq: &str| {
        if !d.join(plain).exists() && d.join(bfq).exists() {
            bfq.to_string()
        } else {
            plain.to_string()
        }
    };
    let weight_file = pick("blkio.weight", "blkio.bfq.weight");
    let weight_device_file = pick("blkio.weight_device", "blkio.bfq.weight_device");
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        fs::write_setting(d, &weight_file, &w.to_string(), "blockIO.weight")?;
    }
    if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
        fs::write_setting(d, "blkio.leaf_weight", &w.to_string(), "blockIO.leafWeight")?;
    }
    for dev in b.weight_device().iter().flatten() {
        let (maj, min) = (dev.major(), dev.minor());
        if let Some(w) = dev.weight() {
            let line = format!("{maj}:{min} {w}");
            fs::write_setting(d, &weight_device_file, &line, "blockIO.weightDevice")?;
        }
        if let Some(w) = dev.leaf_weight() {
            let line = format!("{maj}:{min} {w}");
            fs::write_setting(
                d,
                "blkio.leaf_weight_device",
                &line,
                "blockIO.weightDevice.leafWeight",
            )?;
        }
    }
    let throttles = [
        (
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
        ),
        (
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
        ),
        (
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
        ),
        (
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
        ),
    ];
    for (file, devs) in throttles {
        for dev in devs.iter().flatten() {
            let line = format!("{}:{} {}", dev.major(), dev.minor(), dev.rate());
            fs::write_setting(d, file, &line, "blockIO.throttle")?;
        }
    }
    Ok(())
}

fn hugetlb(d: &Path, limits: &[oci_spec::runtime::LinuxHugepageLimit]) -> Result<(), CgroupError> {
    for h in limits {
        let size = page_size(h.page_size())?;
        let value = h.limit().to_string();
        let setting = format!("hugepageLimits[{size}]");
        fs::write_setting(
            d,
            &format!("hugetlb.{size}.limit_in_bytes"),
            &value,
            &setting,
        )?;
        let rsvd = format!("hugetlb.{size}.rsvd.limit_in_bytes");
        if d.join(&rsvd).exists() {
            fs::write_setting(d, &rsvd, &value, &setting)?;
        }
    }
    Ok(())
}

fn network(cg: &Cgroup, n: &LinuxNetwork) -> Result<(), CgroupError> {
    if let Some(id) = n.class_id() {
        let d = dir(cg, "net_cls", "network.classID")?;
        fs::write_setting(d, "net_cls.classid", &id.to_string(), "network.classID")?;
    }
    for p in n.priorities().iter().flatten() {
        let d = dir(cg, "net_prio", "network.priorities")?;
        if p.name().is_empty() || p.name().contains(char::is_whitespace) {
            return Err(invalid(
                "network.priorities",
                format!("bad interface {:?}", p.name()),
            ));
        }
        let line = format!("{} {}", p.name(), p.priority());
        fs::write_setting(d, "net_prio.ifpriomap", &line, "network.priorities")?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "v1_tests.rs"]
mod tests;
