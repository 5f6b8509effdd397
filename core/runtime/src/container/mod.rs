//! The container lifecycle behind the OCI runtime verbs: create, start,
//! run, state, kill, delete, exec, ps, list, pause and resume. Every step
//! that can fail after something was made undoes what it made. This module
//! holds the runtime's handle and the verbs that only read or freeze a
//! container; creating, the lifecycle after it and exec have their own.

mod create;
mod exec;
mod lifecycle;

use std::path::{Path, PathBuf};

use crate::cgroups;
use crate::error::{Result, RuntimeError};
use crate::state::{Record, Status};

/// Where containers live, as runc's `--root`.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub root: PathBuf,
}

/// Options of `create` and `run`.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
}

/// Options of `exec`.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub detach: bool,
}

fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp = path.with_extension("berth-tmp");
    std::fs::write(&tmp, pid.to_string())
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| RuntimeError::io("writing the pid file", path, e))
}

impl Runtime {
    pub fn new(root: impl Into<PathBuf>) -> Runtime {
        Runtime { root: root.into() }
    }

    fn ensure_root(&self) -> Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .map_err(|e| RuntimeError::io("creating the state root", &self.root, e))
    }

    /// Loads container `id`, which must be `want` for `action`.
    fn load_when(&self, id: &str, want: Status, action: &'static str) -> Result<Record> {
        let rec = Record::load(&self.root, id)?;
        let status = rec.status(&self.root);
        if status != want {
            return Err(RuntimeError::WrongState {
                id: id.into(),
                status: status.as_str(),
                action,
            });
        }
        Ok(rec)
    }

    /// The OCI state of a container.
    pub fn state(&self, id: &str) -> Result<serde_json::Value> {
        let rec = Record::load(&self.root, id)?;
        Ok(rec.oci_state(rec.status(&self.root)))
    }

    /// The pids of all processes in the container (host pid namespace).
    pub fn ps(&self, id: &str) -> Result<Vec<i32>> {
        let rec = Record::load(&self.root, id)?;
        let mut p = rec.cgroup.pids().map_err(RuntimeError::cgroup(id))?;
        p.sort();
        Ok(p)
    }

    /// All containers under the root with their status.
    pub fn list(&self) -> Result<Vec<(Record, Status)>> {
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(RuntimeError::io("listing", &self.root, e)),
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Ok(rec) = Record::load(&self.root, &name) {
                let st = rec.status(&self.root);
                out.push((rec, st));
            }
        }
        out.sort_by(|a, b| a.0.created.cmp(&b.0.created));
        Ok(out)
    }

    pub fn pause(&self, id: &str) -> Result<()> {
        let rec = self.load_when(id, Status::Running, "pause")?;
        rec.cgroup.freeze().map_err(RuntimeError::cgroup(id))
    }

    pub fn resume(&self, id: &str) -> Result<()> {
        let rec = self.load_when(id, Status::Paused, "resume")?;
        rec.cgroup.thaw().map_err(RuntimeError::cgroup(id))
    }

    /// Applies new cgroup limits to a container that has not stopped
    /// (runc's `update`): memory, CPU, pids, block I/O as `resources` sets
    /// them; what it leaves unset stays as it is.
    pub fn update(&self, id: &str, resources: &oci_spec::runtime::LinuxResources) -> Result<()> {
        let rec = Record::load(&self.root, id)?;
        let status = rec.status(&self.root);
        if status == Status::Stopped {
            return Err(RuntimeError::WrongState {
                id: id.to_string(),
                status: status.as_str(),
                action: "update",
            });
        }
        rec.cgroup
            .apply(resources)
            .map_err(RuntimeError::cgroup(id))
    }

    /// Cgroup statistics of a container.
    pub fn stats(&self, id: &str) -> Result<cgroups::Stats> {
        let rec = Record::load(&self.root, id)?;
        rec.cgroup.stats().map_err(RuntimeError::cgroup(id))
    }
}
