//! What the plugin remembers of each network: one JSON file per network,
//! `<root>/networks/<network-id>.json`, replaced atomically (written to
//! `<file>.tmp`, synced, renamed) so a crash leaves the old state or the new.
//!
//! ```text
//! {
//!   "name": "lan", "id": "<64 hex>",
//!   "subnet": "10.99.0.0/24", "gateway": "10.99.0.1", "default_route": false,
//!   "ip_range": "10.99.0.128/25",        (absent for the whole subnet)
//!   "parent": "eth0", "mode": "bridge",
//!   "leases": {"<container id>": "10.99.0.2"}, "cursor": "10.99.0.2"
//! }
//! ```

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use berth_sdk::error::context;
use berth_sdk::ipam::{Ipv4Net, Leases, Pool};
use berth_sdk::network::Error;
use serde::{Deserialize, Serialize};

/// A network's state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkState {
    /// The network's name, for messages.
    pub name: String,
    /// Its ID.
    pub id: String,
    /// The LAN's subnet.
    pub subnet: Ipv4Net,
    /// The LAN's router (`--gateway`, else the subnet's first host); never
    /// leased to a container.
    pub gateway: Ipv4Addr,
    /// Whether containers get a default route via the gateway: only when
    /// the operator named it, since the first host may be no router.
    pub default_route: bool,
    /// Where container addresses come from; `None` for the whole subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<Ipv4Net>,
    /// The host link the macvlans sit on.
    pub parent: String,
    /// The macvlan mode.
    pub mode: String,
    /// Container id → address, and the allocation cursor.
    #[serde(flatten)]
    pub leases: Leases,
}

impl NetworkState {
    /// The address pool the leases come from.
    pub fn pool(&self) -> Result<Pool, Error> {
        Pool::new(self.subnet, self.ip_range, Some(self.gateway)).map_err(|e| {
            context(
                e.into(),
                &format!("network {}: corrupt state file", self.name),
            )
        })
    }
}

/// Where network `id`'s state lives under `root`. The ID must be safe as a
/// file name (berth's are 64 hex digits).
pub fn path(root: &Path, id: &str) -> Result<PathBuf, Error> {
    if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Error::Invalid(format!(
            "network ID {id:?} is malformed: want 1 to 128 letters or digits"
        )));
    }
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
    let path = path(root, &state.id)?;
    let json = serde_json::to_vec_pretty(state).expect("network state serializes");
    write_atomic(&path, &json)
        .map_err(|e| context(e.into(), &format!("writing {}", path.display())))
}

/// Deletes network `id`'s state; Ok when there is none.
pub fn remove(root: &Path, id: &str) -> Result<(), Error> {
    let path = path(root, id)?;
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(context(e.into(), &format!("removing {}", path.display()))),
    }
}

fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_loads_and_removes() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        assert_eq!(load(root, "abc").unwrap(), None);
        let mut s = NetworkState {
            name: "lan".into(),
            id: "abc".into(),
            subnet: "10.99.0.0/24".parse().unwrap(),
            gateway: "10.99.0.1".parse().unwrap(),
            default_route: true,
            ip_range: None,
            parent: "eth0".into(),
            mode: "bridge".into(),
            leases: Leases::default(),
        };
        let pool = s.pool().unwrap();
        s.leases.allocate("c1", &pool).unwrap();
        save(root, &s).unwrap();
        assert_eq!(load(root, "abc").unwrap(), Some(s));
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(root.join("networks/abc.json")).unwrap())
                .unwrap();
        assert_eq!(json["leases"]["c1"], "10.99.0.2");
        assert_eq!(json["parent"], "eth0");
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
}
