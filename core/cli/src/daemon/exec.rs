//! `/containers/{id}/exec` and `/exec/{id}/…`: create, start (hijacked,
//! or detached), resize, inspect.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;

use crate::api::exec::{ExecConfig, ExecInspect, ExecStartRequest, ProcessConfig};
use crate::api::IdResponse;

use super::api::{self, number, ApiError, ApiResult, Query};
use super::Shared;

pub async fn create(
    State(d): State<Shared>,
    Path(id): Path<String>,
    body: bytes::Bytes,
) -> ApiResult {
    let cfg: ExecConfig = api::body(&body)?;
    let eid = d.containers.exec_create(&id, cfg)?;
    Ok(api::json(StatusCode::CREATED, IdResponse { id: eid }))
}

pub async fn start(State(d): State<Shared>, Path(id): Path<String>, req: Request) -> ApiResult {
    let (mut parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .map_err(|e| ApiError::bad(format!("reading the request body: {e}")))?;
    let b: ExecStartRequest = api::body(&bytes)?;
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
        ExecInspect {
            id: x.id,
            running: x.state.running,
            exit_code: x.state.exit_code,
            process_config: ProcessConfig {
                tty: x.config.tty,
                entrypoint: x.config.cmd.first().cloned(),
                arguments: x.config.cmd.get(1..).unwrap_or(&[]).to_vec(),
                privileged: x.config.privileged,
                user: x.config.user,
            },
            open_stdin: x.config.attach_stdin,
            open_stderr: x.config.attach_stderr,
            open_stdout: x.config.attach_stdout,
            can_remove: false,
            container_id: x.container,
            detach_keys: x.config.detach_keys,
            pid: x.state.pid,
        },
    ))
}
