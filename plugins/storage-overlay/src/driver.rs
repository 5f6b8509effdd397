//! The overlay driver's logic over any [`LayerFs`]: one directory per layer
//! (`layers/<hex>/fs`, unpacked once per chain id, whiteouts as overlay
//! whiteouts), snapshots as `snapshots/<key>/{upper,work}` on top.

use std::path::{Path, PathBuf};

use berth_sdk::diff::{list, stat, DiffWriter, FileSink};
use berth_sdk::error::{context, PluginError};
use berth_sdk::snapshots::{
    key_dir, layer_hex, LayerRecord, Records, SnapshotKind, SnapshotRecord,
};
use berth_sdk::storage::{Mount, SpaceUsage};
use berth_sdk::tar_read::{EntryKind, TarReader};
use berth_sdk::unpack::{LayerFs, Meta, Mode, Stats, Unpacker};

/// The overlay driver over `fs`, with `root` the plugin root as `std::fs` sees it.
#[derive(Debug)]
pub struct Overlay<F> {
    /// Filesystem primitives.
    pub fs: F,
    root: PathBuf,
    records: Records,
}

/// The content directory of layer `id`, relative to the plugin root.
pub fn layer_fs_dir(id: &str) -> Result<String, PluginError> {
    Ok(format!("layers/{}/fs", layer_hex(id)?))
}

fn layer_dir(id: &str) -> Result<String, PluginError> {
    Ok(format!("layers/{}", layer_hex(id)?))
}

/// The directory of snapshot `key`, relative to the plugin root.
pub fn snapshot_dir(key: &str) -> String {
    format!("snapshots/{}", key_dir(key))
}

impl<F: LayerFs> Overlay<F>
where
    PluginError: From<F::Error>,
{
    /// The driver on plugin root `root`.
    pub fn new(fs: F, root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Overlay {
            fs,
            records: Records::new(&root),
            root,
        }
    }

    /// Whether layer `id` is complete.
    pub fn has_layer(&self, id: &str) -> bool {
        self.records.layer(id).is_some()
    }

    fn lowers(&self, parent: Option<&str>) -> Result<Vec<String>, PluginError> {
        match parent {
            None => Ok(Vec::new()),
            Some(p) => self
                .records
                .chain(p)?
                .iter()
                .map(|id| layer_fs_dir(id))
                .collect(),
        }
    }

    /// Unpacks a layer into its own directory on top of its parent's chain.
    pub fn apply_layer(
        &mut self,
        id: &str,
        parent: Option<&str>,
        tar: &mut TarReader<F::Source>,
    ) -> Result<Stats, PluginError> {
        if self.has_layer(id) {
            return Ok(Stats::default());
        }
        let lowers = self
            .lowers(parent)
            .map_err(|e| context(e, &format!("parent of layer {id}")))?;
        let dir = layer_fs_dir(id)?;
        self.fs.remove(&layer_dir(id)?)?; // a leftover of an interrupted apply
        let stats = Unpacker::new(&dir, lowers, Mode::Overlay)
            .apply(&mut self.fs, tar)
            .map_err(|e| context(e.into(), &format!("applying layer {id}")))?;
        self.records.put_layer(&LayerRecord {
            id: id.into(),
            parent: parent.map(Into::into),
        })?;
        Ok(stats)
    }

    /// A writable snapshot: an empty upper and work dir over the parent's chain.
    pub fn prepare(&mut self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>, PluginError> {
        if self.records.snapshot(key).is_some() {
            return Err(PluginError::AlreadyExists(format!("snapshot {key}")));
        }
        self.lowers(parent)
            .map_err(|e| context(e, &format!("parent of snapshot {key}")))?;
        let dir = snapshot_dir(key);
        self.fs.remove(&dir)?;
        self.fs.mkdir(&format!("{dir}/upper"), Meta::IMPLIED_DIR)?;
        self.fs.mkdir(
            &format!("{dir}/work"),
            Meta {
                mode: 0o700,
                ..Meta::IMPLIED_DIR
            },
        )?;
        let rec = SnapshotRecord {
            key: key.into(),
            kind: SnapshotKind::Active,
            parent: parent.map(Into::into),
        };
        self.records.put_snapshot(&rec)?;
        self.mounts(key)
    }

    /// A read-only view of layer `parent`.
    pub fn view(&mut self, key: &str, parent: &str) -> Result<Vec<Mount>, PluginError> {
        if self.records.snapshot(key).is_some() {
            return Err(PluginError::AlreadyExists(format!("snapshot {key}")));
        }
        self.lowers(Some(parent))
            .map_err(|e| context(e, &format!("view {key}")))?;
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

    fn snapshot(&self, key: &str) -> Result<SnapshotRecord, PluginError> {
        self.records
            .snapshot(key)
            .ok_or_else(|| PluginError::NotFound(format!("snapshot {key}")))
    }

    /// Turns writable snapshot `key` into layer `id`: its upper dir becomes the layer.
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
        let (from, to) = (format!("{}/upper", snapshot_dir(key)), layer_fs_dir(id)?);
        self.fs.remove(&layer_dir(id)?)?;
        self.fs.mkdir(
            &layer_dir(id)?,
            Meta {
                mode: 0o700,
                ..Meta::IMPLIED_DIR
            },
        )?;
        if std::fs::rename(self.root.join(&from), self.root.join(&to)).is_err() {
            self.fs.copy_tree(&from, &to)?;
        }
        self.fs.remove(&snapshot_dir(key))?;
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

    /// Space used by a snapshot's upper dir or a layer (a view uses none).
    pub fn usage(
        &mut self,
        key: &str,
        disk_usage: impl Fn(&str) -> Result<SpaceUsage, PluginError>,
    ) -> Result<SpaceUsage, PluginError> {
        match self.records.snapshot(key) {
            Some(r) if r.kind == SnapshotKind::Active => {
                disk_usage(&format!("{}/upper", snapshot_dir(key)))
            }
            Some(_) => Ok(SpaceUsage { size: 0, inodes: 0 }),
            None if self.has_layer(key) => disk_usage(&layer_fs_dir(key)?),
            None => Err(PluginError::NotFound(format!("snapshot or layer {key}"))),
        }
    }

    /// Writes the upper dir of snapshot `key` as an OCI layer tar: overlay
    /// whiteouts (character devices) become `.wh.` entries.
    pub fn diff<W: FileSink>(&self, key: &str, out: W) -> Result<W, PluginError> {
        let rec = self.snapshot(key)?;
        if rec.kind != SnapshotKind::Active {
            return Err(PluginError::Invalid(format!(
                "snapshot {key} is a read-only view: no changes"
            )));
        }
        let upper = self.root.join(format!("{}/upper", snapshot_dir(key)));
        let mut w = DiffWriter::new(out);
        walk_upper(&mut w, "", &upper)
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

/// Everything in an upper dir is a change; character devices are whiteouts.
fn walk_upper<W: FileSink>(w: &mut DiffWriter<W>, rel: &str, dir: &Path) -> std::io::Result<()> {
    for name in list(dir)? {
        let (local, r) = (dir.join(&name), berth_sdk::path::join(rel, &name));
        let node = stat(&local)?;
        match node.kind {
            EntryKind::CharDevice => w.whiteout(&r)?,
            EntryKind::Directory => {
                w.add(&r, &local, &node)?;
                walk_upper(w, &r, &local)?;
            }
            _ => w.add(&r, &local, &node)?,
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "driver_tests.rs"]
mod tests;
