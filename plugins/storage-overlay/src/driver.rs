//! The overlay driver's logic over any [`LayerFs`]: one directory per layer
//! (`layers/<hex>/fs`, unpacked once per chain id, whiteouts as overlay
//! whiteouts), snapshots as `snapshots/<key>/{upper,work}` on top. The verbs
//! come with [`Driver`] around these steps.

use std::path::PathBuf;

use berth_sdk::diff::{overlay_upper, DiffWriter, FileSink};
use berth_sdk::driver::{layer_dir, DriverRoot};
pub use berth_sdk::driver::{snapshot_dir, Driver};
use berth_sdk::error::{context, PluginError};
use berth_sdk::snapshots::{SnapshotKind, SnapshotRecord};
use berth_sdk::storage::Mount;
use berth_sdk::unpack::{LayerFs, Meta, Mode};

/// The overlay driver over `fs`.
#[derive(Debug)]
pub struct Overlay<F> {
    /// The plugin root, its primitives and records.
    pub base: DriverRoot<F>,
}

/// The content directory of layer `id`, relative to the plugin root.
pub fn layer_fs_dir(id: &str) -> Result<String, PluginError> {
    Ok(format!("{}/fs", layer_dir(id)?))
}

impl<F: LayerFs> Overlay<F>
where
    PluginError: From<F::Error>,
{
    /// The driver on plugin root `root` (as `std::fs` sees it).
    pub fn new(fs: F, root: impl Into<PathBuf>) -> Self {
        Overlay {
            base: DriverRoot::new(fs, root),
        }
    }

    /// The content dirs of `parent` and the layers below it, top first.
    fn lowers(&self, parent: Option<&str>) -> Result<Vec<String>, PluginError> {
        match parent {
            None => Ok(Vec::new()),
            Some(p) => self
                .base
                .records
                .chain(p)?
                .iter()
                .map(|id| layer_fs_dir(id))
                .collect(),
        }
    }
}

impl<F: LayerFs> Driver for Overlay<F>
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
        layer_fs_dir(id)
    }
    fn snapshot_content(key: &str) -> String {
        format!("{}/upper", snapshot_dir(key))
    }

    /// A layer is unpacked into its own directory on top of its parent's chain.
    fn layer_base(
        &mut self,
        id: &str,
        parent: Option<&str>,
    ) -> Result<(Vec<String>, Mode), PluginError> {
        let lowers = self
            .lowers(parent)
            .map_err(|e| context(e, &format!("parent of layer {id}")))?;
        Ok((lowers, Mode::Overlay))
    }

    /// An empty upper and work dir over the parent's chain.
    fn make_snapshot(&mut self, key: &str, parent: Option<&str>) -> Result<(), PluginError> {
        self.lowers(parent)
            .map_err(|e| context(e, &format!("parent of snapshot {key}")))?;
        let dir = snapshot_dir(key);
        let fs = &mut self.base.fs;
        fs.mkdir(&format!("{dir}/upper"), Meta::IMPLIED_DIR)?;
        let private = Meta {
            mode: 0o700,
            ..Meta::IMPLIED_DIR
        };
        Ok(fs.mkdir(&format!("{dir}/work"), private)?)
    }

    /// The mounts of snapshot `key`.
    fn mounts(&self, key: &str) -> Result<Vec<Mount>, PluginError> {
        let rec = self.base.snapshot(key)?;
        let lowers = self.lowers(rec.parent.as_deref())?;
        let dir = snapshot_dir(key);
        let bind = |source: String, mode: &str| Mount {
            kind: "bind".into(),
            source,
            options: vec!["rbind".into(), mode.into()],
        };
        let overlay = |mut options: Vec<String>| {
            options.insert(0, format!("lowerdir={}", lowers.join(":")));
            Mount {
                kind: "overlay".into(),
                source: "overlay".into(),
                options,
            }
        };
        Ok(vec![match rec.kind {
            SnapshotKind::Active if lowers.is_empty() => bind(format!("{dir}/upper"), "rw"),
            SnapshotKind::Active => overlay(vec![
                format!("upperdir={dir}/upper"),
                format!("workdir={dir}/work"),
            ]),
            SnapshotKind::View if lowers.len() == 1 => bind(lowers[0].clone(), "ro"),
            SnapshotKind::View => overlay(vec!["ro".into()]),
        }])
    }

    /// Everything in the upper dir is a change: overlay whiteouts become
    /// `.wh.` entries, opaque directories get opaque markers.
    fn write_changes<W: FileSink>(
        &self,
        rec: &SnapshotRecord,
        out: &mut DiffWriter<W>,
    ) -> Result<(), PluginError> {
        let upper = Self::snapshot_content(&rec.key);
        Ok(overlay_upper(&self.base.fs, out, "", &upper)?)
    }
}

#[cfg(test)]
#[path = "driver_tests.rs"]
mod tests;
