//! The verbs on an existing container: stop, restart, kill, remove,
//! rename, pause/unpause, resize, top, stats, and its root filesystem for
//! `cp`.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::record::{Status, WaitCondition};
use super::{refused, Containers};
use crate::error::{ContainerOp, EngineError, Result};

impl Containers {
    /// Stops a container: its stop signal, then SIGKILL after `timeout`
    /// seconds. `Ok(false)`: it was not running (docker's 304).
    pub async fn stop(
        &self,
        key: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<bool> {
        let e = self.entry(key)?;
        let rec = e.get();
        if rec.status == Status::Restarting {
            self.update(&e, |r| {
                r.manually_stopped = true;
                r.status = Status::Exited;
            })?;
            return Ok(true);
        }
        if !rec.status.is_live() {
            return Ok(false);
        }
        self.update(&e, |r| r.manually_stopped = true)?;
        let sig = super::parse_signal(
            signal
                .or(rec.config.stop_signal.as_deref())
                .unwrap_or("SIGTERM"),
        )?;
        let t = timeout.or(rec.config.stop_timeout).unwrap_or(10);
        let rt = &self.machine;
        if rec.status == Status::Paused {
            let _ = rt.resume(&rec.id);
        }
        let _ = rt.kill(&rec.id, sig, false);
        let stopped = if t < 0 {
            self.wait(&rec.id, WaitCondition::NotRunning).await.is_ok()
        } else {
            tokio::time::timeout(
                Duration::from_secs(t as u64),
                self.wait(&rec.id, WaitCondition::NotRunning),
            )
            .await
            .is_ok()
        };
        if !stopped {
            let _ = rt.kill(&rec.id, Signal::SIGKILL, true);
            self.wait(&rec.id, WaitCondition::NotRunning).await?;
        }
        self.emit(&e.get(), "stop", &[]);
        Ok(true)
    }

    /// Stops (if running) and starts a container again.
    pub async fn restart(
        self: &Arc<Self>,
        key: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        self.stop(key, timeout, signal).await?;
        self.start(key).await?;
        let e = self.entry(key)?;
        self.emit(&e.get(), "restart", &[]);
        Ok(())
    }

    /// Sends a signal to the container's init.
    pub fn kill(&self, key: &str, signal: Option<&str>) -> Result<()> {
        let e = self.entry(key)?;
        let rec = e.get();
        let sig = super::parse_signal(signal.filter(|s| !s.is_empty()).unwrap_or("SIGKILL"))?;
        if !rec.status.is_live() {
            return Err(EngineError::ContainerState {
                id: rec.id,
                op: ContainerOp::Kill {
                    key: key.to_string(),
                },
                status: rec.status,
            });
        }
        if sig == Signal::SIGKILL {
            // docker: a killed container is not restarted by `unless-stopped`/`always` until started again.
            self.update(&e, |r| r.manually_stopped = true)?;
        }
        self.machine.kill(&rec.id, sig, false)?;
        self.emit(&rec, "kill", &[("signal", (sig as i32).to_string())]);
        Ok(())
    }

    /// Removes a container (a running one only with `force`).
    pub async fn remove(&self, key: &str, force: bool, _volumes: bool) -> Result<()> {
        let e = self.entry(key)?;
        let rec = e.get();
        if rec.status.is_live() || rec.status == Status::Restarting {
            if !force {
                return Err(EngineError::ContainerState {
                    id: rec.id,
                    op: ContainerOp::Remove,
                    status: rec.status,
                });
            }
            self.update(&e, |r| r.manually_stopped = true)?;
            if rec.status.is_live() {
                let rt = &self.machine;
                let _ = rt.kill(&rec.id, Signal::SIGKILL, true);
                if rec.status == Status::Paused {
                    let _ = rt.resume(&rec.id);
                }
                self.wait(&rec.id, WaitCondition::NotRunning).await?;
            }
        }
        let _op = e.op.lock().await;
        if e.removed.load(Ordering::SeqCst) {
            return Ok(());
        }
        let rec = self.update(&e, |r| r.status = Status::Removing)?;
        let cdir = self.cdir(&rec.id);
        let chain = self
            .image_config(&rec.id)
            .map(|c| crate::layers::chain_ids(c.rootfs().diff_ids()))
            .unwrap_or_default();
        self.machine.unmount_rootfs(&cdir.join("rootfs"));
        // A container that never started has no runtime state; one whose
        // monitor was killed may.
        self.machine.delete(&rec.id);
        self.machine.remove_layer(&rec.id).await?;
        std::fs::remove_dir_all(&cdir).map_err(|err| EngineError::io("removing", &cdir, err))?;
        self.table.lock().expect("table lock").remove(&rec.id);
        self.execs
            .lock()
            .expect("execs lock")
            .retain(|_, x| x.container != rec.id);
        e.removed.store(true, Ordering::SeqCst);
        e.notify();
        self.emit(&rec, "destroy", &[]);
        // `rmi -f` while the container existed left its image's layers.
        self.machine.release_image(&rec.image_id, &chain).await;
        Ok(())
    }

    /// Changes a container's limits (docker's `update`): kept in its record
    /// for its next starts, and applied at once while it runs. Returns
    /// docker's warnings.
    pub async fn update_container(
        &self,
        key: &str,
        u: &super::config::UpdateConfig,
    ) -> Result<Vec<String>> {
        let e = self.entry(key)?;
        let _op = e.op.lock().await;
        let rec = e.get();
        if matches!(rec.status, Status::Removing | Status::Dead) {
            return Err(super::refused(&rec, crate::error::ContainerOp::Update));
        }
        let mut h = rec.host_config.clone();
        u.apply_to(&mut h)?;
        if h.auto_remove
            && h.restart_policy
                .parse()
                .is_ok_and(|p| p != super::config::Restart::No)
        {
            return Err(EngineError::invalid(
                "restart policy",
                h.restart_policy.name.clone(),
                "Restart policy cannot be updated because AutoRemove is enabled for the container",
            ));
        }
        crate::bundle::check_host(&h)?;
        let limits = crate::bundle::limits(&h, &rec.image)?;
        if rec.status.is_live() {
            self.machine.update(&rec.id, &limits)?;
        }
        let rec = self.update(&e, |r| r.host_config = h)?;
        self.emit(&rec, "update", &[]);
        Ok(Vec::new())
    }

    /// Removes every container that is not running (docker's `container
    /// prune`); returns their ids and the bytes their writable layers took.
    pub async fn prune(&self) -> Result<(Vec<String>, u64)> {
        let mut deleted = Vec::new();
        let mut space = 0;
        for rec in self.list() {
            if !matches!(rec.status, Status::Created | Status::Exited | Status::Dead) {
                continue;
            }
            let size = self.machine.layer_usage(&rec.id).await.unwrap_or(0);
            match self.remove(&rec.id, false, false).await {
                Ok(()) => {
                    space += size;
                    deleted.push(rec.id);
                }
                // Started or removed meanwhile: not ours to prune.
                Err(e) => tracing::debug!("prune: container {}: {e}", rec.id),
            }
        }
        Ok((deleted, space))
    }

    pub fn rename(&self, key: &str, new: &str) -> Result<()> {
        let new = new.strip_prefix('/').unwrap_or(new);
        super::create::check_name(new)?;
        let e = self.entry(key)?;
        {
            let t = self.table.lock().expect("table lock");
            if let Some(o) = t.values().find(|x| x.named(new)) {
                return Err(EngineError::ContainerNameInUse {
                    name: new.to_string(),
                    holder: o.id.clone(),
                });
            }
        }
        let old = e.get().name;
        let rec = self.update(&e, |r| r.name = new.to_string())?;
        self.emit(&rec, "rename", &[("oldName", format!("/{old}"))]);
        Ok(())
    }

    pub fn pause(&self, key: &str) -> Result<()> {
        let e = self.entry(key)?;
        let rec = e.get();
        if rec.status != Status::Running {
            return Err(refused(&rec, ContainerOp::Pause));
        }
        self.machine.pause(&rec.id)?;
        let rec = self.update(&e, |r| r.status = Status::Paused)?;
        self.emit(&rec, "pause", &[]);
        Ok(())
    }

    pub fn unpause(&self, key: &str) -> Result<()> {
        let e = self.entry(key)?;
        let rec = e.get();
        if rec.status != Status::Paused {
            return Err(refused(&rec, ContainerOp::Unpause));
        }
        self.machine.resume(&rec.id)?;
        let rec = self.update(&e, |r| r.status = Status::Running)?;
        self.emit(&rec, "unpause", &[]);
        Ok(())
    }

    /// Resizes the container's terminal.
    pub async fn resize(&self, key: &str, h: u16, w: u16) -> Result<()> {
        let e = self.entry(key)?;
        let rec = e.get();
        if !rec.status.is_live() {
            return Err(refused(&rec, ContainerOp::Resize));
        }
        self.machine
            .request(
                &self.socket(&rec.id),
                &crate::monitor::Request::Resize { h, w },
            )
            .await
            .map_err(|reason| EngineError::Start { id: rec.id, reason })
    }

    /// The processes of a running container: `ps` run on the host with
    /// `ps_args` (docker's default `-ef`), rows limited to the container.
    pub async fn top(&self, key: &str, ps_args: &str) -> Result<(Vec<String>, Vec<Vec<String>>)> {
        let rec = self.get(key)?;
        if !rec.status.is_live() {
            return Err(refused(&rec, ContainerOp::Top));
        }
        let pids = self.machine.ps(&rec.id)?;
        let args: Vec<&str> = if ps_args.is_empty() {
            vec!["-ef"]
        } else {
            ps_args.split_whitespace().collect()
        };
        let out = tokio::process::Command::new("ps")
            .args(&args)
            .output()
            .await
            .map_err(|e| EngineError::io("running", "ps", e))?;
        if !out.status.success() {
            return Err(EngineError::invalid(
                "ps arguments",
                args.join(" "),
                format!(
                    "ps {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            ));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let header = lines.next().unwrap_or_default();
        let titles: Vec<String> = header.split_whitespace().map(String::from).collect();
        let pid_col = titles.iter().position(|t| t == "PID").ok_or_else(|| {
            EngineError::invalid(
                "ps arguments",
                args.join(" "),
                format!("Couldn't find PID field in ps output ({})", args.join(" ")),
            )
        })?;
        let mut rows = Vec::new();
        for l in lines {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < titles.len() {
                continue;
            }
            let Ok(p) = f[pid_col].parse::<i32>() else {
                continue;
            };
            if pids.contains(&p) {
                let mut row: Vec<String> = f[..titles.len() - 1]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                row.push(f[titles.len() - 1..].join(" "));
                rows.push(row);
            }
        }
        Ok((titles, rows))
    }

    /// Cgroup statistics of a running container.
    pub fn stats(&self, key: &str) -> Result<Option<berth_runtime::cgroups::Stats>> {
        let rec = self.get(key)?;
        if !rec.status.is_live() {
            return Ok(None);
        }
        Ok(self.machine.stats(&rec.id))
    }

    /// A container's root filesystem for `cp`: a running container's own
    /// mount, or one made for the call (`true`: release it with
    /// [`Containers::release_rootfs`]).
    pub async fn rootfs(&self, key: &str) -> Result<(String, PathBuf, bool)> {
        let e = self.entry(key)?;
        let rec = e.get();
        let root = self.cdir(&rec.id).join("rootfs");
        if rec.status.is_live() {
            return Ok((rec.id, root, false));
        }
        let _op = e.op.lock().await;
        let remapped = self.remap_of(&rec.host_config).is_some();
        self.machine.mount_rootfs(&rec.id, &root, remapped).await?;
        Ok((rec.id, root, true))
    }

    /// Unmounts a root filesystem that [`Containers::rootfs`] mounted.
    pub async fn release_rootfs(&self, id: &str) {
        if let Ok(e) = self.entry(id) {
            let _op = e.op.lock().await;
            if !e.get().status.is_live() {
                self.machine.unmount_rootfs(&self.cdir(id).join("rootfs"));
            }
        }
    }
}
