//! The stdio of an exec instance: the pty master the runtime hands over on
//! a console socket, and the bridge between the client's hijacked stream and
//! the process — docker's multiplexed frames over pipes, or raw through the
//! pty — which returns the exit code and gives the client's read half back
//! to be drained.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::exec::ExecEntry;

/// Receives the pty master the runtime sends on a console socket.
pub(super) fn recv_master(s: std::os::unix::net::UnixStream) -> std::io::Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<UnixAddr>(s.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::empty())
        .map_err(std::io::Error::from)?;
    for c in msg.cmsgs().map_err(std::io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: SCM_RIGHTS just installed `fd` in this process; nothing else owns it.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(std::io::Error::other("the runtime sent no terminal"))
}

fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(data.len() + 8);
    v.extend_from_slice(&[stream, 0, 0, 0]);
    v.extend_from_slice(&(data.len() as u32).to_be_bytes());
    v.extend_from_slice(data);
    v
}

/// Copies between the client and the exec process; returns its exit code.
pub(super) async fn bridge<S>(
    child: &mut tokio::process::Child,
    conn: S,
    master: Option<Arc<OwnedFd>>,
    x: &ExecEntry,
) -> (
    i32,
    Arc<tokio::sync::Mutex<tokio::io::WriteHalf<S>>>,
    Option<tokio::io::ReadHalf<S>>,
)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (cr, cw) = tokio::io::split(conn);
    // The client's input goes to the process until it ends; the read half
    // then comes back, so the client's last bytes can be drained.
    let stop = Arc::new(tokio::sync::Notify::new());
    let mut client_in = Some(cr);
    let cw = Arc::new(tokio::sync::Mutex::new(cw));
    let tty = x.config.tty;
    let mut tasks = Vec::new();
    // The runtime's own errors (before the process runs) reach the client as stderr.
    if let Some(mut err) = child.stderr.take() {
        let cw = cw.clone();
        tasks.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 16 << 10];
            while let Ok(n) = err.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let data = if tty {
                    buf[..n].to_vec()
                } else {
                    frame(2, &buf[..n])
                };
                if cw.lock().await.write_all(&data).await.is_err() {
                    break;
                }
            }
        }));
    }
    if let Some(mut out) = child.stdout.take() {
        let cw = cw.clone();
        tasks.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 32 << 10];
            while let Ok(n) = out.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                if cw
                    .lock()
                    .await
                    .write_all(&frame(1, &buf[..n]))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }));
    }
    let mut input = None;
    if let (Some(mut stdin), Some(mut cr)) = (
        child.stdin.take(),
        client_in.take_if(|_| x.config.attach_stdin && !tty),
    ) {
        let stop = stop.clone();
        input = Some(tokio::spawn(async move {
            tokio::select! {
                _ = tokio::io::copy(&mut cr, &mut stdin) => {}
                _ = stop.notified() => {}
            }
            cr
        }));
    } else if let Some(m) = &master {
        let _ = nix::fcntl::fcntl(
            m.as_ref(),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
        let afd = m.try_clone().ok().and_then(|fd| {
            super::async_fd(
                fd,
                tokio::io::Interest::READABLE | tokio::io::Interest::WRITABLE,
            )
            .ok()
        });
        if let Some(afd) = afd {
            let afd = Arc::new(afd);
            let reader = afd.clone();
            let cw2 = cw.clone();
            tasks.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 32 << 10];
                loop {
                    let Ok(mut g) = reader.readable().await else {
                        break;
                    };
                    match g.try_io(|f| {
                        nix::unistd::read(f.get_ref(), &mut buf).map_err(std::io::Error::from)
                    }) {
                        Ok(Ok(0)) | Ok(Err(_)) => break,
                        Ok(Ok(n)) => {
                            if cw2.lock().await.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        Err(_) => continue,
                    }
                }
            }));
            if let Some(mut cr) = client_in.take_if(|_| x.config.attach_stdin) {
                let stop = stop.clone();
                input = Some(tokio::spawn(async move {
                    tokio::select! {
                        _ = pty_input(&mut cr, &afd) => {}
                        _ = stop.notified() => {}
                    }
                    cr
                }));
            }
        }
    }
    let status = child.wait().await;
    for t in tasks {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), t).await;
    }
    if let Some(i) = input {
        stop.notify_one();
        client_in = i.await.ok();
    }
    let code = match status {
        Ok(s) => s.code().unwrap_or(137),
        Err(_) => 126,
    };
    (code, cw, client_in)
}

/// Copies a client's input to an exec's pty until the client closes it.
async fn pty_input<R: AsyncRead + Unpin>(cr: &mut R, afd: &tokio::io::unix::AsyncFd<OwnedFd>) {
    let mut buf = vec![0u8; 16 << 10];
    loop {
        let n = match cr.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut off = 0;
        while off < n {
            let Ok(mut g) = afd.writable().await else {
                return;
            };
            match g.try_io(|f| {
                nix::unistd::write(f.get_ref(), &buf[off..n]).map_err(std::io::Error::from)
            }) {
                Ok(Ok(k)) => off += k,
                Ok(Err(_)) => return,
                Err(_) => continue,
            }
        }
    }
}
