//! The container side of the sync protocol: what runs in the cloned child
//! until execve, and the init's main sequence. Everything under this module
//! is async-signal-safe: raw syscalls on data the parent prepared (see
//! `plan`), no allocation, no formatting, no locks.

mod hooks;
mod identity;
mod namespaces;
mod setup;
mod steps;
mod terminal;

use std::convert::Infallible;

use super::plan::{InitPlan, ProcessPlan, RootChange};
use super::sync::{errno, Channel, Msg, Stage};

use hooks::run_hooks;
use namespaces::{chroot, join_namespaces, new_namespaces, pivot_root};
use setup::prepare_process_console;
pub(crate) use setup::{exec_process, prepare_process};
use steps::{run_steps, write_file};

/// A failure in the child: where, which step, and the errno (or 1000 + exit
/// status for a hook that failed, 2000 for a hook that timed out).
#[derive(Debug, Clone, Copy)]
pub struct Fail {
    pub stage: Stage,
    pub index: u32,
    pub errno: i32,
}

pub const HOOK_STATUS_BASE: i32 = 1000;
/// The `Stage::Exec` index of marking fds 3+ close-on-exec.
pub const CLOEXEC_STEP: usize = u32::MAX as usize;
pub const HOOK_TIMEOUT: i32 = 2000;

type R<T = ()> = Result<T, Fail>;

fn fail(stage: Stage, index: usize) -> Fail {
    Fail {
        stage,
        index: index as u32,
        errno: errno(),
    }
}

fn check(rc: libc::c_long, stage: Stage, index: usize) -> R<libc::c_long> {
    if rc < 0 {
        Err(fail(stage, index))
    } else {
        Ok(rc)
    }
}

/// Entry point of the container's init after clone. Never returns.
pub fn run_init(plan: &mut InitPlan, chan: &Channel) -> ! {
    let Err(f) = init(plan, chan);
    report(chan, f);
}

/// Entry point of an `exec`'d process after fork. Never returns.
pub fn run_exec(
    plan: &ProcessPlan,
    joins: &[(std::os::fd::OwnedFd, libc::c_int)],
    chan: &Channel,
) -> ! {
    let r = (|| -> R<Infallible> {
        reset_signals();
        expect(chan, Msg::Go)?;
        for (i, (fd, typ)) in joins.iter().enumerate() {
            use std::os::fd::AsRawFd;
            check(
                // SAFETY: setns on an fd we own; affects only this process.
                unsafe { libc::setns(fd.as_raw_fd(), *typ) } as _,
                Stage::Namespaces,
                i,
            )?;
        }
        let idx = prepare_process(plan, chan, false)?;
        chan.send(Msg::Ready).map_err(proto)?;
        exec_process(plan, idx)
    })();
    let Err(f) = r;
    report(chan, f);
}

fn report(chan: &Channel, f: Fail) -> ! {
    let _ = chan.send(Msg::Fail {
        stage: f.stage,
        index: f.index,
        errno: f.errno,
    });
    // SAFETY: _exit is async-signal-safe and ends this process only.
    unsafe { libc::_exit(1) }
}

fn proto(e: i32) -> Fail {
    Fail {
        stage: Stage::Protocol,
        index: 0,
        errno: e,
    }
}

fn expect(chan: &Channel, want: Msg) -> R {
    match chan.recv() {
        Ok(Some(m)) if m == want => Ok(()),
        Ok(None) => {
            // The parent is gone: nobody will start us.
            // SAFETY: ending this process is always sound.
            unsafe { libc::_exit(1) }
        }
        Ok(Some(_)) => Err(proto(libc::EPROTO)),
        Err(e) => Err(proto(e)),
    }
}

fn reset_signals() {
    // SAFETY: sigprocmask/signal are async-signal-safe; an empty set and
    // SIG_DFL are always valid arguments.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn init(plan: &mut InitPlan, chan: &Channel) -> R<Infallible> {
    reset_signals();
    join_namespaces(plan, chan)?;
    expect(chan, Msg::Go)?;
    new_namespaces(plan, chan)?;
    if let Some(h) = &plan.hostname {
        check(
            // SAFETY: h is a valid C string; its length is passed.
            unsafe { libc::sethostname(h.as_ptr(), h.as_bytes().len()) } as _,
            Stage::Hostname,
            0,
        )?;
    }
    if let Some(d) = &plan.domainname {
        check(
            // SAFETY: as above.
            unsafe { libc::setdomainname(d.as_ptr(), d.as_bytes().len()) } as _,
            Stage::Hostname,
            1,
        )?;
    }
    if let Some(v) = &plan.process.oom_score_adj {
        write_file(c"/proc/self/oom_score_adj", v).map_err(|e| Fail {
            stage: Stage::Rlimits,
            index: u32::MAX,
            errno: e,
        })?;
    }
    run_steps(&plan.pre_pivot, Stage::Mounts)?;

    chan.send(Msg::HooksNow).map_err(proto)?;
    match chan.recv() {
        Ok(Some(Msg::State(n))) if (n as usize) <= plan.state_buf.len() => {
            chan.recv_bytes(&mut plan.state_buf[..n as usize])
                .map_err(proto)?;
            plan.state_len = n as usize;
        }
        Ok(None) => {
            // SAFETY: parent gone; end quietly.
            unsafe { libc::_exit(1) }
        }
        Ok(_) => return Err(proto(libc::EPROTO)),
        Err(e) => return Err(proto(e)),
    }
    expect(chan, Msg::HooksDone)?;
    let state = &plan.state_buf[..plan.state_len];
    run_hooks(&plan.create_hooks, state, Stage::CreateHooks)?;
    match plan.root_change {
        RootChange::PivotRoot => pivot_root(&plan.rootfs)?,
        RootChange::Chroot => chroot(&plan.rootfs)?,
    }
    run_steps(&plan.post_pivot, Stage::PostPivotMounts)?;
    // SAFETY: setsid has no memory-safety preconditions.
    unsafe { libc::setsid() };
    // The exec fifo was opened read-write by the parent and inherited (see
    // InitPlan::exec_fifo); `start` writes a byte into it.
    let fifo = plan.exec_fifo;
    let idx = prepare_process_console(&plan.process, chan, true, plan.console_bind)?;
    chan.send(Msg::Ready).map_err(proto)?;

    // Wait for `start`.
    match fifo {
        Some(fd) => {
            let mut b = [0u8; 1];
            loop {
                // SAFETY: reading one byte into a valid buffer from our fd.
                let n = unsafe { libc::read(fd, b.as_mut_ptr().cast(), 1) };
                if n == 1 {
                    break;
                }
                if n < 0 && errno() == libc::EINTR {
                    continue;
                }
                return Err(fail(Stage::WaitStart, 1));
            }
            // SAFETY: fd is ours.
            unsafe { libc::close(fd) };
        }
        None => expect(chan, Msg::Start)?,
    }
    run_hooks(&plan.start_hooks, state, Stage::StartHooks)?;
    exec_process(&plan.process, idx)
}
