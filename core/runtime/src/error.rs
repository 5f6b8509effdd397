//! The runtime's error type: every variant names the operation that failed
//! and the object it failed on.

use std::path::PathBuf;

use crate::cgroups::CgroupError;

/// Errors returned by berth-runtime.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("reading the bundle's config {path}: {source}")]
    ReadConfig {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing the bundle's config {path}: {reason}")]
    ParseConfig { path: PathBuf, reason: String },
    #[error("invalid config {path}: {reason}")]
    InvalidConfig { path: PathBuf, reason: String },
    #[error("container root filesystem {path} does not exist or is not a directory")]
    MissingRootfs { path: PathBuf },
    #[error("container id {id:?} is invalid: {reason}")]
    InvalidId { id: String, reason: String },
    #[error("container {id:?} already exists (state in {path})")]
    AlreadyExists { id: String, path: PathBuf },
    #[error("container {id:?} does not exist")]
    NotFound { id: String },
    #[error("container {id:?} is {status}: cannot {action}")]
    WrongState {
        id: String,
        status: &'static str,
        action: &'static str,
    },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{op}: {source}")]
    Sys {
        op: String,
        source: nix::errno::Errno,
    },
    #[error("container {id:?}: {message}")]
    Init { id: String, message: String },
    #[error("cgroup of container {id:?}: {source}")]
    Cgroup { id: String, source: CgroupError },
    #[error("seccomp profile: {reason}")]
    Seccomp { reason: String },
    #[error("{hook} hook {path}: {reason}")]
    Hook {
        hook: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("container state {path} is corrupt: {reason}")]
    CorruptState { path: PathBuf, reason: String },
    #[error("{0}")]
    Unsupported(String),
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

impl RuntimeError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RuntimeError::Io {
            op,
            path: path.into(),
            source,
        }
    }
    pub(crate) fn sys(op: impl Into<String>, source: nix::errno::Errno) -> Self {
        RuntimeError::Sys {
            op: op.into(),
            source,
        }
    }
}
