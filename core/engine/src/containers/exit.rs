//! A container's end: the monitor watched through a pidfd, the exit
//! recorded, `--rm` honoured and restart policies applied with docker's
//! back-off; `wait` for its conditions.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::config::Restart;
use super::record::{Entry, Record, Status, WaitCondition};
use super::Containers;
use crate::error::Result;
use crate::store::now;

impl Containers {
    /// Watches a monitor until it exits, then records the container's end.
    pub(super) fn watch(self: &Arc<Self>, e: Arc<Entry>, shim_pid: i32, shim_start: u64) {
        let me = self.clone();
        tokio::spawn(async move {
            me.machine.wait_gone(shim_pid, shim_start).await;
            me.on_exit(&e).await;
        });
    }

    /// Records a container's exit and applies its restart policy.
    pub(super) async fn on_exit(self: &Arc<Self>, e: &Arc<Entry>) {
        let op = e.op.lock().await;
        let rec = e.get();
        if !rec.status.is_live() {
            return;
        }
        let cdir = self.cdir(&rec.id);
        let exit: crate::monitor::Exit = std::fs::read(cdir.join(crate::monitor::EXIT))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| {
                // The monitor died without a word (killed): clean up for it.
                self.machine.delete(&rec.id);
                crate::monitor::Exit {
                    exit_code: 255,
                    finished_at: now(),
                    error: "the container's monitor ended unexpectedly".into(),
                    ..Default::default()
                }
            });
        self.machine.unmount_rootfs(&cdir.join("rootfs"));
        for (name, ep) in &rec.endpoints {
            if let Err(e) = self.networks.detach_exited(&ep.network_id, &rec.id).await {
                tracing::warn!("detaching container {} from network {name}: {e}", rec.id);
            }
        }
        let rec = match self.update(e, |r| {
            r.endpoints.clear();
            r.status = Status::Exited;
            r.exit_code = exit.exit_code;
            r.finished_at = exit.finished_at.clone();
            r.oom_killed = exit.oom_killed;
            r.error = exit.error.clone();
            r.pid = 0;
            r.shim_pid = 0;
        }) {
            Ok(r) => r,
            Err(err) => {
                tracing::warn!("{err}");
                e.get()
            }
        };
        e.exits.fetch_add(1, Ordering::SeqCst);
        e.notify();
        self.emit(&rec, "die", &[("exitCode", rec.exit_code.to_string())]);
        if rec.host_config.auto_remove {
            drop(op);
            if let Err(err) = self.remove(&rec.id, true, true).await {
                tracing::warn!("removing container {} (--rm): {err}", rec.id);
            }
            return;
        }
        if self.should_restart(&rec) {
            let _ = self.update(e, |r| r.status = Status::Restarting);
            drop(op);
            self.schedule_restart(e.clone(), &rec);
        }
    }

    pub(super) fn should_restart(&self, rec: &Record) -> bool {
        if rec.manually_stopped {
            return false;
        }
        match rec.host_config.restart_policy.parse() {
            Ok(Restart::Always) | Ok(Restart::UnlessStopped) => true,
            Ok(Restart::OnFailure(max)) => {
                rec.exit_code != 0 && max.is_none_or(|m| rec.restart_count < m)
            }
            _ => false,
        }
    }

    /// Restarts after docker's back-off: 100 ms doubling per restart, at
    /// most a minute; a container that ran 10 s starts over at 100 ms.
    pub(super) fn schedule_restart(self: &Arc<Self>, e: Arc<Entry>, rec: &Record) {
        let ran_long =
            crate::store::secs_between(&rec.started_at, &rec.finished_at).unwrap_or(0) >= 10;
        let n = if ran_long {
            0
        } else {
            rec.restart_count.min(10)
        };
        let delay = Duration::from_millis((100u64 << n).min(60_000));
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _op = e.op.lock().await;
            let rec = e.get();
            if rec.status != Status::Restarting
                || rec.manually_stopped
                || e.removed.load(Ordering::SeqCst)
            {
                return;
            }
            let _ = me.update(&e, |r| r.restart_count += 1);
            if let Err(err) = me.start_locked(&e).await {
                tracing::warn!("restarting container {}: {err}", e.id);
                let rec = e.get();
                if me.should_restart(&rec) {
                    let _ = me.update(&e, |r| r.status = Status::Restarting);
                    me.schedule_restart(e.clone(), &rec);
                } else {
                    let _ = me.update(&e, |r| r.status = Status::Exited);
                }
            }
        });
    }

    /// Waits for a condition; returns the exit code (and the error, if the
    /// container failed to start).
    pub async fn wait(&self, key: &str, cond: WaitCondition) -> Result<(i32, Option<String>)> {
        let e = self.entry(key)?;
        let mut rx = e.changed.subscribe();
        let exits0 = e.exits.load(Ordering::SeqCst);
        loop {
            let rec = e.get();
            let done = match cond {
                WaitCondition::NotRunning => {
                    !rec.status.is_live() && rec.status != Status::Restarting
                        || e.removed.load(Ordering::SeqCst)
                }
                WaitCondition::NextExit => {
                    e.exits.load(Ordering::SeqCst) > exits0 || e.removed.load(Ordering::SeqCst)
                }
                WaitCondition::Removed => e.removed.load(Ordering::SeqCst),
            };
            if done {
                let err = Some(rec.error.clone()).filter(|s| !s.is_empty());
                return Ok((rec.exit_code, err));
            }
            if rx.changed().await.is_err() {
                let rec = e.get();
                return Ok((rec.exit_code, None));
            }
        }
    }
}

impl Containers {
    /// Waits at most `timeout` for process `pid` to be gone.
    pub(super) async fn wait_gone(&self, pid: i32, timeout: Duration) {
        let start = self.machine.start_time(pid);
        let _ = tokio::time::timeout(timeout, self.machine.wait_gone(pid, start)).await;
    }
}
