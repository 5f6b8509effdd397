//! What networks are made of: a network's record, `network create`'s
//! request, and a container's endpoint on a network (what it asks for,
//! what it got, who it is).

use std::collections::BTreeMap;

use berth_host::NetworkSpec;
use serde::{Deserialize, Serialize};

use super::proxy;
/// A network (`<root>/networks/<id>.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NetworkRecord {
    pub id: String,
    pub name: String,
    /// The plugin (`bridge`), or `host` / `null` for the predefined ones.
    pub driver: String,
    pub created: String,
    pub subnet: String,
    pub gateway: String,
    pub ip_range: String,
    pub internal: bool,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// The host links the network consists of (its bridge).
    pub links: Vec<String>,
}

impl NetworkRecord {
    /// Whether containers on it get a network stack from a plugin.
    pub fn is_plugin(&self) -> bool {
        self.driver != "host" && self.driver != "null"
    }

    pub(super) fn spec(&self, taken: Vec<String>) -> NetworkSpec {
        NetworkSpec {
            name: self.name.clone(),
            id: self.id.clone(),
            subnet: self.subnet.clone(),
            gateway: self.gateway.clone(),
            ip_range: self.ip_range.clone(),
            internal: self.internal,
            options: self
                .options
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            taken,
        }
    }
}

/// `network create`'s options.
#[derive(Debug, Clone, Default)]
pub struct CreateNetwork {
    pub name: String,
    pub driver: Option<String>,
    pub subnet: String,
    pub gateway: String,
    pub ip_range: String,
    pub internal: bool,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// How a container wants to be attached to a network (`--ip`, `--network-alias`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct EndpointConfig {
    pub aliases: Vec<String>,
    pub ipv4_address: String,
}

/// A container's live attachment to a network (docker's `EndpointSettings`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Endpoint {
    pub network_id: String,
    pub endpoint_id: String,
    pub ip_address: String,
    pub prefix_len: u8,
    pub gateway: String,
    pub mac_address: String,
    pub aliases: Vec<String>,
    /// The interface inside the container.
    pub ifname: String,
    /// The ports published through this network.
    pub ports: Vec<proxy::PortMap>,
}

/// Who is being attached.
#[derive(Debug, Clone)]
pub struct Attachee<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub hostname: &'a str,
    pub config: &'a EndpointConfig,
    pub ifname: &'a str,
    /// Bits per second, 0 for no limit.
    pub bandwidth: u64,
    /// The container's `--dns` servers (upstreams of the embedded DNS for it).
    pub dns: &'a [String],
    /// Whether this network gives the container its default route.
    pub default_route: bool,
    /// Ports to publish through this network.
    pub ports: &'a [proxy::PortRequest],
}
