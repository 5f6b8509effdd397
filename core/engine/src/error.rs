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

impl EngineError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EngineError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
