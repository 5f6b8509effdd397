//! Starting a container: the root filesystem mounted, the bundle written,
//! the monitor (`berth shim`) launched, networks attached, early attaches
//! connected, then the container's process let go.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::record::{Entry, Status};
use super::{logs, stream, Containers};
use crate::error::{ContainerOp, EngineError, Result};
use crate::networks::Endpoint;
use crate::store::{now, write_json};

impl Containers {
    /// Starts a container. `Ok(false)`: it was already running (docker's 304).
    pub async fn start(self: &Arc<Self>, key: &str) -> Result<bool> {
        let e = self.entry(key)?;
        let _op = e.op.lock().await;
        let rec = e.get();
        match rec.status {
            Status::Running | Status::Paused => return Ok(false),
            Status::Removing | Status::Dead => {
                return Err(super::refused(&rec, ContainerOp::Start))
            }
            _ => {}
        }
        self.update(&e, |r| r.manually_stopped = false)?;
        let r = self.start_locked(&e).await;
        drop(_op);
        if r.is_err() && rec.host_config.auto_remove {
            // docker removes a `--rm` container whose start failed.
            let _ = self.remove(&rec.id, true, true).await;
        }
        r.map(|_| true)
    }

    /// Starts the monitor and the container; the entry's op lock is held.
    pub(super) async fn start_locked(self: &Arc<Self>, e: &Arc<Entry>) -> Result<()> {
        match self.spawn(e).await {
            Ok((pid, shim_pid, endpoints)) => {
                let shim_start = self.machine.start_time(shim_pid);
                let rec = self.update(e, |r| {
                    r.endpoints = endpoints;
                    r.status = Status::Running;
                    r.pid = pid;
                    r.shim_pid = shim_pid;
                    r.shim_start = shim_start;
                    r.started_at = now();
                    r.exit_code = 0;
                    r.error.clear();
                    r.oom_killed = false;
                })?;
                self.emit(&rec, "start", &[]);
                self.watch(e.clone(), shim_pid, shim_start);
                let n = e.starts.fetch_add(1, Ordering::SeqCst) + 1;
                self.start_health(e, n);
                Ok(())
            }
            Err(err) => {
                let msg = err.to_string();
                let code = if msg.contains("executable file not found")
                    || msg.contains("no such file or directory")
                {
                    127
                } else if msg.contains("permission denied") {
                    126
                } else {
                    128
                };
                let _ = self.update(e, |r| {
                    r.error = msg.clone();
                    r.exit_code = code;
                    if r.status == Status::Restarting {
                        r.status = Status::Exited;
                        r.finished_at = now();
                    }
                });
                // The waiters of `docker run` learn of the failed start.
                e.exits.fetch_add(1, Ordering::SeqCst);
                e.notify();
                for p in e.pending.lock().expect("pending lock").drain(..) {
                    let _ = p.reply.send(Err(msg.clone()));
                }
                Err(err)
            }
        }
    }

    /// Mounts the root filesystem, writes the bundle and starts `berth shim`,
    /// connects pending attaches, then starts the container. Returns (init
    /// pid, monitor pid).
    pub(super) async fn spawn(
        &self,
        e: &Arc<Entry>,
    ) -> Result<(i32, i32, BTreeMap<String, Endpoint>)> {
        let rec = e.get();
        let cdir = self.cdir(&rec.id);
        let rootfs = cdir.join("rootfs");
        let _ = std::fs::remove_file(cdir.join(crate::monitor::EXIT));
        let image = self
            .image_config(&rec.id)
            .ok_or_else(|| EngineError::Image {
                name: rec.image.clone(),
                reason: format!("the image config of container {} is missing", rec.id),
            })?;
        let remap = self.remap_of(&rec.host_config);
        self.machine.unmount_rootfs(&rootfs);
        self.machine
            .mount_rootfs(&rec.id, &rootfs, remap.is_some())
            .await?;
        let views = cdir.join("idmap-volumes");
        let undo = |err: EngineError| {
            self.machine.unmount_rootfs(&rootfs);
            let _ = crate::userns::detach_views(&views);
            err
        };
        self.write_etc(&rec, &BTreeMap::new()).map_err(undo)?;
        let mut spec = crate::bundle::spec(&crate::bundle::Inputs {
            id: &rec.id,
            image_name: &rec.image,
            image: &image,
            config: &rec.config,
            host: &rec.host_config,
            rootfs: &rootfs,
            volumes: self.volumes.dir(),
            etc: Some(&cdir),
            remap: remap.as_deref(),
        })
        .map_err(undo)?;
        if let Some(r) = &remap {
            // Named volumes through idmapped views (their files keep the
            // ids they have on disk).
            crate::userns::volume_views(r, &mut spec, self.volumes.dir(), &views).map_err(undo)?;
        }
        write_json(&cdir.join("config.json"), &spec).map_err(undo)?;
        let rotation =
            logs::Rotation::from_opts(&rec.host_config.log_config.kind, &self.log_opts(&rec))
                .map_err(|r| {
                    undo(EngineError::invalid(
                        "log options",
                        rec.host_config.log_config.kind.clone(),
                        r,
                    ))
                })?;
        let args = crate::monitor::MonitorArgs {
            runtime_root: self.machine.runtime_root(),
            dir: cdir.clone(),
            id: rec.id.clone(),
            socket: self.socket(&rec.id),
            stdin: rec.config.open_stdin,
            stdin_once: rec.config.stdin_once,
            rotation,
            size: rec
                .host_config
                .console_size
                .filter(|s| s[0] > 0 && s[1] > 0)
                .map(|[h, w]| (h, w)),
        };
        let launched = self.machine.launch(&args).await;
        // The runtime has bound the volumes' views into the container (or
        // failed): the host needs them no more.
        let _ = crate::userns::detach_views(&views);
        let (pid, shim_pid) = match launched.map_err(undo)? {
            crate::monitor::StartReport::Created { pid, monitor_pid } => (pid, monitor_pid),
            crate::monitor::StartReport::Failed { error } => {
                return Err(undo(EngineError::Start {
                    id: rec.id.clone(),
                    reason: error,
                }))
            }
        };
        let sock = self.socket(&rec.id);
        let endpoints = match self.attach_networks(&rec, pid).await {
            Ok(eps) => eps,
            Err(err) => {
                let _ = self.machine.kill(&rec.id, Signal::SIGKILL, true);
                self.wait_gone(shim_pid, Duration::from_secs(10)).await;
                self.machine.unmount_rootfs(&rootfs);
                return Err(err);
            }
        };
        // Output from the first instruction on reaches the early attachers.
        let pending: Vec<stream::Pending> =
            e.pending.lock().expect("pending lock").drain(..).collect();
        for p in pending {
            let r = crate::monitor::connect_attach(&sock, &p.req).await;
            let _ = p.reply.send(r.map_err(|err| err.to_string()));
        }
        if let Err(err) = self
            .machine
            .request(&sock, &crate::monitor::Request::Start)
            .await
        {
            // The monitor cleans up after the container it made.
            let _ = self.machine.kill(&rec.id, Signal::SIGKILL, true);
            self.wait_gone(shim_pid, Duration::from_secs(10)).await;
            self.detach_networks(&rec.id, &endpoints).await;
            self.machine.unmount_rootfs(&rootfs);
            return Err(EngineError::Start {
                id: rec.id.clone(),
                reason: err,
            });
        }
        Ok((pid, shim_pid, endpoints))
    }
}
