//! Networks: `POST /networks/create`, `GET /networks`, `GET
//! /networks/{id}`, `POST /networks/{id}/connect|disconnect`, `POST
//! /networks/prune`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use super::containers::EndpointSettings;
use super::nullable;

/// `POST /networks/create`'s body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkCreateRequest {
    pub name: String,
    pub driver: String,
    pub internal: bool,
    #[serde(rename = "EnableIPv6", skip_serializing_if = "Option::is_none")]
    pub enable_ipv6: Option<bool>,
    #[serde(rename = "IPAM", skip_serializing_if = "Option::is_none")]
    pub ipam: Option<IpamRequest>,
    #[serde(deserialize_with = "nullable")]
    pub options: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
}

/// A create request's `IPAM`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamRequest {
    pub driver: String,
    #[serde(deserialize_with = "nullable")]
    pub config: Vec<IpamPool>,
}

/// One address pool: the subnet, and optionally its gateway and range.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamPool {
    pub subnet: String,
    #[serde(rename = "IPRange", skip_serializing_if = "String::is_empty")]
    pub ip_range: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub gateway: String,
}

/// `POST /networks/create`'s answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkCreateResponse {
    pub id: String,
    pub warning: String,
}

/// `POST /networks/{id}/connect` and `…/disconnect`'s body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkConnectRequest {
    pub container: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_config: Option<EndpointSettings>,
    pub force: bool,
}

/// `POST /networks/prune`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkPruneResponse {
    #[serde(deserialize_with = "nullable")]
    pub networks_deleted: Vec<String>,
}

/// docker's network object (`GET /networks`, `GET /networks/{id}`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkResource {
    pub name: String,
    pub id: String,
    pub created: String,
    pub scope: String,
    pub driver: String,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    #[serde(rename = "EnableIPv4")]
    pub enable_ipv4: bool,
    #[serde(rename = "IPAM")]
    pub ipam: Ipam,
    pub internal: bool,
    pub attachable: bool,
    pub ingress: bool,
    pub config_from: ConfigReference,
    pub config_only: bool,
    pub containers: BTreeMap<String, NetworkContainer>,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// A network's `IPAM`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ipam {
    pub driver: String,
    pub options: Option<BTreeMap<String, String>>,
    pub config: Vec<IpamPool>,
}

/// `ConfigFrom`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ConfigReference {
    pub network: String,
}

/// One of a network's `Containers`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkContainer {
    pub name: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub mac_address: String,
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resource_is_dockers_json() {
        let mut n = NetworkResource {
            name: "n1".into(),
            id: "abc".into(),
            created: "2026-01-01T00:00:00Z".into(),
            scope: "local".into(),
            driver: "bridge".into(),
            enable_ipv4: true,
            ipam: Ipam {
                driver: "default".into(),
                options: None,
                config: vec![IpamPool {
                    subnet: "10.9.0.0/24".into(),
                    gateway: "10.9.0.1".into(),
                    ..Default::default()
                }],
            },
            ..Default::default()
        };
        n.containers.insert(
            "c1".into(),
            NetworkContainer {
                name: "web".into(),
                endpoint_id: "e".into(),
                mac_address: "m".into(),
                ipv4_address: "10.9.0.2/24".into(),
                ipv6_address: String::new(),
            },
        );
        assert_eq!(
            serde_json::to_value(&n).unwrap(),
            json!({
                "Name": "n1", "Id": "abc", "Created": "2026-01-01T00:00:00Z", "Scope": "local", "Driver": "bridge",
                "EnableIPv6": false, "EnableIPv4": true,
                "IPAM": {"Driver": "default", "Options": null, "Config": [{"Subnet": "10.9.0.0/24", "Gateway": "10.9.0.1"}]},
                "Internal": false, "Attachable": false, "Ingress": false,
                "ConfigFrom": {"Network": ""}, "ConfigOnly": false,
                "Containers": {"c1": {"Name": "web", "EndpointID": "e", "MacAddress": "m", "IPv4Address": "10.9.0.2/24", "IPv6Address": ""}},
                "Options": {}, "Labels": {},
            })
        );
    }

    #[test]
    fn create_request_reads_nulls() {
        let r: NetworkCreateRequest = serde_json::from_value(json!({
            "Name": "n", "IPAM": {"Driver": "default", "Config": null}, "Options": null, "Labels": null
        }))
        .unwrap();
        assert_eq!(r.name, "n");
        assert!(r.ipam.unwrap().config.is_empty());
    }
}
