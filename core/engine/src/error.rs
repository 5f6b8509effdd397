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
    #[error("container {id:?} not found")]
    ContainerNotFound { id: String },
    #[error("configuration {path}: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error(transparent)]
    Plugin(#[from] berth_host::HostError),
    #[error(transparent)]
    Runtime(#[from] berth_runtime::RuntimeError),
    /// An image reference (or other shared OCI logic) the SDK refused.
    #[error(transparent)]
    Sdk(#[from] berth_sdk::SdkError),
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
