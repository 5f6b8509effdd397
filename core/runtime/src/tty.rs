//! Terminals: sending a pty master to a `--console-socket` (as runc does),
//! raw mode and window sizes for relaying a pty to our own stdio in
//! foreground `run`/`exec -t`. The one home of the winsize ioctls for every
//! crate of berth.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use crate::error::{Result, RuntimeError};

/// Connects to the console socket and sends the pty master (SCM_RIGHTS).
pub fn send_to_console_socket(path: &Path, master: &OwnedFd) -> Result<()> {
    let sock = UnixStream::connect(path)
        .map_err(|e| RuntimeError::io("connecting to the console socket", path, e))?;
    let fds = [master.as_raw_fd()];
    let name = b"/dev/ptmx";
    let iov = [std::io::IoSlice::new(name)];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| RuntimeError::sys(format!("sending the terminal to {}", path.display()), e))?;
    Ok(())
}

/// Puts a terminal into raw mode and restores it on drop.
pub struct RawMode {
    fd: OwnedFd,
    saved: nix::sys::termios::Termios,
}

impl std::fmt::Debug for RawMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawMode").field("fd", &self.fd).finish()
    }
}

impl RawMode {
    /// Raw mode for stdin when it is a terminal.
    pub fn stdin() -> Option<RawMode> {
        use nix::sys::termios::*;
        let fd = std::io::stdin().as_fd().try_clone_to_owned().ok()?;
        let saved = tcgetattr(&fd).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(&fd, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ =
            nix::sys::termios::tcsetattr(&self.fd, nix::sys::termios::SetArg::TCSANOW, &self.saved);
    }
}

/// Sets the window size of the terminal `fd` (a pty master or peer, or our
/// own terminal). Async-signal-safe: one ioctl, no allocation, so the init
/// uses it between clone and execve too.
pub fn set_winsize(fd: impl AsFd, rows: u16, cols: u16) -> std::io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize through a valid pointer.
    if unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), libc::TIOCSWINSZ, &ws) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The window size of the terminal `fd`, as (rows, columns).
pub fn get_winsize(fd: impl AsFd) -> std::io::Result<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize through a valid pointer.
    if unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), libc::TIOCGWINSZ, &mut ws) } == 0 {
        Ok((ws.ws_row, ws.ws_col))
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Copies the window size of `from` (our terminal) to `to` (the pty).
pub fn copy_winsize(from: BorrowedFd<'_>, to: BorrowedFd<'_>) {
    if let Ok((rows, cols)) = get_winsize(from) {
        let _ = set_winsize(to, rows, cols);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_size_set_on_a_pty_is_read_back() {
        let pty = nix::pty::openpty(None, None).unwrap();
        set_winsize(&pty.master, 40, 132).unwrap();
        assert_eq!(get_winsize(&pty.slave).unwrap(), (40, 132));
        let file = std::fs::File::open("/dev/null").unwrap();
        assert!(get_winsize(&file).is_err(), "not a terminal");
    }
}
