//! Reconciling records with the machine when the daemon starts: running
//! monitors adopted, exits that happened while no daemon ran recorded,
//! half-made containers removed, restart policies applied, network leftovers
//! released.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::config::Restart;
use super::record::{Entry, Record, Status};
use super::Containers;
use crate::error::{EngineError, Result};

impl Containers {
    /// Reads the records without acting on them (the daemonless mode).
    pub(super) fn read_records(&self) -> Result<()> {
        let sock = self.root.join("sock");
        std::fs::create_dir_all(&sock).map_err(|e| EngineError::io("creating", &sock, e))?;
        let entries =
            std::fs::read_dir(&self.dir).map_err(|e| EngineError::io("listing", &self.dir, e))?;
        let mut t = self.table.lock().expect("table lock");
        for d in entries.flatten() {
            if let Some(rec) = std::fs::read(d.path().join("container.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<Record>(&b).ok())
            {
                t.insert(rec.id.clone(), Entry::new(rec));
            }
        }
        Ok(())
    }

    /// Brings the records in line with the machine after a (re)start.
    pub(super) async fn reconcile(self: &Arc<Self>) -> Result<()> {
        let sock = self.root.join("sock");
        std::fs::create_dir_all(&sock).map_err(|e| EngineError::io("creating", &sock, e))?;
        let entries =
            std::fs::read_dir(&self.dir).map_err(|e| EngineError::io("listing", &self.dir, e))?;
        let mut restart = Vec::new();
        let mut keep = Vec::new();
        for d in entries.flatten() {
            let cdir = d.path();
            let Some(rec) = std::fs::read(cdir.join("container.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<Record>(&b).ok())
            else {
                // A directory with no record: a create that never finished
                // its first write (or the daemonless `run --rm` of berth
                // before it used records: in flight or crashed).
                if !cdir.join("image").exists()
                    || std::fs::metadata(&cdir)
                        .and_then(|m| m.modified())
                        .is_ok_and(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(60))
                {
                    let id = d.file_name().to_string_lossy().into_owned();
                    if !self.machine.exists(&id) {
                        self.machine.unmount_rootfs(&cdir.join("rootfs"));
                        let _ = self.machine.remove_layer(&id).await;
                        let _ = std::fs::remove_dir_all(&cdir);
                    }
                }
                continue;
            };
            if !rec.prepared || rec.status == Status::Removing {
                self.machine.unmount_rootfs(&cdir.join("rootfs"));
                self.machine.delete(&rec.id);
                let _ = self.machine.remove_layer(&rec.id).await;
                let _ = std::fs::remove_dir_all(&cdir);
                continue;
            }
            let e = Entry::new(rec.clone());
            self.table
                .lock()
                .expect("table lock")
                .insert(rec.id.clone(), e.clone());
            let alive = rec.status.is_live() && self.machine.alive(rec.shim_pid, rec.shim_start);
            if alive {
                // Adopt the running container: its monitor carries on.
                for ep in rec.endpoints.values() {
                    let names = [
                        rec.name.clone(),
                        rec.id[..12].to_string(),
                        super::create::hostname(&rec),
                    ];
                    self.networks
                        .readopt(&rec.id, &names, ep, &rec.host_config.dns);
                }
                keep.push(rec.id.clone());
                self.watch(e.clone(), rec.shim_pid, rec.shim_start);
                let n = e.starts.fetch_add(1, Ordering::SeqCst) + 1;
                self.start_health(&e, n);
                continue;
            }
            if rec.status.is_live() {
                // It ended while no daemon ran.
                self.on_exit(&e).await;
                continue;
            }
            self.machine.unmount_rootfs(&cdir.join("rootfs"));
            self.machine.delete(&rec.id);
            let policy = rec.host_config.restart_policy.parse();
            // docker on daemon start: `always` comes back even if it was
            // stopped by hand; `unless-stopped` and `on-failure` only if they
            // were running (or restarting) when the daemon went away.
            let again = match policy {
                Ok(Restart::Always) => rec.status != Status::Created,
                Ok(Restart::UnlessStopped) | Ok(Restart::OnFailure(_)) => {
                    rec.status == Status::Restarting && !rec.manually_stopped
                }
                _ => false,
            };
            if rec.status == Status::Restarting && !again {
                let _ = self.update(&e, |r| r.status = Status::Exited);
            }
            if again {
                restart.push(e);
            }
        }
        // What no running container owns (a crash mid-attach, exits while
        // no daemon ran): links, rules and leases.
        let gone = self.networks.gc(&keep).await;
        if !gone.is_empty() {
            tracing::info!(
                "released the network attachments of {} gone containers",
                gone.len()
            );
        }
        for e in restart {
            let _op = e.op.lock().await;
            let _ = self.update(&e, |r| r.manually_stopped = false);
            if let Err(err) = self.start_locked(&e).await {
                tracing::warn!("restarting container {} on daemon start: {err}", e.id);
            }
        }
        // Writable layers no record owns (a crash between prepare and the record).
        Ok(())
    }
}
