//! The streams of a container or exec: a hijacked connection copied to and
//! from our terminal (with the detach keys), its size kept in step with
//! ours, our signals forwarded, and `logs`.

use std::io::Write as _;

use anyhow::Result;
use hyper::Method;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::api::containers::{ContainerInspect, WaitResponse};
use crate::client::create;
use crate::client::http::{enc, next_chunk, Client};

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

/// The detach sequence a client watches for (docker's default ctrl-p,ctrl-q).
pub(super) fn detach_sequence(keys: Option<&str>) -> Result<Vec<u8>> {
    Ok(berth_engine::containers::stream::parse_detach_keys(
        keys.unwrap_or(""),
    )?)
}

/// Keeps the container's terminal the size of ours (now and on SIGWINCH).
pub(super) fn watch_size(c: &Client, path: String) -> tokio::task::JoinHandle<()> {
    let c = c.clone();
    tokio::spawn(async move {
        let send = |c: Client, path: String| async move {
            let (h, w) = create::terminal_size();
            if h > 0 {
                let _ = c
                    .call(Method::POST, &format!("{path}?h={h}&w={w}"), None)
                    .await;
            }
        };
        send(c.clone(), path.clone()).await;
        let Ok(mut sig) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        else {
            return;
        };
        while sig.recv().await.is_some() {
            send(c.clone(), path.clone()).await;
        }
    })
}

/// Forwards SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2 to the container (docker's sig-proxy).
pub(super) fn proxy_signals(c: &Client, id: &str) -> tokio::task::JoinHandle<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let c = c.clone();
    let id = id.to_string();
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
            let _ = c
                .call(
                    Method::POST,
                    &format!("/containers/{id}/kill?signal={name}"),
                    None,
                )
                .await;
        }
    })
}

/// Reads a `wait` answer to its end: the exit status, or `None` when the
/// answer is not one.
pub(super) async fn wait_result(wait: &mut hyper::body::Incoming) -> Result<Option<WaitResponse>> {
    let mut body = Vec::new();
    while let Some(chunk) = next_chunk(wait).await {
        body.extend_from_slice(&chunk?);
    }
    Ok(serde_json::from_slice(&body).ok())
}

pub async fn logs(
    c: &Client,
    id: &str,
    follow: bool,
    tail: Option<&str>,
    timestamps: bool,
    since: Option<&str>,
) -> Result<i32> {
    let info: ContainerInspect = c
        .json(Method::GET, &format!("/containers/{}/json", enc(id)), None)
        .await?;
    let tty = info.config.tty;
    let mut q = format!(
        "/containers/{}/logs?stdout=1&stderr=1&follow={}&timestamps={}",
        enc(id),
        follow as u8,
        timestamps as u8
    );
    if let Some(t) = tail {
        q.push_str(&format!("&tail={}", enc(t)));
    }
    if let Some(s) = since {
        q.push_str(&format!("&since={}", enc(s)));
    }
    let mut body = c.stream(Method::GET, &q, None).await?;
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    let mut pending: Vec<u8> = Vec::new();
    while let Some(chunk) = next_chunk(&mut body).await {
        let chunk = chunk?;
        if tty {
            let _ = out.write_all(&chunk);
            let _ = out.flush();
            continue;
        }
        pending.extend_from_slice(&chunk);
        while pending.len() >= 8 {
            let n = u32::from_be_bytes([pending[4], pending[5], pending[6], pending[7]]) as usize;
            if pending.len() < 8 + n {
                break;
            }
            let frame: Vec<u8> = pending.drain(..8 + n).collect();
            if frame[0] == 2 {
                let _ = err.write_all(&frame[8..]);
            } else {
                let _ = out.write_all(&frame[8..]);
                let _ = out.flush();
            }
        }
    }
    Ok(0)
}
