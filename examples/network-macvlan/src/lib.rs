//! network-macvlan: an example berth network plugin, docker's `macvlan`
//! driver. Each container gets a macvlan link on a host link (the network's
//! `-o parent=eth0`) and an IPv4 address of the LAN's subnet, so it appears
//! on the LAN as a machine of its own; the host builds no bridge and no
//! rules for it.
//!
//! Like every network plugin, it only plans: the host checks each plan
//! against the plugin's grants (`link-prefixes`, `pools`, `macvlan-parents`
//! in berth.toml) and creates the links, addresses and routes itself. What
//! the plugin keeps is its address leases, one JSON file per network under
//! its root ([`state`]), which the host preopens at `/`. The verbs are plain
//! functions over that root in [`create`] and [`attach`], so they unit-test
//! natively with `cargo test`.

pub mod attach;
pub mod create;
pub mod state;

use std::path::Path;

use berth_sdk::log;
use berth_sdk::network::{
    AttachRequest, Attachment, Error, NetworkInfo, NetworkPlugin, NetworkSpec,
};

/// Where the plugin's root is visible to `std::fs`.
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
        if !req.ports.is_empty() {
            // As docker: the container is reachable on the LAN at its own
            // address, so there is nothing to publish.
            log::warn(&format!(
                "container {}: published ports are ignored on macvlan network {}; \
                 reach the container at its own address",
                req.container_id, req.network.name
            ));
        }
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
