//! The SDK's error type: what went wrong in shared plugin logic.

/// An error of the SDK's plugin-independent logic (tar, references, OCI JSON).
#[derive(Debug, thiserror::Error)]
pub enum SdkError {
    /// A tar entry's path leaves the layer root through `..`.
    #[error("path {0:?} escapes the layer root through '..'")]
    PathEscape(String),
    /// A tar header is malformed.
    #[error("malformed tar header at offset {offset}: {reason}")]
    TarHeader {
        /// Byte offset of the header in the stream.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A tar entry type the SDK does not handle.
    #[error("tar entry {path:?} has unsupported type {kind:?}")]
    TarUnsupported {
        /// The entry's path.
        path: String,
        /// The tar type flag.
        kind: char,
    },
    /// The stream ended inside an entry.
    #[error("tar stream truncated at offset {0}")]
    TarTruncated(u64),
    /// Reading or writing the underlying stream failed.
    #[error("tar stream i/o failed: {0}")]
    Io(#[from] std::io::Error),
    /// An image reference does not parse.
    #[error("invalid image reference {reference:?}: {reason}")]
    Reference {
        /// The reference as given.
        reference: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An OCI JSON document (manifest, index, config) does not parse.
    #[error("invalid {what}: {source}")]
    Json {
        /// Which document.
        what: String,
        /// The parse error.
        source: serde_json::Error,
    },
    /// No manifest of an index matches the wanted platform.
    #[error("no manifest for platform {0} in the image index")]
    NoPlatform(String),
    /// A digest is not `sha256:<64 hex>`.
    #[error("invalid digest {0:?} (want sha256:<64 hex digits>)")]
    Digest(String),
}

/// The error type plugins return across the ABI.
pub use crate::wit::common::berth::plugin::types::Error as PluginError;

impl From<SdkError> for PluginError {
    fn from(e: SdkError) -> Self {
        let msg = e.to_string();
        match e {
            SdkError::NoPlatform(_) => PluginError::NotFound(msg),
            SdkError::Io(_) => PluginError::Other(msg),
            _ => PluginError::Invalid(msg),
        }
    }
}

impl From<std::io::Error> for PluginError {
    fn from(e: std::io::Error) -> Self {
        use std::io::ErrorKind::*;
        let msg = e.to_string();
        match e.kind() {
            NotFound => PluginError::NotFound(msg),
            AlreadyExists => PluginError::AlreadyExists(msg),
            PermissionDenied => PluginError::Denied(msg),
            InvalidData | InvalidInput | UnexpectedEof => PluginError::Invalid(msg),
            _ => PluginError::Other(msg),
        }
    }
}

/// Adds context (what failed, on which object) to a plugin error's message.
pub fn context(e: PluginError, what: &str) -> PluginError {
    use PluginError::*;
    match e {
        NotFound(m) => NotFound(format!("{what}: {m}")),
        AlreadyExists(m) => AlreadyExists(format!("{what}: {m}")),
        Invalid(m) => Invalid(format!("{what}: {m}")),
        Denied(m) => Denied(format!("{what}: {m}")),
        Unavailable(m) => Unavailable(format!("{what}: {m}")),
        Unauthorized(m) => Unauthorized(format!("{what}: {m}")),
        Other(m) => Other(format!("{what}: {m}")),
    }
}
