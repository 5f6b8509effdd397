//! The embedded DNS server of user networks: containers resolve each other by name, every other query goes upstream.
//!
//! One [`Dns`] holds every network. For each network it answers on the
//! network's gateway address (UDP and TCP, port 53, in the daemon's network
//! namespace):
//!
//! - A queries for the names of the network's containers (name, aliases,
//!   short id, hostname; case-insensitive, with or without the trailing dot)
//!   with all the addresses that hold the name, TTL 600;
//! - any other type for such a name with NOERROR and no answer (NODATA), so
//!   clients fall back to A at once;
//! - everything else by forwarding the query unchanged to the upstream
//!   resolvers, in order, 2 s each, and relaying the answer as it came (a
//!   truncated UDP answer included: the client then asks again over TCP,
//!   which is forwarded over TCP). The upstreams are those of the container
//!   that asks (by source address) if it has its own, else the global ones;
//!   with none, or none answering, the client gets SERVFAIL, as from docker.
//!
//! Names and servers have separate lifetimes: `add`/`remove` may come before
//! `serve` or after `stop`. Malformed packets are dropped.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use hickory_proto::op::{
    Edns, Header, Message, MessageType, Metadata, OpCode, Query, ResponseCode,
};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, DecodeError};
use hickory_proto::ProtoError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tracing::debug;

/// The TTL of the answers about containers.
const TTL: u32 = 600;
/// How long one upstream resolver has to answer.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a TCP client may stay silent before its connection is closed.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// TCP connections served at once per network; more are closed on accept.
const MAX_TCP_CONNECTIONS: usize = 64;
/// UDP queries being forwarded at once per network; more are dropped.
const MAX_FORWARDS: usize = 256;
/// The largest DNS message.
const MAX_MESSAGE: usize = u16::MAX as usize;
/// The UDP answer size a client without EDNS accepts.
const PLAIN_UDP_PAYLOAD: usize = 512;
/// The UDP payload size this server advertises in its EDNS answers.
const EDNS_PAYLOAD: u16 = 1232;
/// How often, and how far apart, `serve` retries a bind whose address is
/// still held by a server that was just stopped.
const BIND_ATTEMPTS: u32 = 20;
const BIND_RETRY: Duration = Duration::from_millis(50);

/// Why one query went unanswered (logged, never returned: DNS clients retry).
#[derive(Debug, thiserror::Error)]
enum QueryError {
    #[error("decoding the query from {from}: {source}")]
    Decode {
        from: SocketAddr,
        source: DecodeError,
    },
    #[error("encoding the answer to {from}: {source}")]
    Encode {
        from: SocketAddr,
        source: ProtoError,
    },
    #[error("asking upstream {upstream}: {source}")]
    Upstream {
        upstream: SocketAddr,
        source: io::Error,
    },
    #[error("upstream {upstream} did not answer within {UPSTREAM_TIMEOUT:?}")]
    UpstreamTimeout { upstream: SocketAddr },
    #[error("sending the answer to {to}: {source}")]
    Reply { to: SocketAddr, source: io::Error },
}

/// The resolver of every network. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Dns {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    upstreams: Arc<[SocketAddr]>,
    networks: Mutex<HashMap<String, Network>>,
}

/// The names of one network and its server, if it is served.
#[derive(Debug, Default)]
struct Network {
    table: Arc<RwLock<Table>>,
    server: Option<Server>,
}

impl Dns {
    /// `upstreams`: the resolvers other names go to (the host's, from
    /// /etc/resolv.conf; see [`Dns::host_upstreams`]).
    pub fn new(upstreams: Vec<SocketAddr>) -> Dns {
        Dns {
            inner: Arc::new(Inner {
                upstreams: upstreams.into(),
                networks: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The nameservers of a resolv.conf text, skipping loopback ones
    /// (127.0.0.0/8, ::1 — unreachable from a container, and from the daemon
    /// they would loop); port 53.
    pub fn host_upstreams(resolv_conf: &str) -> Vec<SocketAddr> {
        resolv_conf
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                if words.next()? != "nameserver" {
                    return None;
                }
                // A zoned IPv6 address (fe80::1%eth0) does not parse and is skipped.
                let ip = words.next()?.parse::<IpAddr>().ok()?.to_canonical();
                (!ip.is_loopback() && !ip.is_unspecified()).then_some(SocketAddr::new(ip, 53))
            })
            .collect()
    }

    /// Starts answering for `network_id` on `addr` (UDP and TCP; port 53 in
    /// production, any port in tests). Idempotent per network id (a second
    /// call with the same id and addr is a no-op; a different addr restarts
    /// it).
    ///
    /// Port 0 binds UDP on a free port and TCP on the same one. A port still
    /// held (by a server just stopped) is retried for about a second before
    /// the error is returned.
    pub async fn serve(&self, network_id: &str, addr: SocketAddr) -> io::Result<()> {
        let old = {
            let mut networks = self.networks();
            let network = networks.entry(network_id.to_owned()).or_default();
            if network.server.as_ref().is_some_and(|s| s.addr == addr) {
                return Ok(());
            }
            network.server.take()
        };
        if let Some(old) = old {
            // Wait until the old sockets are closed, in case the new address is the same port.
            for task in old.stop() {
                let _ = task.await;
            }
        }
        let mut attempt = 1;
        loop {
            {
                let mut networks = self.networks();
                let network = networks.entry(network_id.to_owned()).or_default();
                if network.server.as_ref().is_some_and(|s| s.addr == addr) {
                    return Ok(()); // a concurrent call won
                }
                match bind(addr) {
                    Ok((udp, tcp)) => {
                        let ctx = Ctx {
                            table: Arc::clone(&network.table),
                            upstreams: Arc::clone(&self.inner.upstreams),
                            forwards: Arc::new(Semaphore::new(MAX_FORWARDS)),
                        };
                        network.server = Some(Server::start(addr, udp, tcp, ctx)?);
                        debug!(network = network_id, %addr, "DNS server started");
                        return Ok(());
                    }
                    Err(e) if e.kind() == io::ErrorKind::AddrInUse && attempt < BIND_ATTEMPTS => {}
                    Err(e) => {
                        if network.server.is_none() && network.table_is_empty() {
                            networks.remove(network_id);
                        }
                        return Err(io::Error::new(
                            e.kind(),
                            format!(
                                "binding the DNS server of network {network_id} on {addr}: {e}"
                            ),
                        ));
                    }
                }
            }
            attempt += 1;
            tokio::time::sleep(BIND_RETRY).await;
        }
    }

    /// Stops answering for the network (its sockets close).
    ///
    /// The network's names stay until they are removed.
    pub fn stop(&self, network_id: &str) {
        let mut networks = self.networks();
        let Some(network) = networks.get_mut(network_id) else {
            return;
        };
        if let Some(server) = network.server.take() {
            debug!(network = network_id, addr = %server.addr, "DNS server stopped");
            drop(server.stop());
        }
        if network.table_is_empty() {
            networks.remove(network_id);
        }
    }

    /// Makes `names` resolve to `ip` on `network_id` for `container_id`;
    /// `upstreams` (the container's --dns servers, port 53) override the global
    /// ones for queries coming FROM `ip` (empty = the global ones).
    ///
    /// A second call for the same container replaces the first. A leading
    /// `/` (docker's name form) and a trailing dot are ignored.
    pub fn add(
        &self,
        network_id: &str,
        container_id: &str,
        names: &[String],
        ip: Ipv4Addr,
        upstreams: Vec<SocketAddr>,
    ) {
        let mut networks = self.networks();
        let network = networks.entry(network_id.to_owned()).or_default();
        write(&network.table).insert(container_id, names, ip, upstreams);
    }

    /// Forgets a container on a network.
    pub fn remove(&self, network_id: &str, container_id: &str) {
        let mut networks = self.networks();
        let Some(network) = networks.get_mut(network_id) else {
            return;
        };
        write(&network.table).remove(container_id);
        if network.server.is_none() && network.table_is_empty() {
            networks.remove(network_id);
        }
    }

    fn networks(&self) -> MutexGuard<'_, HashMap<String, Network>> {
        self.inner
            .networks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Network {
    fn table_is_empty(&self) -> bool {
        read(&self.table).containers.is_empty()
    }
}

fn read(table: &RwLock<Table>) -> std::sync::RwLockReadGuard<'_, Table> {
    table.read().unwrap_or_else(PoisonError::into_inner)
}

fn write(table: &RwLock<Table>) -> std::sync::RwLockWriteGuard<'_, Table> {
    table.write().unwrap_or_else(PoisonError::into_inner)
}

/// The containers holding one name: (container id, address).
type Holders = Vec<(Box<str>, Ipv4Addr)>;

/// The names of one network's containers.
#[derive(Debug, Default)]
struct Table {
    /// A lowercase name without trailing dot → the containers holding it.
    names: HashMap<Box<[u8]>, Holders>,
    containers: HashMap<Box<str>, Container>,
    /// A container's address → its id, to find the upstreams of a query's sender.
    by_ip: HashMap<Ipv4Addr, Box<str>>,
}

#[derive(Debug)]
struct Container {
    names: Vec<Box<[u8]>>,
    ip: Ipv4Addr,
    /// The container's own resolvers; `None` means the global ones.
    upstreams: Option<Arc<[SocketAddr]>>,
}

impl Table {
    fn insert(&mut self, id: &str, names: &[String], ip: Ipv4Addr, upstreams: Vec<SocketAddr>) {
        self.remove(id);
        let mut keys: Vec<Box<[u8]>> = Vec::with_capacity(names.len());
        for key in names.iter().filter_map(|n| name_key(n)) {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        for key in &keys {
            self.names
                .entry(key.clone())
                .or_default()
                .push((id.into(), ip));
        }
        self.by_ip.insert(ip, id.into());
        let upstreams = (!upstreams.is_empty()).then(|| upstreams.into());
        self.containers.insert(
            id.into(),
            Container {
                names: keys,
                ip,
                upstreams,
            },
        );
    }

    fn remove(&mut self, id: &str) {
        let Some(container) = self.containers.remove(id) else {
            return;
        };
        for key in container.names {
            if let Some(holders) = self.names.get_mut(&key) {
                holders.retain(|(holder, _)| &**holder != id);
                if holders.is_empty() {
                    self.names.remove(&key);
                }
            }
        }
        if self
            .by_ip
            .get(&container.ip)
            .is_some_and(|holder| &**holder == id)
        {
            self.by_ip.remove(&container.ip);
        }
    }

    /// The own resolvers of the container at `ip`, if it has some.
    fn upstreams_of(&self, ip: IpAddr) -> Option<Arc<[SocketAddr]>> {
        let IpAddr::V4(ip) = ip.to_canonical() else {
            return None;
        };
        let id = self.by_ip.get(&ip)?;
        self.containers.get(id)?.upstreams.clone()
    }
}

/// The lookup key of a container name: lowercase, without docker's leading `/` and the trailing dot.
fn name_key(name: &str) -> Option<Box<[u8]>> {
    let name = name.strip_prefix('/').unwrap_or(name);
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return None;
    }
    Some(name.to_ascii_lowercase().into_bytes().into())
}

/// The lookup key of a queried name, written into `buf` (no allocation).
fn query_key<'b>(name: &Name, buf: &'b mut [u8; 256]) -> Option<&'b [u8]> {
    let mut len = 0;
    for (i, label) in name.iter().enumerate() {
        if label.contains(&b'.') {
            return None; // an escaped dot inside a label is no container name
        }
        if i > 0 {
            *buf.get_mut(len)? = b'.';
            len += 1;
        }
        let dst = buf.get_mut(len..len + label.len())?;
        for (d, s) in dst.iter_mut().zip(label) {
            *d = s.to_ascii_lowercase();
        }
        len += label.len();
    }
    buf.get(..len)
}

/// What to do with one query.
#[derive(Debug)]
enum Action {
    Reply(Vec<u8>),
    Forward(Arc<[SocketAddr]>),
    Ignore,
}

/// What the tasks of one network's server share.
#[derive(Debug, Clone)]
struct Ctx {
    table: Arc<RwLock<Table>>,
    upstreams: Arc<[SocketAddr]>,
    forwards: Arc<Semaphore>,
}

impl Ctx {
    /// Answers `packet` from the table, or says where to forward it.
    fn route(&self, packet: &[u8], from: SocketAddr, udp: bool) -> Result<Action, QueryError> {
        let decode = |source| QueryError::Decode { from, source };
        let mut decoder = BinDecoder::new(packet);
        let header = Header::read(&mut decoder).map_err(decode)?;
        if header.metadata.message_type != MessageType::Query || header.counts.queries == 0 {
            return Ok(Action::Ignore);
        }
        let query = Query::read(&mut decoder).map_err(decode)?;
        let table = read(&self.table);
        if header.metadata.op_code == OpCode::Query && header.counts.queries == 1 {
            let mut buf = [0; 256];
            if let Some(holders) =
                query_key(query.name(), &mut buf).and_then(|key| table.names.get(key))
            {
                let wants_a =
                    query.query_type() == RecordType::A && query.query_class() == DNSClass::IN;
                let answers = holders
                    .iter()
                    .filter(|_| wants_a)
                    .map(|(_, ip)| Record::from_rdata(query.name().clone(), TTL, RData::A(A(*ip))));
                let answer = local_answer(packet, query.clone(), answers, udp, from)?;
                return Ok(Action::Reply(answer));
            }
        }
        let upstreams = table
            .upstreams_of(from.ip())
            .unwrap_or_else(|| Arc::clone(&self.upstreams));
        drop(table);
        if upstreams.is_empty() {
            debug!(%from, name = %query.name(), "no upstream resolver: SERVFAIL");
            let answer = failure(&header.metadata, query).to_vec();
            return answer
                .map(Action::Reply)
                .map_err(|source| QueryError::Encode { from, source });
        }
        Ok(Action::Forward(upstreams))
    }
}

/// The answer to `packet` with `answers`; over UDP, truncated if it does not fit what the client takes.
fn local_answer(
    packet: &[u8],
    query: Query,
    answers: impl Iterator<Item = Record>,
    udp: bool,
    from: SocketAddr,
) -> Result<Vec<u8>, QueryError> {
    let request =
        Message::from_vec(packet).map_err(|source| QueryError::Decode { from, source })?;
    let mut response = Message::new(
        request.metadata.id,
        MessageType::Response,
        request.metadata.op_code,
    );
    response.metadata = Metadata::response_from_request(&request.metadata);
    response.metadata.recursion_available = true;
    response.add_query(query);
    response.add_answers(answers);
    let mut limit = MAX_MESSAGE;
    if let Some(edns) = &request.edns {
        if udp {
            limit = usize::from(edns.max_payload()).max(PLAIN_UDP_PAYLOAD);
        }
        let mut ours = Edns::new();
        ours.set_max_payload(EDNS_PAYLOAD);
        response.set_edns(ours);
    } else if udp {
        limit = PLAIN_UDP_PAYLOAD;
    }
    let encode = |source| QueryError::Encode { from, source };
    let bytes = response.to_vec().map_err(encode)?;
    if bytes.len() <= limit {
        return Ok(bytes);
    }
    response.truncate().to_vec().map_err(encode)
}

/// A SERVFAIL answer to the query with `metadata` and `query`.
fn failure(metadata: &Metadata, query: Query) -> Message {
    let mut response = Message::new(metadata.id, MessageType::Response, metadata.op_code);
    response.metadata = Metadata::response_from_request(metadata);
    response.metadata.recursion_available = true;
    response.metadata.response_code = ResponseCode::ServFail;
    response.add_query(query);
    response
}

/// The SERVFAIL answer to a query that `Ctx::route` already decoded once.
fn servfail(packet: &[u8], from: SocketAddr) -> Result<Vec<u8>, QueryError> {
    let mut decoder = BinDecoder::new(packet);
    let decode = |source| QueryError::Decode { from, source };
    let header = Header::read(&mut decoder).map_err(decode)?;
    let query = Query::read(&mut decoder).map_err(decode)?;
    failure(&header.metadata, query)
        .to_vec()
        .map_err(|source| QueryError::Encode { from, source })
}

/// Whether `answer` is an answer to `query` (same id, response bit set).
fn answers(answer: &[u8], query: &[u8]) -> bool {
    answer.len() >= 12
        && answer.get(..2) == query.get(..2)
        && answer.get(2).is_some_and(|b| b & 0x80 != 0)
}

/// One network's running server: dropping it (or `stop`) ends its tasks and closes its sockets.
#[derive(Debug)]
struct Server {
    addr: SocketAddr,
    /// Dropped to end the connection and forwarding tasks.
    shutdown: Option<watch::Sender<()>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    fn start(
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
    fn stop(mut self) -> Vec<JoinHandle<()>> {
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
fn bind(addr: SocketAddr) -> io::Result<(std::net::UdpSocket, std::net::TcpListener)> {
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
fn frame(message: &[u8]) -> Option<Vec<u8>> {
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

#[cfg(test)]
#[path = "dns_tests.rs"]
mod tests;
