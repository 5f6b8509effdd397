//! The journal of what one plugin call created, so a failed call can be undone.
//!
//! Each `layer-fs` primitive that creates an entry records its path; when the
//! call returns an error or traps, [`Journal::rollback`] removes those
//! entries newest first. Only entries this call created are touched: what
//! existed before the call stays.

use crate::beneath::Root;
use crate::fsops;

/// Paths (relative to the plugin's root) created by the current call.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    created: Vec<String>,
}

impl Journal {
    /// Records that `path` was created by this call.
    pub(crate) fn record(&mut self, path: &str) {
        self.created.push(path.to_owned());
    }

    /// How many entries are recorded.
    pub(crate) fn len(&self) -> usize {
        self.created.len()
    }

    /// Forgets everything: the call succeeded.
    pub(crate) fn commit(&mut self) {
        self.created.clear();
    }

    /// Removes what this call created, newest first. Removal stays beneath
    /// the root like every primitive; failures are logged, not returned, so
    /// the rest is still removed.
    pub(crate) fn rollback(&mut self, root: &Root, plugin: &str) {
        for path in self.created.drain(..).rev() {
            if let Err(e) = fsops::remove(root, &path) {
                tracing::warn!(plugin, path, error = %e, "rollback could not remove an entry the failed call created");
            }
        }
    }
}
