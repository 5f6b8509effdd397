//! The userland side of published ports (`-p`), as docker's docker-proxy:
//! the daemon holds every published host port open — so a port in use fails
//! the container's start with a clear error, and nothing else takes it — and
//! relays what reaches it (connections to 127.0.0.1 or to the host itself,
//! which the kernel's DNAT rules do not see) to the container. Traffic from
//! other hosts is DNATed by the firewall and never reaches the proxy.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

/// A published port: where it listens on the host and where it goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMap {
    /// `tcp` or `udp`.
    pub proto: String,
    /// The host address it listens on (`0.0.0.0` for all).
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
}

/// A port to publish, as asked for: host port 0 (or a range) lets the
/// daemon choose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRequest {
    pub proto: String,
    pub host_ip: Ipv4Addr,
    /// First and last acceptable host port; (0, 0) for any.
    pub host_ports: (u16, u16),
    pub container_port: u16,
}

/// A host socket bound for a port before the container is attached.
#[derive(Debug)]
pub enum Bound {
    Tcp(std::net::TcpListener, PortMap),
    Udp(std::net::UdpSocket, PortMap),
}

impl Bound {
    pub fn map(&self) -> &PortMap {
        match self {
            Bound::Tcp(_, m) | Bound::Udp(_, m) => m,
        }
    }
}

/// Binds the host sockets for `reqs` now; the first port that cannot be
/// bound fails all of them, naming it.
pub fn bind(reqs: &[PortRequest]) -> Result<Vec<Bound>, String> {
    let mut out = Vec::new();
    for r in reqs {
        let candidates: Vec<u16> = match r.host_ports {
            (0, 0) => vec![0],
            (a, b) => (a..=b).collect(),
        };
        let mut last = None;
        let mut bound = None;
        for port in candidates {
            let addr = SocketAddr::V4(SocketAddrV4::new(r.host_ip, port));
            let res = match r.proto.as_str() {
                "udp" => std::net::UdpSocket::bind(addr).map(|s| {
                    let p = s.local_addr().map(|a| a.port()).unwrap_or(port);
                    (Some(s), None, p)
                }),
                _ => std::net::TcpListener::bind(addr).map(|l| {
                    let p = l.local_addr().map(|a| a.port()).unwrap_or(port);
                    (None, Some(l), p)
                }),
            };
            match res {
                Ok(b) => {
                    bound = Some(b);
                    break;
                }
                Err(e) => last = Some((port, e)),
            }
        }
        let Some((udp, tcp, port)) = bound else {
            let (port, e) = last.expect("at least one candidate");
            let why = if e.kind() == io::ErrorKind::AddrInUse {
                "port is already allocated".to_string()
            } else {
                e.to_string()
            };
            return Err(format!(
                "Bind for {}:{}{} failed: {why}",
                r.host_ip,
                if port == 0 {
                    "(any)".to_string()
                } else {
                    port.to_string()
                },
                if r.host_ports.0 != r.host_ports.1 && r.host_ports != (0, 0) {
                    format!(" (range {}-{})", r.host_ports.0, r.host_ports.1)
                } else {
                    String::new()
                }
            ));
        };
        let map = PortMap {
            proto: r.proto.clone(),
            host_ip: r.host_ip.to_string(),
            host_port: port,
            container_port: r.container_port,
        };
        out.push(match (udp, tcp) {
            (Some(s), _) => Bound::Udp(s, map),
            (_, Some(l)) => Bound::Tcp(l, map),
            _ => unreachable!("one socket is bound"),
        });
    }
    Ok(out)
}

/// The relay tasks of one (network, container).
type Tasks = HashMap<(String, String), Vec<JoinHandle<()>>>;

/// The running proxies, per (network, container).
#[derive(Debug, Default, Clone)]
pub struct Proxies {
    tasks: Arc<Mutex<Tasks>>,
}

/// How long a UDP client's relay lives without traffic.
const UDP_IDLE: Duration = Duration::from_secs(30);

impl Proxies {
    /// Starts relaying the bound sockets to `target` (the container's address).
    pub fn start(&self, network: &str, container: &str, bound: Vec<Bound>, target: Ipv4Addr) {
        let mut handles = Vec::new();
        for b in bound {
            let r = match b {
                Bound::Tcp(l, m) => l
                    .set_nonblocking(true)
                    .and_then(|()| TcpListener::from_std(l))
                    .map(|l| tokio::spawn(tcp(l, SocketAddr::from((target, m.container_port))))),
                Bound::Udp(s, m) => s
                    .set_nonblocking(true)
                    .and_then(|()| UdpSocket::from_std(s))
                    .map(|s| tokio::spawn(udp(s, SocketAddr::from((target, m.container_port))))),
            };
            match r {
                Ok(h) => handles.push(h),
                Err(e) => {
                    tracing::warn!("container {container}: a published port cannot be proxied: {e}")
                }
            }
        }
        self.tasks
            .lock()
            .expect("proxies")
            .entry((network.to_string(), container.to_string()))
            .or_default()
            .extend(handles);
    }

    /// Stops the proxies of a container on a network (their sockets close).
    pub fn stop(&self, network: &str, container: &str) {
        let gone = self
            .tasks
            .lock()
            .expect("proxies")
            .remove(&(network.to_string(), container.to_string()));
        for h in gone.into_iter().flatten() {
            h.abort();
        }
    }
}

async fn tcp(l: TcpListener, to: SocketAddr) {
    loop {
        let Ok((mut inbound, _)) = l.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        tokio::spawn(async move {
            match TcpStream::connect(to).await {
                Ok(mut out) => {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                }
                Err(e) => tracing::debug!("proxy to {to}: {e}"),
            }
        });
    }
}

async fn udp(s: UdpSocket, to: SocketAddr) {
    let s = Arc::new(s);
    let clients: Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>> = Arc::default();
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, from)) = s.recv_from(&mut buf).await else {
            continue;
        };
        let existing = clients.lock().expect("udp clients").get(&from).cloned();
        let up = match existing {
            Some(u) => u,
            None => {
                let Ok(u) = UdpSocket::bind("0.0.0.0:0").await else {
                    continue;
                };
                if u.connect(to).await.is_err() {
                    continue;
                }
                let u = Arc::new(u);
                clients.lock().expect("udp clients").insert(from, u.clone());
                // Replies go back to the client until it falls silent.
                let (s, u2, clients) = (s.clone(), u.clone(), clients.clone());
                tokio::spawn(async move {
                    let mut b = vec![0u8; 65536];
                    while let Ok(Ok(n)) = tokio::time::timeout(UDP_IDLE, u2.recv(&mut b)).await {
                        let _ = s.send_to(&b[..n], from).await;
                    }
                    clients.lock().expect("udp clients").remove(&from);
                });
                u
            }
        };
        let _ = up.send(&buf[..n]).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn req(proto: &str, ports: (u16, u16), cport: u16) -> PortRequest {
        PortRequest {
            proto: proto.into(),
            host_ip: Ipv4Addr::LOCALHOST,
            host_ports: ports,
            container_port: cport,
        }
    }

    #[tokio::test]
    async fn tcp_and_udp_are_relayed_and_a_taken_port_is_named() {
        // The "container": an echo server on loopback.
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let cport = echo.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut c, _) = echo.accept().await.unwrap();
            let mut b = [0u8; 5];
            c.read_exact(&mut b).await.unwrap();
            c.write_all(&b).await.unwrap();
        });
        let uecho = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let uport = uecho.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut b = [0u8; 64];
            let (n, from) = uecho.recv_from(&mut b).await.unwrap();
            uecho.send_to(&b[..n], from).await.unwrap();
        });
        let bound = bind(&[req("tcp", (0, 0), cport), req("udp", (0, 0), uport)]).unwrap();
        let (tp, up) = (bound[0].map().host_port, bound[1].map().host_port);
        assert!(tp > 0 && up > 0);
        // A port held by the proxy cannot be published again.
        let err = bind(&[req("tcp", (tp, tp), 80)]).unwrap_err();
        assert!(
            err.contains(&format!("127.0.0.1:{tp}")) && err.contains("already allocated"),
            "{err}"
        );
        let p = Proxies::default();
        p.start("n", "c", bound, Ipv4Addr::LOCALHOST);
        let mut c = TcpStream::connect(("127.0.0.1", tp)).await.unwrap();
        c.write_all(b"hello").await.unwrap();
        let mut b = [0u8; 5];
        c.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"hello");
        let u = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        u.send_to(b"dgram", ("127.0.0.1", up)).await.unwrap();
        let mut b = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(5), u.recv(&mut b))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&b[..n], b"dgram");
        p.stop("n", "c");
        // The port is free again once the proxy stopped.
        tokio::time::sleep(Duration::from_millis(50)).await;
        bind(&[req("tcp", (tp, tp), 80)]).unwrap();
    }
}
