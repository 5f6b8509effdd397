//! The registry conversation over any [`Transport`]: scheme choice, Bearer
//! token auth, redirects, bounded retries, mirrors. Native tests drive it with
//! a scripted transport; the plugin uses wasi:http.

use berth_sdk::error::PluginError;
use berth_sdk::reference::Reference;

use crate::auth::{self, Challenge};
use crate::url::{Scheme, Url};

/// An HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// HEAD.
    Head,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// PATCH (a chunk of an upload).
    Patch,
    /// DELETE (an abandoned upload).
    Delete,
}

/// A request body.
#[derive(Debug)]
pub enum Upload<'a, S> {
    /// None.
    None,
    /// Bytes in memory (can be re-sent on a retry).
    Bytes(&'a [u8]),
    /// `size` bytes from a stream (sent once: not retried).
    Stream(&'a S, u64),
}

impl<S> Clone for Upload<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S> Copy for Upload<'_, S> {}

/// One request.
#[derive(Debug)]
pub struct Request<'a, S> {
    /// Method.
    pub method: Method,
    /// Where.
    pub url: Url,
    /// Headers (lowercase names).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub upload: Upload<'a, S>,
}

/// One response.
#[derive(Debug)]
pub struct Response<B> {
    /// HTTP status.
    pub status: u16,
    /// Headers (lowercase names).
    pub headers: Vec<(String, String)>,
    /// The body, still unread.
    pub body: B,
}

impl<B> Response<B> {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request got no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// No connection (DNS, refused, TLS): another scheme may work.
    Connect(String),
    /// The connection broke or timed out: a retry may work.
    Broken(String),
    /// The host refused the request (not granted).
    Denied(String),
}

/// Sends HTTP requests (wasi:http in the plugin, a script in tests).
pub trait Transport {
    /// A response body.
    type Body;
    /// A stream a request body can come from.
    type Stream;
    /// Sends one request.
    fn send(&mut self, req: &Request<'_, Self::Stream>) -> Result<Response<Self::Body>, SendError>;
    /// Reads a whole body (at most `max` bytes).
    fn read_body(&mut self, body: Self::Body, max: u64) -> Result<Vec<u8>, SendError>;
    /// Waits before a retry.
    fn sleep_ms(&mut self, ms: u64);
}

/// Attempts per request (the first try included) on 5xx or broken connections.
pub const ATTEMPTS: u32 = 3;
const MAX_REDIRECTS: u32 = 5;

/// Where requests for an image go: mirrors first (pulls only), then the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Scheme tried first.
    pub scheme: Scheme,
    /// `host[:port]`.
    pub authority: String,
    /// Whether to try plain HTTP when HTTPS cannot connect (the host decides if allowed).
    pub http_fallback: bool,
}

impl Endpoint {
    /// An endpoint from `host[:port]` or `http(s)://host[:port]`.
    pub fn new(spec: &str) -> Endpoint {
        if let Some(u) = Url::parse(spec) {
            return Endpoint {
                scheme: u.scheme,
                authority: u.authority,
                http_fallback: false,
            };
        }
        let host = spec.trim_end_matches('/').to_string();
        if berth_sdk::reference::is_loopback_host(&host) {
            Endpoint {
                scheme: Scheme::Http,
                authority: host,
                http_fallback: false,
            }
        } else {
            Endpoint {
                scheme: Scheme::Https,
                authority: host,
                http_fallback: true,
            }
        }
    }
}

/// A client for one repository.
#[derive(Debug)]
pub struct Client<T> {
    /// The transport.
    pub t: T,
    /// The image.
    pub reference: Reference,
    endpoints: Vec<Endpoint>,
    token: Option<(String, String)>,
    push: bool,
    /// Scopes asked for besides the challenge's (pull on a mount's source).
    extra_scopes: Vec<String>,
    /// The URL that gave the last response (to resolve relative `Location`s).
    pub last_url: Option<Url>,
}

impl<T: Transport> Client<T> {
    /// A client for `reference`, trying `mirrors` first when pulling.
    pub fn new(t: T, reference: Reference, mirrors: &[String], push: bool) -> Self {
        let mut endpoints: Vec<Endpoint> = if push {
            Vec::new()
        } else {
            mirrors.iter().map(|m| Endpoint::new(m)).collect()
        };
        endpoints.push(Endpoint::new(reference.api_host()));
        Client {
            t,
            reference,
            endpoints,
            token: None,
            push,
            extra_scopes: Vec::new(),
            last_url: None,
        }
    }

    /// Sends `method /v2/<repo>/<tail>` to the first endpoint that answers
    /// (any status below 400 from a mirror, else the registry's answer).
    pub fn call(
        &mut self,
        method: Method,
        tail: &str,
        headers: &[(String, String)],
        upload: Upload<'_, T::Stream>,
    ) -> Result<Response<T::Body>, PluginError> {
        let path = format!("/v2/{}/{tail}", self.reference.repository);
        let endpoints = self.endpoints.clone();
        let last = endpoints.len() - 1;
        for (i, ep) in endpoints.iter().enumerate() {
            let url = Url {
                scheme: ep.scheme,
                authority: ep.authority.clone(),
                path: path.clone(),
            };
            match self.exchange(method, url, ep.http_fallback, headers, upload) {
                Ok(resp) if i == last || resp.status < 400 => return Ok(resp),
                Err(e) if i == last => return Err(e),
                other => berth_sdk::log::debug(&format!(
                    "mirror {} failed: {:?}",
                    ep.authority,
                    other.map(|r| r.status)
                )),
            }
        }
        unreachable!("the registry itself is always the last endpoint")
    }

    /// Sends one request to `url`, handling auth, redirects, retries and fallback.
    pub fn exchange(
        &mut self,
        mut method: Method,
        mut url: Url,
        http_fallback: bool,
        headers: &[(String, String)],
        upload: Upload<'_, T::Stream>,
    ) -> Result<Response<T::Body>, PluginError> {
        let retryable = !matches!(upload, Upload::Stream(..));
        let (mut attempts, mut redirects, mut authed, mut fell_back) = (1, 0, false, false);
        loop {
            let mut h = headers.to_vec();
            if let Some((authority, token)) = &self.token {
                if *authority == url.authority {
                    h.push(("authorization".into(), format!("Bearer {token}")));
                }
            }
            let where_ = format!("{method:?} {}{}", url.authority, url.path);
            let req = Request {
                method,
                url: url.clone(),
                headers: h,
                upload,
            };
            let resp = match self.t.send(&req) {
                Ok(resp) => resp,
                Err(SendError::Connect(_))
                    if http_fallback && !fell_back && url.scheme == Scheme::Https =>
                {
                    url.scheme = Scheme::Http;
                    fell_back = true;
                    continue;
                }
                Err(SendError::Denied(m)) => {
                    return Err(PluginError::Denied(format!("{where_}: {m}")))
                }
                Err(SendError::Connect(m) | SendError::Broken(m)) => {
                    if retryable && attempts < ATTEMPTS {
                        self.backoff(&mut attempts);
                        continue;
                    }
                    return Err(PluginError::Unavailable(format!(
                        "{where_}: {m} (after {attempts} attempts)"
                    )));
                }
            };
            match resp.status {
                500..=599 if retryable && attempts < ATTEMPTS => self.backoff(&mut attempts),
                401 if !authed => {
                    authed = true;
                    match resp
                        .header("www-authenticate")
                        .and_then(auth::parse_challenge)
                    {
                        Some(Challenge::Bearer {
                            realm,
                            service,
                            scope,
                        }) => {
                            let token =
                                self.fetch_token(&realm, service.as_deref(), scope.as_deref())?;
                            self.token = Some((url.authority.clone(), token));
                        }
                        _ => return Err(self.error(resp, &where_)),
                    }
                }
                301 | 302 | 303 | 307 | 308 if redirects < MAX_REDIRECTS => {
                    let to = resp.header("location").and_then(|l| url.join(l));
                    url = to.ok_or_else(|| {
                        PluginError::Invalid(format!(
                            "{where_}: redirect without a usable Location"
                        ))
                    })?;
                    if resp.status == 303 {
                        method = Method::Get;
                    }
                    redirects += 1;
                }
                _ => {
                    self.last_url = Some(url);
                    return Ok(resp);
                }
            }
        }
    }

    /// Asks tokens to also allow pulling from repository `from` (the
    /// source of a cross-repository mount); the next token request does.
    pub fn also_pull(&mut self, from: &str) {
        let scope = format!("repository:{from}:pull");
        if !self.extra_scopes.contains(&scope) {
            self.extra_scopes.push(scope);
            // A token without the new scope would make the registry refuse
            // the mount (and upload instead): ask again on the next 401.
            self.token = None;
        }
    }

    fn backoff(&mut self, attempts: &mut u32) {
        self.t.sleep_ms(200 << *attempts);
        *attempts += 1;
    }

    fn fetch_token(
        &mut self,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
    ) -> Result<String, PluginError> {
        let actions = if self.push { "pull,push" } else { "pull" };
        let default_scope = format!("repository:{}:{actions}", self.reference.repository);
        let mut scopes = vec![scope.unwrap_or(&default_scope)];
        scopes.extend(self.extra_scopes.iter().map(String::as_str));
        let target = auth::token_url(realm, service, &scopes);
        let url = Url::parse(&target)
            .ok_or_else(|| PluginError::Invalid(format!("token realm {realm:?} is not a URL")))?;
        let req = Request {
            method: Method::Get,
            url,
            headers: Vec::new(),
            upload: Upload::None,
        };
        let resp = self
            .t
            .send(&req)
            .map_err(|e| PluginError::Unavailable(format!("token from {realm}: {e:?}")))?;
        if resp.status != 200 {
            return Err(PluginError::Unauthorized(format!(
                "token from {realm}: HTTP {}",
                resp.status
            )));
        }
        let body = self
            .t
            .read_body(resp.body, 1 << 20)
            .map_err(|e| PluginError::Unavailable(format!("{e:?}")))?;
        auth::parse_token(&body).ok_or_else(|| {
            PluginError::Unauthorized(format!("token from {realm}: no token in the answer"))
        })
    }

    /// Reads a whole (small) body.
    pub fn body(&mut self, resp: Response<T::Body>, max: u64) -> Result<Vec<u8>, PluginError> {
        self.t
            .read_body(resp.body, max)
            .map_err(|e| PluginError::Unavailable(format!("reading a response: {e:?}")))
    }

    /// The error an unexpected response means, with the registry's message.
    pub fn error(&mut self, resp: Response<T::Body>, what: &str) -> PluginError {
        let status = resp.status;
        let body = self.t.read_body(resp.body, 4096).unwrap_or_default();
        let msg = format!(
            "{what}: HTTP {status} {}",
            String::from_utf8_lossy(&body).trim()
        );
        match status {
            404 => PluginError::NotFound(msg),
            401 | 403 => PluginError::Unauthorized(msg),
            500..=599 => PluginError::Unavailable(msg),
            400 => PluginError::Invalid(msg),
            _ => PluginError::Other(msg),
        }
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
