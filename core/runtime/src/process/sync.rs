//! The parent/child protocol over one socketpair.
//!
//! ```text
//!  parent (berth runtime)                 child (container init)
//!    clone ───────────────────────────────▶ waits for Go
//!    [user ns] write uid/gid maps
//!    add pid to cgroup, send Go ──────────▶ join/unshare namespaces, hostname,
//!                                           mount rootfs, /proc, /dev, mounts
//!         ◀──────────────────── HooksNow   (before pivot_root)
//!    run createRuntime + prestart hooks
//!    send State(json), HooksDone ─────────▶ run createContainer hooks, pivot_root,
//!                                           sysctl, masks, [pty → PtyMaster + fd],
//!                                           rlimits, user, caps, find the binary
//!         ◀──────────────────── Ready
//!    record state; exit (create) or send Start (run)
//!                                           wait for start (exec fifo or Start),
//!                                           startContainer hooks, seccomp, execve
//! ```
//!
//! Any failure in the child is reported as `Fail { stage, index, errno }`; the
//! parent owns the plan and turns that into a message naming the step. Messages
//! are fixed-size records so the child never allocates: everything here is
//! async-signal-safe (read, write, sendmsg, recvmsg).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Declares [`Stage`] and its wire decoding from one list, so the two
/// cannot drift apart.
macro_rules! stages {
    ($first:ident, $($name:ident),* $(,)?) => {
        /// Where in the init sequence the child was when it failed.
        #[repr(u32)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Stage {
            $first = 1,
            $($name),*
        }

        impl Stage {
            /// Decodes a stage number; an unknown one is a protocol error.
            pub fn from_u32(v: u32) -> Stage {
                [Stage::$first, $(Stage::$name),*]
                    .into_iter()
                    .find(|s| *s as u32 == v)
                    .unwrap_or(Stage::Protocol)
            }
        }
    };
}

stages! {
    Namespaces,
    Hostname,
    Mounts,
    CreateHooks,
    PivotRoot,
    Sysctl,
    PostPivotMounts,
    Terminal,
    Rlimits,
    Cwd,
    Identity,
    Capabilities,
    ExecLookup,
    WaitStart,
    StartHooks,
    Seccomp,
    Exec,
    AppArmor,
    Protocol,
}

/// One protocol record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Msg {
    // child → parent
    Fail {
        stage: Stage,
        index: u32,
        errno: i32,
    },
    HooksNow,
    /// Slow path: a new user namespace was unshared; write its maps.
    NeedMaps,
    PtyMaster,
    Ready,
    /// Slow path: the pid of the real init (forked after unsharing the pid ns).
    InitPid(i32),
    // parent → child
    Go,
    /// The container state JSON follows: this many bytes.
    State(u32),
    HooksDone,
    Start,
}

const REC: usize = 16;

impl Msg {
    fn encode(self) -> [u8; REC] {
        let (k, a, b, c): (u32, u32, i32, i32) = match self {
            Msg::Fail {
                stage,
                index,
                errno,
            } => (1, stage as u32, index as i32, errno),
            Msg::HooksNow => (2, 0, 0, 0),
            Msg::PtyMaster => (3, 0, 0, 0),
            Msg::Ready => (4, 0, 0, 0),
            Msg::InitPid(p) => (5, 0, p, 0),
            Msg::NeedMaps => (6, 0, 0, 0),
            Msg::Go => (10, 0, 0, 0),
            Msg::State(n) => (11, n, 0, 0),
            Msg::HooksDone => (12, 0, 0, 0),
            Msg::Start => (13, 0, 0, 0),
        };
        let mut out = [0u8; REC];
        out[0..4].copy_from_slice(&k.to_ne_bytes());
        out[4..8].copy_from_slice(&a.to_ne_bytes());
        out[8..12].copy_from_slice(&b.to_ne_bytes());
        out[12..16].copy_from_slice(&c.to_ne_bytes());
        out
    }

    fn decode(buf: &[u8; REC]) -> Option<Msg> {
        let w = |i: usize| u32::from_ne_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
        let (k, a, b, c) = (w(0), w(4), w(8) as i32, w(12) as i32);
        Some(match k {
            1 => Msg::Fail {
                stage: Stage::from_u32(a),
                index: b as u32,
                errno: c,
            },
            2 => Msg::HooksNow,
            3 => Msg::PtyMaster,
            4 => Msg::Ready,
            5 => Msg::InitPid(b),
            6 => Msg::NeedMaps,
            10 => Msg::Go,
            11 => Msg::State(a),
            12 => Msg::HooksDone,
            13 => Msg::Start,
            _ => return None,
        })
    }
}

/// One end of the socketpair.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

/// Creates the socketpair (both ends close-on-exec).
pub fn pair() -> nix::Result<(Channel, Channel)> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Async-signal-safe: one `write` of a fixed record.
    pub fn send(&self, msg: Msg) -> Result<(), i32> {
        let rec = msg.encode();
        write_all(self.raw(), &rec)
    }

    /// Async-signal-safe: one `read` of a fixed record. `Ok(None)` on EOF.
    pub fn recv(&self) -> Result<Option<Msg>, i32> {
        let mut rec = [0u8; REC];
        loop {
            // SAFETY: rec is a valid writable buffer of REC bytes.
            let n = unsafe { libc::read(self.raw(), rec.as_mut_ptr().cast(), REC) };
            if n < 0 {
                let e = errno();
                if e == libc::EINTR {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                return Ok(None);
            }
            if n as usize != REC {
                return Err(libc::EPROTO);
            }
            return Msg::decode(&rec).map(Some).ok_or(libc::EPROTO);
        }
    }

    /// Async-signal-safe: reads exactly `buf.len()` bytes of a payload.
    pub fn recv_bytes(&self, buf: &mut [u8]) -> Result<(), i32> {
        let mut off = 0;
        while off < buf.len() {
            // SAFETY: the pointer and length describe the unfilled tail of buf.
            let n =
                unsafe { libc::read(self.raw(), buf[off..].as_mut_ptr().cast(), buf.len() - off) };
            if n < 0 {
                if errno() == libc::EINTR {
                    continue;
                }
                return Err(errno());
            }
            if n == 0 {
                return Err(libc::EPIPE);
            }
            off += n as usize;
        }
        Ok(())
    }

    /// Sends a payload in SeqPacket-sized chunks.
    pub fn send_bytes(&self, data: &[u8]) -> Result<(), i32> {
        for chunk in data.chunks(4096) {
            write_all(self.raw(), chunk)?;
        }
        Ok(())
    }

    /// Async-signal-safe: sends a record with one fd attached (SCM_RIGHTS).
    pub fn send_fd(&self, msg: Msg, fd: RawFd) -> Result<(), i32> {
        let rec = msg.encode();
        let mut iov = libc::iovec {
            iov_base: rec.as_ptr() as *mut libc::c_void,
            iov_len: REC,
        };
        // Room for one fd, aligned as cmsghdr requires.
        let mut cbuf = [0u64; 4];
        // SAFETY: a zeroed msghdr is a valid "empty" header; we fill in the fields below.
        let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
        hdr.msg_iov = &mut iov;
        hdr.msg_iovlen = 1;
        hdr.msg_control = cbuf.as_mut_ptr().cast();
        // SAFETY: CMSG_SPACE is a pure size computation.
        hdr.msg_controllen =
            unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
        // SAFETY: msg_control points at cbuf, which is large enough for one cmsg with an int.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&hdr);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
        }
        // SAFETY: hdr describes valid buffers that live until the call returns.
        let n = unsafe { libc::sendmsg(self.raw(), &hdr, libc::MSG_NOSIGNAL) };
        if n < 0 {
            Err(errno())
        } else {
            Ok(())
        }
    }

    /// Parent side: receives one fd sent with `send_fd`.
    pub fn recv_fd(&self) -> nix::Result<(Option<Msg>, Option<OwnedFd>)> {
        use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
        let mut rec = [0u8; REC];
        let mut iov = [std::io::IoSliceMut::new(&mut rec)];
        let mut cmsg = nix::cmsg_space!(RawFd);
        let r = recvmsg::<()>(
            self.raw(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )?;
        let mut fd = None;
        for c in r.cmsgs()? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                for f in fds {
                    // SAFETY: the kernel just installed this fd for us; we own it.
                    let owned = unsafe { OwnedFd::from_raw_fd(f) };
                    if fd.is_none() {
                        fd = Some(owned);
                    }
                }
            }
        }
        let n = r.bytes;
        let msg = if n == REC { Msg::decode(&rec) } else { None };
        Ok((msg, fd))
    }
}

pub(crate) fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Async-signal-safe write of a whole buffer.
pub(crate) fn write_all(fd: RawFd, mut buf: &[u8]) -> Result<(), i32> {
    while !buf.is_empty() {
        // SAFETY: buf is a valid readable slice.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return Err(errno());
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_decode_from_their_numbers() {
        for s in [
            Stage::Namespaces,
            Stage::Mounts,
            Stage::Exec,
            Stage::Protocol,
        ] {
            assert_eq!(Stage::from_u32(s as u32), s);
        }
        assert_eq!(Stage::Namespaces as u32, 1);
        assert_eq!(Stage::from_u32(0), Stage::Protocol);
        assert_eq!(Stage::from_u32(999), Stage::Protocol);
    }

    #[test]
    fn records_round_trip() {
        let (a, b) = pair().unwrap();
        for m in [
            Msg::Go,
            Msg::Ready,
            Msg::State(1234),
            Msg::InitPid(42),
            Msg::Fail {
                stage: Stage::Rlimits,
                index: 3,
                errno: libc::EPERM,
            },
        ] {
            a.send(m).unwrap();
            assert_eq!(b.recv().unwrap(), Some(m));
        }
        drop(a);
        assert_eq!(b.recv().unwrap(), None);
    }

    #[test]
    fn passes_an_fd() {
        let (a, b) = pair().unwrap();
        let f = std::fs::File::open("/dev/null").unwrap();
        a.send_fd(Msg::PtyMaster, f.as_raw_fd()).unwrap();
        let (m, fd) = b.recv_fd().unwrap();
        assert_eq!(m, Some(Msg::PtyMaster));
        assert!(fd.is_some());
    }
}
