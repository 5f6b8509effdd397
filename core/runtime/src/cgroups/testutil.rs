//! Fake cgroup trees for unit tests: temporary directories with the interface files of each
//! controller as plain files.

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::Layout;

pub(crate) const V1_FILES: &[(&str, &[&str])] = &[
    (
        "cpu",
        &[
            "cpu.shares",
            "cpu.cfs_period_us",
            "cpu.cfs_quota_us",
            "cpu.cfs_burst_us",
            "cpu.rt_period_us",
            "cpu.rt_runtime_us",
            "cpu.idle",
            "cpu.stat",
        ],
    ),
    (
        "cpuacct",
        &[
            "cpuacct.usage",
            "cpuacct.usage_user",
            "cpuacct.usage_sys",
            "cpuacct.stat",
        ],
    ),
    ("cpuset", &["cpuset.cpus", "cpuset.mems"]),
    (
        "memory",
        &[
            "memory.limit_in_bytes",
            "memory.soft_limit_in_bytes",
            "memory.memsw.limit_in_bytes",
            "memory.swappiness",
            "memory.oom_control",
            "memory.use_hierarchy",
            "memory.kmem.limit_in_bytes",
            "memory.usage_in_bytes",
            "memory.max_usage_in_bytes",
            "memory.memsw.usage_in_bytes",
            "memory.failcnt",
        ],
    ),
    ("devices", &["devices.allow", "devices.deny"]),
    ("freezer", &["freezer.state"]),
    (
        "blkio",
        &[
            "blkio.bfq.weight",
            "blkio.bfq.weight_device",
            "blkio.throttle.read_bps_device",
            "blkio.throttle.write_bps_device",
            "blkio.throttle.read_iops_device",
            "blkio.throttle.write_iops_device",
            "blkio.throttle.io_service_bytes_recursive",
            "blkio.throttle.io_serviced_recursive",
        ],
    ),
    ("pids", &["pids.max", "pids.current"]),
];

pub(crate) const V2_FILES: &[&str] = &[
    "cgroup.controllers",
    "cgroup.subtree_control",
    "cgroup.freeze",
    "cgroup.events",
    "cpu.weight",
    "cpu.max",
    "cpu.max.burst",
    "cpu.idle",
    "cpu.stat",
    "cpuset.cpus",
    "cpuset.mems",
    "memory.max",
    "memory.low",
    "memory.swap.max",
    "memory.current",
    "memory.events",
    "pids.max",
    "pids.current",
    "io.weight",
    "io.max",
    "io.stat",
    "hugetlb.2MB.max",
    "hugetlb.2MB.current",
];

/// Creates `dir` with an empty `cgroup.procs` and the given files, holding what a new cgroup's
/// files hold where the writers read them back (empty otherwise).
pub(crate) fn populate(dir: &Path, files: &[&str]) {
    fs::create_dir_all(dir).unwrap();
    for f in files.iter().chain(&["cgroup.procs"]) {
        let initial = match *f {
            "memory.limit_in_bytes" | "memory.memsw.limit_in_bytes" => "9223372036854771712\n",
            "memory.usage_in_bytes" => "0\n",
            "cpu.max" => "max 100000\n",
            "freezer.state" => "THAWED\n",
            _ => "",
        };
        fs::write(dir.join(f), initial).unwrap();
    }
}

/// A v1 layout under `root` with cpu and cpuacct co-mounted, every hierarchy root populated.
pub(crate) fn v1_layout(root: &Path) -> Layout {
    let mounts: Vec<(String, PathBuf)> = [
        "cpu,cpuacct",
        "cpuset",
        "memory",
        "devices",
        "freezer",
        "blkio",
        "pids",
    ]
    .iter()
    .map(|c| (c.to_string(), root.join(c)))
    .collect();
    for (c, dir) in &mounts {
        populate(dir, &v1_files(c));
    }
    fs::write(root.join("cpuset/cpuset.cpus"), "0-1\n").unwrap();
    fs::write(root.join("cpuset/cpuset.mems"), "0\n").unwrap();
    let refs: Vec<(&str, &Path)> = mounts
        .iter()
        .map(|(c, d)| (c.as_str(), d.as_path()))
        .collect();
    Layout::v1_at(&refs)
}

/// The hybrid layout of this project's CI host: v1 as in `v1_layout` plus a cgroup2 mount whose
/// only controller is hugetlb.
pub(crate) fn hybrid_layout(root: &Path) -> Layout {
    let Layout::V1 { controllers } = v1_layout(root) else {
        unreachable!()
    };
    let unified = root.join("unified");
    populate(&unified, &["cgroup.controllers", "cgroup.subtree_control"]);
    fs::write(unified.join("cgroup.controllers"), "hugetlb\n").unwrap();
    Layout::Hybrid {
        controllers,
        unified,
    }
}

pub(crate) fn v1_files(controllers: &str) -> Vec<&'static str> {
    controllers
        .split(',')
        .flat_map(|c| {
            V1_FILES
                .iter()
                .filter(move |(n, _)| *n == c)
                .flat_map(|(_, f)| f.iter().copied())
        })
        .collect()
}

pub(crate) fn read(path: impl AsRef<Path>) -> String {
    fs::read_to_string(path.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", path.as_ref().display()))
}

pub(crate) fn resources(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}
