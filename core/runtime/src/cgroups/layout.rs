//! Which cgroup hierarchies this host has and where they are mounted: pure v1, hybrid (v1
//! controllers plus a cgroup2 mount beside them) or pure v2, read from mountinfo text so tests
//! can describe any host and point it at a temporary directory.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use super::CgroupError;

/// v1 controllers (and named hierarchies) a container's cgroup is created in when mounted.
pub(crate) const KNOWN_V1: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "blkio",
    "pids",
    "hugetlb",
    "net_cls",
    "net_prio",
    "perf_event",
    "rdma",
    "misc",
    "name=systemd",
];

/// The cgroup hierarchies of a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// Only v1 hierarchies: controller name → its mount directory (co-mounted controllers such as
    /// `cpu,cpuacct` map to the same directory).
    V1 {
        /// Controller → mount directory.
        controllers: BTreeMap<String, PathBuf>,
    },
    /// v1 hierarchies plus a cgroup2 mount (e.g. `/sys/fs/cgroup/unified`), which may carry
    /// controllers of its own (hugetlb on some hosts) and accepts BPF device programs.
    Hybrid {
        /// Controller → mount directory.
        controllers: BTreeMap<String, PathBuf>,
        /// The cgroup2 mount directory.
        unified: PathBuf,
    },
    /// One cgroup2 hierarchy.
    V2 {
        /// The cgroup2 mount directory.
        root: PathBuf,
    },
}

impl Layout {
    /// The layout of the running host, from `/proc/self/mountinfo` and `/proc/self/cgroup`.
    pub fn detect() -> Result<Layout, CgroupError> {
        let read = |p: &str| {
            fs::read_to_string(p).map_err(|source| CgroupError::ReadLayout {
                path: PathBuf::from(p),
                source,
            })
        };
        let mountinfo = read("/proc/self/mountinfo")?;
        let self_cgroup = read("/proc/self/cgroup")?;
        Layout::from_parts(&mountinfo, &self_cgroup, Path::new("/"))
    }

    /// The layout described by a mountinfo text and a `/proc/<pid>/cgroup` text, with every mount
    /// point moved under `prefix` (`/` for the real host, a temporary directory in tests).
    /// v1 mounts of controllers this process is not attached to (per `self_cgroup`) are ignored;
    /// an empty `self_cgroup` ignores nothing.
    pub fn from_parts(
        mountinfo: &str,
        self_cgroup: &str,
        prefix: &Path,
    ) -> Result<Layout, CgroupError> {
        let attached: BTreeSet<&str> = self_cgroup
            .lines()
            .filter_map(|l| l.split(':').nth(1))
            .flat_map(|c| c.split(','))
            .filter(|c| !c.is_empty())
            .collect();
        let mut controllers = BTreeMap::new();
        let mut unified = None;
        for line in mountinfo.lines() {
            let Some((mount_point, fstype, super_opts)) = parse_mount_line(line) else {
                continue;
            };
            let dir = prefix.join(mount_point.strip_prefix("/").unwrap_or(&mount_point));
            match fstype {
                "cgroup2" if unified.is_none() => unified = Some(dir),
                "cgroup" => {
                    for opt in super_opts.split(',') {
                        if KNOWN_V1.contains(&opt)
                            && (attached.is_empty() || attached.contains(opt))
                        {
                            controllers.entry(opt.to_string()).or_insert(dir.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        let real_v1 = controllers.keys().any(|c| !c.starts_with("name="));
        Ok(match (real_v1, unified) {
            (false, Some(root)) => Layout::V2 { root },
            (true, Some(unified)) => Layout::Hybrid {
                controllers,
                unified,
            },
            (true, None) => Layout::V1 { controllers },
            (false, None) => return Err(CgroupError::NoMount),
        })
    }

    /// A pure v2 layout rooted at `root`.
    pub fn v2_at(root: &Path) -> Layout {
        Layout::V2 {
            root: root.to_path_buf(),
        }
    }

    /// A pure v1 layout: each entry is a comma-separated controller list (`"cpu,cpuacct"`) and the
    /// directory that hierarchy is mounted on.
    pub fn v1_at(mounts: &[(&str, &Path)]) -> Layout {
        Layout::V1 {
            controllers: controller_map(mounts),
        }
    }

    /// A hybrid layout: v1 `mounts` as in [`Layout::v1_at`] plus a cgroup2 mount at `unified`.
    pub fn hybrid_at(mounts: &[(&str, &Path)], unified: &Path) -> Layout {
        Layout::Hybrid {
            controllers: controller_map(mounts),
            unified: unified.to_path_buf(),
        }
    }

    /// True for a pure cgroup2 host.
    pub fn is_v2(&self) -> bool {
        matches!(self, Layout::V2 { .. })
    }

    /// The mount directory of a v1 controller, if mounted.
    pub fn v1_mount(&self, controller: &str) -> Option<&Path> {
        match self {
            Layout::V1 { controllers } | Layout::Hybrid { controllers, .. } => {
                controllers.get(controller).map(PathBuf::as_path)
            }
            Layout::V2 { .. } => None,
        }
    }

    /// The cgroup2 mount directory (the whole tree on v2, the side mount in hybrid mode).
    pub fn unified_mount(&self) -> Option<&Path> {
        match self {
            Layout::V1 { .. } => None,
            Layout::Hybrid { unified, .. } => Some(unified),
            Layout::V2 { root } => Some(root),
        }
    }

    /// The distinct v1 hierarchies: (controllers mounted together, mount directory).
    pub(crate) fn v1_hierarchies(&self) -> Vec<(Vec<String>, PathBuf)> {
        let mut by_dir: BTreeMap<&Path, Vec<String>> = BTreeMap::new();
        if let Layout::V1 { controllers } | Layout::Hybrid { controllers, .. } = self {
            for (c, dir) in controllers {
                by_dir.entry(dir).or_default().push(c.clone());
            }
        }
        by_dir
            .into_iter()
            .map(|(d, cs)| (cs, d.to_path_buf()))
            .collect()
    }
}

fn controller_map(mounts: &[(&str, &Path)]) -> BTreeMap<String, PathBuf> {
    mounts
        .iter()
        .flat_map(|(cs, dir)| cs.split(',').map(|c| (c.to_string(), dir.to_path_buf())))
        .collect()
}

/// Splits a mountinfo line into (mount point, filesystem type, super options).
fn parse_mount_line(line: &str) -> Option<(String, &str, &str)> {
    let (left, right) = line.split_once(" - ")?;
    let mount_point = left.split(' ').nth(4)?;
    let mut r = right.split(' ');
    let fstype = r.next()?;
    let super_opts = r.nth(1).unwrap_or("");
    Some((unescape(mount_point), fstype, super_opts))
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) if b[i] == b'\\' => {
                out.push(
                    d.iter()
                        .fold(0u8, |acc, c| acc.wrapping_mul(8) + (c - b'0')),
                );
                i += 4;
            }
            _ => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// mountinfo of this project's CI machine: v1 controllers plus cgroup2 at .../unified.
    pub(crate) const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    pub(crate) const HYBRID_SELF: &str = "\
9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/82b11ba077a82fb67527fdf6536d2fa9
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
";
    const V2: &str = "\
22 1 0:21 / /proc rw,nosuid - proc proc rw
29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";
    const V1_COMOUNT: &str = "\
25 21 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/systemd rw shared:9 - cgroup cgroup rw,xattr,name=systemd
28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw shared:10 - cgroup cgroup rw,cpu,cpuacct
29 25 0:26 / /sys/fs/cgroup/memory rw shared:11 - cgroup cgroup rw,memory
30 25 0:27 / /sys/fs/cgroup/net_cls,net_prio rw shared:12 - cgroup cgroup rw,net_cls,net_prio
31 25 0:28 / /sys/fs/cgroup/pids rw shared:13 - cgroup cgroup rw,pids
32 25 0:29 / /sys/fs/cgroup/my\\040cgroup rw - cgroup cgroup rw,freezer
";

    #[test]
    fn detects_this_hybrid_host() {
        let l = Layout::from_parts(HYBRID, HYBRID_SELF, Path::new("/x")).unwrap();
        let Layout::Hybrid {
            controllers,
            unified,
        } = &l
        else {
            panic!("{l:?}")
        };
        assert_eq!(unified, Path::new("/x/sys/fs/cgroup/unified"));
        assert_eq!(controllers.len(), 9);
        assert_eq!(
            l.v1_mount("memory"),
            Some(Path::new("/x/sys/fs/cgroup/memory"))
        );
        assert_eq!(
            l.v1_mount("cpuacct"),
            Some(Path::new("/x/sys/fs/cgroup/cpuacct"))
        );
        assert_eq!(l.v1_mount("hugetlb"), None);
        assert!(!l.is_v2());
        assert_eq!(l.v1_hierarchies().len(), 9);
    }

    #[test]
    fn detects_pure_v2() {
        let l = Layout::from_parts(V2, "0::/user.slice\n", Path::new("/")).unwrap();
        assert_eq!(l, Layout::v2_at(Path::new("/sys/fs/cgroup")));
        assert!(l.is_v2());
        assert_eq!(l.unified_mount(), Some(Path::new("/sys/fs/cgroup")));
    }

    #[test]
    fn detects_pure_v1_with_comounts_and_escapes() {
        let l = Layout::from_parts(V1_COMOUNT, "", Path::new("/")).unwrap();
        let cpu = Path::new("/sys/fs/cgroup/cpu,cpuacct");
        assert_eq!(l.v1_mount("cpu"), Some(cpu));
        assert_eq!(l.v1_mount("cpuacct"), Some(cpu));
        assert_eq!(
            l.v1_mount("freezer"),
            Some(Path::new("/sys/fs/cgroup/my cgroup"))
        );
        assert_eq!(l.unified_mount(), None);
        let h = l.v1_hierarchies();
        let comount = h.iter().find(|(_, d)| d == cpu).unwrap();
        assert_eq!(comount.0, vec!["cpu".to_string(), "cpuacct".to_string()]);
        assert_eq!(h.len(), 6);
    }

    #[test]
    fn ignores_controllers_the_process_is_not_attached_to() {
        let l = Layout::from_parts(HYBRID, "1:cpu:/\n0::/\n", Path::new("/")).unwrap();
        assert!(l.v1_mount("cpu").is_some());
        assert!(l.v1_mount("memory").is_none());
    }

    #[test]
    fn only_named_v1_hierarchies_with_cgroup2_is_v2_and_nothing_is_an_error() {
        let text = "26 25 0:23 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n\
                    27 25 0:24 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        assert!(Layout::from_parts(text, "", Path::new("/"))
            .unwrap()
            .is_v2());
        let err = Layout::from_parts("22 1 0:21 / /proc rw - proc proc rw\n", "", Path::new("/"));
        assert!(matches!(err, Err(CgroupError::NoMount)));
    }
}
