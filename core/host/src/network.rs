//! A loaded network plugin and its verbs (CNI's add / del / check / gc, plus
//! create-network / remove-network).
//!
//! The plugin plans; the host checks each plan against the plugin's grants,
//! writes it to a journal, applies it (netlink, nftables) and undoes it on
//! failure, on `del`, and in `gc` after a crash. Calls on one network are
//! serialized, so two `add`s never race on a lease.
//!
//! The journal is the plan itself, written before anything is applied. Kernel
//! network state does not outlive the machine, so the journal only has to
//! outlive the daemon (a `kill -9`): the page cache suffices and no fsync is
//! paid on the attach path. Undo is idempotent (a missing object counts as
//! undone), and links are checked to be absent before a plan creates them,
//! so undoing a whole plan never removes something the plan did not make.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::os::fd::BorrowedFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use ipnet::Ipv4Net;
use wasmtime::Store;

use crate::bindings::network::exports::berth::plugin::network::{self as wit, Guest};
use crate::bindings::network::NetworkPluginPre;
use crate::bindings::storage::berth::plugin::types::Error as WitError;
use crate::call::Shared;
use crate::error::HostError;
use crate::host::PluginInfo;
use crate::net::apply::Netlink;
use crate::net::check::{self, Allowed};
use crate::net::nft::Firewall;
use crate::net::plan::{LinkKind, Plan, PortForward, Side, Step};
use crate::net::{NetError, PlanViolation};
use crate::state::State;

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

/// What the journal holds for one owner (a network or an attachment).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Journal {
    owner: String,
    plugin: String,
    network: String,
    container: Option<String>,
    plan: Plan,
}

/// The host side of networking shared by every network plugin: the journal
/// directory, the firewall table and the netlink connection.
#[derive(Clone)]
pub struct Networking {
    inner: Arc<Inner>,
}

struct Inner {
    journal: PathBuf,
    firewall: Firewall,
    netlink: tokio::sync::OnceCell<Netlink>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Host links being deleted in the background (name → done).
    deleting: Mutex<HashMap<String, tokio::sync::watch::Receiver<bool>>>,
}

impl std::fmt::Debug for Networking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Networking")
            .field("journal", &self.inner.journal)
            .finish_non_exhaustive()
    }
}

fn owner_net(network_id: &str) -> String {
    format!("net-{network_id}")
}

fn owner_att(network_id: &str, container_id: &str) -> String {
    format!("att-{network_id}-{container_id}")
}

impl Networking {
    /// Networking whose journal and firewall state live under `dir`, with
    /// its rules in the nftables table `ip <table>`.
    pub fn new(dir: impl Into<PathBuf>, table: &str) -> std::io::Result<Networking> {
        let dir = dir.into();
        let journal = dir.join("journal");
        std::fs::create_dir_all(&journal)?;
        Ok(Networking {
            inner: Arc::new(Inner {
                journal,
                firewall: Firewall::new(dir.join("rules.json"), table),
                netlink: tokio::sync::OnceCell::new(),
                locks: Mutex::new(HashMap::new()),
                deleting: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Re-applies the firewall rules recorded (after a daemon restart).
    /// Rules whose owner has no journal (nothing applied them any more)
    /// are dropped first.
    pub fn restore_rules(&self) -> Result<(), NetError> {
        for owner in self.inner.firewall.owners() {
            if !self.journal_path(&owner).exists() {
                self.inner.firewall.remove(&owner)?;
            }
        }
        self.inner.firewall.restore()
    }

    async fn netlink(&self) -> Result<&Netlink, NetError> {
        self.inner
            .netlink
            .get_or_try_init(|| async { Netlink::new() })
            .await
    }

    fn lock(&self, network_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.inner
            .locks
            .lock()
            .expect("network locks")
            .entry(network_id.to_owned())
            .or_default()
            .clone()
    }

    fn journal_path(&self, owner: &str) -> PathBuf {
        self.inner.journal.join(format!("{owner}.json"))
    }

    fn write_journal(&self, j: &Journal) -> Result<(), NetError> {
        let path = self.journal_path(&j.owner);
        let tmp = path.with_extension("tmp");
        let bytes = serde_json::to_vec(j).map_err(|e| NetError::new("encoding the journal", e))?;
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| NetError::new(format!("writing {}", path.display()), e))
    }

    fn read_journal(&self, owner: &str) -> Option<Journal> {
        let bytes = std::fs::read(self.journal_path(owner)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn remove_journal(&self, owner: &str) {
        let _ = std::fs::remove_file(self.journal_path(owner));
    }

    /// The container IDs with an attachment journal on `network_id`.
    fn attached(&self, network_id: &str) -> Vec<String> {
        let prefix = format!("att-{network_id}-");
        let Ok(rd) = std::fs::read_dir(&self.inner.journal) else {
            return Vec::new();
        };
        rd.flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_prefix(&prefix)?
                    .strip_suffix(".json")
                    .map(str::to_owned)
            })
            .collect()
    }

    /// Fails if a link the plan creates on the host already exists (so an
    /// undo of the plan can never remove a link that was not ours).
    async fn check_absent(&self, plan: &Plan) -> Result<(), NetError> {
        let nl = self.netlink().await?;
        for l in &plan.links {
            // A link of the same name (the same container, attached again)
            // may still be going away in the background.
            self.deleted(&l.name).await;
            if nl.link_exists(&l.name).await? {
                return Err(NetError::new(
                    format!("creating link {}", l.name),
                    "a link of that name already exists on the host",
                ));
            }
        }
        Ok(())
    }

    /// Applies `plan` for `owner`: journal, links/addresses/routes/shaping,
    /// then rules. On failure, undoes what was done and returns the error.
    async fn apply(
        &self,
        journal: &Journal,
        netns: Option<BorrowedFd<'_>>,
    ) -> Result<(), NetError> {
        self.check_absent(&journal.plan).await?;
        self.write_journal(journal)?;
        let nl = self.netlink().await?;
        let mut steps: Vec<Step> = Vec::new();
        let mut record = |s: Step| {
            steps.push(s);
            Ok(())
        };
        let mut r = nl.apply(&journal.plan, netns, &mut record).await;
        if r.is_ok() && !journal.plan.rules.is_empty() {
            steps.push(Step::Rules {
                owner: journal.owner.clone(),
            });
            r = self.inner.firewall.set(&journal.owner, &journal.plan.rules);
        }
        if let Err(e) = r {
            self.undo_steps(&steps, netns).await;
            self.remove_journal(&journal.owner);
            return Err(e);
        }
        Ok(())
    }

    /// Undoes steps in reverse; failures are logged (each step is tried).
    async fn undo_steps(&self, steps: &[Step], netns: Option<BorrowedFd<'_>>) -> Option<NetError> {
        let mut first = None;
        for s in steps.iter().rev() {
            let r = match s {
                Step::Rules { owner } => self.inner.firewall.remove(owner),
                s => match self.netlink().await {
                    Ok(nl) => nl.undo(s, netns).await,
                    Err(e) => Err(e),
                },
            };
            if let Err(e) = r {
                tracing::warn!("undoing {s:?}: {e}");
                first.get_or_insert(e);
            }
        }
        first
    }

    /// Waits until a background deletion of link `name`, if any, is done.
    async fn deleted(&self, name: &str) {
        let rx = self
            .inner
            .deleting
            .lock()
            .expect("deleting")
            .get(name)
            .cloned();
        if let Some(mut rx) = rx {
            let _ = rx.wait_for(|done| *done).await;
            let mut d = self.inner.deleting.lock().expect("deleting");
            if d.get(name).is_some_and(|r| *r.borrow()) {
                d.remove(name);
            }
        }
    }

    /// Waits for every background link deletion (before the daemon exits).
    pub async fn settle(&self) {
        let names: Vec<String> = self
            .inner
            .deleting
            .lock()
            .expect("deleting")
            .keys()
            .cloned()
            .collect();
        for n in names {
            self.deleted(&n).await;
        }
    }

    /// Deletes host links in the background: deleting a veth waits for the
    /// kernel's RCU grace periods (~20 ms) and nothing needs to wait for it
    /// once the container is gone, except a new link of the same name.
    fn delete_links_later(&self, names: Vec<String>) {
        for name in names {
            let (tx, rx) = tokio::sync::watch::channel(false);
            self.inner
                .deleting
                .lock()
                .expect("deleting")
                .insert(name.clone(), rx);
            let me = self.clone();
            tokio::spawn(async move {
                let step = Step::Link { name: name.clone() };
                match me.netlink().await {
                    Ok(nl) => {
                        if let Err(e) = nl.undo(&step, None).await {
                            tracing::warn!("deleting link {name}: {e}");
                        }
                    }
                    Err(e) => tracing::warn!("deleting link {name}: {e}"),
                }
                let _ = tx.send(true);
                // Forget the finished deletion (a newer one of the same name
                // has not finished, so it stays).
                let mut d = me.inner.deleting.lock().expect("deleting");
                if d.get(&name).is_some_and(|r| *r.borrow()) {
                    d.remove(&name);
                }
            });
        }
    }

    /// Undoes an attachment of a container that is gone: its host links go
    /// in the background, everything else (rules, journal) now.
    async fn undo_owner_exited(&self, owner: &str) -> Result<(), NetError> {
        let Some(j) = self.read_journal(owner) else {
            let _ = self.inner.firewall.remove(owner);
            return Ok(());
        };
        let (links, rest): (Vec<Step>, Vec<Step>) = steps_of(&j.plan, owner)
            .into_iter()
            .partition(|s| matches!(s, Step::Link { .. }));
        if let Some(e) = self.undo_steps(&rest, None).await {
            return Err(e);
        }
        self.delete_links_later(
            links
                .into_iter()
                .filter_map(|s| match s {
                    Step::Link { name } => Some(name),
                    _ => None,
                })
                .collect(),
        );
        self.remove_journal(owner);
        Ok(())
    }

    /// Undoes everything a journaled plan may have done, and drops the journal.
    async fn undo_owner(&self, owner: &str, netns: Option<BorrowedFd<'_>>) -> Result<(), NetError> {
        let Some(j) = self.read_journal(owner) else {
            // Rules may outlive a lost journal only if the journal was never
            // written, which happens before any rule; still, be thorough.
            let _ = self.inner.firewall.remove(owner);
            return Ok(());
        };
        let steps = steps_of(&j.plan, owner);
        if let Some(e) = self.undo_steps(&steps, netns).await {
            return Err(e);
        }
        self.remove_journal(owner);
        Ok(())
    }
}

/// Every step a plan may have taken, in the order `apply` takes them.
fn steps_of(plan: &Plan, owner: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    for l in &plan.links {
        steps.push(Step::Link {
            name: l.name.clone(),
        });
        if let LinkKind::Macvlan { container_name, .. } = &l.kind {
            steps.push(Step::ContainerLink {
                name: container_name.clone(),
            });
        }
    }
    for a in plan.addresses.iter().filter(|a| a.side == Side::Host) {
        if !plan.links.iter().any(|l| l.name == a.link) {
            steps.push(Step::Address {
                link: a.link.clone(),
                addr: a.addr,
            });
        }
    }
    for r in plan.routes.iter().filter(|r| r.side == Side::Host) {
        steps.push(Step::Route { route: r.clone() });
    }
    for s in &plan.shaping {
        steps.push(Step::Shaping {
            side: s.side,
            link: s.link.clone(),
        });
    }
    if !plan.rules.is_empty() {
        steps.push(Step::Rules {
            owner: owner.to_owned(),
        });
    }
    steps
}

fn wit_spec(s: &NetworkSpec) -> wit::NetworkSpec {
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
            what: violation.to_string(),
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
        let checked = parsed_ok(&info)
            .and_then(|(subnet, gateway)| {
                check::check_net_in_pools(&subnet, grants, "the network's subnet")?;
                if let Some(gw) = gateway.filter(|g| !subnet.contains(g)) {
                    return Err(PlanViolation::GatewayOutsideSubnet {
                        gateway: gw,
                        subnet,
                    });
                }
                Ok((subnet, gateway))
            })
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
                let address = check::parse_cidr(&att.address, "attachment address")
                    .map_err(|e| self.denied(&call, e))?;
                let gateway = if att.gateway.is_empty() {
                    None
                } else {
                    Some(
                        check::parse_ip(&att.gateway, "gateway")
                            .map_err(|e| self.denied(&call, e))?,
                    )
                };
                if !plan
                    .addresses
                    .iter()
                    .any(|a| a.side == Side::Container && a.addr == address)
                {
                    return Err(self.denied(&call, PlanViolation::AddressNotPlanned { address }));
                }
                if let Some(gw) = gateway {
                    check::check_in_pools(
                        gw,
                        &self.shared.grants.network,
                        "the attachment's gateway",
                    )
                    .map_err(|e| self.denied(&call, e))?;
                }
                if let Some(p) = plan
                    .rules
                    .ports
                    .iter()
                    .find(|p| p.container_ip != address.addr())
                {
                    return Err(self.denied(
                        &call,
                        PlanViolation::PortToAnotherAddress {
                            port: p.clone(),
                            address: address.addr(),
                        },
                    ));
                }
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
        let mac = if att.mac.is_empty() {
            None
        } else {
            let link = plan
                .addresses
                .iter()
                .find(|a| a.side == Side::Container && a.addr == address)
                .map(|a| a.link.clone());
            match (parse_mac(&att.mac), link) {
                (Some(m), Some(l)) => Some((l, m)),
                _ => {
                    release().await;
                    return Err(self.denied(
                        &call,
                        PlanViolation::NotUnicastMac {
                            mac: att.mac.clone(),
                        },
                    ));
                }
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

/// `02:42:ac:11:00:02` → bytes, if it is a unicast MAC.
fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in out.iter_mut() {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    (parts.next().is_none() && out[0] & 1 == 0 && out != [0; 6]).then_some(out)
}

/// The subnet and gateway of a `create-network` answer.
fn parsed_ok(info: &wit::NetworkInfo) -> Result<(Ipv4Net, Option<Ipv4Addr>), PlanViolation> {
    let subnet = check::parse_cidr(&info.subnet, "subnet")?.trunc();
    let gateway = if info.gateway.is_empty() {
        None
    } else {
        Some(check::parse_ip(&info.gateway, "gateway")?)
    };
    Ok((subnet, gateway))
}
