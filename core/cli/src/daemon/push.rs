//! `POST /images/{name}/push`, streaming docker's push progress, and the
//! credentials clients send with pulls and pushes (`X-Registry-Auth`: a
//! base64url JSON of docker's `AuthConfig`).

use std::sync::Arc;

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use base64::Engine as _;
use berth_engine::berth_host::Credentials;
use berth_engine::reference::Reference;
use berth_engine::Progress;
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::api::images::JsonMessage;

use super::api::{ApiError, ApiResult, Query};
use super::images::{json_stream, JsonProgress};
use super::Shared;

/// docker's `AuthConfig`, as clients send it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct AuthConfig {
    pub username: String,
    pub password: String,
    /// base64 of `user:password`, instead of the two fields.
    pub auth: String,
    pub serveraddress: String,
    pub identitytoken: String,
    pub registrytoken: String,
}

/// Decodes base64 as docker clients write it (url-safe, padded or not;
/// older clients use the standard alphabet).
pub(super) fn decode_base64(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    let s = s.trim();
    URL_SAFE
        .decode(s)
        .or_else(|_| URL_SAFE_NO_PAD.decode(s))
        .or_else(|_| STANDARD.decode(s))
        .ok()
}

impl AuthConfig {
    /// The credentials the host adds for the registry, if any were given.
    pub(super) fn credentials(&self) -> Result<Option<Credentials>, ApiError> {
        if !self.registrytoken.is_empty() {
            return Ok(Some(Credentials::Bearer {
                token: self.registrytoken.clone(),
            }));
        }
        let (user, password) = if !self.auth.is_empty() {
            let pair = decode_base64(&self.auth)
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| ApiError::bad("the auth field of the credentials is not base64"))?;
            match pair.split_once(':') {
                Some((u, p)) => (u.to_owned(), p.to_owned()),
                None => {
                    return Err(ApiError::bad(
                        "the auth field is not base64 of user:password",
                    ))
                }
            }
        } else {
            (self.username.clone(), self.password.clone())
        };
        if !self.identitytoken.is_empty() && password.is_empty() {
            // An OAuth refresh token: registries that issue them take it
            // as the password of the token exchange.
            return Ok(Some(Credentials::Basic {
                username: "<token>".into(),
                password: self.identitytoken.clone(),
            }));
        }
        if user.is_empty() && password.is_empty() {
            return Ok(None);
        }
        Ok(Some(Credentials::Basic {
            username: user,
            password,
        }))
    }
}

/// The credentials of a request's `X-Registry-Auth` header (none when it
/// is missing or empty, as docker sends `{}` for anonymous pushes).
pub(super) fn registry_auth(headers: &HeaderMap) -> Result<Option<Credentials>, ApiError> {
    let Some(value) = headers.get("x-registry-auth") else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::bad("X-Registry-Auth is not text"))?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    let json = decode_base64(text).ok_or_else(|| ApiError::bad("X-Registry-Auth is not base64"))?;
    let auth: AuthConfig = serde_json::from_slice(&json).map_err(|e| {
        ApiError::bad(format!(
            "X-Registry-Auth is not docker's AuthConfig JSON: {e}"
        ))
    })?;
    auth.credentials()
}

/// The credentials of a build's `X-Registry-Config` header (base64 JSON of
/// docker's AuthConfig by registry), keyed by registry host as references
/// name it (`https://index.docker.io/v1/` is `docker.io`).
pub(super) fn registry_config(
    headers: &HeaderMap,
) -> Result<std::collections::BTreeMap<String, Credentials>, ApiError> {
    let mut out = std::collections::BTreeMap::new();
    let Some(value) = headers.get("x-registry-config") else {
        return Ok(out);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::bad("X-Registry-Config is not text"))?;
    if text.trim().is_empty() {
        return Ok(out);
    }
    let json =
        decode_base64(text).ok_or_else(|| ApiError::bad("X-Registry-Config is not base64"))?;
    let auths: std::collections::BTreeMap<String, AuthConfig> = serde_json::from_slice(&json)
        .map_err(|e| {
            ApiError::bad(format!(
                "X-Registry-Config is not a JSON object of docker's AuthConfig: {e}"
            ))
        })?;
    for (server, auth) in auths {
        let host = server
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        let host = host.split('/').next().unwrap_or(host);
        let host = match host {
            "index.docker.io" | "registry-1.docker.io" => berth_engine::reference::DEFAULT_REGISTRY,
            h => h,
        };
        if let Some(c) = auth.credentials()? {
            out.insert(host.to_string(), c);
        }
    }
    Ok(out)
}

/// `POST /images/{name}/push?tag=T`: the tag, or every tag of the
/// repository when `tag` is empty and `name` has none (`docker push -a`).
pub(super) async fn push(d: Shared, name: &str, q: &Query, headers: &HeaderMap) -> ApiResult {
    let credentials = registry_auth(headers)?;
    let tag = q.get("tag").map(String::as_str).unwrap_or("");
    let base = Reference::parse(name).map_err(|e| ApiError::bad(e.to_string()))?;
    let explicit_tag = name
        .rsplit('/')
        .next()
        .is_some_and(|last| last.contains(':'));
    let references: Vec<String> = if !tag.is_empty() {
        vec![format!("{}:{tag}", base.name())]
    } else if explicit_tag {
        vec![base.full()]
    } else {
        let prefix = format!("{}:", base.name());
        let mut all: Vec<String> = d
            .engine
            .list_images(false)?
            .into_iter()
            .map(|i| i.full_name)
            .filter(|n| n.starts_with(&prefix))
            .collect();
        all.sort();
        all.dedup();
        if all.is_empty() {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "An image does not exist locally with the tag: {}",
                    base.short_repository()
                ),
            ));
        }
        all
    };
    // Refused before the stream starts, so the client sees a plain error.
    for r in &references {
        if d.engine.image(r).is_err() {
            let short = Reference::parse(r)
                .map(|r| r.short())
                .unwrap_or_else(|_| r.clone());
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("An image does not exist locally with the tag: {short}"),
            ));
        }
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let engine = d.engine.clone();
    let containers = d.containers.clone();
    tokio::spawn(async move {
        let _ = tx.send(JsonMessage::status(format!(
            "The push refers to repository [{}]",
            base.short_repository()
        )));
        for r in references {
            let p: Arc<dyn Progress> = Arc::new(JsonProgress::new(tx.clone()));
            match engine.push(&r, credentials.clone(), p).await {
                Ok(pushed) => {
                    let _ = tx.send(JsonMessage::status(format!(
                        "{}: digest: {} size: {}",
                        pushed.tag, pushed.digest, pushed.size
                    )));
                    let _ = tx.send(JsonMessage {
                        progress_detail: Some(Default::default()),
                        aux: Some(serde_json::json!({
                            "Tag": pushed.tag,
                            "Digest": pushed.digest,
                            "Size": pushed.size,
                        })),
                        ..Default::default()
                    });
                    containers.emit_other("image", "push", &r);
                }
                Err(e) => {
                    let _ = tx.send(JsonMessage::error(e.to_string()));
                    return;
                }
            }
        }
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        json_stream(rx),
    )
        .into_response())
}

/// `POST /auth`: checks docker's `AuthConfig` against the registry it
/// names; the client stores the credentials, the daemon keeps nothing.
pub async fn auth(
    axum::extract::State(d): axum::extract::State<Shared>,
    body: axum::body::Bytes,
) -> ApiResult {
    let a: AuthConfig = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad(format!("the body is not docker's AuthConfig JSON: {e}")))?;
    let (user, password) = match a.credentials()? {
        Some(Credentials::Basic { username, password }) => (username, password),
        Some(Credentials::Bearer { .. }) => {
            return Err(ApiError::bad(
                "log in with a user name and a password, not a token",
            ))
        }
        None => return Err(ApiError::bad("a user name and a password are required")),
    };
    match d.engine.login(&a.serveraddress, &user, &password).await {
        Ok(()) => Ok(super::api::json(
            StatusCode::OK,
            serde_json::json!({"Status": "Login Succeeded", "IdentityToken": ""}),
        )),
        Err(
            e @ berth_engine::EngineError::Login(
                berth_engine::berth_host::LoginError::Unauthorized { .. },
            ),
        ) => Err(ApiError::new(StatusCode::UNAUTHORIZED, e.to_string())),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(json: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let v = base64::engine::general_purpose::URL_SAFE.encode(json);
        h.insert("x-registry-auth", v.parse().unwrap());
        h
    }

    #[test]
    fn registry_auth_headers_as_clients_send_them() {
        assert!(registry_auth(&HeaderMap::new()).unwrap().is_none());
        assert!(registry_auth(&header("{}")).unwrap().is_none());
        let c = registry_auth(&header(
            r#"{"username":"u","password":"p?>","serveraddress":"r:5000"}"#,
        ))
        .unwrap();
        assert!(
            matches!(c, Some(Credentials::Basic { username, password }) if username == "u" && password == "p?>")
        );
        let c = registry_auth(&header(r#"{"auth":"dTpwOng="}"#)).unwrap();
        assert!(
            matches!(c, Some(Credentials::Basic { username, password }) if username == "u" && password == "p:x")
        );
        let c = registry_auth(&header(r#"{"registrytoken":"T"}"#)).unwrap();
        assert!(matches!(c, Some(Credentials::Bearer { token }) if token == "T"));
        let mut bad = HeaderMap::new();
        bad.insert("x-registry-auth", "!!!".parse().unwrap());
        assert!(registry_auth(&bad).is_err());
    }
}
