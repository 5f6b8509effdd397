//! The client's side of the daemon's socket: HTTP/1.1 over a unix stream
//! or TCP (with TLS when asked), through hyper; docker's error messages,
//! streamed bodies, and hijacked connections for attach and exec.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

/// A connection target: the daemon's unix socket, or `tcp://HOST:PORT`
/// (through TLS when `tls` is set).
#[derive(Debug, Clone)]
pub struct Client {
    pub socket: PathBuf,
    pub tcp: Option<String>,
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Client {
    /// From docker's `-H` forms: `unix:///path`, `/path`, `tcp://host:port`;
    /// docker's TLS flags apply to TCP.
    pub fn from_host(host: &str, tls: &crate::tls::TlsArgs) -> Result<Client> {
        if let Some(a) = host.strip_prefix("tcp://") {
            return Ok(Client {
                socket: PathBuf::new(),
                tcp: Some(a.to_string()),
                tls: crate::tls::client_config(tls)?,
            });
        }
        Ok(Client {
            socket: crate::api::socket_path(host)?,
            tcp: None,
            tls: None,
        })
    }
}

/// HTTP/1.1 over a connected stream, upgrades (hijacking) allowed.
async fn handshake<S, B>(io: S) -> Result<hyper::client::conn::http1::SendRequest<B>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .context("talking to the berth daemon")?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    Ok(sender)
}

/// A request's JSON body, serialized from one of the API's types.
#[derive(Debug, Clone)]
pub struct Json(Bytes);

impl Json {
    pub fn of<T: serde::Serialize>(v: &T) -> Result<Json> {
        Ok(Json(Bytes::from(
            serde_json::to_vec(v).context("encoding the request")?,
        )))
    }
}

/// An error answer from the daemon.
#[derive(Debug)]
pub struct DaemonError {
    pub status: StatusCode,
    pub message: String,
}

impl std::fmt::Display for DaemonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Error response from daemon: {}", self.message)
    }
}

impl std::error::Error for DaemonError {}

impl Client {
    async fn send<B>(&self, req: Request<B>) -> Result<Response<Incoming>>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let cannot = || match &self.tcp {
            Some(a) => {
                format!("Cannot connect to the berth daemon at tcp://{a}. Is the daemon running?")
            }
            None => format!(
                "Cannot connect to the berth daemon at unix://{}. Is the daemon running?",
                self.socket.display()
            ),
        };
        let mut sender = match &self.tcp {
            Some(a) => {
                let stream = tokio::net::TcpStream::connect(a)
                    .await
                    .with_context(cannot)?;
                match &self.tls {
                    Some(cfg) => {
                        let name = crate::tls::server_name(a)?;
                        let tls = tokio_rustls::TlsConnector::from(cfg.clone())
                            .connect(name, stream)
                            .await
                            .with_context(|| {
                                format!("TLS with the berth daemon at tcp://{a} failed")
                            })?;
                        handshake(tls).await?
                    }
                    None => handshake(stream).await?,
                }
            }
            None => {
                let stream = tokio::net::UnixStream::connect(&self.socket)
                    .await
                    .with_context(cannot)?;
                handshake(stream).await?
            }
        };
        sender
            .send_request(req)
            .await
            .context("talking to the berth daemon")
    }

    fn build(method: Method, path: &str, body: Option<&Json>) -> Request<Full<Bytes>> {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("http://berth/v{}{path}", crate::api::API_VERSION))
            .header("Host", "berth");
        let data = match body {
            Some(j) => {
                b = b.header("Content-Type", "application/json");
                j.0.clone()
            }
            None => Bytes::new(),
        };
        b.body(Full::new(data)).expect("a valid request")
    }

    /// Turns a non-success answer into the daemon's message.
    async fn check(resp: Response<Incoming>) -> Result<Response<Incoming>> {
        if resp.status().is_success()
            || resp.status() == StatusCode::NOT_MODIFIED
            || resp.status() == StatusCode::SWITCHING_PROTOCOLS
        {
            return Ok(resp);
        }
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let message = serde_json::from_slice::<crate::api::ErrorResponse>(&body)
            .map(|e| e.message)
            .unwrap_or_else(|_| String::from_utf8_lossy(&body).trim().to_string());
        Err(DaemonError { status, message }.into())
    }

    /// A request whose whole answer is read; returns (status, body).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Json>,
    ) -> Result<(StatusCode, Bytes)> {
        let resp = Self::check(self.send(Self::build(method, path, body)).await?).await?;
        let status = resp.status();
        let b = resp
            .into_body()
            .collect()
            .await
            .context("reading the daemon's answer")?
            .to_bytes();
        Ok((status, b))
    }

    /// A request answered with JSON: one of the API's types.
    pub async fn json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Json>,
    ) -> Result<T> {
        let (_, b) = self.call(method, path, body).await?;
        let b: &[u8] = if b.is_empty() { b"null" } else { &b };
        serde_json::from_slice(b)
            .map_err(|e| anyhow!("the daemon's answer is not what berth expects: {e}"))
    }

    /// A request whose answer is streamed; returns the body.
    pub async fn stream(
        &self,
        method: Method,
        path: &str,
        body: Option<&Json>,
    ) -> Result<Incoming> {
        Ok(
            Self::check(self.send(Self::build(method, path, body)).await?)
                .await?
                .into_body(),
        )
    }

    /// A streamed request with extra headers (`X-Registry-Auth`).
    pub async fn stream_with(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Incoming> {
        let mut req = Self::build(method, path, None);
        for (k, v) in headers {
            req.headers_mut().insert(
                hyper::header::HeaderName::from_bytes(k.as_bytes())?,
                hyper::header::HeaderValue::from_str(v)?,
            );
        }
        Ok(Self::check(self.send(req).await?).await?.into_body())
    }

    /// A request with a raw body (a tar for `load`), answered in full.
    pub async fn upload(
        &self,
        method: Method,
        path: &str,
        data: Bytes,
        content_type: &str,
    ) -> Result<Bytes> {
        let req = Request::builder()
            .method(method)
            .uri(format!("http://berth/v{}{path}", crate::api::API_VERSION))
            .header("Host", "berth")
            .header("Content-Type", content_type)
            .body(Full::new(data))
            .expect("a valid request");
        let resp = Self::check(self.send(req).await?).await?;
        Ok(resp
            .into_body()
            .collect()
            .await
            .context("reading the daemon's answer")?
            .to_bytes())
    }

    /// A request whose body is streamed as it is made (a build's context)
    /// with extra headers; returns the streamed answer.
    pub async fn send_stream<B>(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: B,
    ) -> Result<Incoming>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("http://berth/v{}{path}", crate::api::API_VERSION))
            .header("Host", "berth");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(body).context("making the request")?;
        Ok(Self::check(self.send(req).await?).await?.into_body())
    }

    /// A hijacked connection (attach, exec start).
    pub async fn hijack(
        &self,
        path: &str,
        body: Option<&Json>,
    ) -> Result<TokioIo<hyper::upgrade::Upgraded>> {
        let mut req = Self::build(Method::POST, path, body);
        req.headers_mut()
            .insert("Connection", "Upgrade".parse().expect("header"));
        req.headers_mut()
            .insert("Upgrade", "tcp".parse().expect("header"));
        let resp = Self::check(self.send(req).await?).await?;
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(anyhow!(
                "the daemon did not switch the connection to a stream ({})",
                resp.status()
            ));
        }
        let up = hyper::upgrade::on(resp)
            .await
            .context("taking over the connection")?;
        Ok(TokioIo::new(up))
    }
}

/// Reads chunks of a streamed body; `None` at its end.
pub async fn next_chunk(body: &mut Incoming) -> Option<Result<Bytes>> {
    loop {
        match body.frame().await? {
            Ok(f) => {
                if let Ok(d) = f.into_data() {
                    return Some(Ok(d));
                }
            }
            Err(e) => return Some(Err(anyhow!("reading the daemon's stream: {e}"))),
        }
    }
}

/// Percent-encodes a query value.
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The lines of a streamed answer read as JSON values (docker's progress
/// messages, events); a line that is not one is skipped.
pub struct JsonLines {
    body: Incoming,
    pending: Vec<u8>,
}

impl JsonLines {
    pub fn new(body: Incoming) -> JsonLines {
        JsonLines {
            body,
            pending: Vec::new(),
        }
    }

    /// The next message; `None` at the stream's end.
    pub async fn next<T: serde::de::DeserializeOwned>(&mut self) -> Option<Result<T>> {
        loop {
            while let Some(pos) = self.pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=pos).collect();
                if let Ok(v) = serde_json::from_slice::<T>(&line) {
                    return Some(Ok(v));
                }
            }
            match next_chunk(&mut self.body).await? {
                Ok(chunk) => self.pending.extend_from_slice(&chunk),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
