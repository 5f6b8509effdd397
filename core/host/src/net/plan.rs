//! A network plugin's plan in the host's own types: what the host checks
//! against the plugin's grants and then applies (the WIT `plan`, parsed).

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// Which network namespace a step acts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The daemon's own namespace.
    Host,
    /// The container's namespace (handed to the host for one call).
    Container,
}

/// The kind of a link the host creates.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkKind {
    /// A Linux bridge.
    Bridge,
    /// A veth pair: the link's name stays on the host, `peer` is the name of
    /// the end created inside the container's namespace.
    Veth {
        /// The container end's name (`eth0`).
        peer: String,
    },
    /// A macvlan on `parent`, moved into the container and renamed there.
    Macvlan {
        /// The host link it sits on.
        parent: String,
        /// `bridge`, `private`, `vepa` or `passthru`.
        mode: String,
        /// Its name inside the container.
        container_name: String,
    },
}

/// A link to create (in the host's namespace) and bring up.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Link {
    /// Its name on the host.
    pub name: String,
    /// What it is.
    pub kind: LinkKind,
    /// MTU; 0 keeps the kernel's default.
    pub mtu: u32,
    /// The bridge the host-side link is enslaved to.
    pub master: Option<String>,
}

/// An address on a link.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Address {
    /// Where the link is.
    pub side: Side,
    /// The link's name there.
    pub link: String,
    /// Address and prefix length.
    pub addr: Ipv4Net,
}

/// A route.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Route {
    /// Where it is added.
    pub side: Side,
    /// The destination; `None` is the default route.
    pub destination: Option<Ipv4Net>,
    /// The next hop; `None` for a route straight out of `link`.
    pub gateway: Option<Ipv4Addr>,
    /// The link it leaves through.
    pub link: String,
}

/// A transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// `tcp` or `udp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// A host port forwarded to a container's port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct PortForward {
    /// TCP or UDP.
    pub protocol: Protocol,
    /// The host address it listens on; `None` for every address.
    pub host_ip: Option<Ipv4Addr>,
    /// The host port.
    pub host_port: u16,
    /// The container's address.
    pub container_ip: Ipv4Addr,
    /// The container's port.
    pub container_port: u16,
}

/// The firewall rules of one owner (a network or an attachment).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rules {
    /// Masquerade traffic from the subnet leaving through any link but the bridge.
    pub masquerade: Vec<(Ipv4Net, String)>,
    /// Bridges whose traffic is forwarded to and from other links.
    pub forward: Vec<String>,
    /// Bridges whose traffic must not leave them.
    pub isolate: Vec<String>,
    /// Published ports (DNAT).
    pub ports: Vec<PortForward>,
}

impl Rules {
    /// Whether there is nothing to apply.
    pub fn is_empty(&self) -> bool {
        self.masquerade.is_empty()
            && self.forward.is_empty()
            && self.isolate.is_empty()
            && self.ports.is_empty()
    }
}

/// A token-bucket limit on a link's egress.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shaping {
    /// Where the link is.
    pub side: Side,
    /// The link's name there.
    pub link: String,
    /// Bits per second.
    pub rate: u64,
}

/// Everything the host does for one verb, in order: links, addresses,
/// routes, rules, shaping.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    /// Links to create.
    pub links: Vec<Link>,
    /// Addresses to add.
    pub addresses: Vec<Address>,
    /// Routes to add.
    pub routes: Vec<Route>,
    /// Firewall rules.
    pub rules: Rules,
    /// Bandwidth limits.
    pub shaping: Vec<Shaping>,
}

/// One side effect the host performed, as the journal records it (written
/// before the step is taken, so a crash in between leaves a record of a
/// step that may or may not have happened; undoing is idempotent).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Step {
    /// A link created in the host's namespace (deleting it also deletes a
    /// veth's peer in the container).
    Link {
        /// Its name.
        name: String,
    },
    /// A link that ended up inside the container's namespace (a moved
    /// macvlan); gone with the namespace.
    ContainerLink {
        /// Its name there.
        name: String,
    },
    /// An address added to a host link the plan did not create.
    Address {
        /// The link.
        link: String,
        /// The address.
        addr: Ipv4Net,
    },
    /// A route added in the host's namespace.
    Route {
        /// The route.
        route: Route,
    },
    /// Firewall rules installed under `owner`.
    Rules {
        /// The owner (network or attachment key).
        owner: String,
    },
    /// A qdisc installed on a link.
    Shaping {
        /// Where.
        side: Side,
        /// The link.
        link: String,
    },
}
