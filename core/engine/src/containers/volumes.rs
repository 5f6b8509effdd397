//! Named volumes: a directory `<root>/volumes/NAME/_data` with a small JSON
//! record beside it (`created`, labels), as docker's `local` driver keeps them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};

/// docker's rule for volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn check_name(name: &str) -> Result<(), String> {
    if crate::store::valid_name(name, 2) {
        Ok(())
    } else {
        Err(format!(
            "{name:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed"
        ))
    }
}

/// docker's `Volume` object.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    pub name: String,
    pub driver: String,
    pub mountpoint: PathBuf,
    pub created_at: String,
    pub labels: BTreeMap<String, String>,
    pub scope: String,
    pub options: BTreeMap<String, String>,
}

/// The volumes under `<root>/volumes`.
#[derive(Debug, Clone)]
pub struct Volumes {
    dir: PathBuf,
}

impl Volumes {
    pub fn new(root: &Path) -> Volumes {
        Volumes {
            dir: root.join("volumes"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn record(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("volume.json")
    }

    /// Creates a volume (an existing one is returned as it is).
    pub fn create(&self, name: &str, labels: BTreeMap<String, String>) -> Result<Volume> {
        check_name(name).map_err(|reason| EngineError::invalid("volume name", name, reason))?;
        if let Ok(v) = self.inspect(name) {
            return Ok(v);
        }
        let data = self.dir.join(name).join("_data");
        std::fs::create_dir_all(&data).map_err(|e| EngineError::io("creating", &data, e))?;
        let v = Volume {
            name: name.into(),
            driver: "local".into(),
            mountpoint: data,
            created_at: crate::store::now(),
            labels,
            scope: "local".into(),
            options: BTreeMap::new(),
        };
        super::write_json(&self.record(name), &v)?;
        Ok(v)
    }

    pub fn inspect(&self, name: &str) -> Result<Volume> {
        let data = self.dir.join(name).join("_data");
        if check_name(name).is_err() || !data.is_dir() {
            return Err(EngineError::NotFound {
                what: "volume",
                name: name.into(),
            });
        }
        // A volume made by `-v NAME:/dst` has no record yet.
        Ok(std::fs::read(self.record(name))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Volume {
                name: name.into(),
                driver: "local".into(),
                mountpoint: data,
                scope: "local".into(),
                ..Default::default()
            }))
    }

    pub fn list(&self) -> Vec<Volume> {
        let mut out: Vec<Volume> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| self.inspect(&e.file_name().to_string_lossy()).ok())
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Removes a volume; `in_use` names the container that uses it, if any.
    pub fn remove(&self, name: &str, in_use: Option<&str>) -> Result<()> {
        self.inspect(name)?;
        if let Some(c) = in_use {
            return Err(EngineError::VolumeInUse {
                name: name.to_string(),
                container: c.to_string(),
            });
        }
        let d = self.dir.join(name);
        std::fs::remove_dir_all(&d).map_err(|e| EngineError::io("removing", &d, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("data_1.x-y").is_ok());
        assert!(
            check_name("_x").is_err() && check_name("a/b").is_err() && check_name("a").is_err()
        );
    }

    #[test]
    fn create_list_remove() {
        let t = tempfile::tempdir().unwrap();
        let v = Volumes::new(t.path());
        v.create("db", BTreeMap::new()).unwrap();
        assert_eq!(v.list().len(), 1);
        assert!(v
            .remove("db", Some("c1"))
            .unwrap_err()
            .to_string()
            .contains("in use"));
        v.remove("db", None).unwrap();
        assert!(matches!(v.inspect("db"), Err(EngineError::NotFound { .. })));
    }
}
