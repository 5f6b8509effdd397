//! What storage drivers share. A driver says where a layer's and a
//! snapshot's content live, what a layer is unpacked on, how a writable
//! snapshot is made, its mounts and how its changes are found; every verb
//! (`has-layer`, `apply-layer`, `prepare`, `view`, `commit`, `remove`,
//! `usage`, `diff`, `gc`) comes with [`Driver`] around those, over a
//! [`DriverRoot`]: the plugin root, its `layer-fs` and its records.
//!
//! Everything here runs natively over [`crate::testing::DirLayerFs`], so a
//! driver's logic unit-tests without wasm; `crate::export_storage_driver!`
//! turns a driver into the plugin's `storage` export.

use std::path::PathBuf;

use crate::diff::{DiffWriter, FileSink};
use crate::error::{context, PluginError};
use crate::layerfs::{DiskUsage, LayerFs, Meta, PathKind};
use crate::path;
use crate::snapshots::{key_dir, layer_hex, LayerRecord, Records, SnapshotKind, SnapshotRecord};
use crate::tar_read::TarReader;
use crate::unpack::{Mode, Stats, Unpacker};
use crate::wit::common::berth::plugin::types::Mount;

/// The directory of layer `id` in the usual layout (`layers/<hex>`).
pub fn layer_dir(id: &str) -> Result<String, PluginError> {
    Ok(format!("layers/{}", layer_hex(id)?))
}

/// The directory of snapshot `key` in the usual layout (`snapshots/<key>`,
/// see [`key_dir`]).
pub fn snapshot_dir(key: &str) -> String {
    format!("snapshots/{}", key_dir(key))
}

/// A driver's plugin root: its `layer-fs` primitives, where `std::fs` sees
/// it, and the layer and snapshot records kept in it.
#[derive(Debug)]
pub struct DriverRoot<F> {
    /// Filesystem primitives.
    pub fs: F,
    /// The plugin root as `std::fs` sees it.
    pub root: PathBuf,
    /// Layer and snapshot records under `meta/`.
    pub records: Records,
}

impl<F: LayerFs> DriverRoot<F>
where
    PluginError: From<F::Error>,
{
    /// The driver root `root` (as `std::fs` sees it) over `fs`.
    pub fn new(fs: F, root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        DriverRoot {
            fs,
            records: Records::new(&root),
            root,
        }
    }

    /// Whether layer `id` is complete: its record exists. Records are written
    /// (atomically) only once a layer's content is complete, so one host
    /// call (`layer-fs.kind`) answers, without reading the record.
    pub fn has_layer(&self, id: &str) -> bool {
        let Ok(hex) = layer_hex(id) else {
            return false;
        };
        // `layer_record`, without the formatting machinery: each page of
        // code and data this path touches is a page fault in a fresh instance.
        let mut rec = String::with_capacity(80);
        for part in ["meta/layers/", hex, ".json"] {
            rec.push_str(part);
        }
        self.fs.kind(&rec) == Some(PathKind::File)
    }

    /// The record of snapshot `key`.
    pub fn snapshot(&self, key: &str) -> Result<SnapshotRecord, PluginError> {
        self.records
            .snapshot(key)
            .ok_or_else(|| PluginError::NotFound(format!("snapshot {key}")))
    }

    /// The record of snapshot `key`, which must be writable.
    pub fn writable(&self, key: &str) -> Result<SnapshotRecord, PluginError> {
        let rec = self.snapshot(key)?;
        if rec.kind != SnapshotKind::Active {
            return Err(PluginError::Invalid(format!(
                "snapshot {key} is a read-only view"
            )));
        }
        Ok(rec)
    }

    /// Fails if snapshot `key` exists already.
    pub fn check_new_snapshot(&self, key: &str) -> Result<(), PluginError> {
        match self.records.snapshot(key) {
            Some(_) => Err(PluginError::AlreadyExists(format!("snapshot {key}"))),
            None => Ok(()),
        }
    }

    /// Records snapshot `key` of `kind` on layer `parent`.
    pub fn add_snapshot(
        &self,
        key: &str,
        kind: SnapshotKind,
        parent: Option<&str>,
    ) -> Result<(), PluginError> {
        self.records.put_snapshot(&SnapshotRecord {
            key: key.into(),
            kind,
            parent: parent.map(Into::into),
        })
    }

    /// Records layer `id` on `parent` as complete (last, after its content).
    pub fn add_layer(&self, id: &str, parent: Option<&str>) -> Result<(), PluginError> {
        self.records.put_layer(&LayerRecord {
            id: id.into(),
            parent: parent.map(Into::into),
        })
    }
}

/// A storage driver: its layout and the steps that depend on it; the verbs
/// are provided around them.
pub trait Driver
where
    PluginError: From<<Self::Fs as LayerFs>::Error>,
{
    /// The filesystem primitives it works through.
    type Fs: LayerFs;

    /// Its plugin root.
    fn root(&self) -> &DriverRoot<Self::Fs>;
    /// Its plugin root, to change things.
    fn root_mut(&mut self) -> &mut DriverRoot<Self::Fs>;

    /// The directory holding everything of layer `id` (removed with it).
    fn layer_dir(id: &str) -> Result<String, PluginError> {
        layer_dir(id)
    }
    /// The root filesystem of layer `id`: [`Driver::layer_dir`] or beneath it.
    fn layer_content(id: &str) -> Result<String, PluginError>;
    /// The directory holding everything of snapshot `key` (removed with it).
    fn snapshot_dir(key: &str) -> String {
        snapshot_dir(key)
    }
    /// What a writable snapshot `key` holds of its own (what `commit` makes
    /// a layer of and `usage` counts): [`Driver::snapshot_dir`] or beneath it.
    fn snapshot_content(key: &str) -> String;

    /// Readies the content dir of new layer `id` (nothing is there) to
    /// unpack onto `parent`, and says how: the content dirs of the layers an
    /// overlay layer sits on (top first) and how whiteouts apply.
    fn layer_base(
        &mut self,
        id: &str,
        parent: Option<&str>,
    ) -> Result<(Vec<String>, Mode), PluginError>;
    /// Makes the directories of new writable snapshot `key` on layer `parent`
    /// (nothing is at [`Driver::snapshot_dir`]).
    fn make_snapshot(&mut self, key: &str, parent: Option<&str>) -> Result<(), PluginError>;
    /// The mounts of snapshot `key`.
    fn mounts(&self, key: &str) -> Result<Vec<Mount>, PluginError>;
    /// Writes what writable snapshot `rec` changed on its parent into `out`.
    fn write_changes<W: FileSink>(
        &self,
        rec: &SnapshotRecord,
        out: &mut DiffWriter<W>,
    ) -> Result<(), PluginError>;

    /// Whether layer `id` is complete.
    fn has_layer(&self, id: &str) -> bool {
        self.root().has_layer(id)
    }

    /// Unpacks layer `id` on top of `parent` from `tar` (nothing if the
    /// layer exists). A leftover of an interrupted apply is removed first;
    /// the record comes last.
    fn apply_layer(
        &mut self,
        id: &str,
        parent: Option<&str>,
        tar: &mut TarReader<<Self::Fs as LayerFs>::Source>,
    ) -> Result<Stats, PluginError> {
        if self.has_layer(id) {
            return Ok(Stats::default());
        }
        self.root_mut().fs.remove(&Self::layer_dir(id)?)?;
        let (lowers, mode) = self.layer_base(id, parent)?;
        let stats = Unpacker::new(&Self::layer_content(id)?, lowers, mode)
            .apply(&mut self.root_mut().fs, tar)
            .map_err(|e| context(e.into(), &format!("applying layer {id}")))?;
        self.root().add_layer(id, parent)?;
        Ok(stats)
    }

    /// A writable snapshot `key` on layer `parent`; returns its mounts.
    fn prepare(&mut self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>, PluginError> {
        self.root().check_new_snapshot(key)?;
        self.root_mut().fs.remove(&Self::snapshot_dir(key))?; // a leftover
        self.make_snapshot(key, parent)?;
        self.root()
            .add_snapshot(key, SnapshotKind::Active, parent)?;
        self.mounts(key)
    }

    /// A read-only view `key` of layer `parent`; returns its mounts.
    fn view(&mut self, key: &str, parent: &str) -> Result<Vec<Mount>, PluginError> {
        let r = self.root();
        r.check_new_snapshot(key)?;
        r.records
            .chain(parent)
            .map_err(|e| context(e, &format!("view {key}")))?;
        r.add_snapshot(key, SnapshotKind::View, Some(parent))?;
        self.mounts(key)
    }

    /// Writes the changes of writable snapshot `key` as a layer tar to `out`.
    fn diff<W: FileSink>(&self, key: &str, out: W) -> Result<W, PluginError> {
        let rec = self.root().writable(key)?;
        let mut w = DiffWriter::new(out);
        self.write_changes(&rec, &mut w)
            .map_err(|e| context(e, &format!("diff of snapshot {key}")))?;
        Ok(w.finish()?)
    }

    /// Turns writable snapshot `key` into layer `id`: its own content is
    /// moved (or, across filesystems, copied) to the layer's.
    fn commit(&mut self, key: &str, id: &str) -> Result<(), PluginError> {
        let rec = self.root().writable(key)?;
        if self.has_layer(id) {
            return Err(PluginError::AlreadyExists(format!("layer {id}")));
        }
        let (from, to, dir) = (
            Self::snapshot_content(key),
            Self::layer_content(id)?,
            Self::layer_dir(id)?,
        );
        let r = self.root_mut();
        r.fs.remove(&dir)?; // a leftover of an interrupted commit
        if to == dir {
            let parent = path::parent(&dir).unwrap_or_default();
            r.fs.mkdir(parent, Meta::IMPLIED_DIR)?;
        } else {
            let private = Meta {
                mode: 0o700,
                ..Meta::IMPLIED_DIR
            };
            r.fs.mkdir(&dir, private)?;
        }
        if std::fs::rename(r.root.join(&from), r.root.join(&to)).is_err() {
            r.fs.copy_tree(&from, &to)?;
        }
        r.fs.remove(&Self::snapshot_dir(key))?;
        r.add_layer(id, rec.parent.as_deref())?;
        r.records.del_snapshot(key)
    }

    /// Removes a snapshot, or a layer nothing sits on.
    fn remove(&mut self, key: &str) -> Result<(), PluginError> {
        let r = self.root_mut();
        if let Some(rec) = r.records.snapshot(key) {
            if rec.kind == SnapshotKind::Active {
                r.fs.remove(&Self::snapshot_dir(key))?;
            }
            return r.records.del_snapshot(key);
        }
        if r.has_layer(key) {
            if r.records.has_children(key) {
                return Err(PluginError::Invalid(format!(
                    "layer {key} is in use by another layer or snapshot"
                )));
            }
            r.records.del_layer(key)?;
            return Ok(r.fs.remove(&Self::layer_dir(key)?)?);
        }
        Err(PluginError::NotFound(format!("snapshot or layer {key}")))
    }

    /// Space used by a writable snapshot's own content or a layer (a view
    /// uses none of its own).
    fn usage(&self, key: &str) -> Result<DiskUsage, PluginError> {
        let r = self.root();
        let dir = match r.records.snapshot(key) {
            Some(s) if s.kind == SnapshotKind::Active => Self::snapshot_content(key),
            Some(_) => return Ok(DiskUsage::default()),
            None if r.has_layer(key) => Self::layer_content(key)?,
            None => return Err(PluginError::NotFound(format!("snapshot or layer {key}"))),
        };
        Ok(r.fs.disk_usage(&dir)?)
    }

    /// Removes every layer and snapshot not in `keep` (or beneath something
    /// kept); returns what it removed.
    fn gc(&mut self, keep: &[String]) -> Result<Vec<String>, PluginError> {
        let (layers, snapshots) = self.root().records.garbage(keep);
        let mut removed = Vec::new();
        for key in snapshots {
            self.remove(&key)?;
            removed.push(key);
        }
        for id in layers {
            let r = self.root_mut();
            r.records.del_layer(&id)?;
            r.fs.remove(&Self::layer_dir(&id)?)?;
            removed.push(id);
        }
        Ok(removed)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::snapshots::layer_record;
    use crate::testing::DirLayerFs;

    fn id(n: u8) -> String {
        format!("sha256:{}", hex::encode([n; 32]))
    }

    #[test]
    fn a_layer_exists_once_its_record_does() {
        let tmp = tempfile::tempdir().unwrap();
        let root = DriverRoot::new(DirLayerFs::new(tmp.path()), tmp.path());
        // Content without a record is an interrupted apply.
        std::fs::create_dir_all(tmp.path().join("layers").join(&id(1)[7..])).unwrap();
        assert!(!root.has_layer(&id(1)));
        root.add_layer(&id(1), None).unwrap();
        assert!(root.has_layer(&id(1)));
        assert!(!root.has_layer(&id(2)));
        assert!(!root.has_layer("sha256:../../etc"));
        // A directory where a record should be is not a record.
        std::fs::create_dir_all(tmp.path().join(layer_record(&id(3)).unwrap())).unwrap();
        assert!(!root.has_layer(&id(3)));
    }

    #[test]
    fn snapshot_checks() {
        let tmp = tempfile::tempdir().unwrap();
        let root = DriverRoot::new(DirLayerFs::new(tmp.path()), tmp.path());
        root.add_snapshot("c", SnapshotKind::Active, None).unwrap();
        root.add_snapshot("v", SnapshotKind::View, Some(&id(1)))
            .unwrap();
        assert!(matches!(
            root.check_new_snapshot("c"),
            Err(PluginError::AlreadyExists(_))
        ));
        root.check_new_snapshot("new").unwrap();
        assert_eq!(root.writable("c").unwrap().kind, SnapshotKind::Active);
        assert!(matches!(root.writable("v"), Err(PluginError::Invalid(_))));
        assert!(matches!(root.snapshot("x"), Err(PluginError::NotFound(_))));
    }
}
