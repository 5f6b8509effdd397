//! Checking a user's credentials against a registry (`docker login`): the
//! host does it itself, over the same HTTP stack fetchers use, because the
//! credentials are exactly what a plugin never sees. `GET /v2/`; a `Basic`
//! challenge is answered with the credentials, a `Bearer` one by asking the
//! token realm with them (`account=USER`), as docker's registry client does.

use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions};

/// Why a login failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// The registry refused the credentials.
    #[error("login attempt to {url} failed with status: {status}")]
    Unauthorized {
        /// The URL that refused them.
        url: String,
        /// The status line (`401 Unauthorized`).
        status: String,
    },
    /// The registry could not be reached or answered nonsense.
    #[error("login to {registry}: {reason}")]
    Unavailable {
        /// `host[:port]`.
        registry: String,
        /// What went wrong.
        reason: String,
    },
}

const TIMEOUT: Duration = Duration::from_secs(30);

fn status_line(s: StatusCode) -> String {
    format!("{} {}", s.as_u16(), s.canonical_reason().unwrap_or(""))
        .trim()
        .to_owned()
}

/// `Basic base64(user:password)`.
fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        crate::http::base64_encode(format!("{user}:{password}").as_bytes())
    )
}

async fn get(uri: &Uri, auth: Option<&str>) -> Result<(StatusCode, Option<String>), HttpError> {
    // hyper's connection-level client adds no Host header: HTTP/1.1 needs one.
    let host = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .unwrap_or_default();
    let mut b = Request::get(uri.clone())
        .header(http::header::HOST, host)
        .header(http::header::CONNECTION, "close");
    if let Some(a) = auth {
        b = b.header(AUTHORIZATION, a);
    }
    let req = b
        .body(
            Empty::<Bytes>::new()
                .map_err(|never| match never {})
                .boxed_unsync(),
        )
        .map_err(|_| HttpError::HttpRequestUriInvalid)?;
    let options = RequestOptions {
        connect_timeout: Some(TIMEOUT),
        first_byte_timeout: Some(TIMEOUT),
        between_bytes_timeout: Some(TIMEOUT),
    };
    let (resp, io) = wasmtime_wasi_http::default_send_request(req, Some(options)).await?;
    let status = resp.status();
    let challenge = resp
        .headers()
        .get(WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Read (and drop) the small body so the connection finishes cleanly.
    let _ = tokio::time::timeout(TIMEOUT, resp.into_body().collect()).await;
    drop(io);
    Ok((status, challenge))
}

/// `k="v"` parameters of a challenge.
fn param(challenge: &str, key: &str) -> Option<String> {
    let rest = challenge.split_once(char::is_whitespace)?.1;
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        if k.trim().eq_ignore_ascii_case(key) {
            return Some(v.trim().trim_matches('"').to_owned());
        }
    }
    None
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Checks `user`/`password` against the registry at `api_host`
/// (`host[:port]`), over plain HTTP when `http` is set (loopback or an
/// insecure registry), else HTTPS.
pub async fn check_login(
    api_host: &str,
    http: bool,
    user: &str,
    password: &str,
) -> Result<(), LoginError> {
    let unavailable = |reason: String| LoginError::Unavailable {
        registry: api_host.to_owned(),
        reason,
    };
    let scheme = if http { "http" } else { "https" };
    let url = format!("{scheme}://{api_host}/v2/");
    let uri: Uri = url
        .parse()
        .map_err(|e| unavailable(format!("{url:?} is not a URL: {e}")))?;
    let (status, challenge) = get(&uri, None)
        .await
        .map_err(|e| unavailable(format!("GET {url}: {e}")))?;
    if status.is_success() {
        // The registry asks for no credentials: nothing to refuse.
        return Ok(());
    }
    if status != StatusCode::UNAUTHORIZED {
        return Err(unavailable(format!(
            "GET {url} answered {}",
            status_line(status)
        )));
    }
    let challenge = challenge.unwrap_or_default();
    let scheme_name = challenge.split_whitespace().next().unwrap_or("");
    let creds = basic(user, password);
    let (target, status) = if scheme_name.eq_ignore_ascii_case("bearer") {
        let realm = param(&challenge, "realm").ok_or_else(|| {
            unavailable(format!("a Bearer challenge without a realm: {challenge}"))
        })?;
        let mut token_url = realm.clone();
        let mut query = vec![format!("account={}", encode(user))];
        if let Some(s) = param(&challenge, "service") {
            query.push(format!("service={}", encode(&s)));
        }
        token_url.push(if realm.contains('?') { '&' } else { '?' });
        token_url.push_str(&query.join("&"));
        let uri: Uri = token_url
            .parse()
            .map_err(|e| unavailable(format!("token realm {realm:?} is not a URL: {e}")))?;
        let (status, _) = get(&uri, Some(&creds))
            .await
            .map_err(|e| unavailable(format!("GET {realm}: {e}")))?;
        (realm, status)
    } else if scheme_name.eq_ignore_ascii_case("basic") {
        let (status, _) = get(&uri, Some(&creds))
            .await
            .map_err(|e| unavailable(format!("GET {url}: {e}")))?;
        (url, status)
    } else {
        return Err(unavailable(format!(
            "the registry asks for {challenge:?}, which berth cannot answer"
        )));
    };
    match status {
        s if s.is_success() => Ok(()),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(LoginError::Unauthorized {
            url: target,
            status: status_line(status),
        }),
        s => Err(unavailable(format!("{target} answered {}", status_line(s)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_parameters() {
        let c = r#"Bearer realm="http://127.0.0.1:5001/token",service="reg""#;
        assert_eq!(
            param(c, "realm").as_deref(),
            Some("http://127.0.0.1:5001/token")
        );
        assert_eq!(param(c, "service").as_deref(), Some("reg"));
        assert_eq!(param(c, "scope"), None);
        assert_eq!(basic("u", "p"), "Basic dTpw");
    }
}
