//! The streams of a container or exec through the daemon: a hijacked
//! connection pumped to and from our terminal (`crate::terminal`), its
//! size kept in step with ours, our signals forwarded, and `logs`.

use std::io::Write as _;

use anyhow::Result;
use hyper::Method;

pub use crate::terminal::pump;

use crate::api::containers::{ContainerInspect, WaitResponse};
use crate::client::http::{enc, next_chunk, Client};

/// The detach sequence a client watches for (docker's default ctrl-p,ctrl-q).
pub(super) fn detach_sequence(keys: Option<&str>) -> Result<Vec<u8>> {
    Ok(berth_engine::containers::stream::parse_detach_keys(
        keys.unwrap_or(""),
    )?)
}

/// Keeps the container's terminal the size of ours (now and on SIGWINCH).
pub(super) fn watch_size(c: &Client, path: String) -> tokio::task::JoinHandle<()> {
    let c = c.clone();
    crate::terminal::on_resize(move |h, w| {
        let (c, path) = (c.clone(), path.clone());
        async move {
            let _ = c
                .call(Method::POST, &format!("{path}?h={h}&w={w}"), None)
                .await;
        }
    })
}

/// Forwards our signals to the container (docker's sig-proxy).
pub(super) fn proxy_signals(c: &Client, id: &str) -> tokio::task::JoinHandle<()> {
    let (c, id) = (c.clone(), id.to_string());
    crate::terminal::on_signals(move |name| {
        let (c, id) = (c.clone(), id.clone());
        async move {
            let _ = c
                .call(
                    Method::POST,
                    &format!("/containers/{id}/kill?signal={name}"),
                    None,
                )
                .await;
        }
    })
}

/// Reads a `wait` answer to its end: the exit status, or `None` when the
/// answer is not one.
pub(super) async fn wait_result(wait: &mut hyper::body::Incoming) -> Result<Option<WaitResponse>> {
    let mut body = Vec::new();
    while let Some(chunk) = next_chunk(wait).await {
        body.extend_from_slice(&chunk?);
    }
    Ok(serde_json::from_slice(&body).ok())
}

pub async fn logs(
    c: &Client,
    id: &str,
    follow: bool,
    tail: Option<&str>,
    timestamps: bool,
    since: Option<&str>,
) -> Result<i32> {
    let info: ContainerInspect = c
        .json(Method::GET, &format!("/containers/{}/json", enc(id)), None)
        .await?;
    let tty = info.config.tty;
    let mut q = format!(
        "/containers/{}/logs?stdout=1&stderr=1&follow={}&timestamps={}",
        enc(id),
        follow as u8,
        timestamps as u8
    );
    if let Some(t) = tail {
        q.push_str(&format!("&tail={}", enc(t)));
    }
    if let Some(s) = since {
        q.push_str(&format!("&since={}", enc(s)));
    }
    let mut body = c.stream(Method::GET, &q, None).await?;
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    let mut pending: Vec<u8> = Vec::new();
    while let Some(chunk) = next_chunk(&mut body).await {
        let chunk = chunk?;
        if tty {
            let _ = out.write_all(&chunk);
            let _ = out.flush();
            continue;
        }
        pending.extend_from_slice(&chunk);
        while pending.len() >= 8 {
            let n = u32::from_be_bytes([pending[4], pending[5], pending[6], pending[7]]) as usize;
            if pending.len() < 8 + n {
                break;
            }
            let frame: Vec<u8> = pending.drain(..8 + n).collect();
            if frame[0] == 2 {
                let _ = err.write_all(&frame[8..]);
            } else {
                let _ = out.write_all(&frame[8..]);
                let _ = out.flush();
            }
        }
    }
    Ok(0)
}
