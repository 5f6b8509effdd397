//! The vfs driver's logic over any [`LayerFs`]: layers and snapshots as full
//! copies (`layers/<hex>`, `snapshots/<key>`), records under `meta/`.

use std::path::PathBuf;

use berth_sdk::diff::{compare_trees, DiffWriter, FileSink};
use berth_sdk::error::{context, PluginError};
use berth_sdk::snapshots::{
    key_dir, layer_hex, LayerRecord, Records, SnapshotKind, SnapshotRecord,
};
use berth_sdk::storage::{Mount, SpaceUsage};
use berth_sdk::tar_read::TarReader;
use berth_sdk::unpack::{LayerFs, Mode, Stats, Unpacker};

/// The vfs driver over `fs`, with `root` the plugin root as `std::fs` sees it.
#[derive(Debug)]
pub struct Vfs<F> {
    /// Filesystem primitives.
    pub fs: F,
    root: PathBuf,
    records: Records,
}

/// The directory of layer `id`, relative to the plugin root.
pub fn layer_dir(id: &str) -> Result<String, PluginError> {
    Ok(format!("layers/{}", layer_hex(id)?))
}

/// The directory of snapshot `key`, relative to the plugin root.
pub fn snapshot_dir(key: &str) -> String {
    format!("snapshots/{}", key_dir(key))
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
    /// The driver on plugin root `root`.
    pub fn new(fs: F, root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Vfs {
            fs,
            records: Records::new(&root),
            root,
        }
    }

    /// Whether layer `id` is complete.
    pub fn has_layer(&self, id: &str) -> bool {
        self.records.layer(id).is_some()
    }

    /// Unpacks a layer: a copy of its parent, then the tar with whiteouts deleting.
    pub fn apply_layer(
        &mut self,
        id: &str,
        parent: Option<&str>,
        tar: &mut TarReader<F::Source>,
    ) -> Result<Stats, PluginError> {
        if self.has_layer(id) {
            return Ok(Stats::default());
        }
        let dir = layer_dir(id)?;
        self.fs.remove(&dir)?; // a leftover of an interrupted apply
        match parent {
            Some(p) if self.has_layer(p) => self.fs.copy_tree(&layer_dir(p)?, &dir)?,
            Some(p) => return Err(PluginError::NotFound(format!("parent layer {p} of {id}"))),
            None => {}
        }
        let stats = Unpacker::new(&dir, Vec::new(), Mode::Copy)
            .apply(&mut self.fs, tar)
            .map_err(|e| context(e.into(), &format!("applying layer {id}")))?;
        self.records.put_layer(&LayerRecord {
            id: id.into(),
            parent: parent.map(Into::into),
        })?;
        Ok(stats)
    }

    /// A writable full copy of `parent` (or an empty directory).
    pub fn prepare(&mut self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>, PluginError> {
        if self.records.snapshot(key).is_some() {
            return Err(PluginError::AlreadyExists(format!("snapshot {key}")));
        }
        let dir = snapshot_dir(key);
        self.fs.remove(&dir)?;
        match parent {
            Some(p) if self.has_layer(p) => {
                self.fs
                    .mkdir("snapshots", berth_sdk::unpack::Meta::IMPLIED_DIR)?;
                self.fs.copy_tree(&layer_dir(p)?, &dir)?
            }
            Some(p) => {
                return Err(PluginError::NotFound(format!(
                    "parent layer {p} of snapshot {key}"
                )))
            }
            None => self.fs.mkdir(&dir, berth_sdk::unpack::Meta::IMPLIED_DIR)?,
        }
        let rec = SnapshotRecord {
            key: key.into(),
            kind: SnapshotKind::Active,
            parent: parent.map(Into::into),
        };
        self.records.put_snapshot(&rec)?;
        self.mounts(key)
    }

    /// A read-only view: the layer itself, bound read-only.
    pub fn view(&mut self, key: &str, parent: &str) -> Result<Vec<Mount>, PluginError> {
        if self.records.snapshot(key).is_some() {
            return Err(PluginError::AlreadyExists(format!("snapshot {key}")));
        }
        if !self.has_layer(parent) {
            return Err(PluginError::NotFound(format!(
                "layer {parent} for view {key}"
            )));
        }
        let rec = SnapshotRecord {
            key: key.into(),
            kind: SnapshotKind::View,
            parent: Some(parent.into()),
        };
        self.records.put_snapshot(&rec)?;
        self.mounts(key)
    }

    /// The mounts of snapshot `key`.
    pub fn mounts(&self, key: &str) -> Result<Vec<Mount>, PluginError> {
        let rec = self.snapshot(key)?;
        match (rec.kind, rec.parent) {
            (SnapshotKind::Active, _) => Ok(bind(snapshot_dir(key), true)),
            (SnapshotKind::View, Some(p)) => Ok(bind(layer_dir(&p)?, false)),
            (SnapshotKind::View, None) => {
                Err(PluginError::Invalid(format!("view {key} has no layer")))
            }
        }
    }

    fn snapshot(&self, key: &str) -> Result<SnapshotRecord, PluginError> {
        self.records
            .snapshot(key)
            .ok_or_else(|| PluginError::NotFound(format!("snapshot {key}")))
    }

    /// Turns writable snapshot `key` into layer `id`.
    pub fn commit(&mut self, key: &str, id: &str) -> Result<(), PluginError> {
        let rec = self.snapshot(key)?;
        if rec.kind != SnapshotKind::Active {
            return Err(PluginError::Invalid(format!(
                "snapshot {key} is a read-only view"
            )));
        }
        if self.has_layer(id) {
            return Err(PluginError::AlreadyExists(format!("layer {id}")));
        }
        let (from, to) = (snapshot_dir(key), layer_dir(id)?);
        self.fs.remove(&to)?;
        if std::fs::rename(self.root.join(&from), self.root.join(&to)).is_err() {
            self.fs.copy_tree(&from, &to)?;
            self.fs.remove(&from)?;
        }
        self.records.put_layer(&LayerRecord {
            id: id.into(),
            parent: rec.parent,
        })?;
        self.records.del_snapshot(key)
    }

    /// Removes a snapshot, or a layer nothing sits on.
    pub fn remove(&mut self, key: &str) -> Result<(), PluginError> {
        if let Some(rec) = self.records.snapshot(key) {
            if rec.kind == SnapshotKind::Active {
                self.fs.remove(&snapshot_dir(key))?;
            }
            return self.records.del_snapshot(key);
        }
        if self.has_layer(key) {
            if self.records.has_children(key) {
                return Err(PluginError::Invalid(format!(
                    "layer {key} is in use by another layer or snapshot"
                )));
            }
            self.records.del_layer(key)?;
            return Ok(self.fs.remove(&layer_dir(key)?)?);
        }
        Err(PluginError::NotFound(format!("snapshot or layer {key}")))
    }

    /// The directory holding `key` (a snapshot's own copy, or a layer).
    fn dir_of(&self, key: &str) -> Result<Option<String>, PluginError> {
        match self.records.snapshot(key) {
            Some(r) if r.kind == SnapshotKind::Active => Ok(Some(snapshot_dir(key))),
            Some(_) => Ok(None),
            None if self.has_layer(key) => Ok(Some(layer_dir(key)?)),
            None => Err(PluginError::NotFound(format!("snapshot or layer {key}"))),
        }
    }

    /// Space used by a snapshot or layer (a view uses none of its own).
    pub fn usage(
        &mut self,
        key: &str,
        disk_usage: impl Fn(&str) -> Result<SpaceUsage, PluginError>,
    ) -> Result<SpaceUsage, PluginError> {
        match self.dir_of(key)? {
            Some(dir) => disk_usage(&dir),
            None => Ok(SpaceUsage { size: 0, inodes: 0 }),
        }
    }

    /// Writes the changes of snapshot `key` against its parent layer as a tar.
    pub fn diff<W: FileSink>(&self, key: &str, out: W) -> Result<W, PluginError> {
        let rec = self.snapshot(key)?;
        if rec.kind != SnapshotKind::Active {
            return Err(PluginError::Invalid(format!(
                "snapshot {key} is a read-only view: no changes"
            )));
        }
        let lower = rec
            .parent
            .as_deref()
            .map(layer_dir)
            .transpose()?
            .map(|d| self.root.join(d));
        let mut w = DiffWriter::new(out);
        compare_trees(
            &mut w,
            "",
            &self.root.join(snapshot_dir(key)),
            lower.as_deref(),
        )
        .map_err(|e| context(e.into(), &format!("diff of snapshot {key}")))?;
        Ok(w.finish()?)
    }

    /// Removes every layer and snapshot not in `keep` (or beneath something kept).
    pub fn gc(&mut self, keep: &[String]) -> Result<Vec<String>, PluginError> {
        let (layers, snapshots) = self.records.garbage(keep);
        let mut removed = Vec::new();
        for key in snapshots {
            self.remove(&key)?;
            removed.push(key);
        }
        for id in layers {
            self.records.del_layer(&id)?;
            self.fs.remove(&layer_dir(&id)?)?;
            removed.push(id);
        }
        Ok(removed)
    }
}

#[cfg(test)]
#[path = "driver_tests.rs"]
mod tests;
