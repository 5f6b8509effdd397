//! `exec`: a new process in a running container's namespaces and cgroup.

use std::collections::HashMap;
use std::os::fd::OwnedFd;

use oci_spec::runtime::{LinuxNamespaceType, Process};

use super::{write_pid_file, ExecOptions, Runtime};
use crate::error::{Result, RuntimeError};
use crate::process::prepare;
use crate::process::spawn;
use crate::spec;
use crate::state::{Record, Status};

impl Runtime {
    /// Runs a process in a running container. Returns its exit code, or its
    /// pid when detached.
    pub fn exec(&self, id: &str, process: &Process, opts: &ExecOptions) -> Result<i32> {
        let rec = self.load_when(id, Status::Running, "exec (the container must be running)")?;
        spec::validate_process(process).map_err(|reason| RuntimeError::InvalidExecProcess {
            id: id.into(),
            reason,
        })?;
        if process.terminal().unwrap_or(false) && opts.detach && opts.console_socket.is_none() {
            return Err(RuntimeError::NoConsoleSocket {
                id: id.into(),
                detached: "exec",
            });
        }
        let mut plan = prepare::process_plan(process, Some(&rec.rootfs))?;
        prepare::add_seccomp(&mut plan, &rec.spec)?;
        let (joins, pid_ns) = container_namespaces(&rec)?;
        if !opts.detach {
            crate::supervise::block_signals()?;
        }
        let spawned = spawn::spawn_exec(id, &plan, &joins, pid_ns.as_ref(), Some(&rec.cgroup))?;
        if let (Some(sock), Some(m)) = (&opts.console_socket, &spawned.pty_master) {
            crate::tty::send_to_console_socket(sock, m)?;
        }
        if let Some(p) = &opts.pid_file {
            write_pid_file(p, spawned.pid)?;
        }
        if opts.detach {
            return Ok(0);
        }
        let pty = if opts.console_socket.is_some() {
            None
        } else {
            spawned.pty_master.as_ref()
        };
        crate::supervise::wait(spawned.pid, pty)
    }
}

/// Namespaces to join with setns (fd, CLONE_NEW* flag), and the pid namespace.
type Joins = (Vec<(OwnedFd, libc::c_int)>, Option<OwnedFd>);

/// Opens the namespaces of a container's init to join them (user first,
/// mount last); namespaces we already share are skipped.
fn container_namespaces(rec: &Record) -> Result<Joins> {
    let order = [
        (LinuxNamespaceType::User, "user"),
        (LinuxNamespaceType::Ipc, "ipc"),
        (LinuxNamespaceType::Uts, "uts"),
        (LinuxNamespaceType::Network, "net"),
        (LinuxNamespaceType::Cgroup, "cgroup"),
        (LinuxNamespaceType::Mount, "mnt"),
    ];
    let present: HashMap<LinuxNamespaceType, ()> = rec
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
        .iter()
        .map(|n| (n.typ(), ()))
        .collect();
    let same = |name: &str| -> bool {
        use std::os::unix::fs::MetadataExt;
        let a = std::fs::metadata(format!("/proc/self/ns/{name}"))
            .map(|m| m.ino())
            .ok();
        let b = std::fs::metadata(format!("/proc/{}/ns/{name}", rec.pid))
            .map(|m| m.ino())
            .ok();
        a.is_some() && a == b
    };
    let open = |name: &str| -> Result<OwnedFd> {
        let p = format!("/proc/{}/ns/{name}", rec.pid);
        Ok(std::fs::File::open(&p)
            .map_err(|e| RuntimeError::io("opening the container's namespace", p, e))?
            .into())
    };
    let mut joins = Vec::new();
    for (t, name) in order {
        if present.contains_key(&t) && !same(name) {
            joins.push((open(name)?, prepare::ns_flag(t)));
        }
    }
    let pid = if present.contains_key(&LinuxNamespaceType::Pid) && !same("pid") {
        Some(open("pid")?)
    } else {
        None
    };
    Ok((joins, pid))
}
