//! Waiting for a foreground container process: forwards our signals to it,
//! relays its terminal, and returns its exit code (128 + n for signal n).

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::{Result, RuntimeError};

/// The signals a foreground runtime forwards to the container.
pub fn forwarded() -> SigSet {
    let mut s = SigSet::empty();
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
        Signal::SIGCHLD,
        Signal::SIGCONT,
    ] {
        s.add(sig);
    }
    s
}

/// Blocks the forwarded signals so they queue for the signalfd (children
/// reset their mask before exec).
pub fn block_signals() -> Result<()> {
    forwarded()
        .thread_block()
        .map_err(|e| RuntimeError::sys("blocking signals", e))
}

pub fn exit_code(st: WaitStatus) -> Option<i32> {
    match st {
        WaitStatus::Exited(_, c) => Some(c),
        WaitStatus::Signaled(_, s, _) => Some(128 + s as i32),
        _ => None,
    }
}

fn copy(from: i32, to: i32) -> bool {
    let mut buf = [0u8; 8192];
    // SAFETY: buf is valid for its length.
    let n = unsafe { libc::read(from, buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return false;
    }
    crate::process::sync::write_all(to, &buf[..n as usize]).is_ok()
}

/// Waits for `pid`, forwarding signals and relaying `pty` (if any) to our stdio.
pub fn wait(pid: i32, pty: Option<&OwnedFd>) -> Result<i32> {
    let sfd = SignalFd::with_flags(&forwarded(), SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| RuntimeError::sys("signalfd", e))?;
    let _raw = pty.and_then(|_| crate::tty::RawMode::stdin());
    if let Some(m) = pty {
        crate::tty::copy_winsize(std::io::stdin().as_fd(), m.as_fd());
    }
    let mut stdin_open = pty.is_some();
    let target = Pid::from_raw(pid);
    loop {
        let waited = waitpid(target, Some(WaitPidFlag::WNOHANG));
        if waited == Err(nix::errno::Errno::ECHILD) {
            // Not our child (should not happen: the init is cloned with
            // CLONE_PARENT); its status is lost, so report a failure.
            tracing::warn!("process {pid} is not our child; its exit status is unknown");
            return Ok(255);
        }
        if let Ok(st) = waited {
            if let Some(code) = exit_code(st) {
                if let Some(m) = pty {
                    // Drain what the process wrote before it exited.
                    while poll(
                        &mut [PollFd::new(m.as_fd(), PollFlags::POLLIN)],
                        PollTimeout::ZERO,
                    )
                    .unwrap_or(0)
                        > 0
                        && copy(m.as_raw_fd(), 1)
                    {}
                }
                return Ok(code);
            }
        }
        let stdin = std::io::stdin();
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if let Some(m) = pty {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
            if stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
        }
        match poll(&mut fds, PollTimeout::from(1000u16)) {
            Err(nix::errno::Errno::EINTR) | Ok(0) => continue,
            Err(e) => return Err(RuntimeError::sys("poll", e)),
            Ok(_) => {}
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        if ready[0] {
            while let Ok(Some(info)) = sfd.read_signal() {
                let sig = info.ssi_signo as i32;
                if sig == libc::SIGCHLD {
                    continue;
                }
                if sig == libc::SIGWINCH {
                    if let Some(m) = pty {
                        crate::tty::copy_winsize(std::io::stdin().as_fd(), m.as_fd());
                    }
                    continue;
                }
                // SAFETY: sending a signal to the container's process.
                unsafe { libc::kill(pid, sig) };
            }
        }
        if let Some(m) = pty {
            if ready.get(1) == Some(&true) && !copy(m.as_raw_fd(), 1) {
                // The terminal closed: wait for the process itself.
                let st = waitpid(target, None).map_err(|e| RuntimeError::sys("waitpid", e))?;
                return Ok(exit_code(st).unwrap_or(1));
            }
            if ready.get(2) == Some(&true) && !copy(0, m.as_raw_fd()) {
                stdin_open = false;
            }
        }
    }
}
