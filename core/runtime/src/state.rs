//! A container's record under the runtime root (`<root>/<id>/state.json`):
//! written atomically, read by every later command, and the source of the
//! OCI state JSON. The status is derived from the live process each time.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::cgroups::Cgroup;
use crate::error::{Result, RuntimeError};

/// The OCI status of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// What berth remembers about a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub pid: i32,
    /// Start time of `pid` (field 22 of /proc/PID/stat): guards against pid reuse.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: u32,
    pub cgroup: Cgroup,
    pub spec: Spec,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
}

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";

impl Record {
    pub fn dir(root: &Path, id: &str) -> PathBuf {
        root.join(id)
    }

    /// Writes the record atomically (temporary file, rename). No fsync: the
    /// runtime's state describes live processes and belongs on a tmpfs
    /// (`/run`), as runc's does; a reader sees the old or the new record,
    /// never half of one, and after a power loss there is nothing to describe.
    pub fn save(&self, root: &Path) -> Result<()> {
        let dir = Record::dir(root, &self.id);
        let tmp = dir.join(".state.json.tmp");
        let path = dir.join(STATE_FILE);
        let data = serde_json::to_vec(self).map_err(|e| RuntimeError::CorruptState {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let mut f =
            std::fs::File::create(&tmp).map_err(|e| RuntimeError::io("writing", &tmp, e))?;
        f.write_all(&data)
            .map_err(|e| RuntimeError::io("writing", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| RuntimeError::io("renaming", &path, e))
    }

    pub fn load(root: &Path, id: &str) -> Result<Record> {
        crate::spec::validate_id(id)?;
        let path = Record::dir(root, id).join(STATE_FILE);
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RuntimeError::NotFound { id: id.into() })
            }
            Err(e) => return Err(RuntimeError::io("reading", &path, e)),
        };
        serde_json::from_slice(&data).map_err(|e| RuntimeError::CorruptState {
            path,
            reason: e.to_string(),
        })
    }

    /// Derives the status from the process, the exec fifo and the freezer.
    pub fn status(&self, root: &Path) -> Status {
        if !process_alive(self.pid, self.pid_start) {
            return Status::Stopped;
        }
        if Record::dir(root, &self.id).join(EXEC_FIFO).exists() {
            return Status::Created;
        }
        if self.cgroup.is_frozen().unwrap_or(false) {
            return Status::Paused;
        }
        Status::Running
    }

    /// The OCI state JSON.
    pub fn oci_state(&self, status: Status) -> serde_json::Value {
        let mut v = serde_json::json!({
            "ociVersion": "1.0.2",
            "id": self.id,
            "status": status.as_str(),
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": "",
        });
        if status != Status::Stopped {
            v["pid"] = self.pid.into();
        } else {
            v["pid"] = 0.into();
        }
        if !self.annotations.is_empty() {
            v["annotations"] = serde_json::to_value(&self.annotations).unwrap_or_default();
        }
        v
    }
}

/// Start time of a process in clock ticks since boot, or None if it is gone.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: parse after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // rest starts at field 3 (state); starttime is field 22.
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Whether `pid` is still the process we started (and not a zombie).
pub fn process_alive(pid: i32, pid_start: u64) -> bool {
    pid > 0 && start_time(pid) == Some(pid_start)
}

/// Now, as RFC 3339 with nanoseconds in UTC (as runc writes `created`).
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format_rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

/// `secs` since the epoch (plus `nanos`) as RFC 3339 in UTC with nanoseconds.
pub fn format_rfc3339(secs: i64, nanos: u32) -> String {
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = if month <= 2 { y + 1 } else { y };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_process_is_alive_and_a_bogus_start_time_is_not() {
        let me = std::process::id() as i32;
        let st = start_time(me).unwrap();
        assert!(process_alive(me, st));
        assert!(!process_alive(me, st + 1));
        assert!(!process_alive(-1, 0));
    }

    #[test]
    fn timestamps_look_like_rfc3339() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 30, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T');
    }
}
