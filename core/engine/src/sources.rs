//! Where blobs are known to be: `digest → registry/repository` names,
//! learned from pulls and pushes and kept in `blob-sources.json` under the
//! engine root (docker's "v2 metadata"). A push offers the repositories of
//! its own registry to the fetcher, which tries a cross-repository mount
//! from them before uploading.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::Result;
use crate::store::write_json;

/// Repositories remembered per blob (the most recent ones are kept).
const PER_BLOB: usize = 8;

/// The table, read and rewritten whole under a process-wide lock (it is
/// small: a few names per blob, and the daemon is its only writer).
#[derive(Debug)]
pub struct BlobSources {
    path: PathBuf,
    lock: Mutex<()>,
}

impl BlobSources {
    /// The table of the engine at `root`.
    pub fn open(root: &Path) -> BlobSources {
        BlobSources {
            path: root.join("blob-sources.json"),
            lock: Mutex::new(()),
        }
    }

    fn read(&self) -> BTreeMap<String, Vec<String>> {
        std::fs::read(&self.path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Remembers that `name` (`registry/repository`) holds each of `digests`.
    pub fn add<'a>(&self, name: &str, digests: impl IntoIterator<Item = &'a str>) -> Result<()> {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut all = self.read();
        let mut changed = false;
        for d in digests {
            let list = all.entry(d.to_owned()).or_default();
            if list.first().map(String::as_str) == Some(name) {
                continue;
            }
            list.retain(|n| n != name);
            list.insert(0, name.to_owned());
            list.truncate(PER_BLOB);
            changed = true;
        }
        if changed {
            write_json(&self.path, &all)?;
        }
        Ok(())
    }

    /// Repositories of `registry` known to hold `digest`, most recent first.
    pub fn on(&self, registry: &str, digest: &str) -> Vec<String> {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let prefix = format!("{registry}/");
        self.read()
            .remove(digest)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|n| n.strip_prefix(&prefix).map(str::to_owned))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// Forgets blobs the content store no longer has.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) -> Result<()> {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut all = self.read();
        let before = all.len();
        all.retain(|d, _| keep(d));
        if all.len() != before {
            write_json(&self.path, &all)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_kept_per_registry_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let s = BlobSources::open(dir.path());
        assert!(s.on("r:5000", "sha256:a").is_empty());
        s.add("r:5000/team/base", ["sha256:a", "sha256:b"]).unwrap();
        s.add("other:5000/x", ["sha256:a"]).unwrap();
        assert_eq!(s.on("r:5000", "sha256:a"), ["team/base"]);
        assert_eq!(s.on("other:5000", "sha256:a"), ["x"]);
        assert!(s.on("r:500", "sha256:a").is_empty());
        for i in 0..20 {
            s.add(&format!("r:5000/n{i}"), ["sha256:b"]).unwrap();
        }
        assert_eq!(s.on("r:5000", "sha256:b").len(), PER_BLOB);
        s.retain(|d| d == "sha256:b").unwrap();
        assert!(s.on("r:5000", "sha256:a").is_empty());
        assert_eq!(s.on("r:5000", "sha256:b").len(), PER_BLOB);
    }
}
