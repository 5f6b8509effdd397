//! A fault-injecting HTTP proxy in front of a real registry: each request is
//! shown to a rule that decides whether to forward it untouched, answer with
//! an error status or a made-up body, cut the forwarded body halfway, or
//! send half of it and then stall. One request per connection (the proxy
//! answers `Connection: close`), which is what berth's HTTP client does
//! anyway. Stopped (and every connection thread joined) when dropped.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A request as the rule sees it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    /// Headers with lowercase names.
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether this is a GET of a blob (`/v2/<repo>/blobs/sha256:…`).
    pub fn is_blob_get(&self) -> bool {
        self.method == "GET" && self.path.contains("/blobs/sha256:")
    }

    /// Whether this is a GET of a manifest (`/v2/<repo>/manifests/…`).
    pub fn is_manifest_get(&self) -> bool {
        self.method == "GET" && self.path.contains("/manifests/")
    }
}

/// What the proxy does with one request.
#[derive(Debug, Clone)]
pub enum Action {
    /// Forward it to the registry and relay the answer.
    Forward,
    /// Answer this status with a short text body, without asking the registry.
    Status(u16),
    /// Answer 200 with this content type and body.
    Body { content_type: String, body: Vec<u8> },
    /// Forward, relay the headers and half the body, then close the connection.
    CutBody,
    /// Forward the request's head and half its body (an upload), then
    /// close both connections: the registry sees the client go away
    /// mid-body, the client a broken connection.
    CutRequest,
    /// Forward, relay the headers and half the body, then send nothing more
    /// and keep the connection open until the client closes it or the proxy
    /// stops.
    Stall,
}

type Rule = Box<dyn FnMut(&Request) -> Action + Send>;

/// A running proxy.
pub struct Proxy {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    log: Arc<Mutex<Vec<String>>>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy").field("addr", &self.addr).finish()
    }
}

struct Shared {
    upstream: String,
    stop: Arc<AtomicBool>,
    rule: Mutex<Rule>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    /// Starts a proxy to `upstream` (`host:port`) on a free loopback port.
    pub fn start(upstream: &str, rule: impl FnMut(&Request) -> Action + Send + 'static) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address").to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::new(Shared {
            upstream: upstream.to_string(),
            stop: stop.clone(),
            rule: Mutex::new(Box::new(rule)),
            log: log.clone(),
        });
        let accept = std::thread::spawn(move || {
            let mut workers = Vec::new();
            for conn in listener.incoming() {
                if shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let s = shared.clone();
                workers.push(std::thread::spawn(move || s.serve(conn)));
            }
            for w in workers {
                let _ = w.join();
            }
        });
        Proxy {
            addr,
            stop,
            accept: Some(accept),
            log,
        }
    }

    /// One line per request: `METHOD PATH -> what was done`.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().expect("proxy log").clone()
    }

    /// The log as one string, for failure messages.
    pub fn log_text(&self) -> String {
        self.log().join("\n")
    }

    /// How many log lines contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.log().iter().filter(|l| l.contains(needle)).count()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(&self.addr);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// Reads up to the end of the headers (`\r\n\r\n`); returns (head, rest).
fn read_head(s: &mut TcpStream, stop: &AtomicBool) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            let rest = buf.split_off(i + 4);
            return Some((buf, rest));
        }
        match s.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if is_timeout(&e) && !stop.load(Ordering::SeqCst) => continue,
            Err(_) => return None,
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

fn parse_request(head: &[u8]) -> Option<Request> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some(Request {
        method,
        path,
        headers,
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

impl Shared {
    fn note(&self, req: &Request, what: &str) {
        self.log
            .lock()
            .expect("proxy log")
            .push(match req.header("range") {
                Some(r) => format!("{} {} (range {r}) -> {what}", req.method, req.path),
                None => format!("{} {} -> {what}", req.method, req.path),
            });
    }

    fn serve(&self, mut client: TcpStream) {
        if self.stop.load(Ordering::SeqCst) {
            return;
        }
        let _ = client.set_read_timeout(Some(Duration::from_millis(100)));
        let Some((head, body_start)) = read_head(&mut client, &self.stop) else {
            return;
        };
        let Some(req) = parse_request(&head) else {
            return;
        };
        let action = (self.rule.lock().expect("proxy rule"))(&req);
        match action {
            Action::Status(code) => {
                let body = format!("injected {code} from the test proxy\n");
                self.note(&req, &format!("{code} (injected)"));
                let _ = write!(
                    client,
                    "HTTP/1.1 {code} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    reason(code),
                    body.len()
                );
            }
            Action::Body { content_type, body } => {
                self.note(&req, "made-up body (injected)");
                let _ = write!(
                    client,
                    "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = client.write_all(&body);
            }
            Action::CutRequest => {
                let len: usize = req
                    .header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let sent = self.forward_half(&head, body_start, len, &mut client);
                self.note(&req, &format!("request cut after {sent} of {len} bytes"));
                let _ = client.shutdown(Shutdown::Both);
            }
            Action::Forward | Action::CutBody | Action::Stall => {
                let Some((resp_head, body)) = self.forward(&req, &head, body_start, &mut client)
                else {
                    self.note(&req, "registry unreachable");
                    return;
                };
                let status = String::from_utf8_lossy(&resp_head)
                    .split(' ')
                    .nth(1)
                    .unwrap_or("?")
                    .to_string();
                let mut out = client;
                if out.write_all(&resp_head).is_err() {
                    return;
                }
                match action {
                    Action::Forward => {
                        self.note(&req, &format!("{status} forwarded"));
                        let _ = out.write_all(&body);
                    }
                    Action::CutBody => {
                        self.note(
                            &req,
                            &format!(
                                "{status} cut after {} of {} bytes",
                                body.len() / 2,
                                body.len()
                            ),
                        );
                        let _ = out.write_all(&body[..body.len() / 2]);
                        let _ = out.flush();
                        let _ = out.shutdown(Shutdown::Both);
                    }
                    _ => {
                        self.note(
                            &req,
                            &format!(
                                "{status} stalled after {} of {} bytes",
                                body.len() / 2,
                                body.len()
                            ),
                        );
                        let _ = out.write_all(&body[..body.len() / 2]);
                        let _ = out.flush();
                        // Hold the connection until the client gives up.
                        let mut sink = [0u8; 4096];
                        loop {
                            if self.stop.load(Ordering::SeqCst) {
                                break;
                            }
                            match out.read(&mut sink) {
                                Ok(0) => break,
                                Ok(_) => {}
                                Err(e) if is_timeout(&e) => {}
                                Err(_) => break,
                            }
                        }
                        self.note(&req, "stalled connection closed");
                    }
                }
            }
        }
    }

    /// Sends the request's head and the first half of its `len`-byte body
    /// to the registry, then closes that connection; returns the bytes sent.
    fn forward_half(
        &self,
        head: &[u8],
        mut body: Vec<u8>,
        len: usize,
        client: &mut TcpStream,
    ) -> usize {
        let Ok(mut up) = TcpStream::connect(&self.upstream) else {
            return 0;
        };
        let half = len / 2;
        if up.write_all(head).is_err() {
            return 0;
        }
        while body.len() < half {
            let mut chunk = vec![0u8; (half - body.len()).min(1 << 20)];
            match client.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => body.extend_from_slice(&chunk[..n]),
                Err(e) if is_timeout(&e) => continue,
                Err(_) => break,
            }
        }
        let n = body.len().min(half);
        let _ = up.write_all(&body[..n]);
        let _ = up.flush();
        // Let the registry take in what arrived before the connection goes.
        std::thread::sleep(Duration::from_millis(200));
        let _ = up.shutdown(Shutdown::Both);
        n
    }

    /// Sends the request to the registry (with `Connection: close`) and
    /// reads the whole answer: (status line and headers, body).
    fn forward(
        &self,
        req: &Request,
        head: &[u8],
        mut body_start: Vec<u8>,
        client: &mut TcpStream,
    ) -> Option<(Vec<u8>, Vec<u8>)> {
        let mut up = TcpStream::connect(&self.upstream).ok()?;
        let _ = up.set_read_timeout(Some(Duration::from_secs(60)));
        let text = String::from_utf8_lossy(head);
        let mut out = String::new();
        for (i, line) in text.split("\r\n").enumerate() {
            if line.is_empty() {
                continue;
            }
            if i > 0 && line.to_ascii_lowercase().starts_with("connection:") {
                continue;
            }
            out.push_str(line);
            out.push_str("\r\n");
        }
        out.push_str("Connection: close\r\n\r\n");
        up.write_all(out.as_bytes()).ok()?;
        // A request body (pushes only): relay exactly Content-Length bytes.
        let len: usize = req
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while body_start.len() < len {
            let mut chunk = vec![0u8; len - body_start.len()];
            match client.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => body_start.extend_from_slice(&chunk[..n]),
                Err(e) if is_timeout(&e) => continue,
                Err(_) => return None,
            }
        }
        up.write_all(&body_start[..len.min(body_start.len())])
            .ok()?;
        let mut all = Vec::new();
        up.read_to_end(&mut all).ok()?;
        let i = find(&all, b"\r\n\r\n")?;
        let body = all.split_off(i + 4);
        Some((all, body))
    }
}
