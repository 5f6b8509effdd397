//! Loading and validating a bundle's `config.json` before anything is created,
//! so bad input fails early with a message that names the field.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Result, RuntimeError};

/// A parsed and validated bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Absolute path of the bundle directory.
    pub dir: PathBuf,
    /// Absolute path of the root filesystem.
    pub rootfs: PathBuf,
    pub spec: Spec,
}

/// Reads `<dir>/config.json` and validates it.
pub fn load_bundle(dir: &Path) -> Result<Bundle> {
    let dir = std::path::absolute(dir).map_err(|e| RuntimeError::io("resolving bundle", dir, e))?;
    let path = dir.join("config.json");
    let text = std::fs::read(&path).map_err(|e| RuntimeError::ReadConfig {
        path: path.clone(),
        source: e,
    })?;
    let de = &mut serde_json::Deserializer::from_slice(&text);
    let spec: Spec =
        serde_path_to_error::deserialize(de).map_err(|e| RuntimeError::ParseConfig {
            path: path.clone(),
            reason: match e.path().to_string().as_str() {
                "." => e.inner().to_string(),
                field => format!("field {field}: {}", e.inner()),
            },
        })?;
    validate(&spec).map_err(|reason| RuntimeError::InvalidConfig {
        path: path.clone(),
        reason,
    })?;
    let root = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .unwrap_or_default();
    let rootfs = if root.is_absolute() {
        root
    } else {
        dir.join(root)
    };
    if !rootfs.is_dir() {
        return Err(RuntimeError::MissingRootfs { path: rootfs });
    }
    let rootfs = rootfs
        .canonicalize()
        .map_err(|e| RuntimeError::io("resolving rootfs", &rootfs, e))?;
    Ok(Bundle { dir, rootfs, spec })
}

/// Checks what the spec requires and what berth supports; the error text
/// names the offending field.
pub fn validate(spec: &Spec) -> std::result::Result<(), String> {
    let major = spec.version().split('.').next().unwrap_or("");
    if major != "1" {
        return Err(format!(
            "ociVersion {:?} is not supported (berth implements 1.x)",
            spec.version()
        ));
    }
    let Some(root) = spec.root() else {
        return Err("root: missing (the bundle must name its root filesystem)".into());
    };
    if root.path().as_os_str().is_empty() {
        return Err("root.path: empty".into());
    }
    let Some(process) = spec.process() else {
        return Err("process: missing".into());
    };
    validate_process(process)?;
    let Some(linux) = spec.linux() else {
        return Err("linux: missing (berth runs Linux containers only)".into());
    };
    let mut seen = HashSet::new();
    let namespaces = linux.namespaces().clone().unwrap_or_default();
    for ns in &namespaces {
        if !seen.insert(ns.typ()) {
            return Err(format!("linux.namespaces: {:?} listed twice", ns.typ()));
        }
        if matches!(ns.typ(), LinuxNamespaceType::Time) {
            return Err("linux.namespaces: time namespaces are not supported".into());
        }
        if let Some(p) = ns.path() {
            if !p.is_absolute() {
                return Err(format!(
                    "linux.namespaces: path {} of the {:?} namespace is not absolute",
                    p.display(),
                    ns.typ()
                ));
            }
        }
    }
    let new_userns = namespaces
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
    let has_maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if new_userns && !has_maps {
        return Err("linux.uidMappings/gidMappings: a new user namespace needs mappings".into());
    }
    if !new_userns && has_maps {
        return Err(
            "linux.uidMappings/gidMappings: mappings given without a new user namespace".into(),
        );
    }
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty())
        && !namespaces
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::Uts)
    {
        return Err("hostname: setting a hostname needs a new UTS namespace".into());
    }
    if let Some(p) = linux.cgroups_path() {
        let s = p.to_string_lossy();
        if s.split(':').count() == 3 && !s.starts_with('/') {
            return Err(format!(
                "linux.cgroupsPath {s:?}: systemd-style paths are not supported (berth drives cgroupfs directly)"
            ));
        }
    }
    for m in spec.mounts().iter().flatten() {
        if !m.destination().is_absolute() {
            return Err(format!(
                "mounts: destination {} is not absolute",
                m.destination().display()
            ));
        }
    }
    if let Some(prop) = linux.rootfs_propagation() {
        if !matches!(
            prop.as_str(),
            "" | "private"
                | "rprivate"
                | "slave"
                | "rslave"
                | "shared"
                | "rshared"
                | "unbindable"
                | "runbindable"
        ) {
            return Err(format!(
                "linux.rootfsPropagation {prop:?}: unknown propagation"
            ));
        }
    }
    Ok(())
}

/// Checks a process (of the container or of an `exec`).
pub fn validate_process(process: &oci_spec::runtime::Process) -> std::result::Result<(), String> {
    let args = process.args().clone().unwrap_or_default();
    if args.is_empty() || args[0].is_empty() {
        return Err("process.args: empty (nothing to run)".into());
    }
    if !process.cwd().is_absolute() {
        return Err(format!(
            "process.cwd {}: must be an absolute path",
            process.cwd().display()
        ));
    }
    for e in process.env().iter().flatten() {
        if !e.contains('=') {
            return Err(format!("process.env {e:?}: not of the form NAME=VALUE"));
        }
    }
    for r in process.rlimits().iter().flatten() {
        if r.soft() > r.hard() {
            return Err(format!(
                "process.rlimits {:?}: soft limit {} is above the hard limit {}",
                r.typ(),
                r.soft(),
                r.hard()
            ));
        }
    }
    Ok(())
}

/// Validates a container id: the same rules as runc (it becomes a directory name).
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+'));
    if ok {
        Ok(())
    } else {
        Err(RuntimeError::InvalidId {
            id: id.to_string(),
            reason: "use letters, digits and _ - . + only".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> Spec {
        serde_json::from_value(json).unwrap()
    }

    fn base() -> serde_json::Value {
        serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"args": ["/bin/true"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}]},
            "hostname": "c1"
        })
    }

    #[test]
    fn accepts_a_plain_spec() {
        validate(&spec(base())).unwrap();
    }

    #[test]
    fn rejects_what_is_wrong_and_names_the_field() {
        let cases: Vec<(&str, serde_json::Value, &str)> = vec![
            ("/ociVersion", serde_json::json!("2.0.0"), "ociVersion"),
            ("/process/args", serde_json::json!([]), "process.args"),
            ("/process/cwd", serde_json::json!("rel"), "process.cwd"),
            (
                "/process/env",
                serde_json::json!(["NOEQUALS"]),
                "process.env",
            ),
            (
                "/linux/namespaces",
                serde_json::json!([{"type": "pid"}, {"type": "pid"}]),
                "listed twice",
            ),
            (
                "/linux/namespaces",
                serde_json::json!([{"type": "pid"}]),
                "hostname",
            ),
            (
                "/linux/namespaces",
                serde_json::json!([{"type": "uts"}, {"type": "user"}]),
                "mappings",
            ),
            (
                "/linux/cgroupsPath",
                serde_json::json!("system.slice:berth:abc"),
                "systemd",
            ),
            (
                "/process/rlimits",
                serde_json::json!([{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5}]),
                "soft limit",
            ),
        ];
        for (ptr, value, needle) in cases {
            let mut j = base();
            *j.pointer_mut(ptr.rsplit_once('/').unwrap().0)
                .unwrap()
                .as_object_mut()
                .unwrap()
                .entry(ptr.rsplit_once('/').unwrap().1)
                .or_insert(serde_json::Value::Null) = value;
            let err = validate(&spec(j)).unwrap_err();
            assert!(err.contains(needle), "{ptr}: {err}");
        }
    }

    #[test]
    fn ids_follow_runc_rules() {
        validate_id("abc-1_2.3").unwrap();
        for bad in ["", "..", "a/b", "a b"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }
}
