//! `/containers/{id}/exec` and `/exec/{id}/…`: create, start (hijacked,
//! or detached), resize, inspect.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use berth_engine::containers::exec::ExecConfig;
use serde_json::json;

use super::api::{self, number, ApiError, ApiResult, Query};
use super::Shared;

pub async fn create(
    State(d): State<Shared>,
    Path(id): Path<String>,
    body: bytes::Bytes,
) -> ApiResult {
    let cfg: ExecConfig = api::body(&body)?;
    let eid = d.containers.exec_create(&id, cfg)?;
    Ok(api::json(StatusCode::CREATED, json!({"Id": eid})))
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct StartBody {
    detach: bool,
    tty: bool,
    console_size: Option<[u16; 2]>,
}

pub async fn start(State(d): State<Shared>, Path(id): Path<String>, req: Request) -> ApiResult {
    let (mut parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .map_err(|e| ApiError::bad(format!("reading the request body: {e}")))?;
    let b: StartBody = api::body(&bytes)?;
    d.containers.exec_check(&id)?;
    if b.detach {
        d.containers
            .exec_start::<tokio::io::DuplexStream>(&id, None, None)
            .await?;
        return Ok(StatusCode::OK.into_response());
    }
    let info = d.containers.exec_inspect(&id)?;
    let ct = if info.config.tty || b.tty {
        api::RAW_STREAM
    } else {
        api::MUX_STREAM
    };
    let mut req = Request::from_parts(
        {
            parts.uri = parts.uri.clone();
            parts
        },
        axum::body::Body::empty(),
    );
    let c = d.containers.clone();
    let size = b.console_size;
    Ok(api::hijack(&mut req, ct, move |io| async move {
        if let Err(e) = c.exec_start(&id, Some(io), size).await {
            tracing::warn!("exec {id}: {e}");
        }
    }))
}

pub async fn resize(State(d): State<Shared>, Path(id): Path<String>, q: Query) -> ApiResult {
    let h: u16 = number(&q, "h")?.unwrap_or(0);
    let w: u16 = number(&q, "w")?.unwrap_or(0);
    d.containers.exec_resize(&id, h, w).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn inspect(State(d): State<Shared>, Path(id): Path<String>) -> ApiResult {
    let x = d.containers.exec_inspect(&id)?;
    Ok(api::json(
        StatusCode::OK,
        json!({
            "ID": x.id,
            "Running": x.state.running,
            "ExitCode": x.state.exit_code,
            "ProcessConfig": {"tty": x.config.tty, "entrypoint": x.config.cmd.first(), "arguments": x.config.cmd.get(1..).unwrap_or(&[]), "privileged": x.config.privileged, "user": x.config.user},
            "OpenStdin": x.config.attach_stdin,
            "OpenStderr": x.config.attach_stderr,
            "OpenStdout": x.config.attach_stdout,
            "CanRemove": false,
            "ContainerID": x.container,
            "DetachKeys": x.config.detach_keys,
            "Pid": x.state.pid,
        }),
    ))
}
