//! A client's stream to a container's stdio (docker's `attach`): the shim
//! sends docker's multiplexed frames; a container with a terminal reaches
//! the client raw. Input goes to the container until the client closes it
//! or types the detach keys (ctrl-p ctrl-q unless set otherwise).

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::oneshot;

use super::{Containers, Status};
use crate::error::{ContainerOp, EngineError, Result};
use crate::monitor::{connect_attach, Request};

/// An attach made before the container started; `start` connects it.
pub(crate) struct Pending {
    pub req: Request,
    pub reply: oneshot::Sender<Result<UnixStream, String>>,
}

/// What an attach asks for.
#[derive(Debug, Clone, Default)]
pub struct AttachOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// docker's `detachKeys` (`ctrl-p,ctrl-q`); empty for the default.
    pub detach_keys: String,
}

/// Parses docker's detach keys: `ctrl-a`…`ctrl-z`, `ctrl-@`, `ctrl-[`, …, or single characters.
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>> {
    let s = if s.is_empty() { "ctrl-p,ctrl-q" } else { s };
    s.split(',')
        .map(|k| {
            if let Some(c) = k.strip_prefix("ctrl-") {
                let c = c.as_bytes();
                if c.len() == 1 {
                    let b = c[0].to_ascii_lowercase();
                    if b.is_ascii_lowercase() {
                        return Ok(b - b'a' + 1);
                    }
                    if let Some(i) = b"@[\\]^_".iter().position(|x| *x == b) {
                        return Ok(if i == 0 { 0 } else { 26 + i as u8 });
                    }
                }
            } else if k.len() == 1 {
                return Ok(k.as_bytes()[0]);
            }
            Err(EngineError::invalid(
                "detach keys",
                s,
                format!("Invalid detach keys ({s}) provided: {k:?} is not a key"),
            ))
        })
        .collect()
}

/// An attach that has its stream to the monitor, or will once the container starts.
pub struct Attached {
    stream: Option<UnixStream>,
    pending: Option<oneshot::Receiver<Result<UnixStream, String>>>,
    tty: bool,
    opts: AttachOptions,
    keys: Vec<u8>,
}

impl std::fmt::Debug for Attached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attached").field("tty", &self.tty).finish()
    }
}

impl Attached {
    /// Whether the container has a terminal (the stream is raw, not multiplexed).
    pub fn tty(&self) -> bool {
        self.tty
    }

    /// No detach keys: everything typed goes to the container (the
    /// daemonless mode, where nobody would look after a detached container).
    pub fn without_detach_keys(mut self) -> Self {
        self.keys.clear();
        self
    }

    /// Copies between `conn` and the container until the container's output
    /// ends, the client goes away or types the detach keys.
    pub async fn run<S>(mut self, conn: S) -> Result<(), String>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let shim = match (self.stream.take(), self.pending.take()) {
            (Some(s), _) => s,
            (None, Some(rx)) => match rx.await {
                Ok(r) => r?,
                Err(_) => return Err("the container was removed".into()),
            },
            (None, None) => return Err("nothing to attach to".into()),
        };
        let (mut sr, mut sw) = shim.into_split();
        let (mut cr, mut cw) = tokio::io::split(conn);
        let tty = self.tty;
        let output = async move {
            let mut hdr = [0u8; 8];
            let mut buf = Vec::new();
            loop {
                if sr.read_exact(&mut hdr).await.is_err() {
                    break;
                }
                let n = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]) as usize;
                buf.resize(n, 0);
                if sr.read_exact(&mut buf).await.is_err() {
                    break;
                }
                let w = if tty {
                    cw.write_all(&buf).await
                } else {
                    match cw.write_all(&hdr).await {
                        Ok(()) => cw.write_all(&buf).await,
                        Err(e) => Err(e),
                    }
                };
                if w.is_err() || cw.flush().await.is_err() {
                    break;
                }
            }
            let _ = cw.shutdown().await;
        };
        let keys = self.keys.clone();
        let stdin = self.opts.stdin;
        // The client's input goes to the container until the output ends;
        // the read half then comes back so its last bytes can be drained.
        let stop = std::sync::Arc::new(tokio::sync::Notify::new());
        let stopped = stop.clone();
        let mut input = tokio::spawn(async move {
            let detached = if stdin {
                tokio::select! {
                    d = forward(&mut cr, &mut sw, &keys) => d,
                    _ = stopped.notified() => false,
                }
            } else {
                // Hold the client's side open; its close ends nothing here.
                stopped.notified().await;
                false
            };
            (cr, detached)
        });
        tokio::select! {
            _ = output => {
                stop.notify_one();
                if let Ok((mut cr, _)) = (&mut input).await {
                    drain(&mut cr).await;
                }
            }
            _ = &mut input => {}
        }
        Ok(())
    }
}

/// Copies the client's input to the monitor until the detach keys (true)
/// or the end of the input (then the container's stdin is closed and this
/// waits on: the output still flows).
async fn forward<R, W>(cr: &mut R, sw: &mut W, keys: &[u8]) -> bool
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 16 << 10];
    let mut matched = 0usize;
    loop {
        let n = match cr.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = sw.shutdown().await;
                std::future::pending::<()>().await;
                0
            }
            Ok(n) => n,
        };
        // Detach keys: forward what is not part of the sequence.
        let mut out = Vec::with_capacity(n);
        for &b in &buf[..n] {
            if !keys.is_empty() && b == keys[matched] {
                matched += 1;
                if matched == keys.len() {
                    let _ = sw.write_all(&out).await;
                    return true;
                }
                continue;
            }
            if matched > 0 {
                out.extend_from_slice(&keys[..matched]);
                matched = 0;
            }
            out.push(b);
        }
        if sw.write_all(&out).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Containers {
    /// Prepares an attach: connects to a running container's monitor now,
    /// or queues for the next start (as `docker run` attaches before it starts).
    pub async fn attach(&self, key: &str, opts: AttachOptions) -> Result<Attached> {
        let e = self.entry(key)?;
        let rec = e.get();
        let keys = parse_detach_keys(&opts.detach_keys)?;
        if rec.status == Status::Paused {
            return Err(super::refused(&rec, ContainerOp::Attach));
        }
        let req = Request::Attach {
            stdin: opts.stdin && rec.config.open_stdin,
            stdout: opts.stdout,
            stderr: opts.stderr,
        };
        let tty = rec.config.tty;
        let opts = AttachOptions {
            stdin: opts.stdin && rec.config.open_stdin,
            ..opts
        };
        if rec.status == Status::Running {
            let s = connect_attach(&self.socket_named(&rec.id, ""), &req)
                .await
                .map_err(|source| EngineError::Attach {
                    id: rec.id.clone(),
                    source,
                })?;
            return Ok(Attached {
                stream: Some(s),
                pending: None,
                tty,
                opts,
                keys,
            });
        }
        let (tx, rx) = oneshot::channel();
        e.pending
            .lock()
            .expect("pending lock")
            .push(Pending { req, reply: tx });
        Ok(Attached {
            stream: None,
            pending: Some(rx),
            tty,
            opts,
            keys,
        })
    }
}

/// Reads what the client still sends until it closes its side (or 2 s
/// pass): closing a unix socket with unread input makes the client's read
/// fail with "connection reset by peer" instead of ending cleanly.
pub(super) async fn drain<R: AsyncRead + Unpin>(r: &mut R) {
    let mut buf = [0u8; 4096];
    let mut total = 0;
    let end = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        loop {
            match r.read(&mut buf).await {
                Ok(0) => return "end of input".to_string(),
                Ok(n) => total += n,
                Err(e) => return e.to_string(),
            }
        }
    })
    .await
    .unwrap_or_else(|_| "timed out".into());
    tracing::debug!("drained {total} bytes of the client's input: {end}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys() {
        assert_eq!(parse_detach_keys("").unwrap(), vec![16, 17]);
        assert_eq!(parse_detach_keys("ctrl-a,x").unwrap(), vec![1, b'x']);
        assert!(parse_detach_keys("ctrl-").is_err());
    }
}
