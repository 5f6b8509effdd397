//! What the network verbs take and give: the network the operator asked
//! for, a container to attach, and what `create-network` and `add` decided.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::plan::PortForward;
use crate::bindings::network::exports::berth::plugin::network as wit;

/// A network as the operator asked for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkSpec {
    /// Its name.
    pub name: String,
    /// Its ID (64 hex digits).
    pub id: String,
    /// The subnet (CIDR), empty to let the plugin choose.
    pub subnet: String,
    /// The gateway, empty for the subnet's first address.
    pub gateway: String,
    /// The range container addresses come from, empty for the whole subnet.
    pub ip_range: String,
    /// No outbound route or NAT.
    pub internal: bool,
    /// Driver options.
    pub options: Vec<(String, String)>,
    /// Subnets of the other networks.
    pub taken: Vec<String>,
}

/// What `create-network` decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkInfo {
    /// The subnet.
    pub subnet: Ipv4Net,
    /// The gateway, if any.
    pub gateway: Option<Ipv4Addr>,
    /// The host links the network consists of (its bridge).
    pub links: Vec<String>,
}

/// A container to attach.
#[derive(Debug, Clone)]
pub struct AttachRequest {
    /// The network (with the subnet and gateway `create-network` chose).
    pub network: NetworkSpec,
    /// The container's ID.
    pub container_id: String,
    /// The interface name inside the container (`eth0`).
    pub ifname: String,
    /// An address the operator asked for.
    pub address: Option<Ipv4Addr>,
    /// Ports to publish (host ports already chosen).
    pub ports: Vec<PortForward>,
    /// Egress and ingress limit in bits per second; 0 for none.
    pub bandwidth: u64,
    /// Whether this attachment may give the container its default route
    /// (only one of a container's networks does; the host drops the
    /// plan's default route otherwise).
    pub default_route: bool,
}

/// What `add` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The container's address and prefix length.
    pub address: Ipv4Net,
    /// The gateway, if any.
    pub gateway: Option<Ipv4Addr>,
    /// The MAC address the plugin asked for (may be empty).
    pub mac: String,
    /// The host-side links (the veth's host end).
    pub host_links: Vec<String>,
}

/// The spec as the plugin receives it.
pub(crate) fn wit_spec(s: &NetworkSpec) -> wit::NetworkSpec {
    wit::NetworkSpec {
        name: s.name.clone(),
        id: s.id.clone(),
        subnet: s.subnet.clone(),
        gateway: s.gateway.clone(),
        ip_range: s.ip_range.clone(),
        internal: s.internal,
        options: s.options.clone(),
        taken: s.taken.clone(),
    }
}
