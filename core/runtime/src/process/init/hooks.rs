//! Hooks run from inside the container (createContainer, startContainer):
//! fork, the state JSON on stdin, wait with the hook's timeout.

use super::{Fail, HOOK_STATUS_BASE, HOOK_TIMEOUT, R};
use crate::process::plan::HookPlan;
use crate::process::sync::{errno, write_all, Stage};

/// Runs `hooks` in order; the first failure stops them, reported at `stage`.
pub(super) fn run_hooks(hooks: &[HookPlan], state: &[u8], stage: Stage) -> R {
    for (i, h) in hooks.iter().enumerate() {
        run_hook(h, state).map_err(|e| Fail {
            stage,
            index: i as u32,
            errno: e,
        })?;
    }
    Ok(())
}

/// Runs one hook: fork, the state on stdin, wait with its timeout.
fn run_hook(h: &HookPlan, state: &[u8]) -> Result<(), i32> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(errno());
    }
    // SAFETY: fork-like clone in a single-threaded process.
    let pid = unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_ulong, 0, 0, 0, 0) }
        as libc::pid_t;
    if pid < 0 {
        return Err(errno());
    }
    if pid == 0 {
        // SAFETY: only async-signal-safe calls before execve / _exit.
        unsafe {
            libc::dup2(fds[0], 0);
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            libc::execve(h.path.as_ptr(), h.args.as_ptr(), h.env.as_ptr());
            libc::_exit(127);
        }
    }
    // SAFETY: closing our copy of the read end; SIGPIPE ignored so a hook that
    // does not read its stdin cannot kill us.
    unsafe {
        libc::close(fds[0]);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let _ = write_all(fds[1], state);
    // SAFETY: fds[1] is ours.
    unsafe { libc::close(fds[1]) };
    let start = now_ms();
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            break;
        }
        if r < 0 && errno() != libc::EINTR {
            return Err(errno());
        }
        if h.timeout_secs > 0 && now_ms() - start > h.timeout_secs * 1000 {
            // SAFETY: signalling and reaping our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return Err(HOOK_TIMEOUT);
        }
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 1_000_000,
        };
        // SAFETY: ts is valid; the remainder pointer may be null.
        unsafe { libc::nanosleep(&ts, std::ptr::null_mut()) };
    }
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else if libc::WIFEXITED(status) {
        Err(HOOK_STATUS_BASE + libc::WEXITSTATUS(status))
    } else {
        Err(HOOK_STATUS_BASE + 128 + libc::WTERMSIG(status))
    }
}

fn now_ms() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
}
