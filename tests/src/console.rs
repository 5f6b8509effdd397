//! The receiving end of `--console-socket`: a unix socket on which the
//! runtime sends the pty master with SCM_RIGHTS.

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// A listening console socket in its own temporary directory.
#[derive(Debug)]
pub struct ConsoleSocket {
    _dir: TempDir,
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    pub fn new() -> ConsoleSocket {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-console-")
            .tempdir()
            .expect("temp dir");
        let path = dir.path().join("console.sock");
        let listener = UnixListener::bind(&path).expect("bind console socket");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        ConsoleSocket {
            _dir: dir,
            path,
            listener,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts the runtime's connection and returns the pty master it sends.
    #[track_caller]
    pub fn receive(&self, timeout: Duration) -> Pty {
        // Done with the connection, or with an error other than "not yet".
        let accepted = crate::poll::poll(timeout, || match self.listener.accept() {
            Ok((s, _)) => Some(Ok(s)),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
            Err(e) => Some(Err(e)),
        });
        let stream = match accepted {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => panic!("accepting on the console socket: {e}"),
            Err(_) => panic!("no connection on the console socket within {timeout:?}"),
        };
        stream.set_nonblocking(false).expect("blocking stream");
        stream
            .set_read_timeout(Some(timeout))
            .expect("read timeout");
        let mut buf = [0u8; 4096];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<UnixAddr>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::empty(),
        )
        .expect("recvmsg on the console socket");
        for c in msg.cmsgs().expect("control messages") {
            if let ControlMessageOwned::ScmRights(fds) = c {
                if let Some(&fd) = fds.first() {
                    // SAFETY: SCM_RIGHTS just installed `fd` in this process; nothing else owns it.
                    let master = unsafe { OwnedFd::from_raw_fd(fd) };
                    return Pty { master };
                }
            }
        }
        panic!("the runtime sent no file descriptor on the console socket");
    }
}

impl Default for ConsoleSocket {
    fn default() -> Self {
        ConsoleSocket::new()
    }
}

/// A pty master received from the runtime.
#[derive(Debug)]
pub struct Pty {
    pub master: OwnedFd,
}

impl Pty {
    pub fn write_all(&self, bytes: &[u8]) {
        std::fs::File::from(self.master.try_clone().expect("dup pty"))
            .write_all(bytes)
            .expect("write to pty");
    }

    /// Reads until the slave side is closed (EIO) or `timeout` passes.
    pub fn read_to_end(&self, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let mut file = std::fs::File::from(self.master.try_clone().expect("dup pty"));
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
            if poll(&mut fds, PollTimeout::from(100u16)).unwrap_or(0) == 0 {
                continue;
            }
            match file.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}
