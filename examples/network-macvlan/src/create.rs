//! `create-network` and `remove-network`: a macvlan network is a subnet of
//! the LAN behind a host link (`-o parent=eth0`). Nothing is built on the
//! host for it — no bridge, no rules — so its plan is empty; the plugin only
//! records the network for `add`.

use std::path::Path;

use berth_sdk::error::context;
use berth_sdk::ipam::{self, IpamError, Leases, Pool};
use berth_sdk::links::check_ifname;
use berth_sdk::network::{Error, NetworkInfo, NetworkSpec, Plan};

use crate::state::{self, NetworkState};

/// The option naming the host link the macvlans sit on.
pub const PARENT_OPTION: &str = "parent";
/// The option choosing the macvlan mode.
pub const MODE_OPTION: &str = "macvlan_mode";
/// The macvlan modes the kernel offers; the first is the default.
pub const MODES: [&str; 4] = ["bridge", "private", "vepa", "passthru"];

/// Creates network `spec` under `root`, or returns what an earlier call for
/// the same ID decided.
pub fn create_network(root: &Path, spec: &NetworkSpec) -> Result<NetworkInfo, Error> {
    let state = match state::load(root, &spec.id)? {
        Some(existing) => existing,
        None => {
            let state = decide(spec)?;
            state::save(root, &state)?;
            state
        }
    };
    Ok(NetworkInfo {
        subnet: state.subnet.to_string(),
        gateway: state.gateway.to_string(),
        plan: Plan::default(),
    })
}

/// Forgets network `spec`.
pub fn remove_network(root: &Path, spec: &NetworkSpec) -> Result<(), Error> {
    state::remove(root, &spec.id)
}

/// The network's state as `spec` asks, before any container joins.
pub fn decide(spec: &NetworkSpec) -> Result<NetworkState, Error> {
    let name = &spec.name;
    let bad = |e: IpamError| context(e.into(), &format!("network {name}"));
    if spec.subnet.is_empty() {
        return Err(Error::Invalid(format!(
            "network {name}: a macvlan network needs --subnet: give the LAN's subnet \
             (e.g. --subnet 192.168.1.0/24) or a part of it the LAN's DHCP does not use"
        )));
    }
    let subnet = ipam::parse_subnet("subnet", &spec.subnet).map_err(bad)?;
    for t in &spec.taken {
        if let Ok(other) = ipam::parse_cidr("taken subnet", t) {
            if ipam::overlaps(&subnet, &other) {
                return Err(Error::AlreadyExists(format!(
                    "network {name}: subnet {subnet} overlaps {other}, which another network uses"
                )));
            }
        }
    }
    let gateway = match spec.gateway.as_str() {
        "" => ipam::first_host(&subnet),
        g => ipam::parse_addr("gateway", g).map_err(bad)?,
    };
    let ip_range = match spec.ip_range.as_str() {
        "" => None,
        r => Some(ipam::parse_subnet("ip-range", r).map_err(bad)?),
    };
    Pool::new(subnet, ip_range, Some(gateway)).map_err(bad)?;

    let parent = spec.option(PARENT_OPTION).ok_or_else(|| {
        Error::Invalid(format!(
            "network {name}: option {PARENT_OPTION} is required: name the host link the \
             containers share, e.g. -o {PARENT_OPTION}=eth0"
        ))
    })?;
    check_ifname(parent)
        .map_err(|e| context(e.into(), &format!("network {name}: option {PARENT_OPTION}")))?;
    let mode = spec.option(MODE_OPTION).unwrap_or(MODES[0]);
    if !MODES.contains(&mode) {
        return Err(Error::Invalid(format!(
            "network {name}: option {MODE_OPTION}={mode} is not a macvlan mode: want one of {}",
            MODES.join(", ")
        )));
    }
    Ok(NetworkState {
        name: name.clone(),
        id: spec.id.clone(),
        subnet,
        gateway,
        default_route: !spec.gateway.is_empty() && !spec.internal,
        ip_range,
        parent: parent.to_string(),
        mode: mode.to_string(),
        leases: Leases::default(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn spec(name: &str, subnet: &str, options: &[(&str, &str)]) -> NetworkSpec {
        NetworkSpec {
            name: name.into(),
            id: format!("{:0<64}", name.len()),
            subnet: subnet.into(),
            gateway: String::new(),
            ip_range: String::new(),
            internal: false,
            options: options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            taken: Vec::new(),
        }
    }

    fn invalid(r: Result<NetworkInfo, Error>) -> String {
        match r {
            Err(Error::Invalid(m)) => m,
            other => panic!("want invalid, got {other:?}"),
        }
    }

    #[test]
    fn records_the_network_and_plans_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let s = spec("lan", "10.99.0.0/24", &[("parent", "eth0")]);
        let info = create_network(tmp.path(), &s).unwrap();
        assert_eq!(info.subnet, "10.99.0.0/24");
        assert_eq!(info.gateway, "10.99.0.1");
        assert_eq!(info.plan, Plan::default());
        let st = state::load(tmp.path(), &s.id).unwrap().unwrap();
        assert_eq!((st.parent.as_str(), st.mode.as_str()), ("eth0", "bridge"));
        assert!(!st.default_route);
        // Again: the same answer.
        assert_eq!(create_network(tmp.path(), &s).unwrap(), info);
        remove_network(tmp.path(), &s).unwrap();
        assert!(state::load(tmp.path(), &s.id).unwrap().is_none());
    }

    #[test]
    fn a_given_gateway_and_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = spec(
            "lan",
            "10.99.0.0/24",
            &[("parent", "eth1"), ("macvlan_mode", "private")],
        );
        s.gateway = "10.99.0.254".into();
        s.ip_range = "10.99.0.128/25".into();
        assert_eq!(
            create_network(tmp.path(), &s).unwrap().gateway,
            "10.99.0.254"
        );
        let st = state::load(tmp.path(), &s.id).unwrap().unwrap();
        assert_eq!((st.parent.as_str(), st.mode.as_str()), ("eth1", "private"));
        assert!(st.default_route);
        assert_eq!(st.ip_range, Some("10.99.0.128/25".parse().unwrap()));
    }

    #[test]
    fn subnet_and_parent_are_required() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let m = invalid(create_network(
            root,
            &spec("lan", "", &[("parent", "eth0")]),
        ));
        assert!(m.contains("needs --subnet"), "{m}");
        let m = invalid(create_network(root, &spec("lan", "10.99.0.0/24", &[])));
        assert!(m.contains("option parent is required"), "{m}");
        let m = invalid(create_network(
            root,
            &spec("lan", "10.99.0.0/24", &[("parent", "eth0/1")]),
        ));
        assert!(m.contains("option parent") && m.contains("eth0/1"), "{m}");
        let m = invalid(create_network(
            root,
            &spec(
                "lan",
                "10.99.0.0/24",
                &[("parent", "eth0"), ("macvlan_mode", "802.1q")],
            ),
        ));
        assert!(m.contains("macvlan_mode=802.1q"), "{m}");
        let m = invalid(create_network(
            root,
            &spec("lan", "10.99.0.1/24", &[("parent", "eth0")]),
        ));
        assert!(m.contains("did you mean 10.99.0.0/24"), "{m}");
        // Nothing was recorded.
        assert!(!root.join("networks").exists());
    }

    #[test]
    fn a_subnet_must_not_overlap_another_network() {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = spec("lan", "10.99.0.0/24", &[("parent", "eth0")]);
        s.taken = vec!["10.0.0.0/8".into(), "fd00::/64".into()];
        match create_network(tmp.path(), &s) {
            Err(Error::AlreadyExists(m)) => assert!(m.contains("overlaps 10.0.0.0/8"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
