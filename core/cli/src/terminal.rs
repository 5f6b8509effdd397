//! Our side of a container's streams, for the client and the daemonless
//! mode alike: a stream (docker's multiplexed frames, or raw with a
//! terminal) copied to our stdout/stderr and our stdin to it, with the
//! detach keys; the container's terminal kept the size of ours; our
//! signals forwarded to the container (docker's sig-proxy).

use std::future::Future;
use std::io::Write as _;

use anyhow::Result;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Copies a hijacked stream to our stdout/stderr (demultiplexing docker's
/// frames unless `tty`) and our stdin to it; returns when the output ends.
/// With `keys` (the detach sequence), typing it ends the stream (the daemon
/// stops the attach) and `pump` returns true: the container runs on.
pub async fn pump<S>(io: S, tty: bool, stdin: bool, keys: Option<Vec<u8>>) -> Result<bool>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut r, mut w) = tokio::io::split(io);
    let detached = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = detached.clone();
    let input = tokio::spawn(async move {
        if !stdin {
            return;
        }
        let mut inp = tokio::io::stdin();
        let mut buf = vec![0u8; 16 << 10];
        let mut matched = 0usize;
        loop {
            match inp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Some(k) = keys.as_deref().filter(|k| !k.is_empty()) {
                        for &b in &buf[..n] {
                            matched = if b == k[matched] {
                                matched + 1
                            } else {
                                usize::from(b == k[0])
                            };
                            if matched == k.len() {
                                seen.store(true, std::sync::atomic::Ordering::SeqCst);
                                matched = 0;
                            }
                        }
                    }
                    if w.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
        // End of our input: half-close, the container sees EOF.
        let _ = w.shutdown().await;
        std::future::pending::<()>().await;
    });
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    if tty {
        let mut buf = vec![0u8; 32 << 10];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let _ = out.write_all(&buf[..n]);
                    let _ = out.flush();
                }
            }
        }
    } else {
        let mut hdr = [0u8; 8];
        let mut buf = Vec::new();
        while r.read_exact(&mut hdr).await.is_ok() {
            let n = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]) as usize;
            buf.resize(n, 0);
            if r.read_exact(&mut buf).await.is_err() {
                break;
            }
            if hdr[0] == 2 {
                let _ = err.write_all(&buf);
                let _ = err.flush();
            } else {
                let _ = out.write_all(&buf);
                let _ = out.flush();
            }
        }
    }
    input.abort();
    Ok(detached.load(std::sync::atomic::Ordering::SeqCst))
}

/// Calls `send(h, w)` with our terminal's size now and on every SIGWINCH.
pub fn on_resize<F, Fut>(send: F) -> tokio::task::JoinHandle<()>
where
    F: Fn(u16, u16) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let size = || crate::client::create::terminal_size();
        let (h, w) = size();
        if h > 0 {
            send(h, w).await;
        }
        let Ok(mut sig) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        else {
            return;
        };
        while sig.recv().await.is_some() {
            let (h, w) = size();
            if h > 0 {
                send(h, w).await;
            }
        }
    })
}

/// Calls `forward(name)` for each SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1
/// and SIGUSR2 we receive (docker's sig-proxy); we no longer die of them.
pub fn on_signals<F, Fut>(forward: F) -> tokio::task::JoinHandle<()>
where
    F: Fn(&'static str) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    use tokio::signal::unix::{signal, SignalKind};
    tokio::spawn(async move {
        let kinds = [
            (SignalKind::interrupt(), "SIGINT"),
            (SignalKind::terminate(), "SIGTERM"),
            (SignalKind::hangup(), "SIGHUP"),
            (SignalKind::quit(), "SIGQUIT"),
            (SignalKind::user_defined1(), "SIGUSR1"),
            (SignalKind::user_defined2(), "SIGUSR2"),
        ];
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
        for (k, name) in kinds {
            if let Ok(mut s) = signal(k) {
                let tx = tx.clone();
                tokio::spawn(async move {
                    while s.recv().await.is_some() {
                        let _ = tx.send(name);
                    }
                });
            }
        }
        while let Some(name) = rx.recv().await {
            forward(name).await;
        }
    })
}
