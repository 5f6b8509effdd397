//! A container's limits: its cgroup resources (devices, memory, CPU, pids)
//! and its rlimits, from docker's `HostConfig` and with docker's checks.

use oci_spec::runtime::{
    LinuxCpu, LinuxDeviceCgroupBuilder, LinuxMemory, LinuxPidsBuilder, LinuxResources,
    LinuxResourcesBuilder, PosixRlimit, PosixRlimitBuilder, PosixRlimitType,
};

use super::{bad, built};
use crate::containers::config::HostConfig;
use crate::error::Result;

/// The cgroup resources: every device allowed only with `--privileged`,
/// and the memory, CPU and pids limits that were asked for.
pub(super) fn resources(h: &HostConfig, image: &str) -> Result<LinuxResources> {
    let devices = LinuxDeviceCgroupBuilder::default()
        .allow(h.privileged)
        .access("rwm")
        .build()
        .map_err(built(image))?;
    let mut r = LinuxResourcesBuilder::default()
        .devices(vec![devices])
        .build()
        .map_err(built(image))?;
    let pids = h
        .pids_limit
        .filter(|p| *p > 0)
        .map(|p| LinuxPidsBuilder::default().limit(p).build())
        .transpose()
        .map_err(built(image))?;
    r.set_memory(memory(h, image)?)
        .set_cpu(cpu(h, image)?)
        .set_pids(pids);
    Ok(r)
}

/// `--memory`, `--memory-swap` (twice the memory when unset, -1 for
/// unlimited) and `--memory-reservation`; `None` when none is set.
fn memory(h: &HostConfig, image: &str) -> Result<Option<LinuxMemory>> {
    if h.memory < 0 || (h.memory > 0 && h.memory < 6 << 20) {
        return Err(bad(image, "minimum memory limit allowed is 6MB".into()));
    }
    let swap = if h.memory > 0 {
        match h.memory_swap {
            0 => Some(h.memory * 2),
            -1 => Some(-1),
            s if s < h.memory => {
                return Err(bad(
                    image,
                    "minimum memoryswap limit should be larger than memory limit, see usage".into(),
                ))
            }
            s => Some(s),
        }
    } else if h.memory_swap > 0 {
        return Err(bad(
            image,
            "you should always set the memory limit when using memoryswap limit, see usage".into(),
        ));
    } else {
        None
    };
    let mut m = LinuxMemory::default();
    m.set_limit((h.memory > 0).then_some(h.memory))
        .set_swap(swap)
        .set_reservation((h.memory_reservation > 0).then_some(h.memory_reservation));
    Ok((m != LinuxMemory::default()).then_some(m))
}

/// `--cpus` (as a quota over a 100ms period), `--cpu-period`,
/// `--cpu-quota`, `--cpu-shares` and `--cpuset-cpus`; `None` when none is
/// set.
fn cpu(h: &HostConfig, image: &str) -> Result<Option<LinuxCpu>> {
    let (mut period, mut quota) = (None, None);
    if h.nano_cpus != 0 {
        if h.cpu_quota != 0 || h.cpu_period != 0 {
            return Err(bad(
                image,
                "conflicting options: Nano CPUs and CPU Period cannot both be set".into(),
            ));
        }
        let ncpu = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1) as i64;
        if h.nano_cpus < 0 || h.nano_cpus > ncpu * 1_000_000_000 {
            return Err(bad(image, format!("range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available")));
        }
        period = Some(100_000);
        quota = Some(h.nano_cpus * 100_000 / 1_000_000_000);
    }
    if let Some(p) = u64::try_from(h.cpu_period).ok().filter(|p| *p > 0) {
        period = Some(p);
    }
    if h.cpu_quota > 0 {
        quota = Some(h.cpu_quota);
    }
    let mut c = LinuxCpu::default();
    c.set_period(period)
        .set_quota(quota)
        .set_shares(u64::try_from(h.cpu_shares).ok().filter(|s| *s > 0))
        .set_cpus((!h.cpuset_cpus.is_empty()).then(|| h.cpuset_cpus.clone()));
    Ok((c != LinuxCpu::default()).then_some(c))
}

fn rlimit(typ: PosixRlimitType, hard: u64, soft: u64, image: &str) -> Result<PosixRlimit> {
    PosixRlimitBuilder::default()
        .typ(typ)
        .hard(hard)
        .soft(soft)
        .build()
        .map_err(built(image))
}

/// The rlimits: docker's open files limit (capped by the host's), then
/// `--ulimit` (`nofile`, `nproc`, … as in `RLIMIT_NOFILE`) on top.
pub(super) fn rlimits(h: &HostConfig, image: &str) -> Result<Vec<PosixRlimit>> {
    let hard = host_nofile_hard();
    let mut out = vec![rlimit(
        PosixRlimitType::RlimitNofile,
        1048576u64.min(hard),
        1024u64.min(hard),
        image,
    )?];
    for u in &h.ulimits {
        let typ = format!("RLIMIT_{}", u.name.to_ascii_uppercase())
            .parse::<PosixRlimitType>()
            .map_err(|_| bad(image, format!("invalid ulimit type: {}", u.name)))?;
        // docker's -1 is "unlimited" (`--ulimit memlock=-1:-1`): RLIM_INFINITY.
        let limit = |v: i64| match v {
            -1 => Ok(u64::MAX),
            v => u64::try_from(v).map_err(|_| {
                bad(
                    image,
                    format!("ulimit {}: {v} is not a limit (-1 means unlimited)", u.name),
                )
            }),
        };
        let (hard, soft) = (limit(u.hard)?, limit(u.soft)?);
        if soft > hard {
            return Err(bad(
                image,
                format!(
                    "ulimit {}: soft limit {} is larger than hard limit {}",
                    u.name, u.soft, u.hard
                ),
            ));
        }
        out.retain(|r| r.typ() != typ);
        out.push(rlimit(typ, hard, soft, image)?);
    }
    Ok(out)
}

fn host_nofile_hard() -> u64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(_, h)| h)
        .unwrap_or(1024)
}
