//! For network plugins: the `network-plugin` world's types and the export
//! macro's trait. Address management and link names that every network
//! plugin needs live in [`crate::ipam`] and [`crate::links`], which compile
//! without this feature. The world's records compare with `==` (for plugins'
//! native tests), and [`Plan`] and [`Rules`] have an empty `Default`.
//!
//! ```
//! use berth_sdk::network::{AttachRequest, Attachment, Error, NetworkInfo, NetworkPlugin, NetworkSpec};
//!
//! pub struct Plugin;
//! impl NetworkPlugin for Plugin {
//!     fn create_network(spec: NetworkSpec) -> Result<NetworkInfo, Error> { todo!() }
//!     fn remove_network(spec: NetworkSpec) -> Result<(), Error> { Ok(()) }
//!     fn add(req: AttachRequest) -> Result<Attachment, Error> { todo!() }
//!     fn del(spec: NetworkSpec, container_id: String) -> Result<(), Error> { Ok(()) }
//!     fn check(spec: NetworkSpec, container_id: String) -> Result<(), Error> { Ok(()) }
//!     fn gc(spec: NetworkSpec, keep: Vec<String>) -> Result<Vec<String>, Error> { Ok(vec![]) }
//! }
//! berth_sdk::export_network!(Plugin);
//! ```

pub use crate::wit::common::berth::plugin::types::Error;
pub use crate::wit::network::exports::berth::plugin::network::{
    Address, AttachRequest, Attachment, Guest as NetworkPlugin, Link, LinkKind, Macvlan,
    NetworkInfo, NetworkSpec, Plan, PortForward, Route, Rules, Shaping, Side,
};

impl NetworkSpec {
    /// The value of driver option `key` (`-o key=value`); the last one wins.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Exports a type implementing [`NetworkPlugin`] as the plugin's `network` interface.
#[macro_export]
macro_rules! export_network {
    ($ty:ident) => {
        // Only a wasm component exports the ABI; native builds (tests) skip it.
        #[cfg(target_arch = "wasm32")]
        $crate::wit::network::__export_network_plugin!($ty with_types_in $crate::wit::network);
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_and_empty_plans() {
        let spec = NetworkSpec {
            name: "front".into(),
            id: "0".repeat(64),
            subnet: String::new(),
            gateway: String::new(),
            ip_range: String::new(),
            internal: false,
            options: vec![("mtu".into(), "1400".into()), ("mtu".into(), "9000".into())],
            taken: vec![],
        };
        assert_eq!(spec.option("mtu"), Some("9000"));
        assert_eq!(spec.option("com.docker.network.bridge.name"), None);
        let plan = Plan::default();
        assert!(plan.links.is_empty() && plan.rules.ports.is_empty());
        assert_eq!(plan, Plan::default());
    }
}
