//! Finding a container's cgroup on the host (v1, v2 or hybrid) and reading
//! the limits a runtime wrote there.

use std::fs;
use std::path::{Path, PathBuf};

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone)]
pub struct Hierarchy {
    pub mount_point: PathBuf,
    /// 1 or 2.
    pub version: u8,
    /// v1: the controllers (and `name=…`) in the mount options; v2: cgroup.controllers.
    pub controllers: Vec<String>,
}

/// Every cgroup hierarchy mounted in this mount namespace.
pub fn hierarchies() -> Vec<Hierarchy> {
    let info = fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    let mut out = Vec::new();
    for line in info.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mount_point = PathBuf::from(pre.split(' ').nth(4).unwrap_or_default());
        let mut post = post.split(' ');
        let fstype = post.next().unwrap_or_default();
        let super_opts = post.nth(1).unwrap_or_default();
        match fstype {
            "cgroup" => {
                let controllers = super_opts
                    .split(',')
                    .filter(|o| {
                        !matches!(*o, "rw" | "ro")
                            && !o.contains("agent")
                            && !o.starts_with("clone")
                    })
                    .map(String::from)
                    .collect();
                out.push(Hierarchy {
                    mount_point,
                    version: 1,
                    controllers,
                });
            }
            "cgroup2" => {
                let controllers = fs::read_to_string(mount_point.join("cgroup.controllers"))
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(String::from)
                    .collect();
                out.push(Hierarchy {
                    mount_point,
                    version: 2,
                    controllers,
                });
            }
            _ => {}
        }
    }
    out
}

/// The directories a cgroup path maps to, one per hierarchy.
pub fn dirs(cgroups_path: &str) -> Vec<PathBuf> {
    hierarchies()
        .iter()
        .map(|h| h.mount_point.join(cgroups_path.trim_start_matches('/')))
        .collect()
}

/// The hierarchy that manages `controller`: a v1 mount naming it, else the
/// unified hierarchy if it offers it.
pub fn hierarchy_for(controller: &str) -> Hierarchy {
    let all = hierarchies();
    all.iter()
        .find(|h| h.version == 1 && h.controllers.iter().any(|c| c == controller))
        .or_else(|| {
            all.iter()
                .find(|h| h.version == 2 && h.controllers.iter().any(|c| c == controller))
        })
        .cloned()
        .unwrap_or_else(|| {
            panic!("kernel feature missing: no cgroup hierarchy has the {controller} controller")
        })
}

/// Reads `file` of the container's cgroup in `controller`'s hierarchy.
pub fn read(controller: &str, cgroups_path: &str, file: &str) -> String {
    let h = hierarchy_for(controller);
    let p = h
        .mount_point
        .join(cgroups_path.trim_start_matches('/'))
        .join(file);
    fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
        .trim()
        .to_string()
}

fn is_v1(controller: &str) -> bool {
    hierarchy_for(controller).version == 1
}

/// The memory limit in bytes (`None` = unlimited).
pub fn memory_limit(path: &str) -> Option<u64> {
    let file = if is_v1("memory") {
        "memory.limit_in_bytes"
    } else {
        "memory.max"
    };
    read("memory", path, file)
        .parse()
        .ok()
        .filter(|v| *v < (1 << 62))
}

/// The memory+swap limit in bytes (v1 memsw), or memory.max + swap.max on v2.
pub fn memory_swap_limit(path: &str) -> Option<u64> {
    if is_v1("memory") {
        read("memory", path, "memory.memsw.limit_in_bytes")
            .parse()
            .ok()
            .filter(|v| *v < (1 << 62))
    } else {
        let swap: u64 = read("memory", path, "memory.swap.max").parse().ok()?;
        Some(memory_limit(path)? + swap)
    }
}

/// pids.max (`None` = max).
pub fn pids_max(path: &str) -> Option<u64> {
    read("pids", path, "pids.max").parse().ok()
}

/// (quota, period) in microseconds; quota `None` = unlimited.
pub fn cpu_quota(path: &str) -> (Option<u64>, u64) {
    if is_v1("cpu") {
        let q: i64 = read("cpu", path, "cpu.cfs_quota_us")
            .parse()
            .expect("cfs_quota_us");
        let p = read("cpu", path, "cpu.cfs_period_us")
            .parse()
            .expect("cfs_period_us");
        ((q >= 0).then_some(q as u64), p)
    } else {
        let max = read("cpu", path, "cpu.max");
        let (q, p) = max.split_once(' ').expect("cpu.max has two fields");
        (q.parse().ok(), p.parse().expect("cpu.max period"))
    }
}

/// CPU time used by the cgroup, in nanoseconds.
pub fn cpu_usage_ns(path: &str) -> u64 {
    let all = hierarchies();
    if all
        .iter()
        .any(|h| h.version == 1 && h.controllers.iter().any(|c| c == "cpuacct"))
    {
        return read("cpuacct", path, "cpuacct.usage")
            .parse()
            .expect("cpuacct.usage");
    }
    let stat = read("cpu", path, "cpu.stat");
    let usec: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("usage_usec "))
        .and_then(|v| v.trim().parse().ok())
        .expect("usage_usec in cpu.stat");
    usec * 1000
}

/// `FROZEN`, `FREEZING` or `THAWED`.
pub fn freezer_state(path: &str) -> String {
    let all = hierarchies();
    if all
        .iter()
        .any(|h| h.version == 1 && h.controllers.iter().any(|c| c == "freezer"))
    {
        return read("freezer", path, "freezer.state");
    }
    let h = all
        .iter()
        .find(|h| h.version == 2)
        .expect("a cgroup2 hierarchy");
    let p = h.mount_point.join(path.trim_start_matches('/'));
    match fs::read_to_string(p.join("cgroup.freeze"))
        .unwrap_or_default()
        .trim()
    {
        "1" => "FROZEN".into(),
        _ => "THAWED".into(),
    }
}

/// Removes a cgroup directory tree, leaves first (best effort; for cleanup).
pub fn remove_tree(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_tree(&e.path());
            }
        }
    }
    let _ = fs::remove_dir(dir);
}
