//! The vfs driver's logic over any [`LayerFs`]: layers and snapshots as full
//! copies (`layers/<hex>`, `snapshots/<key>`), records under `meta/`. The
//! verbs come with [`Driver`] around these steps.

use std::path::PathBuf;

use berth_sdk::diff::{compare_trees, DiffWriter, FileSink};
use berth_sdk::driver::DriverRoot;
pub use berth_sdk::driver::{layer_dir, snapshot_dir, Driver};
use berth_sdk::error::PluginError;
use berth_sdk::snapshots::{SnapshotKind, SnapshotRecord};
use berth_sdk::storage::Mount;
use berth_sdk::unpack::{LayerFs, Meta, Mode};

/// The vfs driver over `fs`.
#[derive(Debug)]
pub struct Vfs<F> {
    /// The plugin root, its primitives and records.
    pub base: DriverRoot<F>,
}

fn bind(source: String, rw: bool) -> Vec<Mount> {
    let mode = if rw { "rw" } else { "ro" };
    vec![Mount {
        kind: "bind".into(),
        source,
        options: vec!["rbind".into(), mode.into()],
    }]
}

impl<F: LayerFs> Vfs<F>
where
    PluginError: From<F::Error>,
{
    /// The driver on plugin root `root` (as `std::fs` sees it).
    pub fn new(fs: F, root: impl Into<PathBuf>) -> Self {
        Vfs {
            base: DriverRoot::new(fs, root),
        }
    }
}

impl<F: LayerFs> Driver for Vfs<F>
where
    PluginError: From<F::Error>,
{
    type Fs = F;

    fn root(&self) -> &DriverRoot<F> {
        &self.base
    }
    fn root_mut(&mut self) -> &mut DriverRoot<F> {
        &mut self.base
    }
    fn layer_content(id: &str) -> Result<String, PluginError> {
        layer_dir(id)
    }
    fn snapshot_content(key: &str) -> String {
        snapshot_dir(key)
    }

    /// A layer starts as a copy of its parent; the tar's whiteouts delete.
    fn layer_base(
        &mut self,
        id: &str,
        parent: Option<&str>,
    ) -> Result<(Vec<String>, Mode), PluginError> {
        match parent {
            Some(p) if self.has_layer(p) => {
                let fs = &mut self.base.fs;
                fs.copy_tree(&layer_dir(p)?, &layer_dir(id)?)?
            }
            Some(p) => return Err(PluginError::NotFound(format!("parent layer {p} of {id}"))),
            None => {}
        }
        Ok((Vec::new(), Mode::Copy))
    }

    /// A writable full copy of `parent` (or an empty directory).
    fn make_snapshot(&mut self, key: &str, parent: Option<&str>) -> Result<(), PluginError> {
        let dir = snapshot_dir(key);
        match parent {
            Some(p) if self.has_layer(p) => {
                self.base.fs.mkdir("snapshots", Meta::IMPLIED_DIR)?;
                Ok(self.base.fs.copy_tree(&layer_dir(p)?, &dir)?)
            }
            Some(p) => Err(PluginError::NotFound(format!(
                "parent layer {p} of snapshot {key}"
            ))),
            None => Ok(self.base.fs.mkdir(&dir, Meta::IMPLIED_DIR)?),
        }
    }

    /// The mounts of snapshot `key`.
    fn mounts(&self, key: &str) -> Result<Vec<Mount>, PluginError> {
        let rec = self.base.snapshot(key)?;
        match (rec.kind, rec.parent) {
            (SnapshotKind::Active, _) => Ok(bind(snapshot_dir(key), true)),
            (SnapshotKind::View, Some(p)) => Ok(bind(layer_dir(&p)?, false)),
            (SnapshotKind::View, None) => {
                Err(PluginError::Invalid(format!("view {key} has no layer")))
            }
        }
    }

    /// What differs between the snapshot's copy and its parent layer.
    fn write_changes<W: FileSink>(
        &self,
        rec: &SnapshotRecord,
        out: &mut DiffWriter<W>,
    ) -> Result<(), PluginError> {
        let lower = rec.parent.as_deref().map(layer_dir).transpose()?;
        let upper = snapshot_dir(&rec.key);
        Ok(compare_trees(
            &self.base.fs,
            out,
            "",
            &upper,
            lower.as_deref(),
        )?)
    }
}

#[cfg(test)]
#[path = "driver_tests.rs"]
mod tests;
