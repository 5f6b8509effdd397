//! Container cgroups on v1, hybrid and v2 hosts: create a cgroup, apply OCI resource limits,
//! add processes, freeze, read statistics and destroy it without leaving anything behind.
//!
//! Written by hand rather than on cgroups-rs 0.5, which hardcodes `/sys/fs/cgroup` (its v2
//! hierarchy takes no root) and finds v1 mounts itself from mountinfo, so it cannot be tested
//! against a temporary directory, and which does not handle the hybrid layout. Here every writer
//! takes the directories it works on (youki-style), a [`Layout`] can be built from any mountinfo
//! text, and unit tests run on temporary directories laid out like cgroupfs.

mod bpf;
mod devices;
mod error;
mod fs;
mod layout;
mod stats;
mod v1;
mod v2;

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

pub use bpf::attached_device_programs;
pub use devices::attach_device_filter;
pub use error::CgroupError;
pub use layout::Layout;
pub use stats::{CpuStats, HugetlbStats, IoDeviceStats, MemoryStats, PidsStats, Stats};

/// How long `freeze` waits for the kernel to report the cgroup frozen.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `destroy` waits for killed processes to leave the cgroup.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// The cgroup path berth uses when a bundle does not set `linux.cgroupsPath`:
/// `/<id>` beneath the root of each hierarchy, as runc and crun do (the engine
/// always sets a path of its own). No parent to create, none to prune.
pub fn default_path(container_id: &str) -> String {
    format!("/{container_id}")
}

/// A container's cgroup: its directory in each v1 hierarchy and/or in the cgroup2 hierarchy
/// (the whole cgroup on a v2 host, the side mount's directory in hybrid mode). Persisted in the
/// container's state so later commands can find it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroup {
    /// One entry per distinct v1 hierarchy (co-mounted controllers share one).
    #[serde(default)]
    v1: Vec<Hierarchy>,
    /// The directory in the cgroup2 hierarchy, if any.
    #[serde(default)]
    unified: Option<PathBuf>,
}

/// The container's directory in one v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Hierarchy {
    controllers: Vec<String>,
    path: PathBuf,
}

impl Cgroup {
    /// Creates the container's cgroup at `cgroups_path` (OCI `linux.cgroupsPath`; absolute and
    /// relative paths are both taken from each hierarchy's root) in every hierarchy of `layout`,
    /// and applies `resources`. On any error every directory this call created is removed again.
    /// An existing directory that holds processes is refused as a duplicate container.
    pub fn create(
        layout: &Layout,
        cgroups_path: &str,
        resources: Option<&LinuxResources>,
    ) -> Result<Cgroup, CgroupError> {
        let rel = relative_path(cgroups_path)?;
        let mut created = Vec::new();
        let result = Cgroup::create_dirs(layout, &rel, &mut created).and_then(|cg| {
            if let Some(r) = resources {
                cg.apply(r)?;
            }
            Ok(cg)
        });
        if result.is_err() {
            for dir in created.iter().rev() {
                if let Err(e) = std::fs::remove_dir(dir) {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot remove cgroup directory after a failed create");
                }
            }
        }
        result
    }

    fn create_dirs(
        layout: &Layout,
        rel: &Path,
        created: &mut Vec<PathBuf>,
    ) -> Result<Cgroup, CgroupError> {
        let mut cg = Cgroup {
            v1: Vec::new(),
            unified: None,
        };
        // A directory made just now is empty; only one that existed already
        // (a path shared on purpose, or a leftover) must be checked for processes.
        let check = |path: &Path, made: bool| if made { Ok(()) } else { ensure_unused(path) };
        for (controllers, mount) in layout.v1_hierarchies() {
            let before = created.len();
            fs::mkdir_tracked(&mount, rel, created)?;
            let path = mount.join(rel);
            check(
                &path,
                created.len() > before && created.last() == Some(&path),
            )?;
            if controllers.iter().any(|c| c == "cpuset") {
                v1::init_cpuset(&mount, rel)?;
            }
            cg.v1.push(Hierarchy { controllers, path });
        }
        if let Some(root) = layout.unified_mount() {
            let before = created.len();
            fs::mkdir_tracked(root, rel, created)?;
            let path = root.join(rel);
            check(
                &path,
                created.len() > before && created.last() == Some(&path),
            )?;
            v2::enable_controllers(root, rel);
            cg.unified = Some(path);
        }
        Ok(cg)
    }

    /// Applies resource limits to an existing cgroup (at creation and for `update`).
    pub fn apply(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        match (&self.v1[..], &self.unified) {
            ([], Some(dir)) => v2::apply(dir, resources),
            _ => v1::apply(self, resources),
        }
    }

    /// Moves process `pid` into the cgroup in every hierarchy.
    pub fn add_pid(&self, pid: i32) -> Result<(), CgroupError> {
        for dir in self.paths() {
            fs::write_file(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Every process in the cgroup and its sub-cgroups, read from the pids hierarchy (or the
    /// cgroup2 one, or the first one).
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let dir = match self.v1_dir("pids") {
            Some(d) => Some(d.to_path_buf()),
            None => self.paths().into_iter().next(),
        };
        dir.map_or(Ok(Vec::new()), |d| tree_pids(&d))
    }

    /// Freezes every process of the cgroup and waits until the kernel reports it frozen.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        let (file, value, state, expected) = self.freezer(true)?;
        fs::write_file(&file, value)?;
        let frozen = fs::poll(FREEZE_TIMEOUT, || {
            // v1 can get stuck in FREEZING while tasks fork; writing again retries the freeze.
            if self.v1_dir("freezer").is_some() {
                fs::write_file(&file, value)?;
            }
            Ok(fs::read(&state)?.lines().any(|l| l.trim() == expected))
        })?;
        if frozen {
            return Ok(());
        }
        let _ = self.thaw();
        Err(CgroupError::Timeout {
            path: state,
            expected,
        })
    }

    /// Lets the processes of a frozen cgroup run again.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        let (file, value, _, _) = self.freezer(false)?;
        fs::write_file(&file, value)
    }

    /// Whether the cgroup is frozen.
    pub fn is_frozen(&self) -> Result<bool, CgroupError> {
        let (_, _, state, expected) = self.freezer(true)?;
        Ok(fs::read(&state)?.lines().any(|l| l.trim() == expected))
    }

    /// (file to write, value, file to read the state from, line meaning "frozen")
    fn freezer(
        &self,
        freeze: bool,
    ) -> Result<(PathBuf, &'static str, PathBuf, &'static str), CgroupError> {
        if let Some(dir) = self.v1_dir("freezer") {
            let file = dir.join("freezer.state");
            let value = if freeze { "FROZEN" } else { "THAWED" };
            return Ok((file.clone(), value, file, "FROZEN"));
        }
        match &self.unified {
            Some(dir) => Ok((
                dir.join("cgroup.freeze"),
                if freeze { "1" } else { "0" },
                dir.join("cgroup.events"),
                "frozen 1",
            )),
            None => Err(CgroupError::Unsupported {
                setting: "freeze".into(),
                reason: "the freezer controller is not mounted".into(),
            }),
        }
    }

    /// Resource usage of the cgroup.
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        stats::read(self)
    }

    /// Kills every remaining process (SIGKILL), then removes every directory of the cgroup,
    /// sub-cgroups first. Directories already gone are fine, so this can be called again.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        // The usual case: the container has exited and left empty cgroups,
        // which one rmdir each removes (the kernel refuses a directory that
        // still has processes or children, with EBUSY). Only what is left
        // needs the kill-and-walk below.
        let left: Vec<PathBuf> = self
            .paths()
            .into_iter()
            .filter(|dir| match std::fs::remove_dir(dir) {
                Ok(()) => false,
                Err(e) => e.kind() != std::io::ErrorKind::NotFound,
            })
            .collect();
        if left.is_empty() {
            return Ok(());
        }
        self.kill_all()?;
        for dir in left {
            for sub in fs::tree(&dir)?.iter().rev() {
                fs::remove_dir(sub)?;
            }
        }
        Ok(())
    }

    fn kill_all(&self) -> Result<(), CgroupError> {
        let kill_file = self.unified.as_ref().map(|d| d.join("cgroup.kill"));
        let alive = |cg: &Cgroup| -> Result<Vec<(i32, PathBuf)>, CgroupError> {
            let mut all = Vec::new();
            for dir in cg.paths() {
                for sub in fs::tree(&dir)? {
                    all.extend(fs::procs(&sub)?.into_iter().map(|p| (p, sub.clone())));
                }
            }
            Ok(all)
        };
        if alive(self)?.is_empty() {
            return Ok(());
        }
        if self.v1_dir("freezer").is_none() && kill_file.as_ref().is_some_and(|f| f.exists()) {
            fs::write_file(kill_file.as_ref().expect("checked"), "1")?;
        } else {
            let frozen = self.freeze().is_ok();
            for (pid, dir) in alive(self)? {
                match kill(Pid::from_raw(pid), Signal::SIGKILL) {
                    Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                    Err(e) => {
                        return Err(CgroupError::Kill {
                            pid,
                            path: dir,
                            source: e.into(),
                        })
                    }
                }
            }
            if frozen {
                self.thaw()?;
            }
        }
        let mut left = Vec::new();
        if fs::poll(KILL_TIMEOUT, || {
            left = alive(self)?;
            Ok(left.is_empty())
        })? {
            return Ok(());
        }
        let (pid, path) = left.swap_remove(0);
        Err(CgroupError::Kill {
            pid,
            path,
            source: std::io::Error::from_raw_os_error(libc::ETIMEDOUT),
        })
    }

    /// Every directory of this cgroup: one per v1 hierarchy, then the cgroup2 one.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.v1
            .iter()
            .map(|h| h.path.clone())
            .chain(self.unified.clone())
            .collect()
    }

    /// The directory in the cgroup2 hierarchy (v2 host, or the side mount in hybrid mode).
    pub fn unified_path(&self) -> Option<&Path> {
        self.unified.as_deref()
    }

    /// The directory in the v1 hierarchy that holds `controller`.
    pub fn v1_dir(&self, controller: &str) -> Option<&Path> {
        self.v1
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == controller))
            .map(|h| h.path.as_path())
    }
}

fn tree_pids(dir: &Path) -> Result<Vec<i32>, CgroupError> {
    let mut pids = Vec::new();
    for sub in fs::tree(dir)? {
        pids.extend(fs::procs(&sub)?);
    }
    Ok(pids)
}

fn ensure_unused(dir: &Path) -> Result<(), CgroupError> {
    let pids = fs::procs(dir)?;
    if pids.is_empty() {
        Ok(())
    } else {
        Err(CgroupError::InUse {
            path: dir.to_path_buf(),
            pids,
        })
    }
}

/// The cgroups path as a relative path below a hierarchy root: no `..`, not the root itself,
/// not a systemd `slice:prefix:name`.
fn relative_path(cgroups_path: &str) -> Result<PathBuf, CgroupError> {
    let invalid = |reason| CgroupError::InvalidPath {
        path: cgroups_path.to_string(),
        reason,
    };
    if !cgroups_path.starts_with('/') && cgroups_path.split(':').count() == 3 {
        return Err(CgroupError::SystemdPath {
            path: cgroups_path.to_string(),
        });
    }
    let mut rel = PathBuf::new();
    for comp in Path::new(cgroups_path).components() {
        match comp {
            Component::Normal(c) => rel.push(c),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(invalid("`..` would leave the cgroup hierarchy"))
            }
        }
    }
    if rel.as_os_str().is_empty() {
        return Err(invalid(
            "a container cannot use the root of the cgroup hierarchy",
        ));
    }
    Ok(rel)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;

impl Cgroup {
    /// Removes the empty parent directories berth made for this cgroup
    /// (those named `berth…`, such as the default `/berth`), so that the
    /// last container leaves no trace. A parent still in use stays.
    pub fn prune_parents(&self) {
        for p in self.paths() {
            for parent in p.ancestors().skip(1) {
                let berths = parent
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("berth"));
                if !berths || std::fs::remove_dir(parent).is_err() {
                    break;
                }
            }
        }
    }

    /// For a container's `/sys/fs/cgroup` on a v1 or hybrid host: each
    /// hierarchy's name as mounted (e.g. `cpu,cpuacct`) and the container's
    /// directory in it, plus `unified` for the cgroup2 side mount.
    pub fn v1_mounts(&self) -> Vec<(String, PathBuf)> {
        let mut out: Vec<(String, PathBuf)> = self
            .v1
            .iter()
            .map(|h| (h.controllers.join(","), h.path.clone()))
            .collect();
        if !self.v1.is_empty() {
            if let Some(u) = &self.unified {
                out.push(("unified".to_string(), u.clone()));
            }
        }
        out
    }
}
