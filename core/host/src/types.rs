//! Plain data the host's API takes and returns (not the generated WIT types).

use std::path::PathBuf;

/// An OCI content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Descriptor {
    /// Media type, e.g. `application/vnd.oci.image.manifest.v1+json`.
    pub media_type: String,
    /// `sha256:<hex>` (or `sha512:<hex>`).
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
}

/// The platform to select from an image index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`, ...
    pub architecture: String,
    /// `v7`, `v8`, or empty.
    pub variant: String,
}

/// A reference resolved by a fetcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The canonical name (`registry/repository:tag`).
    pub name: String,
    /// The image manifest for the platform; it is in the content store.
    pub manifest: Descriptor,
}

/// A mount for a container's root filesystem, checked and made absolute by
/// the host: every path in it lies beneath the plugin's root and existed when
/// the plugin returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `overlay`, `bind` or `tmpfs`.
    pub kind: String,
    /// For `bind`, the absolute source directory; otherwise a label.
    pub source: PathBuf,
    /// mount(8) options, with overlay's `lowerdir=`, `upperdir=` and `workdir=` absolute.
    pub options: Vec<String>,
}

/// What applying a layer did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// Entries written.
    pub entries: u64,
    /// Bytes of file content written.
    pub bytes: u64,
}

/// Space used by a snapshot or layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes allocated.
    pub size: u64,
    /// Inodes.
    pub inodes: u64,
}
