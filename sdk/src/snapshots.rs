//! Bookkeeping shared by storage drivers: which layers and snapshots exist,
//! their parents, kept as small JSON files under `meta/` in the plugin root.
//!
//! A layer's record is written last, after its content is complete, so a
//! record's presence means the layer is usable.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::PluginError;

/// A layer's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// Chain id (`sha256:…`).
    pub id: String,
    /// The chain id below.
    pub parent: Option<String>,
}

/// Whether a snapshot is writable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotKind {
    /// Writable (`prepare`).
    Active,
    /// Read-only (`view`).
    View,
}

/// A snapshot's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRecord {
    /// The key the core chose.
    pub key: String,
    /// Writable or not.
    pub kind: SnapshotKind,
    /// The layer it sits on.
    pub parent: Option<String>,
}

/// The hex part of a chain id, which names the layer's directory.
pub fn layer_hex(id: &str) -> Result<&str, PluginError> {
    crate::digest::validate(id).map_err(|e| PluginError::Invalid(format!("layer id: {e}")))
}

/// Where the record of layer `id` is, relative to the plugin root. It is
/// written last, atomically (temporary file and rename), so its presence
/// means the layer is complete.
pub fn layer_record(id: &str) -> Result<String, PluginError> {
    Ok(format!("meta/layers/{}.json", layer_hex(id)?))
}

/// A directory name for a snapshot key: the key itself when it is a plain
/// name, otherwise `k-` and its hex bytes.
pub fn key_dir(key: &str) -> String {
    let plain = !key.is_empty()
        && key.len() <= 128
        && !key.starts_with(['.', '-'])
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !key.starts_with("k-");
    if plain {
        key.to_string()
    } else {
        format!("k-{}", hex::encode(key))
    }
}

/// The records under `<root>/meta` (`root` as `std::fs` sees the plugin root).
#[derive(Debug, Clone)]
pub struct Records {
    root: PathBuf,
}

impl Records {
    /// Records of the plugin root `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Records { root: root.into() }
    }

    fn layer_path(&self, id: &str) -> Result<PathBuf, PluginError> {
        Ok(self.root.join(layer_record(id)?))
    }

    fn snapshot_path(&self, key: &str) -> PathBuf {
        self.root
            .join("meta/snapshots")
            .join(format!("{}.json", key_dir(key)))
    }

    /// A layer's record, if the layer is complete.
    pub fn layer(&self, id: &str) -> Option<LayerRecord> {
        read(&self.layer_path(id).ok()?)
    }

    /// Records a complete layer.
    pub fn put_layer(&self, rec: &LayerRecord) -> Result<(), PluginError> {
        write(&self.layer_path(&rec.id)?, rec)
    }

    /// Forgets a layer.
    pub fn del_layer(&self, id: &str) -> Result<(), PluginError> {
        remove(&self.layer_path(id)?)
    }

    /// A snapshot's record.
    pub fn snapshot(&self, key: &str) -> Option<SnapshotRecord> {
        read(&self.snapshot_path(key))
    }

    /// Records a snapshot.
    pub fn put_snapshot(&self, rec: &SnapshotRecord) -> Result<(), PluginError> {
        write(&self.snapshot_path(&rec.key), rec)
    }

    /// Forgets a snapshot.
    pub fn del_snapshot(&self, key: &str) -> Result<(), PluginError> {
        remove(&self.snapshot_path(key))
    }

    /// Every layer record.
    pub fn layers(&self) -> Vec<LayerRecord> {
        read_all(&self.root.join("meta/layers"))
    }

    /// Every snapshot record.
    pub fn snapshots(&self) -> Vec<SnapshotRecord> {
        read_all(&self.root.join("meta/snapshots"))
    }

    /// `id` and the layers below it, top first.
    pub fn chain(&self, id: &str) -> Result<Vec<String>, PluginError> {
        let mut out = Vec::new();
        let mut next = Some(id.to_string());
        while let Some(id) = next {
            let rec = self
                .layer(&id)
                .ok_or_else(|| PluginError::NotFound(format!("layer {id}")))?;
            if out.contains(&rec.id) || out.len() > 1000 {
                return Err(PluginError::Invalid(format!(
                    "layer {id}: parent chain loops"
                )));
            }
            out.push(rec.id);
            next = rec.parent;
        }
        Ok(out)
    }

    /// Whether a layer or snapshot sits on layer `id`.
    pub fn has_children(&self, id: &str) -> bool {
        self.layers()
            .iter()
            .any(|l| l.parent.as_deref() == Some(id))
            || self
                .snapshots()
                .iter()
                .any(|s| s.parent.as_deref() == Some(id))
    }

    /// What `gc` removes: every layer and snapshot that neither is in `keep`
    /// nor lies beneath something kept.
    pub fn garbage(&self, keep: &[String]) -> (Vec<String>, Vec<String>) {
        let snapshots = self.snapshots();
        let mut live: BTreeSet<String> = BTreeSet::new();
        let mut roots: Vec<String> = keep.to_vec();
        for s in snapshots.iter().filter(|s| keep.contains(&s.key)) {
            roots.extend(s.parent.clone());
        }
        for id in roots {
            for l in self.chain(&id).unwrap_or_default() {
                live.insert(l);
            }
        }
        let layers = self
            .layers()
            .into_iter()
            .map(|l| l.id)
            .filter(|id| !live.contains(id))
            .collect();
        let snaps = snapshots
            .into_iter()
            .map(|s| s.key)
            .filter(|k| !keep.contains(k))
            .collect();
        (layers, snaps)
    }
}

fn read<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Option<T> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn read_all<T: serde::de::DeserializeOwned>(dir: &std::path::Path) -> Vec<T> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.filter_map(|e| read(&e.ok()?.path())).collect()
}

fn write<T: Serialize>(path: &std::path::Path, value: &T) -> Result<(), PluginError> {
    let dir = path.parent().expect("record paths have a parent");
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(value).expect("records serialize"))?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn remove(path: &std::path::Path) -> Result<(), PluginError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> String {
        format!("sha256:{}", hex::encode([n; 32]))
    }

    #[test]
    fn records_chains_and_garbage() {
        let tmp = tempfile::tempdir().unwrap();
        let r = Records::new(tmp.path());
        r.put_layer(&LayerRecord {
            id: id(1),
            parent: None,
        })
        .unwrap();
        r.put_layer(&LayerRecord {
            id: id(2),
            parent: Some(id(1)),
        })
        .unwrap();
        r.put_layer(&LayerRecord {
            id: id(3),
            parent: None,
        })
        .unwrap();
        r.put_snapshot(&SnapshotRecord {
            key: "c/1".into(),
            kind: SnapshotKind::Active,
            parent: Some(id(2)),
        })
        .unwrap();
        r.put_snapshot(&SnapshotRecord {
            key: "old".into(),
            kind: SnapshotKind::View,
            parent: Some(id(3)),
        })
        .unwrap();
        assert_eq!(r.chain(&id(2)).unwrap(), [id(2), id(1)]);
        assert!(r.chain(&id(9)).is_err());
        assert!(r.has_children(&id(1)) && r.has_children(&id(2)));
        assert_eq!(r.snapshot("c/1").unwrap().parent, Some(id(2)));
        let (layers, snaps) = r.garbage(&["c/1".to_string()]);
        assert_eq!((layers, snaps), (vec![id(3)], vec!["old".to_string()]));
        r.del_snapshot("old").unwrap();
        assert!(r.snapshot("old").is_none());
        assert!(layer_hex("sha256:nothex").is_err());
    }

    #[test]
    fn key_dirs_are_safe_names() {
        assert_eq!(key_dir("abc-1.2_x"), "abc-1.2_x");
        assert_eq!(key_dir("a/b"), "k-612f62");
        assert_eq!(key_dir(".."), "k-2e2e");
        assert_eq!(key_dir("k-1"), "k-6b2d31");
    }
}
