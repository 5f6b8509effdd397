//! What every handler uses: docker's error shape and status codes, query
//! flags as docker sends them, JSON bodies, hijacked streams.

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_engine::error::ErrorKind;
use berth_engine::EngineError;

/// An error as docker returns it: a status and `{"message": …}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

pub type ApiResult<T = Response> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
}

/// The one place an error kind becomes an HTTP status (moby's errdefs
/// mapping, except that docker answers an unreachable registry or a service
/// that timed out with 500, which its clients expect).
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::Unavailable | ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        let status = status_of(e.kind());
        let message = match &e {
            EngineError::ImageNotFound { name } => format!("No such image: {name}"),
            other => other.to_string(),
        };
        ApiError { status, message }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!("{}", self.message);
        }
        (
            self.status,
            axum::Json(crate::api::ErrorResponse {
                message: self.message,
            }),
        )
            .into_response()
    }
}

/// Query parameters.
pub type Query = axum::extract::Query<HashMap<String, String>>;

/// A docker boolean query flag (`1`, `true`, `True`; absent is false).
pub fn flag(q: &HashMap<String, String>, name: &str) -> bool {
    q.get(name)
        .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "True" | "TRUE" | "yes"))
}

/// A numeric query parameter; a bad value is a 400 that names it.
pub fn number<T: std::str::FromStr>(
    q: &HashMap<String, String>,
    name: &str,
) -> ApiResult<Option<T>> {
    match q.get(name).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| ApiError::bad(format!("invalid value for {name}: {v:?}"))),
    }
}

/// Parses a JSON body; an empty body is the type's default.
pub fn body<T: serde::de::DeserializeOwned + Default>(b: &[u8]) -> ApiResult<T> {
    if b.iter().all(|c| c.is_ascii_whitespace()) {
        return Ok(T::default());
    }
    serde_json::from_slice(b)
        .map_err(|e| ApiError::bad(format!("invalid JSON in the request body: {e}")))
}

/// A JSON answer from one of the API's types.
pub fn json(status: StatusCode, v: impl serde::Serialize) -> Response {
    (status, axum::Json(v)).into_response()
}

pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

pub fn not_modified() -> Response {
    StatusCode::NOT_MODIFIED.into_response()
}

/// Answers 101 and hands the upgraded connection to `f` (docker's hijack).
pub fn hijack<F, Fut>(
    req: &mut axum::extract::Request,
    content_type: &'static str,
    f: F,
) -> Response
where
    F: FnOnce(hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let on = hyper::upgrade::on(req);
    tokio::spawn(async move {
        match on.await {
            Ok(up) => f(hyper_util::rt::TokioIo::new(up)).await,
            Err(e) => tracing::debug!("upgrade failed: {e}"),
        }
    });
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

pub const RAW_STREAM: &str = "application/vnd.docker.raw-stream";
pub const MUX_STREAM: &str = "application/vnd.docker.multiplexed-stream";

/// A streamed body from a channel of chunks.
pub fn stream_body(rx: tokio::sync::mpsc::Receiver<bytes::Bytes>) -> Body {
    let s = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    });
    Body::from_stream(s)
}

pub async fn unknown(uri: axum::http::Uri) -> ApiError {
    let path = uri.path();
    if let Some(v) = path.strip_prefix("/berth/bad-version/") {
        return ApiError::bad(format!(
            "client version {v} is not supported: berth serves API versions {}.{} to {}",
            crate::api::MIN_API.0,
            crate::api::MIN_API.1,
            crate::api::API_VERSION
        ));
    }
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("page not found: {path} is not an API berth serves"),
    )
}

/// BuildKit sessions: not served; the client falls back.
pub async fn no_session() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "sessions are not supported")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_become_dockers_statuses() {
        assert_eq!(status_of(ErrorKind::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(status_of(ErrorKind::Conflict), StatusCode::CONFLICT);
        assert_eq!(status_of(ErrorKind::InvalidInput), StatusCode::BAD_REQUEST);
        assert_eq!(status_of(ErrorKind::Forbidden), StatusCode::FORBIDDEN);
        assert_eq!(
            status_of(ErrorKind::Internal),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        let e: ApiError =
            EngineError::Runtime(berth_runtime::RuntimeError::NotFound { id: "c1".into() }).into();
        assert_eq!(e.status, StatusCode::NOT_FOUND);
    }
}
