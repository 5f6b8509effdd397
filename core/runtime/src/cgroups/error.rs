//! The one error type of the cgroups module: each variant names the operation that failed and the
//! file, directory or setting it failed on, and says what kind of failure it is.

use std::io;
use std::path::PathBuf;

use berth_errdefs::ErrorKind;

/// What went wrong while detecting, creating, configuring or removing a cgroup.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A host file that describes the cgroup layout (mountinfo, /proc/self/cgroup) could not be read.
    #[error("cannot read {path} to find the cgroup mounts: {source}")]
    ReadLayout {
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// No cgroup (v1) or cgroup2 filesystem is mounted.
    #[error("no cgroup or cgroup2 filesystem is mounted; mount one (e.g. `mount -t cgroup2 none /sys/fs/cgroup`)")]
    NoMount,
    /// A systemd-style `slice:prefix:name` cgroups path was given.
    #[error("cgroups path {path:?} is a systemd `slice:prefix:name` path, but berth only has the cgroupfs driver; use a path such as /berth/<id>")]
    SystemdPath {
        /// The refused path.
        path: String,
    },
    /// The cgroups path is empty, the root, or escapes the hierarchy with `..`.
    #[error("invalid cgroups path {path:?}: {reason}")]
    InvalidPath {
        /// The refused path.
        path: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A cgroup directory could not be created.
    #[error("cannot create cgroup directory {path}: {source}")]
    Create {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A cgroup directory could not be removed.
    #[error("cannot remove cgroup directory {path}: {source}")]
    Remove {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The cgroup already holds processes: another container probably uses the same path.
    #[error("cgroup {path} already holds processes {pids:?}; is another container using the same cgroups path?")]
    InUse {
        /// The directory.
        path: PathBuf,
        /// The processes found in it.
        pids: Vec<i32>,
    },
    /// The kernel refused a value written to a cgroup file.
    #[error("cannot write {value:?} to {path}: {source}")]
    Write {
        /// The interface file.
        path: PathBuf,
        /// The value written.
        value: String,
        /// The underlying error (EINVAL, EBUSY, EPERM...).
        source: io::Error,
    },
    /// A cgroup file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The interface file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A cgroup file held something this module does not understand.
    #[error("cannot parse {path}: unexpected content {content:?}")]
    Parse {
        /// The interface file.
        path: PathBuf,
        /// The offending content.
        content: String,
    },
    /// A setting needs an interface file that this kernel or cgroup does not have.
    #[error("{setting} needs {path}, which does not exist (controller not mounted or enabled, or not supported by this kernel)")]
    MissingFile {
        /// The OCI setting, e.g. `blockIO.weight`.
        setting: String,
        /// The missing interface file.
        path: PathBuf,
    },
    /// A setting that this cgroup version or layout cannot apply.
    #[error("{setting} is not supported here: {reason}")]
    Unsupported {
        /// The OCI setting, e.g. `memory.swappiness`.
        setting: String,
        /// Why, and what to do instead.
        reason: String,
    },
    /// A setting has a value outside what the kernel accepts.
    #[error("invalid value for {setting}: {reason}")]
    InvalidValue {
        /// The OCI setting.
        setting: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A device rule cannot be expressed (bad type, access or number).
    #[error("invalid device rule {rule:?}: {reason}")]
    DeviceRule {
        /// The rule, as `type major:minor access`.
        rule: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The kernel refused to load the device-filter BPF program.
    #[error("cannot load the device filter BPF program for {path}: {source}{log}")]
    BpfLoad {
        /// The cgroup2 directory the program was meant for.
        path: PathBuf,
        /// The verifier log, prefixed with a newline, or empty.
        log: String,
        /// The underlying error.
        source: io::Error,
    },
    /// A BPF attach, detach or query on a cgroup2 directory failed.
    #[error("cannot {op} device filter BPF programs on {path}: {source}")]
    Bpf {
        /// `attach`, `detach`, `query` or `open`.
        op: &'static str,
        /// The cgroup2 directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Sending a signal to a process of the cgroup failed.
    #[error("cannot kill process {pid} of cgroup {path}: {source}")]
    Kill {
        /// The process.
        pid: i32,
        /// The directory it was found in.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The cgroup did not reach the expected state in time.
    #[error("timed out waiting for {path} to show {expected:?}")]
    Timeout {
        /// The file polled.
        path: PathBuf,
        /// The state that never came.
        expected: &'static str,
    },
}

impl CgroupError {
    /// What kind of failure this is: a bad setting is the caller's, a controller or kernel
    /// feature that is not there is unavailable, a cgroup another container holds is a conflict,
    /// and a failing read, write or syscall is the machine's.
    pub fn kind(&self) -> ErrorKind {
        use CgroupError::*;
        match self {
            SystemdPath { .. } | InvalidPath { .. } | InvalidValue { .. } | DeviceRule { .. } => {
                ErrorKind::InvalidInput
            }
            // The kernel refused the value itself (cpuset.cpus 4095, a weight out of range).
            Write { source, .. }
                if matches!(
                    source.raw_os_error(),
                    Some(libc::EINVAL | libc::ERANGE | libc::EOVERFLOW)
                ) =>
            {
                ErrorKind::InvalidInput
            }
            InUse { .. } => ErrorKind::Conflict,
            NoMount | MissingFile { .. } | Unsupported { .. } | Timeout { .. } => {
                ErrorKind::Unavailable
            }
            ReadLayout { .. }
            | Create { .. }
            | Remove { .. }
            | Write { .. }
            | Read { .. }
            | Parse { .. }
            | BpfLoad { .. }
            | Bpf { .. }
            | Kill { .. } => ErrorKind::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_says_its_kind() {
        let write = |errno| CgroupError::Write {
            path: "/sys/fs/cgroup/c/cpuset.cpus".into(),
            value: "4095".into(),
            source: io::Error::from_raw_os_error(errno),
        };
        let cases = [
            (write(libc::EINVAL), ErrorKind::InvalidInput),
            (write(libc::EBUSY), ErrorKind::Internal),
            (
                CgroupError::SystemdPath {
                    path: "a:b:c".into(),
                },
                ErrorKind::InvalidInput,
            ),
            (
                CgroupError::InUse {
                    path: "/sys/fs/cgroup/c".into(),
                    pids: vec![1],
                },
                ErrorKind::Conflict,
            ),
            (CgroupError::NoMount, ErrorKind::Unavailable),
            (
                CgroupError::MissingFile {
                    setting: "blockIO.weight".into(),
                    path: "/sys/fs/cgroup/c/io.bfq.weight".into(),
                },
                ErrorKind::Unavailable,
            ),
            (
                CgroupError::Read {
                    path: "/sys/fs/cgroup/c/memory.stat".into(),
                    source: io::Error::from_raw_os_error(libc::EIO),
                },
                ErrorKind::Internal,
            ),
        ];
        for (e, kind) in cases {
            assert_eq!(e.kind(), kind, "{e}");
        }
    }
}
