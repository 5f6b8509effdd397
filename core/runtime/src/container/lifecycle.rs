//! A created container's life: start (the exec fifo), foreground run,
//! signals, and delete; with the poststart and poststop hooks.

use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::{CreateOptions, Runtime};
use crate::error::{Result, RuntimeError};
use crate::process::sync::Msg;
use crate::state::{self, Record, Status, EXEC_FIFO};

/// Waits until a process that is not our child is gone (or a zombie).
fn wait_gone(pid: i32, start: u64, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    while state::process_alive(pid, start) {
        // Reap it if it happens to be ours.
        let _ = nix::sys::wait::waitpid(
            nix::unistd::Pid::from_raw(pid),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        );
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

impl Runtime {
    /// Starts a created container (runs the poststart hooks after).
    pub fn start(&self, id: &str) -> Result<()> {
        let rec = self.load_when(
            id,
            Status::Created,
            "start (only a created container can be started)",
        )?;
        let fifo = Record::dir(&self.root, id).join(EXEC_FIFO);
        // The init holds the fifo open read-write and waits for one byte. A
        // non-blocking open for writing fails with ENXIO when nobody reads:
        // the init is gone.
        let f = match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
        {
            Ok(f) => f,
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                let _ = std::fs::remove_file(&fifo);
                return Err(RuntimeError::InitGone { id: id.into() });
            }
            Err(e) => return Err(RuntimeError::io("opening the exec fifo", &fifo, e)),
        };
        if let Err(e) = nix::unistd::write(&f, b"0") {
            return Err(RuntimeError::sys("writing the exec fifo", e));
        }
        drop(f);
        let _ = std::fs::remove_file(&fifo);
        self.poststart(&rec)
    }

    fn poststart(&self, rec: &Record) -> Result<()> {
        let hooks = rec.spec.hooks().clone().unwrap_or_default();
        if let Some(h) = hooks.poststart().as_deref().filter(|h| !h.is_empty()) {
            let st = serde_json::to_vec(&rec.oci_state(Status::Running)).unwrap_or_default();
            crate::hooks::run("poststart", h, &st)?;
        }
        Ok(())
    }

    /// `run` in the foreground: create, start, wait, delete. Returns the exit code.
    pub fn run(&self, opts: &CreateOptions) -> Result<i32> {
        crate::supervise::block_signals()?;
        let (rec, spawned) = self.make(opts, false, false)?;
        let started = spawned
            .chan
            .send(Msg::Start)
            .map_err(|e| RuntimeError::InitChannel {
                id: rec.id.clone(),
                op: "starting",
                errno: nix::errno::Errno::from_raw(e),
            });
        let r = started.and_then(|_| self.poststart(&rec));
        let code = match r {
            Ok(()) => {
                let pty = if opts.console_socket.is_some() {
                    None
                } else {
                    spawned.pty_master.as_ref()
                };
                crate::supervise::wait(rec.pid, pty)
            }
            Err(e) => Err(e),
        };
        let del = self.delete(&rec.id, true);
        let code = code?;
        del?;
        Ok(code)
    }

    /// Sends a signal to the container's init (or to all its processes).
    pub fn kill(&self, id: &str, sig: Signal, all: bool) -> Result<()> {
        let rec = Record::load(&self.root, id)?;
        let status = rec.status(&self.root);
        if status == Status::Stopped && !all {
            return Err(RuntimeError::WrongState {
                id: id.into(),
                status: "stopped",
                action: "send a signal (the container is not running)",
            });
        }
        if all {
            let pids = rec.cgroup.pids().map_err(RuntimeError::cgroup(id))?;
            for p in pids {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), sig);
            }
            if status == Status::Paused && sig == Signal::SIGKILL {
                let _ = rec.cgroup.thaw();
            }
            return Ok(());
        }
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(rec.pid), sig).map_err(|source| {
            RuntimeError::Kill {
                id: id.into(),
                pid: rec.pid,
                signal: sig,
                source,
            }
        })
    }

    /// Deletes a container; a running one only with `force`.
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        let rec = Record::load(&self.root, id)?;
        let status = rec.status(&self.root);
        match status {
            Status::Stopped | Status::Created => {}
            _ if force => {}
            s => {
                return Err(RuntimeError::WrongState {
                    id: id.into(),
                    status: s.as_str(),
                    action: "delete (stop it first or use --force)",
                })
            }
        }
        if status != Status::Stopped {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(rec.pid), Signal::SIGKILL);
            if status == Status::Paused {
                let _ = rec.cgroup.thaw();
            }
            wait_gone(rec.pid, rec.pid_start, Duration::from_secs(10));
        }
        rec.cgroup.destroy().map_err(RuntimeError::cgroup(id))?;
        rec.cgroup.prune_parents();
        let dir = Record::dir(&self.root, id);
        std::fs::remove_dir_all(&dir)
            .map_err(|e| RuntimeError::io("removing the container's state", &dir, e))?;
        let hooks = rec.spec.hooks().clone().unwrap_or_default();
        if let Some(h) = hooks.poststop().as_deref().filter(|h| !h.is_empty()) {
            let st = serde_json::to_vec(&rec.oci_state(Status::Stopped)).unwrap_or_default();
            if let Err(e) = crate::hooks::run("poststop", h, &st) {
                tracing::warn!("{e}");
            }
        }
        Ok(())
    }
}
