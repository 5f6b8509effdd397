//! Volumes (docker's `local` driver): `POST /volumes/create`, `GET
//! /volumes`, `GET /volumes/{name}` (the engine's `Volume`, docker's
//! shape), `POST /volumes/prune`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use berth_engine::containers::volumes::Volume;

use super::nullable;

/// `POST /volumes/create`'s body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeCreateRequest {
    pub name: String,
    pub driver: String,
    #[serde(deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable")]
    pub driver_opts: BTreeMap<String, String>,
}

/// `GET /volumes`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeListResponse {
    #[serde(deserialize_with = "nullable")]
    pub volumes: Vec<Volume>,
    #[serde(deserialize_with = "nullable")]
    pub warnings: Vec<String>,
}

/// `POST /volumes/prune`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumePruneResponse {
    #[serde(deserialize_with = "nullable")]
    pub volumes_deleted: Vec<String>,
    pub space_reclaimed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn list_and_prune_are_dockers_json() {
        assert_eq!(
            serde_json::to_value(VolumeListResponse::default()).unwrap(),
            json!({"Volumes": [], "Warnings": []})
        );
        let p = VolumePruneResponse {
            volumes_deleted: vec!["a".into()],
            space_reclaimed: 0,
        };
        assert_eq!(
            serde_json::to_value(p).unwrap(),
            json!({"VolumesDeleted": ["a"], "SpaceReclaimed": 0})
        );
        let r: VolumeCreateRequest =
            serde_json::from_value(json!({"Name": "v", "Labels": null, "DriverOpts": null}))
                .unwrap();
        assert_eq!(r.name, "v");
    }
}
