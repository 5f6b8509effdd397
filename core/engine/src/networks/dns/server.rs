//! One network's server: its UDP socket and TCP listener, the tasks that
//! answer on them, and the forwarding of queries to upstream resolvers over
//! the same transport.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tracing::debug;

use super::answer::{servfail, Action, Ctx};
use super::{QueryError, MAX_MESSAGE, UPSTREAM_TIMEOUT};

/// How long a TCP client may stay silent before its connection is closed.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// TCP connections served at once per network; more are closed on accept.
const MAX_TCP_CONNECTIONS: usize = 64;

/// Whether `answer` is an answer to `query` (same id, response bit set).
fn answers(answer: &[u8], query: &[u8]) -> bool {
    answer.len() >= 12
        && answer.get(..2) == query.get(..2)
        && answer.get(2).is_some_and(|b| b & 0x80 != 0)
}

/// One network's running server: dropping it (or `stop`) ends its tasks and closes its sockets.
#[derive(Debug)]
pub(super) struct Server {
    pub(super) addr: SocketAddr,
    /// Dropped to end the connection and forwarding tasks.
    shutdown: Option<watch::Sender<()>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    pub(super) fn start(
        addr: SocketAddr,
        udp: std::net::UdpSocket,
        tcp: std::net::TcpListener,
        ctx: Ctx,
    ) -> io::Result<Server> {
        let udp = Arc::new(UdpSocket::from_std(udp)?);
        let tcp = TcpListener::from_std(tcp)?;
        let (shutdown, stopped) = watch::channel(());
        let tasks = vec![
            tokio::spawn(run_udp(udp, ctx.clone(), stopped.clone())),
            tokio::spawn(run_tcp(tcp, ctx, stopped)),
        ];
        Ok(Server {
            addr,
            shutdown: Some(shutdown),
            tasks,
        })
    }

    /// Signals every task to end and returns the socket tasks, to await their end.
    pub(super) fn stop(mut self) -> Vec<JoinHandle<()>> {
        self.shutdown = None;
        let tasks = std::mem::take(&mut self.tasks);
        for task in &tasks {
            task.abort();
        }
        tasks
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Binds the UDP socket and the TCP listener of a server (port 0: TCP on the port UDP got).
pub(super) fn bind(addr: SocketAddr) -> io::Result<(std::net::UdpSocket, std::net::TcpListener)> {
    let udp = std::net::UdpSocket::bind(addr)?;
    let tcp = std::net::TcpListener::bind(udp.local_addr()?)?;
    udp.set_nonblocking(true)?;
    tcp.set_nonblocking(true)?;
    Ok((udp, tcp))
}

async fn run_udp(socket: Arc<UdpSocket>, ctx: Ctx, mut stopped: watch::Receiver<()>) {
    let mut buf = vec![0; MAX_MESSAGE];
    loop {
        let (len, from) = tokio::select! {
            received = socket.recv_from(&mut buf) => match received {
                Ok(received) => received,
                Err(e) => {
                    debug!(error = %e, "receiving a DNS query over UDP");
                    continue;
                }
            },
            _ = stopped.changed() => return,
        };
        let packet = buf.get(..len).unwrap_or_default();
        match ctx.route(packet, from, true) {
            Ok(Action::Reply(answer)) => {
                if let Err(source) = socket.send_to(&answer, from).await {
                    debug!(error = %QueryError::Reply { to: from, source }, "DNS query unanswered");
                }
            }
            Ok(Action::Forward(upstreams)) => {
                let Ok(permit) = Arc::clone(&ctx.forwards).try_acquire_owned() else {
                    debug!(%from, "too many DNS queries being forwarded: dropped one");
                    continue;
                };
                let query = packet.to_vec();
                let socket = Arc::clone(&socket);
                let mut stopped = stopped.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    tokio::select! {
                        () = relay_udp(&socket, &query, from, &upstreams) => {}
                        _ = stopped.changed() => {}
                    }
                });
            }
            Ok(Action::Ignore) => {}
            Err(e) => debug!(error = %e, "DNS packet dropped"),
        }
    }
}

/// Forwards a UDP query and sends the client the answer, or SERVFAIL.
async fn relay_udp(socket: &UdpSocket, query: &[u8], client: SocketAddr, upstreams: &[SocketAddr]) {
    let answer = match forward_udp(query, upstreams).await {
        Some(answer) => answer,
        None => match servfail(query, client) {
            Ok(answer) => answer,
            Err(e) => return debug!(error = %e, "DNS query unanswered"),
        },
    };
    if let Err(source) = socket.send_to(&answer, client).await {
        debug!(error = %QueryError::Reply { to: client, source }, "DNS query unanswered");
    }
}

async fn forward_udp(query: &[u8], upstreams: &[SocketAddr]) -> Option<Vec<u8>> {
    let mut buf = vec![0; MAX_MESSAGE];
    for &upstream in upstreams {
        let error =
            match tokio::time::timeout(UPSTREAM_TIMEOUT, exchange_udp(query, upstream, &mut buf))
                .await
            {
                Ok(Ok(len)) => {
                    buf.truncate(len);
                    return Some(buf);
                }
                Ok(Err(source)) => QueryError::Upstream { upstream, source },
                Err(_) => QueryError::UpstreamTimeout { upstream },
            };
        debug!(error = %error, "DNS forward over UDP failed");
    }
    None
}

async fn exchange_udp(query: &[u8], upstream: SocketAddr, buf: &mut [u8]) -> io::Result<usize> {
    let local = match upstream {
        SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(upstream).await?;
    socket.send(query).await?;
    loop {
        let len = socket.recv(buf).await?;
        if answers(buf.get(..len).unwrap_or_default(), query) {
            return Ok(len);
        }
    }
}

async fn run_tcp(listener: TcpListener, ctx: Ctx, mut stopped: watch::Receiver<()>) {
    let connections = Arc::new(Semaphore::new(MAX_TCP_CONNECTIONS));
    loop {
        let (stream, from) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    debug!(error = %e, "accepting a DNS connection");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = stopped.changed() => return,
        };
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            debug!(%from, "too many DNS connections: closed one");
            continue;
        };
        let ctx = ctx.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let _permit = permit;
            tokio::select! {
                () = serve_connection(stream, from, &ctx) => {}
                _ = stopped.changed() => {}
            }
        });
    }
}

/// Answers the queries of one TCP client, in order, until it goes quiet.
async fn serve_connection(mut stream: TcpStream, from: SocketAddr, ctx: &Ctx) {
    let _ = stream.set_nodelay(true);
    let mut query = Vec::new();
    loop {
        let Ok(Ok(len)) = tokio::time::timeout(TCP_IDLE, stream.read_u16()).await else {
            return;
        };
        query.resize(usize::from(len), 0);
        let Ok(Ok(_)) = tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut query)).await else {
            return;
        };
        let answer = match ctx.route(&query, from, false) {
            Ok(Action::Reply(answer)) => answer,
            Ok(Action::Forward(upstreams)) => match forward_tcp(&query, &upstreams).await {
                Some(answer) => answer,
                None => match servfail(&query, from) {
                    Ok(answer) => answer,
                    Err(e) => return debug!(error = %e, "DNS query unanswered"),
                },
            },
            Ok(Action::Ignore) => continue,
            Err(e) => return debug!(error = %e, "DNS connection closed"),
        };
        let Some(framed) = frame(&answer) else {
            return;
        };
        if let Err(source) = stream.write_all(&framed).await {
            return debug!(error = %QueryError::Reply { to: from, source }, "DNS connection closed");
        }
    }
}

/// A message with its two-byte length in front, as sent over TCP.
pub(super) fn frame(message: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(message.len()).ok()?;
    let mut framed = Vec::with_capacity(message.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    Some(framed)
}

async fn forward_tcp(query: &[u8], upstreams: &[SocketAddr]) -> Option<Vec<u8>> {
    for &upstream in upstreams {
        let error =
            match tokio::time::timeout(UPSTREAM_TIMEOUT, exchange_tcp(query, upstream)).await {
                Ok(Ok(answer)) => return Some(answer),
                Ok(Err(source)) => QueryError::Upstream { upstream, source },
                Err(_) => QueryError::UpstreamTimeout { upstream },
            };
        debug!(error = %error, "DNS forward over TCP failed");
    }
    None
}

async fn exchange_tcp(query: &[u8], upstream: SocketAddr) -> io::Result<Vec<u8>> {
    let framed = frame(query)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "query too long"))?;
    let mut stream = TcpStream::connect(upstream).await?;
    stream.set_nodelay(true)?;
    stream.write_all(&framed).await?;
    loop {
        let len = stream.read_u16().await?;
        let mut answer = vec![0; usize::from(len)];
        stream.read_exact(&mut answer).await?;
        if answers(&answer, query) {
            return Ok(answer);
        }
    }
}
