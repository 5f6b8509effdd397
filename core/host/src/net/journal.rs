//! The host's side of network plugins' plans: the journal of what was
//! applied for each owner (a network or an attachment), applying a plan
//! (links, addresses, routes, shaping, then rules) and undoing it — on a
//! failure, on `del`, and in `gc` after a crash.
//!
//! The journal is the plan itself, written before anything is applied. Kernel
//! network state does not outlive the machine, so the journal only has to
//! outlive the daemon (a `kill -9`): the page cache suffices and no fsync is
//! paid on the attach path. Undo is idempotent (a missing object counts as
//! undone), and links are checked to be absent before a plan creates them,
//! so undoing a whole plan never removes something the plan did not make.

use std::collections::HashMap;
use std::os::fd::BorrowedFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::netlink::Netlink;
use super::nft::Firewall;
use super::plan::{LinkKind, Plan, Side, Step};
use super::NetError;

/// What the journal holds for one owner (a network or an attachment).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Journal {
    pub(crate) owner: String,
    pub(crate) plugin: String,
    pub(crate) network: String,
    pub(crate) container: Option<String>,
    pub(crate) plan: Plan,
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

pub(crate) fn owner_net(network_id: &str) -> String {
    format!("net-{network_id}")
}

pub(crate) fn owner_att(network_id: &str, container_id: &str) -> String {
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
        self.discard_partial_writes();
        for owner in self.inner.firewall.owners() {
            if !self.journal_path(&owner).exists() {
                self.inner.firewall.remove(&owner)?;
            }
        }
        self.inner.firewall.restore()
    }

    /// Removes the temporary files of journal and rule writes a crash cut
    /// short (written, then renamed over the real file): the rename never
    /// happened, so the file they were to replace still says what holds.
    /// Only the daemon that owns the root calls this, before it writes.
    fn discard_partial_writes(&self) {
        let dirs = [
            self.inner.journal.as_path(),
            self.inner.journal.parent().unwrap_or(&self.inner.journal),
        ];
        for dir in dirs {
            let Ok(rd) = std::fs::read_dir(dir) else {
                continue;
            };
            for e in rd.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "tmp") && p.is_file() {
                    tracing::debug!("removing {}, a write a crash cut short", p.display());
                    let _ = std::fs::remove_file(&p);
                }
            }
        }
    }

    pub(crate) async fn netlink(&self) -> Result<&Netlink, NetError> {
        self.inner
            .netlink
            .get_or_try_init(|| async { Netlink::new() })
            .await
    }

    pub(crate) fn lock(&self, network_id: &str) -> Arc<tokio::sync::Mutex<()>> {
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
            .map_err(|e| NetError::io(format!("writing {}", path.display()), &e))
    }

    pub(crate) fn read_journal(&self, owner: &str) -> Option<Journal> {
        let bytes = std::fs::read(self.journal_path(owner)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn remove_journal(&self, owner: &str) {
        let _ = std::fs::remove_file(self.journal_path(owner));
    }

    /// The container IDs with an attachment journal on `network_id`.
    pub(crate) fn attached(&self, network_id: &str) -> Vec<String> {
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
    pub(crate) async fn apply(
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
    pub(crate) async fn undo_owner_exited(&self, owner: &str) -> Result<(), NetError> {
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
    pub(crate) async fn undo_owner(
        &self,
        owner: &str,
        netns: Option<BorrowedFd<'_>>,
    ) -> Result<(), NetError> {
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

#[cfg(test)]
mod partial_write_tests {
    use super::Networking;

    #[test]
    fn a_write_a_crash_cut_short_is_discarded_and_the_real_files_stay() {
        let dir = tempfile::tempdir().unwrap();
        let net = Networking::new(dir.path(), "berth-test").unwrap();
        let journal = dir.path().join("journal");
        std::fs::write(journal.join("att-n-c.json"), b"{}").unwrap();
        std::fs::write(journal.join("att-n-c.tmp"), b"{").unwrap();
        std::fs::write(dir.path().join("rules.json"), b"{}").unwrap();
        std::fs::write(dir.path().join("rules.json.tmp"), b"{").unwrap();
        net.discard_partial_writes();
        assert!(!journal.join("att-n-c.tmp").exists());
        assert!(!dir.path().join("rules.json.tmp").exists());
        assert!(journal.join("att-n-c.json").exists());
        assert!(dir.path().join("rules.json").exists());
    }
}
