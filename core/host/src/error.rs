//! The errors the host returns: each names the plugin and the call that failed.
//!
//! A plugin's own `result<_, error>` becomes [`HostError::Plugin`]; a trap,
//! deadline, memory cap or policy violation ends the call and becomes one of
//! the other variants. Host failures never reach the plugin as values.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use berth_errdefs::ErrorKind;

/// What kind of failure a plugin reported (the WIT `error` variant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PluginErrorKind {
    /// The object does not exist.
    NotFound,
    /// The object already exists.
    AlreadyExists,
    /// The input is malformed (bad tar, bad manifest, digest mismatch).
    Invalid,
    /// The host refused a primitive: outside the plugin's grants.
    Denied,
    /// A remote service failed or could not be reached.
    Unavailable,
    /// A remote refused the credentials.
    Unauthorized,
    /// Anything else.
    Other,
}

impl fmt::Display for PluginErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PluginErrorKind::NotFound => "not found",
            PluginErrorKind::AlreadyExists => "already exists",
            PluginErrorKind::Invalid => "invalid",
            PluginErrorKind::Denied => "denied",
            PluginErrorKind::Unavailable => "unavailable",
            PluginErrorKind::Unauthorized => "unauthorized",
            PluginErrorKind::Other => "failed",
        })
    }
}

/// An error a plugin returned from a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    /// Its kind.
    pub kind: PluginErrorKind,
    /// The plugin's message.
    pub message: String,
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// What the host refused a plugin, by the grant it reached beyond.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// A `layer-fs` call with a path out of the plugin's root.
    #[error("layer-fs.{op}: path `{path}` {why}")]
    Path {
        /// The primitive (`write-file`, `kind`, …).
        op: String,
        /// The path as the plugin gave it.
        path: String,
        /// How it leaves the root.
        why: String,
    },
    /// A WASI filesystem call with a path that leaves the directory it is
    /// resolved in.
    #[error("wasi:filesystem {op}: path `{path}` leaves the directory it is resolved in")]
    WasiPath {
        /// The method (`[method]descriptor.open-at`, …).
        op: String,
        /// The path as the plugin gave it.
        path: String,
    },
    /// A mount the host will not make (its kind, source or options).
    #[error("{0}")]
    Mount(String),
    /// An HTTP request the plugin's grants do not allow (its host or scheme).
    #[error("{0}")]
    Http(String),
    /// A network plan or answer beyond the plugin's grants.
    #[error(transparent)]
    Plan(#[from] crate::net::PlanViolation),
}

/// Why loading a plugin or one of its calls failed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The component could not be read, compiled, cached or linked.
    #[error("plugin {plugin}: cannot load: {reason}")]
    Load {
        /// The plugin.
        plugin: String,
        /// What went wrong, naming the file or import.
        reason: String,
    },
    /// The component was built for an ABI version this host does not speak.
    #[error(
        "plugin {plugin}: built for berth:plugin@{found}, but this berth supports berth:plugin@{supported}; rebuild the plugin against a matching berth-sdk"
    )]
    Version {
        /// The plugin.
        plugin: String,
        /// The version the plugin was built for.
        found: String,
        /// The version this host implements.
        supported: String,
    },
    /// The plugin trapped (a bug in the plugin); the call was abandoned.
    #[error("plugin {plugin}: {call} trapped: {cause}")]
    Trap {
        /// The plugin.
        plugin: String,
        /// The call.
        call: String,
        /// The trap and its backtrace, as wasmtime reports it.
        cause: String,
    },
    /// The call ran past its deadline and was stopped.
    #[error("plugin {plugin}: {call} did not finish within {after:?} and was stopped")]
    Timeout {
        /// The plugin.
        plugin: String,
        /// The call.
        call: String,
        /// The deadline.
        after: Duration,
    },
    /// The plugin tried to grow its memory past its limit.
    #[error("plugin {plugin}: {call} ran out of memory (limit {limit} bytes)")]
    OutOfMemory {
        /// The plugin.
        plugin: String,
        /// The call.
        call: String,
        /// The memory limit in bytes.
        limit: usize,
    },
    /// The plugin reported an error.
    #[error("plugin {plugin}: {call}: {error}")]
    Plugin {
        /// The plugin.
        plugin: String,
        /// The call.
        call: String,
        /// What the plugin said.
        error: PluginError,
    },
    /// The plugin tried something outside its grants (a path out of its root,
    /// a registry it was not granted, a mount the host will not make, a
    /// network plan beyond its prefixes and pools).
    #[error("plugin {plugin}: {call} was refused: {what}")]
    Denied {
        /// The plugin.
        plugin: String,
        /// The call.
        call: String,
        /// What was refused, naming the path, host, option or plan step
        /// (boxed: it is the largest part of a `HostError`); see
        /// [`HostError::refusal`].
        what: Box<Refusal>,
    },
    /// Applying (or undoing) a network plugin's plan failed; what was
    /// applied has been undone.
    #[error("plugin {plugin}: {call}: {error}")]
    Network {
        /// The plugin.
        plugin: String,
        /// The call.
        call: String,
        /// The step the kernel refused.
        error: crate::net::NetError,
    },
    /// A host-side I/O operation for the plugin failed.
    #[error("plugin {plugin}: {call}: {path}: {source}")]
    Io {
        /// The plugin.
        plugin: String,
        /// The call (or `load`).
        call: String,
        /// The file involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl PluginErrorKind {
    /// The error kind a plugin's own error is, for callers and the API.
    pub fn kind(self) -> ErrorKind {
        match self {
            PluginErrorKind::NotFound => ErrorKind::NotFound,
            PluginErrorKind::AlreadyExists => ErrorKind::Conflict,
            PluginErrorKind::Invalid => ErrorKind::InvalidInput,
            PluginErrorKind::Denied | PluginErrorKind::Unauthorized => ErrorKind::Forbidden,
            PluginErrorKind::Unavailable => ErrorKind::Unavailable,
            PluginErrorKind::Other => ErrorKind::Internal,
        }
    }
}

/// Compiling a component by itself ([`compile_to_file`](crate::compile_to_file),
/// what `berth plugin-compile` runs) failed.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// wasmtime refused the component.
    #[error("cannot compile the component: {reason}")]
    Invalid {
        /// wasmtime's error.
        reason: String,
    },
    /// The engine could not be set up.
    #[error("cannot create the wasmtime engine: {reason}")]
    Engine {
        /// wasmtime's error.
        reason: String,
    },
    /// The compiled component could not be written.
    #[error("cannot write the compiled component to {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl CompileError {
    /// A component wasmtime refuses is the operator's input to fix; the rest
    /// is internal.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CompileError::Invalid { .. } => ErrorKind::InvalidInput,
            CompileError::Engine { .. } | CompileError::Write { .. } => ErrorKind::Internal,
        }
    }
}

impl HostError {
    /// What kind of failure this is: a plugin's own error keeps its kind; a
    /// plugin built for another ABI is the operator's input to fix; a call
    /// cut off by its deadline or memory cap is unavailable; a refusal of
    /// the plugin's grants is forbidden; a kernel refusing a network step
    /// is classified by its errno ([`crate::net::NetError::kind`]); a trap,
    /// a load or I/O failure are internal.
    pub fn kind(&self) -> ErrorKind {
        match self {
            HostError::Plugin { error, .. } => error.kind.kind(),
            HostError::Version { .. } => ErrorKind::InvalidInput,
            HostError::Timeout { .. } | HostError::OutOfMemory { .. } => ErrorKind::Unavailable,
            HostError::Denied { .. } => ErrorKind::Forbidden,
            HostError::Network { error, .. } => error.kind(),
            HostError::Load { .. } | HostError::Trap { .. } | HostError::Io { .. } => {
                ErrorKind::Internal
            }
        }
    }

    /// What the host refused the plugin, if that is why the call failed.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            HostError::Denied { what, .. } => Some(what),
            _ => None,
        }
    }

    /// The plugin's error kind, if the plugin itself reported the error.
    pub fn plugin_error_kind(&self) -> Option<PluginErrorKind> {
        match self {
            HostError::Plugin { error, .. } => Some(error.kind),
            _ => None,
        }
    }
}
