//! The engine's error type: what failed, on which object.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("blob {digest}: {reason}")]
    Blob { digest: String, reason: String },
    #[error("image {name:?} not found (pull it or load it first)")]
    ImageNotFound { name: String },
    #[error("invalid reference {reference:?}: {reason}")]
    Reference { reference: String, reason: String },
    #[error("image {name}: {reason}")]
    Image { name: String, reason: String },
    #[error(
        "image {name} is used by container {container}: remove the container first or use --force"
    )]
    ImageInUse { name: String, container: String },
    #[error("configuration {path}: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error(transparent)]
    Plugin(#[from] berth_host::HostError),
    #[error(transparent)]
    Runtime(#[from] berth_runtime::RuntimeError),
    /// An image reference (or other shared OCI logic) the SDK refused.
    #[error(transparent)]
    Sdk(#[from] berth_sdk::SdkError),
    /// docker's 404 for containers, volumes, exec instances.
    #[error("No such {what}: {name}")]
    NotFound { what: &'static str, name: String },
    /// docker's 409: the object is in a state that forbids the request.
    #[error("{reason}")]
    Conflict { reason: String },
    /// docker's 403: the operation is not allowed on this object.
    #[error("{reason}")]
    Forbidden { reason: String },
    /// docker's 400: the request itself is wrong.
    #[error("{reason}")]
    Invalid { reason: String },
    #[error("starting container {id}: {reason}")]
    Start { id: String, reason: String },
    #[error("mounting the root filesystem of {id}: {reason}")]
    Mount { id: String, reason: String },
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

pub use berth_errdefs::ErrorKind;

impl EngineError {
    /// What kind of failure this is; the API turns the kind into a status.
    /// Errors of the runtime and the plugin host keep their own kind; a
    /// start that fails (a command not found, a bad mount) is the request's
    /// fault, as docker answers it.
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::NotFound { .. } | EngineError::ImageNotFound { .. } => ErrorKind::NotFound,
            EngineError::Conflict { .. } | EngineError::ImageInUse { .. } => ErrorKind::Conflict,
            EngineError::Forbidden { .. } => ErrorKind::Forbidden,
            EngineError::Invalid { .. }
            | EngineError::Reference { .. }
            | EngineError::Config { .. }
            | EngineError::Start { .. }
            | EngineError::Image { .. }
            | EngineError::Sdk(_) => ErrorKind::InvalidInput,
            EngineError::Plugin(e) => e.kind(),
            EngineError::Runtime(e) => e.kind(),
            EngineError::Io { .. } | EngineError::Blob { .. } | EngineError::Mount { .. } => {
                ErrorKind::Internal
            }
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EngineError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_errors_keep_their_kind() {
        let missing =
            EngineError::Runtime(berth_runtime::RuntimeError::NotFound { id: "c1".into() });
        assert_eq!(missing.kind(), ErrorKind::NotFound);
        let plugin = EngineError::Plugin(berth_host::HostError::Plugin {
            plugin: "bridge".into(),
            call: "create-network".into(),
            error: berth_host::PluginError {
                kind: berth_host::PluginErrorKind::AlreadyExists,
                message: "exists".into(),
            },
        });
        assert_eq!(plugin.kind(), ErrorKind::Conflict);
        let timeout = EngineError::Plugin(berth_host::HostError::Timeout {
            plugin: "overlay".into(),
            call: "apply-layer".into(),
            after: std::time::Duration::from_secs(1),
        });
        assert_eq!(timeout.kind(), ErrorKind::Unavailable);
        let start = EngineError::Start {
            id: "c1".into(),
            reason: "exec: not found".into(),
        };
        assert_eq!(start.kind(), ErrorKind::InvalidInput);
        let io = EngineError::io("reading", "/x", std::io::Error::other("boom"));
        assert_eq!(io.kind(), ErrorKind::Internal);
    }
}
