//! The runtime's error type: every variant names the operation that failed
//! or the thing that was refused, and the object it concerns. Each error
//! also says what kind of failure it is ([`RuntimeError::kind`]), so the API
//! layer picks a status without reading the message.

use std::path::PathBuf;

use berth_errdefs::ErrorKind;
use nix::errno::Errno;

use crate::cgroups::CgroupError;
use crate::process::sync::{Msg, Stage};

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
    /// The process given to `exec` is not one that can run.
    #[error("container {id:?}: invalid process to exec: {reason}")]
    InvalidExecProcess { id: String, reason: String },
    /// A config handed to the init plan without a process (bundles are
    /// validated before, so only a caller that skipped that sees it).
    #[error("the config has no process to run (process: missing)")]
    MissingProcess,
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
    /// A terminal was asked for where nobody would hold it: a detached
    /// container or exec hands its pty master to a console socket.
    #[error(
        "container {id:?}: process.terminal is true but no --console-socket was given: \
         a detached {detached} needs one to hand its terminal to"
    )]
    NoConsoleSocket {
        id: String,
        /// `container` or `exec`.
        detached: &'static str,
    },
    /// A path, argument or name meant for the kernel holds a NUL byte.
    #[error("path or string {value:?} contains a NUL byte")]
    NulByte { value: String },
    #[error("mount {destination}: option {option:?} is not supported by berth")]
    UnsupportedMountOption {
        destination: PathBuf,
        option: String,
    },
    #[error("linux.devices {path}: {reason}")]
    InvalidDevice { path: PathBuf, reason: &'static str },
    #[error("linux.sysctl {name:?}: invalid name")]
    InvalidSysctl { name: String },
    /// Without a mount namespace berth makes no mount; these were asked for.
    #[error(
        "linux.namespaces has no mount namespace, so the container shares the host's mounts \
         and berth makes none (it would change the host's); the config asks for {}: \
         add a mount namespace or remove them",
        .asked.join(", ")
    )]
    MountsWithoutMountNamespace { asked: Vec<String> },
    #[error("process.capabilities.{set}: unknown capability {name}")]
    UnknownCapability { set: &'static str, name: String },
    /// An AppArmor profile on a host without AppArmor: it would run unconfined.
    #[error(
        "process.apparmorProfile {profile:?}: AppArmor is not enabled on this host \
         ({} is missing or not \"Y\"), so the container would run unconfined; \
         remove the profile or run it on a host with the AppArmor LSM",
        .enabled.display()
    )]
    AppArmorUnavailable {
        profile: String,
        /// The module parameter that says whether AppArmor is enabled.
        enabled: PathBuf,
    },
    /// A SELinux label on a host that enforces SELinux: berth cannot apply it.
    #[error(
        "process.selinuxLabel {label:?}: SELinux is enabled on this host and berth \
         does not apply SELinux labels; remove the label or use runc"
    )]
    SelinuxLabel { label: String },
    #[error("invalid signal {signal:?}: give a name such as TERM or SIGTERM, or a number")]
    InvalidSignal { signal: String },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{op}: {source}")]
    Sys { op: String, source: Errno },
    #[error("sending {signal} to container {id:?} (pid {pid}): {source}")]
    Kill {
        id: String,
        pid: i32,
        signal: nix::sys::signal::Signal,
        source: Errno,
    },
    /// A step of the container's init, or of an exec'd process, failed
    /// between clone and execve. `step` says which and why, in words built
    /// from the plan; `errno` is the cause where there is one (a hook's exit
    /// status is not an errno).
    #[error("container {id:?}: {step}")]
    InitStep {
        id: String,
        stage: Stage,
        errno: Option<Errno>,
        step: String,
    },
    /// The init, or an exec'd process, ended before it reported ready.
    #[error("container {id:?}: {process} exited before it was ready")]
    ExitedEarly {
        id: String,
        /// `the container's init` or `the exec'd process`.
        process: &'static str,
    },
    /// `start` found the init gone: nothing is left to start.
    #[error("container {id:?}: the container's init exited before it could be started")]
    InitGone { id: String },
    /// Talking to the init over the sync socket failed.
    #[error("container {id:?}: {op}: {}", .errno.desc())]
    InitChannel {
        id: String,
        /// What was being sent or read.
        op: &'static str,
        errno: Errno,
    },
    #[error("container {id:?}: unexpected message {msg:?} from {process}")]
    InitProtocol {
        id: String,
        /// `the container's init` or `the exec'd process`.
        process: &'static str,
        msg: Msg,
    },
    #[error("cgroup of container {id:?}: {source}")]
    Cgroup { id: String, source: CgroupError },
    #[error("seccomp profile: action SCMP_ACT_NOTIFY needs a listenerPath, which berth does not support yet")]
    SeccompNotify,
    #[error("seccomp profile: unknown architecture {arch}")]
    SeccompUnknownArch { arch: String },
    /// libseccomp refused something the profile asks for.
    #[error("seccomp profile: adding {rule}: {source}")]
    SeccompRule {
        /// `architecture NAME`, `the rule for NAME`, …
        rule: String,
        source: libseccomp::error::SeccompError,
    },
    /// Building or exporting the filter failed.
    #[error("seccomp profile: {op}: {source}")]
    SeccompFilter {
        op: &'static str,
        source: libseccomp::error::SeccompError,
    },
    #[error("seccomp profile: {op}: {source}")]
    SeccompExport {
        op: &'static str,
        source: std::io::Error,
    },
    #[error("{hook} hook {path}: {failure}")]
    Hook {
        hook: &'static str,
        path: PathBuf,
        failure: HookFailure,
    },
    #[error("container state {path} is corrupt: {reason}")]
    CorruptState { path: PathBuf, reason: String },
}

/// How a hook run by the runtime failed.
#[derive(Debug, thiserror::Error)]
pub enum HookFailure {
    #[error("could not start it: {0}")]
    Spawn(std::io::Error),
    #[error("failed: {0}")]
    Exit(std::process::ExitStatus),
    #[error("waiting for it: {0}")]
    Wait(std::io::Error),
    #[error("timed out after {0} s")]
    Timeout(i64),
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

    pub(crate) fn sys(op: impl Into<String>, source: Errno) -> Self {
        RuntimeError::Sys {
            op: op.into(),
            source,
        }
    }

    /// Wraps a cgroup error of container `id` (for `map_err`).
    pub(crate) fn cgroup(id: &str) -> impl FnOnce(CgroupError) -> RuntimeError + '_ {
        move |source| RuntimeError::Cgroup {
            id: id.into(),
            source,
        }
    }

    /// What kind of failure this is, for callers that answer with a status.
    pub fn kind(&self) -> ErrorKind {
        use RuntimeError::*;
        match self {
            NotFound { .. } => ErrorKind::NotFound,
            AlreadyExists { .. } | WrongState { .. } | InitGone { .. } => ErrorKind::Conflict,
            ReadConfig { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ErrorKind::InvalidInput
            }
            ParseConfig { .. }
            | InvalidConfig { .. }
            | InvalidExecProcess { .. }
            | MissingProcess
            | MissingRootfs { .. }
            | InvalidId { .. }
            | NoConsoleSocket { .. }
            | NulByte { .. }
            | UnsupportedMountOption { .. }
            | InvalidDevice { .. }
            | InvalidSysctl { .. }
            | MountsWithoutMountNamespace { .. }
            | UnknownCapability { .. }
            | SelinuxLabel { .. }
            | InvalidSignal { .. }
            | SeccompNotify
            | SeccompUnknownArch { .. }
            | SeccompRule { .. } => ErrorKind::InvalidInput,
            AppArmorUnavailable { .. } => ErrorKind::Unavailable,
            Kill { source, .. } if *source == Errno::ESRCH => ErrorKind::Conflict,
            InitStep { stage, errno, .. } => init_step_kind(*stage, *errno),
            Hook {
                failure: HookFailure::Spawn(e),
                ..
            } if e.kind() == std::io::ErrorKind::NotFound => ErrorKind::InvalidInput,
            Cgroup { source, .. } => source.kind(),
            ReadConfig { .. }
            | Io { .. }
            | Sys { .. }
            | Kill { .. }
            | ExitedEarly { .. }
            | InitChannel { .. }
            | InitProtocol { .. }
            | SeccompFilter { .. }
            | SeccompExport { .. }
            | Hook { .. }
            | CorruptState { .. } => ErrorKind::Internal,
        }
    }
}

/// A binary or working directory the config names and the container does
/// not have (or may not use) is the caller's to fix; any other failure of
/// the init is the machine's.
fn init_step_kind(stage: Stage, errno: Option<Errno>) -> ErrorKind {
    let missing = matches!(
        errno,
        Some(Errno::ENOENT | Errno::ENOTDIR | Errno::EACCES | Errno::ENOEXEC)
    );
    match stage {
        Stage::ExecLookup | Stage::Exec | Stage::Cwd if missing => ErrorKind::InvalidInput,
        _ => ErrorKind::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_says_its_kind() {
        let io = || std::io::Error::from(std::io::ErrorKind::NotFound);
        let cases = [
            (
                RuntimeError::NotFound { id: "c".into() },
                ErrorKind::NotFound,
            ),
            (
                RuntimeError::AlreadyExists {
                    id: "c".into(),
                    path: "/run/c".into(),
                },
                ErrorKind::Conflict,
            ),
            (
                RuntimeError::WrongState {
                    id: "c".into(),
                    status: "running",
                    action: "delete",
                },
                ErrorKind::Conflict,
            ),
            (
                RuntimeError::InvalidId {
                    id: "a/b".into(),
                    reason: "no".into(),
                },
                ErrorKind::InvalidInput,
            ),
            (
                RuntimeError::UnsupportedMountOption {
                    destination: "/data".into(),
                    option: "idmap".into(),
                },
                ErrorKind::InvalidInput,
            ),
            (
                RuntimeError::ReadConfig {
                    path: "/b/config.json".into(),
                    source: io(),
                },
                ErrorKind::InvalidInput,
            ),
            (
                RuntimeError::AppArmorUnavailable {
                    profile: "p".into(),
                    enabled: "/sys/x".into(),
                },
                ErrorKind::Unavailable,
            ),
            (
                RuntimeError::Cgroup {
                    id: "c".into(),
                    source: CgroupError::NoMount,
                },
                ErrorKind::Unavailable,
            ),
            (RuntimeError::io("reading", "/x", io()), ErrorKind::Internal),
            (
                RuntimeError::sys("signalfd", Errno::EMFILE),
                ErrorKind::Internal,
            ),
            (
                RuntimeError::InitStep {
                    id: "c".into(),
                    stage: Stage::ExecLookup,
                    errno: Some(Errno::ENOENT),
                    step: "exec \"nope\": executable file not found".into(),
                },
                ErrorKind::InvalidInput,
            ),
            (
                RuntimeError::InitStep {
                    id: "c".into(),
                    stage: Stage::Mounts,
                    errno: Some(Errno::ENOENT),
                    step: "mounting proc on /proc".into(),
                },
                ErrorKind::Internal,
            ),
            (
                RuntimeError::Kill {
                    id: "c".into(),
                    pid: 1,
                    signal: nix::sys::signal::Signal::SIGTERM,
                    source: Errno::ESRCH,
                },
                ErrorKind::Conflict,
            ),
        ];
        for (e, kind) in cases {
            assert_eq!(e.kind(), kind, "{e}");
        }
    }
}
