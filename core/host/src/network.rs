//! A loaded network plugin and its verbs (CNI's add / del / check / gc, plus
//! create-network / remove-network).
//!
//! The plugin plans; the host checks each plan against the plugin's grants,
//! writes it to a journal, applies it (netlink, nftables) and undoes it on
//! failure, on `del`, and in `gc` after a crash. Calls on one network are
//! serialized, so two `add`s never race on a lease.
//!
//! The journal and the applying and undoing live in `net/journal.rs`.

use std::os::fd::BorrowedFd;

use wasmtime::Store;

use crate::bindings::network::exports::berth::plugin::network::{self as wit, Guest};
use crate::bindings::network::NetworkPluginPre;
use crate::bindings::storage::berth::plugin::types::Error as WitError;
use crate::call::Shared;
use crate::error::HostError;
use crate::host::PluginInfo;
use crate::net::answer;
use crate::net::check::{self, Allowed};
use crate::net::journal::{owner_att, owner_net, Journal};
use crate::net::netlink::Netlink;
use crate::net::plan::{LinkKind, Plan, Side};
use crate::net::spec::wit_spec;
use crate::net::{NetError, PlanViolation};
use crate::state::State;

pub use crate::net::journal::Networking;
pub use crate::net::spec::{AttachRequest, Attachment, NetworkInfo, NetworkSpec};

/// A network plugin. Cheap to clone.
#[derive(Clone)]
pub struct NetworkPlugin {
    shared: Shared,
    pre: NetworkPluginPre<State>,
    net: Networking,
}

impl std::fmt::Debug for NetworkPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkPlugin")
            .field("info", &self.shared.info)
            .finish_non_exhaustive()
    }
}

impl NetworkPlugin {
    pub(crate) fn new(
        shared: Shared,
        pre: NetworkPluginPre<State>,
        net: Networking,
    ) -> NetworkPlugin {
        NetworkPlugin { shared, pre, net }
    }

    /// The plugin's name, root and where its compiled code came from.
    pub fn info(&self) -> &PluginInfo {
        &self.shared.info
    }

    /// The shared host side.
    pub fn networking(&self) -> &Networking {
        &self.net
    }

    async fn call<T>(
        &self,
        call: &str,
        f: impl AsyncFnOnce(&Guest, &mut Store<State>) -> wasmtime::Result<Result<T, WitError>>,
    ) -> Result<T, HostError> {
        let store = self.shared.store(call, None)?;
        let run = async |store: &mut Store<State>| {
            let b = self.pre.instantiate_async(&mut *store).await?;
            f(b.berth_plugin_network(), store).await
        };
        self.shared.run(call, store, None, run).await
    }

    fn denied(&self, call: &str, violation: PlanViolation) -> HostError {
        HostError::Denied {
            plugin: self.shared.plugin.to_string(),
            call: call.to_owned(),
            what: Box::new(violation.into()),
        }
    }

    fn net_err(&self, call: &str, error: NetError) -> HostError {
        HostError::Network {
            plugin: self.shared.plugin.to_string(),
            call: call.to_owned(),
            error,
        }
    }

    /// Parses and checks a plan the plugin returned.
    fn checked(&self, call: &str, p: &wit::Plan, allowed: &Allowed<'_>) -> Result<Plan, HostError> {
        let plan = check::from_wit(p).map_err(|e| self.denied(call, e))?;
        check::check(&plan, &self.shared.grants.network, allowed)
            .map_err(|e| self.denied(call, e))?;
        Ok(plan)
    }

    /// Creates a network: the plugin chooses, the host builds its bridge and
    /// rules. Creating a network that exists (same ID) again is a no-op that
    /// returns the same answer.
    pub async fn create_network(&self, spec: &NetworkSpec) -> Result<NetworkInfo, HostError> {
        let call = format!("create-network {}", spec.name);
        let lock = self.net.lock(&spec.id);
        let _g = lock.lock().await;
        let ws = wit_spec(spec);
        let info = self
            .call(&call, async |g, s| g.call_create_network(s, &ws).await)
            .await?;
        let undo_plugin = async || {
            let _ = self
                .call(&call, async |g, s| g.call_remove_network(s, &ws).await)
                .await;
        };
        let grants = &self.shared.grants.network;
        let checked = answer::network(&info, grants)
            .map_err(|m| self.denied(&call, m))
            .and_then(|sg| Ok((sg, self.checked(&call, &info.plan, &Allowed::default())?)));
        let ((subnet, gateway), plan) = match checked {
            Ok(v) => v,
            Err(e) => {
                undo_plugin().await;
                return Err(e);
            }
        };
        let owner = owner_net(&spec.id);
        let links = plan.links.iter().map(|l| l.name.clone()).collect();
        if let Some(j) = self.net.read_journal(&owner) {
            if j.plan == plan {
                // Already built (a restart): rebuild only what is missing.
                let nl = self
                    .net
                    .netlink()
                    .await
                    .map_err(|e| self.net_err(&call, e))?;
                let mut intact = true;
                for l in &plan.links {
                    intact &= nl
                        .link_exists(&l.name)
                        .await
                        .map_err(|e| self.net_err(&call, e))?;
                }
                if intact {
                    return Ok(NetworkInfo {
                        subnet,
                        gateway,
                        links,
                    });
                }
            }
            self.net
                .undo_owner(&owner, None)
                .await
                .map_err(|e| self.net_err(&call, e))?;
        }
        let j = Journal {
            owner: owner.clone(),
            plugin: self.shared.plugin.to_string(),
            network: spec.id.clone(),
            container: None,
            plan,
        };
        if let Err(e) = self.net.apply(&j, None).await {
            undo_plugin().await;
            return Err(self.net_err(&call, e));
        }
        Ok(NetworkInfo {
            subnet,
            gateway,
            links,
        })
    }

    /// Removes a network: undoes its plan and lets the plugin forget it.
    /// The caller makes sure no container is attached.
    pub async fn remove_network(&self, spec: &NetworkSpec) -> Result<(), HostError> {
        let call = format!("remove-network {}", spec.name);
        let lock = self.net.lock(&spec.id);
        let _g = lock.lock().await;
        self.net
            .undo_owner(&owner_net(&spec.id), None)
            .await
            .map_err(|e| self.net_err(&call, e))?;
        let ws = wit_spec(spec);
        self.call(&call, async |g, s| g.call_remove_network(s, &ws).await)
            .await
    }

    /// Attaches the container whose network namespace is `netns`. On any
    /// failure — the plugin's error or trap, a plan outside the grants, a
    /// step the kernel refuses — nothing is left: no link, rule or lease.
    pub async fn add(
        &self,
        req: &AttachRequest,
        netns: BorrowedFd<'_>,
    ) -> Result<Attachment, HostError> {
        let short = &req.container_id[..req.container_id.len().min(12)];
        let call = format!("add {short} to {}", req.network.name);
        let lock = self.net.lock(&req.network.id);
        let _g = lock.lock().await;
        let ws = wit_spec(&req.network);
        let wreq = wit::AttachRequest {
            network: ws.clone(),
            container_id: req.container_id.clone(),
            ifname: req.ifname.clone(),
            address: req.address.map(|a| a.to_string()).unwrap_or_default(),
            ports: req.ports.iter().map(check::port_to_wit).collect(),
            bandwidth: req.bandwidth,
        };
        let release = async || {
            let _ = self
                .call(&call, async |g, s| {
                    g.call_del(s, &ws, &req.container_id).await
                })
                .await;
        };
        let att = match self
            .call(&call, async |g, s| g.call_add(s, &wreq).await)
            .await
        {
            Ok(a) => a,
            Err(e) => {
                // A plugin that trapped halfway may have written a lease.
                if e.plugin_error_kind().is_none() {
                    release().await;
                }
                return Err(e);
            }
        };
        let allowed = Allowed {
            container: true,
            ports: &req.ports,
        };
        let parsed = self
            .checked(&call, &att.plan, &allowed)
            .and_then(|mut plan| {
                if !req.default_route {
                    plan.routes
                        .retain(|r| !(r.side == Side::Container && r.destination.is_none()));
                }
                let (address, gateway) =
                    answer::attachment(&att, &plan, &self.shared.grants.network)
                        .map_err(|e| self.denied(&call, e))?;
                Ok((plan, address, gateway))
            });
        let (plan, address, gateway) = match parsed {
            Ok(p) => p,
            Err(e) => {
                release().await;
                return Err(e);
            }
        };
        let owner = owner_att(&req.network.id, &req.container_id);
        // A leftover from a crash under the same key is undone first.
        if self.net.read_journal(&owner).is_some() {
            let _ = self.net.undo_owner(&owner, None).await;
        }
        let host_links = plan.links.iter().map(|l| l.name.clone()).collect();
        // The MAC goes on the container's interface that carries the address.
        let mac = match answer::mac(&att.mac, &plan, address) {
            Ok(mac) => mac,
            Err(e) => {
                release().await;
                return Err(self.denied(&call, e));
            }
        };
        let j = Journal {
            owner,
            plugin: self.shared.plugin.to_string(),
            network: req.network.id.clone(),
            container: Some(req.container_id.clone()),
            plan,
        };
        let mut applied = self.net.apply(&j, Some(netns)).await;
        if let (Ok(()), Some((link, m))) = (&applied, &mac) {
            applied = match Netlink::in_netns(netns) {
                Ok(nl) => nl.set_mac(link, *m).await,
                Err(e) => Err(e),
            };
            if applied.is_err() {
                let _ = self.net.undo_owner(&j.owner, Some(netns)).await;
            }
        }
        if let Err(e) = applied {
            release().await;
            return Err(self.net_err(&call, e));
        }
        Ok(Attachment {
            address,
            gateway,
            mac: att.mac,
            host_links,
        })
    }

    /// Detaches a container: undoes what `add` applied and releases its
    /// lease. Safe to call any number of times, also after a failed `add`.
    pub async fn del(
        &self,
        spec: &NetworkSpec,
        container_id: &str,
        netns: Option<BorrowedFd<'_>>,
    ) -> Result<(), HostError> {
        let short = &container_id[..container_id.len().min(12)];
        let call = format!("del {short} from {}", spec.name);
        let lock = self.net.lock(&spec.id);
        let _g = lock.lock().await;
        self.net
            .undo_owner(&owner_att(&spec.id, container_id), netns)
            .await
            .map_err(|e| self.net_err(&call, e))?;
        let ws = wit_spec(spec);
        self.call(&call, async |g, s| g.call_del(s, &ws, container_id).await)
            .await
    }

    /// Detaches a container that has ended: as [`NetworkPlugin::del`], but
    /// its host links are deleted in the background (an attach that needs
    /// the same link name waits for it; [`Networking::settle`] waits for all).
    pub async fn del_exited(
        &self,
        spec: &NetworkSpec,
        container_id: &str,
    ) -> Result<(), HostError> {
        let short = &container_id[..container_id.len().min(12)];
        let call = format!("del {short} from {}", spec.name);
        let lock = self.net.lock(&spec.id);
        let _g = lock.lock().await;
        self.net
            .undo_owner_exited(&owner_att(&spec.id, container_id))
            .await
            .map_err(|e| self.net_err(&call, e))?;
        let ws = wit_spec(spec);
        self.call(&call, async |g, s| g.call_del(s, &ws, container_id).await)
            .await
    }

    /// Checks that the plugin still holds the container's lease and that
    /// its host links exist.
    pub async fn check(&self, spec: &NetworkSpec, container_id: &str) -> Result<(), HostError> {
        let short = &container_id[..container_id.len().min(12)];
        let call = format!("check {short} on {}", spec.name);
        let lock = self.net.lock(&spec.id);
        let _g = lock.lock().await;
        let ws = wit_spec(spec);
        self.call(&call, async |g, s| g.call_check(s, &ws, container_id).await)
            .await?;
        let Some(j) = self.net.read_journal(&owner_att(&spec.id, container_id)) else {
            return Err(self.net_err(
                &call,
                NetError::new("reading the journal", "no attachment recorded"),
            ));
        };
        let nl = self
            .net
            .netlink()
            .await
            .map_err(|e| self.net_err(&call, e))?;
        // A macvlan was moved into the container: only host links are checked.
        for l in j
            .plan
            .links
            .iter()
            .filter(|l| !matches!(l.kind, LinkKind::Macvlan { .. }))
        {
            if !nl
                .link_exists(&l.name)
                .await
                .map_err(|e| self.net_err(&call, e))?
            {
                return Err(
                    self.net_err(&call, NetError::new(format!("link {}", l.name), "missing"))
                );
            }
        }
        Ok(())
    }

    /// Removes every attachment to `spec` whose container is not in `keep`:
    /// what the host applied (from the journal) and the plugin's leases.
    /// Returns the container IDs released.
    pub async fn gc(&self, spec: &NetworkSpec, keep: &[String]) -> Result<Vec<String>, HostError> {
        let call = format!("gc {}", spec.name);
        let lock = self.net.lock(&spec.id);
        let _g = lock.lock().await;
        let mut gone = Vec::new();
        for cid in self.net.attached(&spec.id) {
            if keep.contains(&cid) {
                continue;
            }
            self.net
                .undo_owner(&owner_att(&spec.id, &cid), None)
                .await
                .map_err(|e| self.net_err(&call, e))?;
            gone.push(cid);
        }
        let ws = wit_spec(spec);
        let released = self
            .call(&call, async |g, s| g.call_gc(s, &ws, keep).await)
            .await?;
        for r in released {
            if !gone.contains(&r) {
                gone.push(r);
            }
        }
        Ok(gone)
    }
}
