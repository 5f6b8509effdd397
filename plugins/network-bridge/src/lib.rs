//! network-bridge: berth's default network plugin, docker's `bridge` driver.
//! Each network is a Linux bridge holding the gateway address, with NAT to
//! the outside (or isolation for `--internal`); each container joins through
//! a veth pair and gets an IPv4 address from the network's subnet.
//!
//! The plugin only plans: the host creates the links, addresses, routes and
//! nftables rules. What the plugin keeps is its IPAM state, one JSON file per
//! network under its root ([`state`]), which the host preopens at `/`.
//! [`create`] and [`attach`] hold the verbs as functions over that root, so
//! they unit-test natively.

pub mod attach;
pub mod create;
pub mod state;

use std::path::Path;

use berth_sdk::log;
use berth_sdk::network::{
    AttachRequest, Attachment, Error, NetworkInfo, NetworkPlugin, NetworkSpec,
};

/// Where the plugin root is visible to `std::fs`.
const ROOT: &str = "/";

/// The exported plugin.
#[derive(Debug)]
pub struct Plugin;

impl NetworkPlugin for Plugin {
    fn create_network(spec: NetworkSpec) -> Result<NetworkInfo, Error> {
        log::debug(&format!("create-network {} ({})", spec.name, spec.id));
        create::create_network(Path::new(ROOT), &spec)
    }

    fn remove_network(spec: NetworkSpec) -> Result<(), Error> {
        log::debug(&format!("remove-network {} ({})", spec.name, spec.id));
        create::remove_network(Path::new(ROOT), &spec)
    }

    fn add(req: AttachRequest) -> Result<Attachment, Error> {
        log::debug(&format!(
            "add container {} to network {} as {}",
            req.container_id, req.network.name, req.ifname
        ));
        attach::add(Path::new(ROOT), &req)
    }

    fn del(spec: NetworkSpec, container_id: String) -> Result<(), Error> {
        log::debug(&format!(
            "del container {container_id} from network {}",
            spec.name
        ));
        attach::del(Path::new(ROOT), &spec, &container_id)
    }

    fn check(spec: NetworkSpec, container_id: String) -> Result<(), Error> {
        log::debug(&format!(
            "check container {container_id} on network {}",
            spec.name
        ));
        attach::check(Path::new(ROOT), &spec, &container_id)
    }

    fn gc(spec: NetworkSpec, keep: Vec<String>) -> Result<Vec<String>, Error> {
        log::debug(&format!(
            "gc network {} keeping {} containers",
            spec.name,
            keep.len()
        ));
        attach::gc(Path::new(ROOT), &spec, &keep)
    }
}

berth_sdk::export_network!(Plugin);
