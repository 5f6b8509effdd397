//! Pushing one blob: `HEAD` first (the registry may have it), a
//! cross-repository mount from a repository known to hold it, then an
//! upload — monolithic (POST, then PUT with the bytes: some registries
//! ignore a POST that carries the digest) for small blobs, chunked `PATCH`es
//! with `Content-Range` for large ones. A chunk cut off by a broken
//! connection is resumed from the offset the registry reports for the
//! session (`GET` on the upload URL); a registry that cancelled the session
//! instead (distribution does when a cut chunk left more bytes than it
//! acknowledged) gets a new session, from the first byte.

use berth_sdk::error::PluginError;
use berth_sdk::oci::Descriptor;

use crate::auth::encode;
use crate::client::{Client, Method, Response, Transport, Upload};
use crate::url::Url;

/// Blobs up to this size go in one PUT; larger ones in chunks of this size.
pub const CHUNK: u64 = 32 << 20;
/// How many times one blob's upload may recover from a broken request.
pub const RECOVERIES: u32 = 4;

/// How the push of one blob ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Its bytes were sent.
    Uploaded,
    /// The registry had it.
    Existed,
    /// Mounted from this repository.
    Mounted(String),
}

/// Where an upload's bytes come from: the blob, from any byte on.
pub trait Source<S> {
    /// A stream of the blob from byte `offset` on.
    fn stream_at(&self, offset: u64) -> Result<S, PluginError>;
}

/// A started upload, or a mount that made one unnecessary.
enum Started {
    Mounted,
    Session(Url),
}

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Pushes `blob` from `src`, trying a mount from each of `sources` first
/// (repositories of the same registry known to hold it).
pub fn push_blob<T: Transport, Src: Source<T::Stream>>(
    c: &mut Client<T>,
    blob: &Descriptor,
    sources: &[String],
    src: &Src,
    chunk: u64,
) -> Result<Outcome, PluginError> {
    if blob_exists(c, &blob.digest)? {
        return Ok(Outcome::Existed);
    }
    let own = c.reference.repository.clone();
    let mut session = None;
    for from in sources.iter().filter(|s| **s != own).take(3) {
        match start(c, Some((&blob.digest, from)))? {
            Started::Mounted => return Ok(Outcome::Mounted(from.clone())),
            Started::Session(url) => {
                // Not mounted: the registry opened an upload instead.
                if session.is_none() {
                    session = Some(url);
                } else {
                    cancel(c, url);
                }
            }
        }
    }
    let mut session = match session {
        Some(url) => url,
        None => new_session(c)?,
    };
    let mut recoveries = 0;
    loop {
        let attempt = if blob.size <= chunk {
            put_whole(c, &session, blob, src)
        } else {
            put_chunked(c, &mut session, blob, src, chunk, &mut recoveries)
        };
        match attempt {
            Ok(()) => return Ok(Outcome::Uploaded),
            Err(Failure::Broken(why)) if recoveries < RECOVERIES => {
                recoveries += 1;
                berth_sdk::log::warn(&format!(
                    "uploading {}: {why}; starting the blob again in a new upload",
                    blob.digest
                ));
                cancel(c, session);
                session = new_session(c)?;
            }
            Err(Failure::Broken(why)) => {
                cancel(c, session);
                return Err(PluginError::Unavailable(format!(
                    "uploading {}: {why} (gave up after {recoveries} recoveries)",
                    blob.digest
                )));
            }
            Err(Failure::Refused(e)) => {
                cancel(c, session);
                return Err(e);
            }
        }
    }
}

/// Whether the registry already has blob `digest`.
pub fn blob_exists<T: Transport>(c: &mut Client<T>, digest: &str) -> Result<bool, PluginError> {
    let resp = c.call(Method::Head, &format!("blobs/{digest}"), &[], Upload::None)?;
    match resp.status {
        200 => Ok(true),
        404 => Ok(false),
        _ => Err(c.error(resp, &format!("checking blob {digest}"))),
    }
}

/// POSTs a new upload, asking to mount `digest` from repository `from`.
fn start<T: Transport>(
    c: &mut Client<T>,
    mount: Option<(&str, &str)>,
) -> Result<Started, PluginError> {
    let tail = match mount {
        Some((digest, from)) => {
            c.also_pull(from);
            format!(
                "blobs/uploads/?mount={}&from={}",
                encode(digest),
                encode(from)
            )
        }
        None => "blobs/uploads/".to_string(),
    };
    let resp = c.call(
        Method::Post,
        &tail,
        &headers(&[("content-length", "0")]),
        Upload::Bytes(&[]),
    )?;
    match resp.status {
        201 if mount.is_some() => Ok(Started::Mounted),
        202 => Ok(Started::Session(location(c, &resp)?)),
        _ => Err(c.error(
            resp,
            &format!("starting an upload to {}", c.reference.name()),
        )),
    }
}

fn new_session<T: Transport>(c: &mut Client<T>) -> Result<Url, PluginError> {
    match start(c, None)? {
        Started::Session(url) => Ok(url),
        Started::Mounted => unreachable!("no mount was asked for"),
    }
}

/// Where the registry says the upload continues.
fn location<T: Transport>(c: &Client<T>, resp: &Response<T::Body>) -> Result<Url, PluginError> {
    let base = c.last_url.clone().expect("a response was received");
    resp.header("location")
        .and_then(|l| base.join(l))
        .ok_or_else(|| {
            PluginError::Invalid("the registry answered an upload without a Location".into())
        })
}

/// Abandons an upload session (best effort: the registry expires it anyway).
fn cancel<T: Transport>(c: &mut Client<T>, url: Url) {
    let empty = headers(&[("content-length", "0")]);
    if let Ok(resp) = c.exchange(Method::Delete, url, false, &empty, Upload::Bytes(&[])) {
        let _ = c.body(resp, 4096);
    }
}

/// Why an upload attempt failed.
enum Failure {
    /// The connection broke or the registry failed (5xx): may work again.
    Broken(String),
    /// The registry refused it: final.
    Refused(PluginError),
}

fn refused(e: PluginError) -> Failure {
    match e {
        PluginError::Unavailable(m) => Failure::Broken(m),
        e => Failure::Refused(e),
    }
}

/// The whole blob in one PUT.
fn put_whole<T: Transport, Src: Source<T::Stream>>(
    c: &mut Client<T>,
    session: &Url,
    blob: &Descriptor,
    src: &Src,
) -> Result<(), Failure> {
    let stream = src.stream_at(0).map_err(Failure::Refused)?;
    let size = blob.size.to_string();
    let resp = c
        .exchange(
            Method::Put,
            session.with_query(&format!("digest={}", encode(&blob.digest))),
            false,
            &headers(&[
                ("content-type", "application/octet-stream"),
                ("content-length", &size),
            ]),
            Upload::Stream(&stream, blob.size),
        )
        .map_err(refused)?;
    match resp.status {
        201 | 204 => Ok(()),
        500..=599 => Err(Failure::Broken(format!("HTTP {}", resp.status))),
        _ => Err(Failure::Refused(
            c.error(resp, &format!("uploading blob {}", blob.digest)),
        )),
    }
}

/// The blob in `chunk`-sized PATCHes, resumed at the registry's offset
/// after a broken one, then a PUT with the digest. `session` follows the
/// registry's `Location`s (the one to cancel if this fails).
fn put_chunked<T: Transport, Src: Source<T::Stream>>(
    c: &mut Client<T>,
    session: &mut Url,
    blob: &Descriptor,
    src: &Src,
    chunk: u64,
    recoveries: &mut u32,
) -> Result<(), Failure> {
    let mut offset = 0;
    while offset < blob.size {
        let len = chunk.min(blob.size - offset);
        let stream = src.stream_at(offset).map_err(Failure::Refused)?;
        let (range, length) = (format!("{offset}-{}", offset + len - 1), len.to_string());
        let sent = c.exchange(
            Method::Patch,
            session.clone(),
            false,
            &headers(&[
                ("content-type", "application/octet-stream"),
                ("content-range", &range),
                ("content-length", &length),
            ]),
            Upload::Stream(&stream, len),
        );
        drop(stream);
        let broken = match sent {
            Ok(resp) if resp.status == 202 => {
                *session = location(c, &resp).map_err(Failure::Refused)?;
                offset = match acknowledged(&resp) {
                    Some(end) if end <= offset + len => end,
                    _ => offset + len,
                };
                let _ = c.body(resp, 4096);
                continue;
            }
            Ok(resp) if resp.status >= 500 => format!("HTTP {}", resp.status),
            Ok(resp) => {
                return Err(Failure::Refused(c.error(
                    resp,
                    &format!("uploading blob {} (bytes {range})", blob.digest),
                )))
            }
            Err(PluginError::Unavailable(m)) => m,
            Err(e) => return Err(Failure::Refused(e)),
        };
        // Ask the session how far it got; a registry that lost or cancelled
        // the session makes the caller start a new one.
        if *recoveries >= RECOVERIES {
            return Err(Failure::Broken(broken));
        }
        *recoveries += 1;
        let (url, at) =
            status(c, session).map_err(|why| Failure::Broken(format!("{broken}; {why}")))?;
        if at > blob.size {
            return Err(Failure::Broken(format!(
                "{broken}; the registry says it has {at} bytes of a {}-byte blob",
                blob.size
            )));
        }
        berth_sdk::log::warn(&format!(
            "uploading {}: {broken} at byte {offset}; the registry has {at} bytes, resuming there",
            blob.digest
        ));
        *session = url;
        offset = at;
    }
    let resp = c
        .exchange(
            Method::Put,
            session.with_query(&format!("digest={}", encode(&blob.digest))),
            false,
            &headers(&[("content-length", "0")]),
            Upload::Bytes(&[]),
        )
        .map_err(refused)?;
    match resp.status {
        201 | 204 => Ok(()),
        500..=599 => Err(Failure::Broken(format!("HTTP {}", resp.status))),
        _ => Err(Failure::Refused(c.error(
            resp,
            &format!("finishing the upload of blob {}", blob.digest),
        ))),
    }
}

/// The byte after the last one a response's `Range: 0-N` acknowledges.
fn acknowledged<B>(resp: &Response<B>) -> Option<u64> {
    let (start, end) = resp
        .header("range")?
        .trim()
        .trim_start_matches("bytes=")
        .split_once('-')?;
    let (start, end): (u64, u64) = (start.parse().ok()?, end.parse().ok()?);
    // `0-0` is how registries say "nothing yet" as well as "one byte".
    (start == 0).then_some(if end == 0 { 0 } else { end + 1 })
}

/// `GET` on an upload session: where it continues and how many bytes it has.
fn status<T: Transport>(c: &mut Client<T>, session: &Url) -> Result<(Url, u64), String> {
    let resp = c
        .exchange(Method::Get, session.clone(), false, &[], Upload::None)
        .map_err(|e| format!("asking the upload's status: {e}"))?;
    if resp.status != 204 {
        let status = resp.status;
        let body = c.body(resp, 4096).unwrap_or_default();
        return Err(format!(
            "the registry no longer has the upload (HTTP {status} {})",
            String::from_utf8_lossy(&body).trim()
        ));
    }
    let at = acknowledged(&resp).unwrap_or(0);
    let url = location(c, &resp).unwrap_or_else(|_| session.clone());
    let _ = c.body(resp, 4096);
    Ok((url, at))
}
