//! The parent side of starting a container's init or an exec'd process:
//! clone, write id maps, place in the cgroup, drive the sync protocol, and
//! turn a child's failure report into an error (worded by `describe`).

use std::os::fd::OwnedFd;

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use super::describe::{describe_init, describe_process, step_failed};
use super::init::{run_exec, run_init, Fail};
use super::plan::{InitPlan, ProcessPlan};
use super::sync::{self, Channel, Msg};
use crate::cgroups::Cgroup;
use crate::error::{Result, RuntimeError};

/// A started (not yet exec'd) process.
#[derive(Debug)]
pub struct Spawned {
    pub pid: i32,
    pub pty_master: Option<OwnedFd>,
    /// Our end of the sync socket: `run` sends `Start` on it.
    pub chan: Channel,
}

/// User namespace id maps, as written to /proc/PID/{uid,gid}_map.
#[derive(Debug, Default, Clone)]
pub struct IdMaps {
    pub uid: String,
    pub gid: String,
}

fn clone_child(flags: libc::c_int) -> Result<i32> {
    // SAFETY: a fork-like clone (no new stack) in a single-threaded process.
    // The child only runs async-signal-safe code until execve or _exit.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0,
            0,
            0,
            0,
        )
    };
    if pid < 0 {
        return Err(RuntimeError::sys(
            format!("clone with namespace flags {flags:#x}"),
            Errno::last(),
        ));
    }
    Ok(pid as i32)
}

/// Temporarily enters a pid namespace for our children (setns on the parent
/// affects only children), and returns to our own afterwards.
struct PidNsGuard(Option<OwnedFd>);

impl PidNsGuard {
    fn enter(target: Option<&OwnedFd>) -> Result<PidNsGuard> {
        let Some(target) = target else {
            return Ok(PidNsGuard(None));
        };
        let own: OwnedFd = std::fs::File::open("/proc/self/ns/pid_for_children")
            .or_else(|_| std::fs::File::open("/proc/self/ns/pid"))
            .map_err(|e| RuntimeError::io("opening", "/proc/self/ns/pid", e))?
            .into();
        nix::sched::setns(target, nix::sched::CloneFlags::CLONE_NEWPID)
            .map_err(|e| RuntimeError::sys("joining the pid namespace", e))?;
        Ok(PidNsGuard(Some(own)))
    }
}

impl Drop for PidNsGuard {
    fn drop(&mut self) {
        if let Some(own) = &self.0 {
            let _ = nix::sched::setns(own, nix::sched::CloneFlags::CLONE_NEWPID);
        }
    }
}

fn kill_and_reap(pid: i32) {
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    let _ = waitpid(Pid::from_raw(pid), None);
}

fn write_maps(pid: i32, maps: &IdMaps) -> Result<()> {
    for (file, text) in [("uid_map", &maps.uid), ("gid_map", &maps.gid)] {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, text)
            .map_err(|e| RuntimeError::io("writing user namespace map", path, e))?;
    }
    Ok(())
}

/// Starts a container's init and drives it to `Ready` (it then waits for start).
/// `on_hooks(pid)` runs the createRuntime/prestart hooks and returns the state JSON.
pub fn spawn_init(
    id: &str,
    plan: &mut InitPlan,
    pid_join: Option<&OwnedFd>,
    maps: &IdMaps,
    cgroup: &Cgroup,
    mut on_hooks: impl FnMut(i32) -> Result<Vec<u8>>,
) -> Result<Spawned> {
    let (ours, theirs) = sync::pair().map_err(|e| RuntimeError::sys("socketpair", e))?;
    let pid = {
        let _g = PidNsGuard::enter(pid_join)?;
        clone_child(plan.ns.clone_flags)?
    };
    if pid == 0 {
        drop(ours);
        run_init(plan, &theirs);
    }
    drop(theirs);
    let mut pid = pid;
    let fail = |pid: i32, e: RuntimeError| {
        kill_and_reap(pid);
        e
    };
    let slow_userns = plan.ns.unshare_flags != 0 && plan.ns.new_userns;
    if slow_userns {
        match recv(&ours).map_err(|e| fail(pid, e))? {
            (Some(Msg::NeedMaps), _) => {}
            other => return Err(fail(pid, unexpected(id, plan, other))),
        }
    }
    if plan.ns.new_userns {
        write_maps(pid, maps).map_err(|e| fail(pid, e))?;
    }
    // Usually the child needs nothing from us before its mounts: let it go
    // at once and put it in its cgroup meanwhile (two cores do both at the
    // same time). It cannot pass HooksNow — before pivot_root and exec —
    // until we answer, which is after add_pid. Not so when it waits for id
    // maps (above), unshares a cgroup namespace right after Go (its root is
    // the cgroup it is in then), or forks the real init right after Go (the
    // fork would not inherit a cgroup it joins later).
    let early_go = !plan.ns.new_userns && !plan.ns.new_cgroupns && !plan.ns.fork_for_pidns;
    if early_go {
        ours.send(Msg::Go)
            .map_err(|e| fail(pid, proto_err(id, e)))?;
    }
    cgroup
        .add_pid(pid)
        .map_err(|e| fail(pid, RuntimeError::cgroup(id)(e)))?;
    if !early_go {
        ours.send(Msg::Go)
            .map_err(|e| fail(pid, proto_err(id, e)))?;
    }
    if plan.ns.fork_for_pidns {
        match recv(&ours).map_err(|e| fail(pid, e))? {
            (Some(Msg::InitPid(p)), _) => {
                let _ = waitpid(Pid::from_raw(pid), None);
                pid = p;
            }
            other => return Err(fail(pid, unexpected(id, plan, other))),
        }
    }
    let mut pty = None;
    loop {
        match recv(&ours).map_err(|e| fail(pid, e))? {
            (Some(Msg::HooksNow), _) => {
                let state = on_hooks(pid).map_err(|e| fail(pid, e))?;
                let r = ours
                    .send(Msg::State(state.len() as u32))
                    .and_then(|_| ours.send_bytes(&state))
                    .and_then(|_| ours.send(Msg::HooksDone));
                r.map_err(|e| fail(pid, proto_err(id, e)))?;
            }
            (Some(Msg::PtyMaster), fd) => pty = fd,
            (Some(Msg::Ready), _) => break,
            other => return Err(fail(pid, unexpected(id, plan, other))),
        }
    }
    Ok(Spawned {
        pid,
        pty_master: pty,
        chan: ours,
    })
}

/// Starts a process inside an existing container's namespaces and cgroup.
/// `joins` are the container's namespaces (user first); `pid_ns` its pid namespace.
pub fn spawn_exec(
    id: &str,
    plan: &ProcessPlan,
    joins: &[(OwnedFd, libc::c_int)],
    pid_ns: Option<&OwnedFd>,
    cgroup: Option<&Cgroup>,
) -> Result<Spawned> {
    let (ours, theirs) = sync::pair().map_err(|e| RuntimeError::sys("socketpair", e))?;
    let pid = {
        let _g = PidNsGuard::enter(pid_ns)?;
        clone_child(0)?
    };
    if pid == 0 {
        drop(ours);
        run_exec(plan, joins, &theirs);
    }
    drop(theirs);
    let fail = |e: RuntimeError| {
        kill_and_reap(pid);
        e
    };
    if let Some(cg) = cgroup {
        cg.add_pid(pid)
            .map_err(|e| fail(RuntimeError::cgroup(id)(e)))?;
    }
    ours.send(Msg::Go).map_err(|e| fail(proto_err(id, e)))?;
    let mut pty = None;
    loop {
        match recv(&ours).map_err(fail)? {
            (Some(Msg::PtyMaster), fd) => pty = fd,
            (Some(Msg::Ready), _) => break,
            (
                Some(Msg::Fail {
                    stage,
                    index,
                    errno,
                }),
                _,
            ) => {
                let _ = waitpid(Pid::from_raw(pid), None);
                let f = Fail {
                    stage,
                    index,
                    errno,
                };
                return Err(step_failed(id, f, describe_process(plan, f)));
            }
            (None, _) => {
                return Err(fail(RuntimeError::ExitedEarly {
                    id: id.into(),
                    process: EXEC,
                }))
            }
            (Some(msg), _) => {
                return Err(fail(RuntimeError::InitProtocol {
                    id: id.into(),
                    process: EXEC,
                    msg,
                }))
            }
        }
    }
    Ok(Spawned {
        pid,
        pty_master: pty,
        chan: ours,
    })
}

fn recv(chan: &Channel) -> Result<(Option<Msg>, Option<OwnedFd>)> {
    loop {
        match chan.recv_fd() {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(RuntimeError::sys("reading from the container's init", e)),
            Ok(r) => return Ok(r),
        }
    }
}

/// Who the parent talks to, in error messages.
const INIT: &str = "the container's init";
const EXEC: &str = "the exec'd process";

fn proto_err(id: &str, e: i32) -> RuntimeError {
    RuntimeError::InitChannel {
        id: id.into(),
        op: "talking to the container's init",
        errno: Errno::from_raw(e),
    }
}

fn unexpected(id: &str, plan: &InitPlan, got: (Option<Msg>, Option<OwnedFd>)) -> RuntimeError {
    match got.0 {
        Some(Msg::Fail {
            stage,
            index,
            errno,
        }) => {
            let f = Fail {
                stage,
                index,
                errno,
            };
            step_failed(id, f, describe_init(plan, f))
        }
        None => RuntimeError::ExitedEarly {
            id: id.into(),
            process: INIT,
        },
        Some(msg) => RuntimeError::InitProtocol {
            id: id.into(),
            process: INIT,
            msg,
        },
    }
}
