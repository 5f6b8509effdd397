//! `create`, `run` and `start`: a container made from the command line's
//! flags (pulling its image when the daemon has none), started, and
//! attached to until it exits or the detach keys are typed.

use anyhow::{bail, Result};
use hyper::Method;

use super::attach::{detach_sequence, proxy_signals, pump, wait_result, watch_size};
use super::lifecycle::each;
use crate::api::containers::{ContainerInspect, CreateResponse};
use crate::client::create::{self, ContainerArgs};
use crate::client::http::{enc, Client, DaemonError, Json};

/// Creates a container; pulls the image first when the daemon has none.
async fn create_container(
    c: &Client,
    a: &ContainerArgs,
    auto_remove: bool,
    attach: bool,
) -> Result<String> {
    let req = create::request(a, auto_remove, attach)?;
    let body = Json::of(&req)?;
    let mut path = "/containers/create".to_string();
    if let Some(n) = &a.name {
        path.push_str(&format!("?name={}", enc(n)));
    }
    let v: CreateResponse = match c.json(Method::POST, &path, Some(&body)).await {
        Ok(v) => v,
        Err(e)
            if e.downcast_ref::<DaemonError>()
                .is_some_and(|d| d.status == 404 && d.message.contains("No such image")) =>
        {
            eprintln!("Unable to find image '{}' locally", a.image());
            crate::client::images::pull(c, a.image(), a.platform.as_deref(), false, true).await?;
            c.json(Method::POST, &path, Some(&body)).await?
        }
        Err(e) => return Err(e),
    };
    Ok(v.id)
}

pub async fn create(c: &Client, a: &ContainerArgs) -> Result<i32> {
    let id = create_container(c, a, false, false).await?;
    say!("{id}");
    Ok(0)
}

/// docker's exit codes for a failed start: 127 not found, 126 not runnable, 125 other.
fn start_failure(e: &anyhow::Error) -> i32 {
    start_failure_code(&e.to_string())
}

/// docker's exit code for a `run` whose start failed: 127 when the command
/// is not found, 126 when it cannot be run, 125 otherwise.
pub fn start_failure_code(m: &str) -> i32 {
    if m.contains("executable file not found") || m.contains("no such file or directory") {
        127
    } else if m.contains("permission denied") {
        126
    } else {
        125
    }
}

pub async fn run(
    c: &Client,
    a: &ContainerArgs,
    detach: bool,
    rm: bool,
    detach_keys: Option<&str>,
) -> Result<i32> {
    let id = create_container(c, a, rm, !detach).await?;
    if detach {
        if let Err(e) = c
            .call(Method::POST, &format!("/containers/{id}/start"), None)
            .await
        {
            eprintln!("berth: {e}");
            return Ok(start_failure(&e));
        }
        say!("{id}");
        return Ok(0);
    }
    let mut q = format!("/containers/{id}/attach?stream=1&stdout=1&stderr=1");
    if a.interactive {
        q.push_str("&stdin=1");
    }
    if let Some(k) = detach_keys {
        q.push_str(&format!("&detachKeys={}", enc(k)));
    }
    let io = c.hijack(&q, None).await?;
    let cond = if rm { "removed" } else { "next-exit" };
    let mut wait = c
        .stream(
            Method::POST,
            &format!("/containers/{id}/wait?condition={cond}"),
            None,
        )
        .await?;
    let raw = if a.tty && a.interactive {
        berth_runtime::tty::RawMode::stdin()
    } else {
        None
    };
    if let Err(e) = c
        .call(Method::POST, &format!("/containers/{id}/start"), None)
        .await
    {
        drop(raw);
        eprintln!("berth: {e}");
        return Ok(start_failure(&e));
    }
    let resize = a
        .tty
        .then(|| watch_size(c, format!("/containers/{id}/resize")));
    let proxy = (!a.tty).then(|| proxy_signals(c, &id));
    let keys = a
        .interactive
        .then(|| detach_sequence(detach_keys))
        .transpose()?;
    let detached = pump(io, a.tty, a.interactive, keys).await?;
    drop(raw);
    if let Some(r) = resize {
        r.abort();
    }
    if detached {
        if let Some(p) = proxy {
            p.abort();
        }
        return Ok(0);
    }
    let v = wait_result(&mut wait).await?;
    if let Some(p) = proxy {
        p.abort();
    }
    if let Some(e) = v
        .as_ref()
        .and_then(|v| v.error.as_ref())
        .filter(|e| !e.message.is_empty())
    {
        // Detached with the detach keys: the container runs on.
        eprintln!("berth: {}", e.message);
    }
    Ok(v.map_or(125, |v| v.status_code as i32))
}

pub async fn start(c: &Client, ids: &[String], attach: bool, interactive: bool) -> Result<i32> {
    if attach || interactive {
        let [id] = ids else {
            bail!("you cannot start and attach multiple containers at once");
        };
        let info: ContainerInspect = c
            .json(Method::GET, &format!("/containers/{}/json", enc(id)), None)
            .await?;
        let tty = info.config.tty;
        let full = info.id;
        let mut q = format!("/containers/{full}/attach?stream=1&stdout=1&stderr=1");
        if interactive {
            q.push_str("&stdin=1");
        }
        let io = c.hijack(&q, None).await?;
        let mut wait = c
            .stream(
                Method::POST,
                &format!("/containers/{full}/wait?condition=next-exit"),
                None,
            )
            .await?;
        let raw = if tty && interactive {
            berth_runtime::tty::RawMode::stdin()
        } else {
            None
        };
        c.call(Method::POST, &format!("/containers/{full}/start"), None)
            .await?;
        let keys = interactive.then(|| detach_sequence(None)).transpose()?;
        let detached = pump(io, tty, interactive, keys).await?;
        drop(raw);
        if detached {
            return Ok(0);
        }
        let v = wait_result(&mut wait).await?;
        return Ok(v.map_or(1, |v| v.status_code as i32));
    }
    each(ids, |id| async move {
        c.call(
            Method::POST,
            &format!("/containers/{}/start", enc(&id)),
            None,
        )
        .await
        .map(|_| say!("{id}"))
    })
    .await
}
