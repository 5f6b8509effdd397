//! The image store: which names point at which manifest, kept in
//! `images.json` under the engine root (rewritten atomically under a lock).
//! An image no name points at (docker's `<none>:<none>`: a commit without
//! a name, or one a new image took its name from) is kept under its id.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};

/// One image: its manifest and config (all in the content store).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImageRecord {
    /// The manifest digest.
    pub manifest: String,
    /// The config digest: the image ID.
    pub config: String,
    /// The layers' chain ids, bottom first (names in the storage driver).
    pub chain: Vec<String>,
    /// When the image was pulled or loaded (RFC 3339).
    pub added: String,
    /// The image this one was made on (a commit's or a build step's base):
    /// an unnamed parent is an intermediate image, hidden from lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The signatures verified when it was pulled (`[[trust]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signers: Vec<crate::trust::Signer>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    /// Full names (`docker.io/library/busybox:latest`) to images, and
    /// images no name points at under their id (`sha256:…`, see [`dangling`]).
    names: BTreeMap<String, ImageRecord>,
}

/// Whether an index key is an image's id (a dangling image) rather than a name.
pub fn dangling(key: &str) -> bool {
    key.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The name → image table.
#[derive(Debug, Clone)]
pub struct ImageStore {
    path: PathBuf,
    lock: PathBuf,
}

/// An exclusive flock on the index's lock file, released on drop.
struct Lock(#[allow(dead_code)] nix::fcntl::Flock<std::fs::File>);

impl Lock {
    fn take(path: &Path) -> Result<Lock> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| EngineError::io("opening lock", path, e))?;
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
            .map(Lock)
            .map_err(|(_, e)| EngineError::io("locking", path, e.into()))
    }
}

impl ImageStore {
    pub fn open(root: &Path) -> ImageStore {
        ImageStore {
            path: root.join("images.json"),
            lock: root.join("images.lock"),
        }
    }

    fn load(&self) -> Result<Index> {
        match std::fs::read(&self.path) {
            Ok(d) => serde_json::from_slice(&d).map_err(|e| EngineError::Config {
                path: self.path.clone(),
                reason: format!("corrupt image index: {e}"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(EngineError::io("reading", &self.path, e)),
        }
    }

    fn save(&self, idx: &Index) -> Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        let data = serde_json::to_vec_pretty(idx).expect("serializable");
        let mut f = std::fs::File::create(&tmp).map_err(|e| EngineError::io("writing", &tmp, e))?;
        f.write_all(&data)
            .and_then(|_| f.sync_all())
            .map_err(|e| EngineError::io("writing", &tmp, e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| EngineError::io("renaming", &self.path, e))
    }

    fn update<T>(&self, f: impl FnOnce(&mut Index) -> Result<T>) -> Result<T> {
        let _l = Lock::take(&self.lock)?;
        let mut idx = self.load()?;
        let r = f(&mut idx)?;
        self.save(&idx)?;
        Ok(r)
    }

    pub fn get(&self, full_name: &str) -> Result<Option<ImageRecord>> {
        Ok(self.load()?.names.get(full_name).cloned())
    }

    /// Points `full_name` at `rec` (or keeps `rec` as a dangling image when
    /// `full_name` is `None`), as docker's commit and tag do: an image the
    /// name pointed at before stays, under its id, if no other name does.
    /// A dangling entry of `rec` itself goes once a name points at it.
    pub fn name(&self, full_name: Option<&str>, rec: ImageRecord) -> Result<()> {
        self.update(|idx| {
            let key = full_name.map_or_else(|| rec.config.clone(), str::to_string);
            let before = idx.names.insert(key, rec.clone());
            if let Some(old) = before.filter(|o| o.config != rec.config) {
                if !idx.names.values().any(|r| r.config == old.config) {
                    idx.names.insert(old.config.clone(), old);
                }
            }
            if full_name.is_some() {
                idx.names.remove(&rec.config);
            }
            Ok(())
        })
    }

    /// Removes a name; returns its record.
    pub fn untag(&self, full_name: &str) -> Result<Option<ImageRecord>> {
        self.update(|idx| Ok(idx.names.remove(full_name)))
    }

    /// The ids of images another image was made on.
    pub fn parents(&self) -> Result<std::collections::HashSet<String>> {
        Ok(self
            .load()?
            .names
            .into_values()
            .filter_map(|r| r.parent)
            .collect())
    }

    pub fn all(&self) -> Result<Vec<(String, ImageRecord)>> {
        Ok(self.load()?.names.into_iter().collect())
    }

    /// Finds an image by name or by (a prefix of at least 4 hex digits of) its ID.
    pub fn find(
        &self,
        name_or_id: &str,
        full_name: Option<&str>,
    ) -> Result<Option<(String, ImageRecord)>> {
        let all = self.all()?;
        if let Some(n) = full_name {
            if let Some(r) = all.iter().find(|(k, _)| k == n) {
                return Ok(Some(r.clone()));
            }
        }
        let id = name_or_id.strip_prefix("sha256:").unwrap_or(name_or_id);
        if id.len() >= 4 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            let hits: Vec<_> = all
                .iter()
                .filter(|(_, r)| r.config[7..].starts_with(id))
                .collect();
            if let Some(first) = hits.first() {
                if hits.iter().all(|(_, r)| r.config == first.1.config) {
                    return Ok(Some((*first).clone()));
                }
            }
        }
        Ok(None)
    }
}
