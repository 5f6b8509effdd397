//! The build cache: which image a step made, keyed on what decides its
//! result — the parent image, the instruction as run (after expansion),
//! the build arguments in effect, and for `COPY`/`ADD` a checksum of the
//! files read (content, mode, owner; never times). Kept in
//! `<root>/build-cache.json`; an entry whose image is gone is a miss.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::store::write_json;

/// The cache of one engine root.
#[derive(Debug)]
pub struct BuildCache {
    path: PathBuf,
    lock: Mutex<()>,
}

/// What a step's key is made of.
#[derive(Debug, Default)]
pub struct Key {
    hasher: Sha256,
}

impl Key {
    /// A key for a step on `parent` (empty for `scratch`).
    pub fn new(parent: &str) -> Key {
        Key::default().add("parent", parent.as_bytes())
    }

    /// Adds a named part (length-prefixed, so parts cannot run together).
    pub fn add(mut self, name: &str, value: &[u8]) -> Key {
        for part in [name.as_bytes(), value] {
            self.hasher.update((part.len() as u64).to_le_bytes());
            self.hasher.update(part);
        }
        self
    }

    /// The key's text.
    pub fn finish(self) -> String {
        hex::encode(self.hasher.finalize())
    }
}

impl BuildCache {
    /// The cache of the engine at `root`.
    pub fn open(root: &Path) -> BuildCache {
        BuildCache {
            path: root.join("build-cache.json"),
            lock: Mutex::new(()),
        }
    }

    fn read(&self) -> BTreeMap<String, String> {
        std::fs::read(&self.path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// The image a step with `key` made, if recorded.
    pub fn get(&self, key: &str) -> Option<String> {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.read().remove(key)
    }

    /// Records that the step with `key` made image `id`.
    pub fn put(&self, key: &str, id: &str) -> Result<()> {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut all = self.read();
        all.insert(key.to_owned(), id.to_owned());
        write_json(&self.path, &all)
    }

    /// Forgets every entry (`builder prune`); returns how many there were.
    pub fn clear(&self) -> Result<usize> {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let n = self.read().len();
        write_json(&self.path, &BTreeMap::<String, String>::new())?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_every_part_and_entries_persist() {
        let a = Key::new("sha256:p").add("run", b"echo a").finish();
        let b = Key::new("sha256:p").add("run", b"echo b").finish();
        let c = Key::new("sha256:q").add("run", b"echo a").finish();
        let d = Key::new("sha256:p").add("ru", b"necho a").finish();
        assert!(a != b && a != c && a != d);
        assert_eq!(a, Key::new("sha256:p").add("run", b"echo a").finish());
        let dir = tempfile::tempdir().unwrap();
        let cache = BuildCache::open(dir.path());
        assert_eq!(cache.get(&a), None);
        cache.put(&a, "sha256:i").unwrap();
        assert_eq!(
            BuildCache::open(dir.path()).get(&a).as_deref(),
            Some("sha256:i")
        );
        assert_eq!(cache.clear().unwrap(), 1);
        assert_eq!(cache.get(&a), None);
    }
}
