//! Plain data the host's API takes and returns (not the generated WIT types).

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
/// the host: every path in it lies beneath the plugin's root and was a real
/// directory (no symlink on the way) when the plugin returned it.
///
/// The host keeps each checked directory open (`O_PATH`), and
/// [`Mount::mount_source`] / [`Mount::mount_options`] name those open
/// directories as `/proc/self/fd/N`: the kernel mounts exactly what was
/// checked, even if the plugin's root changed meanwhile (no check-then-use
/// race), and long layer chains fit overlay's one-page option limit. Use them
/// in this process, while the `Mount` is alive.
#[derive(Debug, Clone)]
pub struct Mount {
    /// `overlay`, `bind` or `tmpfs`.
    pub kind: String,
    /// For `bind`, the absolute source directory; otherwise a label.
    pub source: PathBuf,
    /// mount(8) options, with overlay's `lowerdir=`, `upperdir=` and `workdir=` absolute.
    pub options: Vec<String>,
    /// `source` and `options` with every checked directory as `/proc/self/fd/N`.
    pub(crate) pinned_source: PathBuf,
    pub(crate) pinned_options: Vec<String>,
    /// The open directories the pinned forms name (held, never read: they
    /// must stay open as long as the `Mount` may be used).
    #[allow(dead_code)]
    pub(crate) pins: Vec<Arc<OwnedFd>>,
}

impl Mount {
    /// What to pass to mount(2) as the source.
    pub fn mount_source(&self) -> &Path {
        &self.pinned_source
    }

    /// The options to pass to mount(2).
    pub fn mount_options(&self) -> &[String] {
        &self.pinned_options
    }
}

impl PartialEq for Mount {
    /// Mounts are equal when they describe the same thing.
    fn eq(&self, other: &Mount) -> bool {
        self.kind == other.kind && self.source == other.source && self.options == other.options
    }
}
impl Eq for Mount {}

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
