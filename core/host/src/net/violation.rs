//! Why the host refused a network plugin's plan or answer: one variant per
//! rule of the checker (`check.rs`) and of the verbs (`network.rs`), each
//! carrying the object it refused. The text is what users read inside
//! `HostError::Denied`.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::plan::PortForward;

/// A plan or answer of a network plugin that breaks one of the host's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanViolation {
    /// A value that should be an address with a prefix length.
    #[error("{what} {value:?} is not an IPv4 address with a prefix length")]
    NotACidr {
        /// What the value is (`route destination`).
        what: &'static str,
        /// The plugin's text.
        value: String,
    },
    /// A value that should be an address.
    #[error("{what} {value:?} is not an IPv4 address")]
    NotAnAddress {
        /// What the value is (`gateway`).
        what: &'static str,
        /// The plugin's text.
        value: String,
    },
    /// A published port's protocol that is neither tcp nor udp.
    #[error("protocol {protocol:?} is neither tcp nor udp")]
    UnknownProtocol {
        /// The plugin's text.
        protocol: String,
    },
    /// A host link name that Linux would not accept.
    #[error("{what} {name:?} is not a valid interface name (1-15 of A-Z a-z 0-9 _ . -)")]
    BadLinkName {
        /// What the link is (`link`, `master bridge`, `address 10.0.0.1/24`).
        what: String,
        /// The name.
        name: String,
    },
    /// A host link name outside the plugin's granted prefixes.
    #[error("{what} {name:?} is outside the plugin's granted link prefixes {prefixes:?}")]
    LinkOutsidePrefixes {
        /// What the link is.
        what: String,
        /// The name.
        name: String,
        /// The prefixes granted.
        prefixes: Vec<String>,
    },
    /// A host link created twice by one plan.
    #[error("link {name:?} is planned twice")]
    LinkPlannedTwice {
        /// The link.
        name: String,
    },
    /// A container-side interface name that Linux would not accept.
    #[error("container interface name {name:?} is not valid")]
    BadContainerIfname {
        /// The name.
        name: String,
    },
    /// A container-side interface created twice by one plan.
    #[error("container interface {name:?} is planned twice")]
    ContainerIfnamePlannedTwice {
        /// The name.
        name: String,
    },
    /// A macvlan on a parent link the operator did not grant.
    #[error("macvlan parent {parent:?} is not granted to the plugin (granted: {granted:?})")]
    MacvlanParentNotGranted {
        /// The parent link.
        parent: String,
        /// The parents granted.
        granted: Vec<String>,
    },
    /// A macvlan mode the kernel does not know.
    #[error("macvlan mode {mode:?} is not one of bridge, private, vepa, passthru")]
    BadMacvlanMode {
        /// The mode.
        mode: String,
    },
    /// An MTU outside 68-65535.
    #[error("MTU {mtu} of link {link} is out of range 68-65535")]
    MtuOutOfRange {
        /// The link.
        link: String,
        /// The MTU.
        mtu: u32,
    },
    /// A container-side step in a call that was handed no container (only
    /// `add` is).
    #[error("{what} acts in a container, but this call has none")]
    NoContainer {
        /// The step (`link veth…`, `address 10.0.0.2/24`, `route to default`).
        what: String,
    },
    /// A container-side step on an interface the plan does not create.
    #[error("{what}: container interface {link:?} is not one this plan creates")]
    UnplannedContainerIfname {
        /// The step.
        what: String,
        /// The interface.
        link: String,
    },
    /// An address, subnet or route outside the plugin's granted pools.
    #[error("{what} {net} is outside the plugin's granted address pools {:?}", strings(.pools))]
    OutsidePools {
        /// What it is (`address 10.0.0.2/24`, `the network's subnet`).
        what: String,
        /// The network (a single address as a /32).
        net: Ipv4Net,
        /// The pools granted.
        pools: Vec<Ipv4Net>,
    },
    /// A route that would replace the host's default route.
    #[error("{what}: a plugin may not set the host's default route")]
    HostDefaultRoute {
        /// The route (`route to default`).
        what: String,
    },
    /// A published port the host did not choose for this attachment.
    #[error(
        "published port {}:{}/{} -> {}:{} was not asked for",
        .port.host_ip.map(|i| i.to_string()).unwrap_or_default(),
        .port.host_port,
        .port.protocol.as_str(),
        .port.container_ip,
        .port.container_port
    )]
    PortNotAsked {
        /// The port.
        port: PortForward,
    },
    /// A host-side bandwidth limit on a link the plan does not create.
    #[error("bandwidth limit on {link}: not a link this plan creates")]
    ShapingOnUnplannedLink {
        /// The link.
        link: String,
    },
    /// A bandwidth limit of zero.
    #[error("bandwidth limit on {link} is 0")]
    ZeroBandwidth {
        /// The link.
        link: String,
    },
    /// A network's gateway outside its subnet (`create-network`).
    #[error("the gateway {gateway} is outside the subnet {subnet}")]
    GatewayOutsideSubnet {
        /// The gateway.
        gateway: Ipv4Addr,
        /// The subnet.
        subnet: Ipv4Net,
    },
    /// An attachment's address the plan does not give the container (`add`).
    #[error("the attachment's address {address} is not one the plan gives the container")]
    AddressNotPlanned {
        /// The address.
        address: Ipv4Net,
    },
    /// A published port that goes to another address than the container's
    /// (`add`).
    #[error(
        "published port {} goes to {}, not to the container's address {address}",
        .port.host_port,
        .port.container_ip
    )]
    PortToAnotherAddress {
        /// The port.
        port: PortForward,
        /// The container's address.
        address: Ipv4Addr,
    },
    /// An attachment's MAC address that is not a unicast MAC (`add`).
    #[error("the attachment's MAC address {mac:?} is not a unicast MAC")]
    NotUnicastMac {
        /// The plugin's text.
        mac: String,
    },
}

fn strings(pools: &[Ipv4Net]) -> Vec<String> {
    pools.iter().map(|p| p.to_string()).collect()
}
