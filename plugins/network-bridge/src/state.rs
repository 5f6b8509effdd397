//! What the plugin remembers of each network: one JSON file per network,
//! `<root>/networks/<network-id>.json`, replaced atomically (written to
//! `<file>.tmp`, synced, then renamed) so a crash leaves the old or the new
//! state, never half of one.
//!
//! ```text
//! {
//!   "spec": {"name": "front", "id": "<64 hex>", "subnet": "", "gateway": "",
//!            "ip_range": "", "internal": false, "options": [["mtu", "1400"]]},
//!   "subnet": "172.18.0.0/16",
//!   "gateway": "172.18.0.1",
//!   "bridge": "br-<first 12 of id>",
//!   "ip_range": "172.18.1.0/24",        (absent for the whole subnet)
//!   "internal": false,
//!   "mtu": 1400,                         (0: the kernel's default)
//!   "leases": {"<container id>": "172.18.1.0"},
//!   "cursor": "172.18.1.0"               (the address allocated last; absent before the first)
//! }
//! ```

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use berth_sdk::error::context;
use berth_sdk::ipam::{Ipv4Net, Leases, Pool};
use berth_sdk::network::{Error, NetworkSpec};
use serde::{Deserialize, Serialize};

/// The spec a network was created with, as the operator gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecRecord {
    /// The network's name.
    pub name: String,
    /// Its ID.
    pub id: String,
    /// The subnet asked for; empty when the plugin chose.
    pub subnet: String,
    /// The gateway asked for; empty for the default.
    pub gateway: String,
    /// The ip-range asked for; empty for the whole subnet.
    pub ip_range: String,
    /// `--internal`.
    pub internal: bool,
    /// Driver options.
    pub options: Vec<(String, String)>,
}

impl From<&NetworkSpec> for SpecRecord {
    fn from(s: &NetworkSpec) -> Self {
        SpecRecord {
            name: s.name.clone(),
            id: s.id.clone(),
            subnet: s.subnet.clone(),
            gateway: s.gateway.clone(),
            ip_range: s.ip_range.clone(),
            internal: s.internal,
            options: s.options.clone(),
        }
    }
}

/// A network's state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkState {
    /// What the operator asked for.
    pub spec: SpecRecord,
    /// The subnet in use.
    pub subnet: Ipv4Net,
    /// The gateway, on the bridge.
    pub gateway: Ipv4Addr,
    /// The bridge's name.
    pub bridge: String,
    /// Where container addresses come from; `None` for the whole subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<Ipv4Net>,
    /// No route or NAT to the outside.
    pub internal: bool,
    /// MTU of the bridge and the veths; 0 for the kernel's default.
    pub mtu: u32,
    /// Container id → address, and the allocation cursor.
    #[serde(flatten)]
    pub leases: Leases,
}

impl NetworkState {
    /// The network's name, for messages.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The address pool the leases come from.
    pub fn pool(&self) -> Result<Pool, Error> {
        Pool::new(self.subnet, self.ip_range, Some(self.gateway)).map_err(|e| {
            context(
                e.into(),
                &format!("network {}: corrupt state file", self.name()),
            )
        })
    }
}

/// Checks that a network ID can name a file: 1 to 128 ASCII letters,
/// digits, `-` or `_` (berth's IDs are 64 hex digits).
pub fn check_id(id: &str) -> Result<(), Error> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "network ID {id:?} is malformed: want 1 to 128 letters, digits, '-' or '_' (64 hex digits)"
        )))
    }
}

/// Where network `id`'s state lives under `root`.
pub fn path(root: &Path, id: &str) -> Result<PathBuf, Error> {
    check_id(id)?;
    Ok(root.join("networks").join(format!("{id}.json")))
}

/// Reads network `id`'s state; `None` when there is none.
pub fn load(root: &Path, id: &str) -> Result<Option<NetworkState>, Error> {
    let path = path(root, id)?;
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(context(e.into(), &format!("reading {}", path.display()))),
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        Error::Invalid(format!(
            "state file {} is corrupt: {e}; remove the network and create it again",
            path.display()
        ))
    })
}

/// Writes `state` atomically.
pub fn save(root: &Path, state: &NetworkState) -> Result<(), Error> {
    let path = path(root, &state.spec.id)?;
    let json = serde_json::to_vec_pretty(state).expect("network state serializes");
    write_atomic(&path, &json)
        .map_err(|e| context(e.into(), &format!("writing {}", path.display())))
}

/// Deletes network `id`'s state; Ok when there is none.
pub fn remove(root: &Path, id: &str) -> Result<(), Error> {
    let path = path(root, id)?;
    for p in [tmp_path(&path), path] {
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(context(e.into(), &format!("removing {}", p.display()))),
        }
    }
    Ok(())
}

/// Every network's state under `root`, skipping files that do not parse.
pub fn all(root: &Path) -> Result<Vec<NetworkState>, Error> {
    let dir = root.join("networks");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(context(e.into(), &format!("listing {}", dir.display()))),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| context(e.into(), &format!("listing {}", dir.display())))?;
        let name = entry.file_name();
        let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
            continue;
        };
        if let Ok(Some(s)) = load(root, id) {
            out.push(s);
        }
    }
    Ok(out)
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".tmp");
    PathBuf::from(p)
}

fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // No fsync: a lease only has to outlive the daemon (kill -9), for which
    // the page cache suffices; after a power loss no container runs, the
    // kernel's links are gone too, and gc releases every lease. The rename
    // keeps readers from ever seeing half a file. (An fsync here cost
    // milliseconds on every attach.)
    let tmp = tmp_path(path);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    drop(f);
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(id: &str) -> NetworkState {
        NetworkState {
            spec: SpecRecord {
                name: "front".into(),
                id: id.into(),
                subnet: String::new(),
                gateway: String::new(),
                ip_range: String::new(),
                internal: false,
                options: vec![("mtu".into(), "1400".into())],
            },
            subnet: "172.18.0.0/16".parse().unwrap(),
            gateway: "172.18.0.1".parse().unwrap(),
            bridge: "br-abc".into(),
            ip_range: None,
            internal: false,
            mtu: 1400,
            leases: Leases::default(),
        }
    }

    #[test]
    fn saves_loads_and_removes() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        assert_eq!(load(root, "abc").unwrap(), None);
        let mut s = state("abc");
        let pool = s.pool().unwrap();
        s.leases.allocate("c1", &pool).unwrap();
        save(root, &s).unwrap();
        assert_eq!(load(root, "abc").unwrap(), Some(s.clone()));
        assert!(!root.join("networks/abc.json.tmp").exists());
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(root.join("networks/abc.json")).unwrap())
                .unwrap();
        assert_eq!(json["subnet"], "172.18.0.0/16");
        assert_eq!(json["leases"]["c1"], "172.18.0.2");
        assert_eq!(json["cursor"], "172.18.0.2");
        assert_eq!(all(root).unwrap(), [s]);
        remove(root, "abc").unwrap();
        remove(root, "abc").unwrap();
        assert_eq!(load(root, "abc").unwrap(), None);
    }

    #[test]
    fn refuses_ids_that_leave_the_directory() {
        let tmp = tempfile::tempdir().unwrap();
        for bad in ["", "../x", "a/b", ".", "a.json"] {
            assert!(
                matches!(load(tmp.path(), bad), Err(Error::Invalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_corrupt_file_is_invalid() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("networks")).unwrap();
        std::fs::write(tmp.path().join("networks/abc.json"), b"{").unwrap();
        let e = load(tmp.path(), "abc").unwrap_err();
        assert!(
            matches!(&e, Error::Invalid(m) if m.contains("corrupt")),
            "{e:?}"
        );
    }
}
