//! What every handler uses: docker's error shape and status codes, query
//! flags as docker sends them, JSON bodies, hijacked streams.

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
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

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        let status = match &e {
            EngineError::NotFound { .. } | EngineError::ImageNotFound { .. } => {
                StatusCode::NOT_FOUND
            }
            EngineError::Conflict { .. } | EngineError::ImageInUse { .. } => StatusCode::CONFLICT,
            EngineError::Forbidden { .. } => StatusCode::FORBIDDEN,
            // A plugin's own "already exists" / "invalid" are the caller's fault.
            EngineError::Plugin(h) => match h.plugin_error_kind() {
                Some(berth_engine::berth_host::PluginErrorKind::AlreadyExists) => {
                    StatusCode::CONFLICT
                }
                Some(berth_engine::berth_host::PluginErrorKind::Invalid) => StatusCode::BAD_REQUEST,
                Some(berth_engine::berth_host::PluginErrorKind::NotFound) => StatusCode::NOT_FOUND,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            EngineError::Invalid { .. }
            | EngineError::Reference { .. }
            | EngineError::Config { .. } => StatusCode::BAD_REQUEST,
            // docker answers a failed start (bad command, …) with 400.
            EngineError::Start { .. } | EngineError::Image { .. } => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
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
            axum::Json(serde_json::json!({ "message": self.message })),
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

pub fn json(status: StatusCode, v: serde_json::Value) -> Response {
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
            super::MIN_API.0,
            super::MIN_API.1,
            super::API_VERSION
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
