//! The gate of a fetcher's `wasi:http` traffic: the registry allow-list,
//! http only for insecure registries, credentials the plugin never sees,
//! timeouts and a size cap.
//!
//! Besides the granted registries, a fetcher may follow a redirect a granted
//! registry sent (blob downloads go to a CDN) once, over https, without
//! credentials. A token realm gets the credentials of the registry whose
//! `401` named it, but only if the realm's host is itself granted.

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{AUTHORIZATION, LOCATION, WWW_AUTHENTICATE};
use http::{HeaderValue, Uri};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::config::{Credentials, Grants, HttpLimits};
use crate::streams::lock;

/// A `host:port` with the port made explicit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Authority {
    host: String,
    port: Option<u16>,
}

impl Authority {
    /// Parses `host`, `host:port`, `[v6]` or `[v6]:port`.
    fn parse(s: &str) -> Option<Authority> {
        let a: http::uri::Authority = s.parse().ok()?;
        Some(Authority {
            host: a
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase(),
            port: a.port_u16(),
        })
    }

    /// Whether a grant (`self`) covers a request to `req` with default port `default`.
    fn covers(&self, req: &Authority, default: u16) -> bool {
        self.host == req.host && self.port.unwrap_or(default) == req.port.unwrap_or(default)
    }

    fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self.host == "::1"
            || self
                .host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

/// What the operator granted a fetcher, parsed once per plugin.
#[derive(Debug)]
pub(crate) struct HttpGrants {
    registries: Vec<(String, Authority)>,
    insecure: Vec<Authority>,
    credentials: Vec<(Authority, Credentials)>,
    limits: HttpLimits,
}

impl HttpGrants {
    pub(crate) fn new(g: &Grants) -> HttpGrants {
        let parse = |s: &String| Authority::parse(s);
        HttpGrants {
            registries: g
                .registries
                .iter()
                .filter_map(|r| Some((r.clone(), parse(r)?)))
                .collect(),
            insecure: g.insecure_registries.iter().filter_map(parse).collect(),
            credentials: g
                .credentials
                .iter()
                .filter_map(|(r, c)| Some((parse(r)?, c.clone())))
                .collect(),
            limits: g.http,
        }
    }
}

/// What was learned from responses, shared by all calls of one plugin.
#[derive(Debug, Default)]
pub(crate) struct Learned {
    /// Token realm authority → the registry whose `401` named it.
    realms: HashMap<Authority, Authority>,
}

/// The `WasiHttpHooks` of one call.
pub(crate) struct HttpPolicy {
    plugin: Arc<str>,
    grants: Arc<HttpGrants>,
    learned: Arc<Mutex<Learned>>,
    /// Redirect targets a granted registry sent, each usable once.
    permits: Arc<Mutex<HashSet<String>>>,
    /// The first request refused in this call.
    pub denied: Arc<Mutex<Option<String>>>,
    /// Requests of this call whose connection is still open: their buffers
    /// live in tasks of their own, outside the call's counted memory, so
    /// their number is capped instead.
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
}

/// At most this many connections open at once per call (a fetcher needs one
/// or two; each holds up to a few hundred KiB of buffers).
pub(crate) const MAX_IN_FLIGHT: usize = 16;

/// Counts a connection until its task ends.
struct InFlight(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The verdict on one request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Send it; `auth` is added when the request has no `Authorization`;
    /// `registry` is the granted registry it goes to (None for a redirect).
    Allow {
        auth: Option<HeaderValue>,
        registry: Option<Authority>,
    },
    Deny(String),
}

fn basic(user: &str, password: &str) -> HeaderValue {
    let mut v = HeaderValue::from_str(&format!(
        "Basic {}",
        base64(format!("{user}:{password}").as_bytes())
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""));
    v.set_sensitive(true);
    v
}

/// Standard base64 with padding (credentials in `Authorization` headers).
pub(crate) fn base64_encode(input: &[u8]) -> String {
    base64(input)
}

fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl HttpPolicy {
    pub(crate) fn new(
        plugin: Arc<str>,
        grants: Arc<HttpGrants>,
        learned: Arc<Mutex<Learned>>,
    ) -> HttpPolicy {
        HttpPolicy {
            plugin,
            grants,
            learned,
            permits: Arc::default(),
            denied: Arc::default(),
            in_flight: Arc::default(),
        }
    }

    /// Decides on a request to `uri`.
    pub(crate) fn decide(&self, uri: &Uri, has_auth: bool) -> Decision {
        let scheme = uri.scheme_str().unwrap_or("");
        let https = match scheme {
            "https" => true,
            "http" => false,
            other => {
                return Decision::Deny(format!(
                "{uri}: scheme `{other}` is not allowed (https, or http for insecure registries)"
            ))
            }
        };
        let Some(req) = uri.authority().and_then(|a| Authority::parse(a.as_str())) else {
            return Decision::Deny(format!("{uri}: no host"));
        };
        let default = if https { 443 } else { 80 };
        let Some((_, grant)) = self
            .grants
            .registries
            .iter()
            .find(|(_, g)| g.covers(&req, default))
        else {
            if lock(&self.permits).remove(&uri.to_string()) {
                return Decision::Allow {
                    auth: None,
                    registry: None,
                };
            }
            return Decision::Deny(format!(
                "{uri}: {}{} is not a registry granted to this plugin",
                req.host,
                req.port.map(|p| format!(":{p}")).unwrap_or_default()
            ));
        };
        if !https
            && !grant.is_loopback()
            && !self.grants.insecure.iter().any(|i| i.covers(&req, default))
        {
            return Decision::Deny(format!(
                "{uri}: plain http to {} is not allowed; list it in insecure-registries or use https",
                req.host
            ));
        }
        let auth = if has_auth {
            None
        } else {
            self.credentials_for(&req, default)
        };
        Decision::Allow {
            auth,
            registry: Some(grant.clone()),
        }
    }

    fn credentials_for(&self, req: &Authority, default: u16) -> Option<HeaderValue> {
        let find = |a: &Authority, d: u16| {
            self.grants
                .credentials
                .iter()
                .find(|(k, _)| k.covers(a, d))
                .map(|(_, c)| c)
        };
        let creds = find(req, default).or_else(|| {
            let learned = lock(&self.learned);
            let registry = learned.realms.get(req)?;
            // The registry's own default port is unknown here; try both.
            find(registry, 443).or_else(|| find(registry, 80))
        })?;
        Some(match creds {
            Credentials::Basic { username, password } => basic(username, password),
            Credentials::Bearer { token } => {
                let mut v = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
                v.set_sensitive(true);
                v
            }
        })
    }

    /// Learns from a granted registry's response: the realm of a `401` and
    /// the target of a redirect.
    fn learn(&self, registry: &Authority, request: &Uri, res: &http::Response<WasiBody>) {
        let status = res.status();
        if status == http::StatusCode::UNAUTHORIZED {
            for v in res.headers().get_all(WWW_AUTHENTICATE) {
                if let Some(realm) = v.to_str().ok().and_then(realm_of) {
                    if let Some(auth) = realm.authority().and_then(|a| Authority::parse(a.as_str()))
                    {
                        let mut l = lock(&self.learned);
                        if l.realms.len() < 64 {
                            l.realms.insert(auth, registry.clone());
                        }
                    }
                }
            }
        }
        if status.is_redirection() {
            if let Some(loc) = res.headers().get(LOCATION).and_then(|v| v.to_str().ok()) {
                if let Some(target) = resolve_location(request, loc) {
                    if target.scheme_str() == Some("https") {
                        let mut p = lock(&self.permits);
                        if p.len() < 16 {
                            p.insert(target.to_string());
                        }
                    }
                }
            }
        }
    }
}

/// The `realm` of a `WWW-Authenticate: Bearer realm="…",…` header.
fn realm_of(header: &str) -> Option<Uri> {
    let rest = header.trim().strip_prefix("Bearer")?.trim_start();
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        if k.trim().eq_ignore_ascii_case("realm") {
            return v.trim().trim_matches('"').parse().ok();
        }
    }
    None
}

/// A `Location` made absolute against the request it answers.
fn resolve_location(request: &Uri, loc: &str) -> Option<Uri> {
    let uri: Uri = loc.parse().ok()?;
    if uri.scheme().is_some() {
        return Some(uri);
    }
    let mut parts = request.clone().into_parts();
    parts.path_and_query = Some(loc.parse().ok()?);
    Uri::from_parts(parts).ok()
}

fn min_opt(a: Option<std::time::Duration>, b: std::time::Duration) -> Option<std::time::Duration> {
    Some(a.map_or(b, |a| a.min(b)))
}

type ResponseFuture = Box<
    dyn std::future::Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn std::future::Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for HttpPolicy {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn std::future::Future<Output = Result<(), HttpError>> + Send>,
    ) -> ResponseFuture {
        drop(fut);
        let uri = request.uri().clone();
        let open = self
            .in_flight
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let in_flight = InFlight(self.in_flight.clone());
        let decision = if open >= MAX_IN_FLIGHT {
            Decision::Deny(format!(
                "{uri}: more than {MAX_IN_FLIGHT} requests open at once in one call"
            ))
        } else {
            self.decide(&uri, request.headers().contains_key(AUTHORIZATION))
        };
        let (auth, registry) = match decision {
            Decision::Deny(why) => {
                tracing::warn!(plugin = %self.plugin, "refused request: {why}");
                lock(&self.denied).get_or_insert(why);
                return Box::new(async { Err(HttpError::HttpRequestDenied) });
            }
            Decision::Allow { auth, registry } => (auth, registry),
        };
        if let Some(auth) = auth {
            request.headers_mut().insert(AUTHORIZATION, auth);
        }
        let limits = self.grants.limits;
        let options = RequestOptions {
            connect_timeout: min_opt(
                options.and_then(|o| o.connect_timeout),
                limits.connect_timeout,
            ),
            first_byte_timeout: min_opt(
                options.and_then(|o| o.first_byte_timeout),
                limits.first_byte_timeout,
            ),
            between_bytes_timeout: min_opt(
                options.and_then(|o| o.between_bytes_timeout),
                limits.between_bytes_timeout,
            ),
        };
        let policy = HttpPolicy {
            plugin: self.plugin.clone(),
            grants: self.grants.clone(),
            learned: self.learned.clone(),
            permits: self.permits.clone(),
            denied: self.denied.clone(),
            in_flight: self.in_flight.clone(),
        };
        Box::new(async move {
            let (res, io) =
                wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
            let res = res.map(|b| {
                Capped {
                    inner: b.boxed_unsync(),
                    left: limits.max_response_bytes,
                }
                .boxed_unsync()
            });
            if let Some(registry) = registry {
                policy.learn(&registry, &uri, &res);
            }
            // The connection counts until its task is done with it.
            let io = async move {
                let _open = in_flight;
                io.await
            };
            Ok((
                res,
                Box::new(io) as Box<dyn std::future::Future<Output = _> + Send>,
            ))
        })
    }
}

/// A response body that fails once it passes the size cap.
struct Capped {
    inner: WasiBody,
    left: u64,
}

impl Body for Capped {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(f))) = &frame {
            if let Some(data) = f.data_ref() {
                let n = data.len() as u64;
                if n > self.left {
                    return Poll::Ready(Some(Err(HttpError::HttpResponseBodySize(None))));
                }
                self.left -= n;
            }
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}

#[cfg(test)]
mod tests;
