//! [`Transport`] over wasi:http (blocking). The host enforces which
//! registries are reachable and adds basic credentials itself.

use std::io::Write;

use berth_sdk::fetcher::http::outgoing_handler;
use berth_sdk::fetcher::http::types::{
    ErrorCode, Fields, IncomingBody, IncomingResponse, Method as HttpMethod, OutgoingBody,
    OutgoingRequest, Scheme as HttpScheme,
};
use berth_sdk::fetcher::InputStream;
use berth_sdk::io::{splice_exact, StreamWriter};
use berth_sdk::wit::common::wasi::io::streams::StreamError;

use crate::client::{Method, Request, Response, SendError, Transport, Upload};
use crate::url::Scheme;

/// The wasi:http transport.
#[derive(Debug, Default)]
pub struct WasiHttp;

/// A response body; the stream, body and response are dropped in that order.
#[derive(Debug)]
pub struct Body {
    /// The body's bytes.
    pub stream: InputStream,
    _body: IncomingBody,
    _response: IncomingResponse,
}

fn send_error(e: ErrorCode) -> SendError {
    use ErrorCode::*;
    let msg = format!("{e:?}");
    match e {
        HttpRequestDenied => SendError::Denied(msg),
        DnsTimeout
        | DnsError(_)
        | DestinationNotFound
        | DestinationUnavailable
        | DestinationIpProhibited
        | DestinationIpUnroutable
        | ConnectionRefused
        | ConnectionTimeout
        | TlsProtocolError
        | TlsCertificateError
        | TlsAlertReceived(_) => SendError::Connect(msg),
        _ => SendError::Broken(msg),
    }
}

fn broken(what: &str) -> SendError {
    SendError::Broken(what.to_string())
}

impl Transport for WasiHttp {
    type Body = Body;
    type Stream = InputStream;

    fn send(&mut self, req: &Request<'_, InputStream>) -> Result<Response<Body>, SendError> {
        let headers: Vec<(String, Vec<u8>)> = req
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
            .collect();
        let fields =
            Fields::from_list(&headers).map_err(|e| broken(&format!("bad header: {e:?}")))?;
        let r = OutgoingRequest::new(fields);
        let method = match req.method {
            Method::Get => HttpMethod::Get,
            Method::Head => HttpMethod::Head,
            Method::Post => HttpMethod::Post,
            Method::Put => HttpMethod::Put,
            Method::Patch => HttpMethod::Patch,
            Method::Delete => HttpMethod::Delete,
        };
        let scheme = match req.url.scheme {
            Scheme::Http => HttpScheme::Http,
            Scheme::Https => HttpScheme::Https,
        };
        r.set_method(&method).map_err(|()| broken("method"))?;
        r.set_scheme(Some(&scheme)).map_err(|()| broken("scheme"))?;
        r.set_authority(Some(&req.url.authority))
            .map_err(|()| broken("authority"))?;
        r.set_path_with_query(Some(&req.url.path))
            .map_err(|()| broken("path"))?;
        let body = r.body().map_err(|()| broken("request body"))?;
        let pending = outgoing_handler::handle(r, None).map_err(send_error)?;
        {
            let out = body.write().map_err(|()| broken("request body stream"))?;
            match req.upload {
                Upload::None => {}
                Upload::Bytes(b) => StreamWriter(&out)
                    .write_all(b)
                    .map_err(|e| broken(&e.to_string()))?,
                Upload::Stream(src, n) => {
                    splice_exact(&out, src, n).map_err(|e| broken(&e.to_string()))?
                }
            }
        }
        OutgoingBody::finish(body, None).map_err(send_error)?;
        pending.subscribe().block();
        let response = match pending.get() {
            Some(Ok(Ok(resp))) => resp,
            Some(Ok(Err(e))) => return Err(send_error(e)),
            _ => return Err(broken("no response")),
        };
        let status = response.status();
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(k, v)| {
                (
                    k.to_ascii_lowercase(),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })
            .collect();
        let body = response.consume().map_err(|()| broken("response body"))?;
        let stream = body.stream().map_err(|()| broken("response body stream"))?;
        Ok(Response {
            status,
            headers,
            body: Body {
                stream,
                _body: body,
                _response: response,
            },
        })
    }

    fn read_body(&mut self, body: Body, max: u64) -> Result<Vec<u8>, SendError> {
        let mut out = Vec::new();
        loop {
            match body.stream.blocking_read(64 * 1024) {
                Ok(chunk) => out.extend_from_slice(&chunk),
                Err(StreamError::Closed) => return Ok(out),
                Err(e) => return Err(broken(&berth_sdk::io::stream_error(e).to_string())),
            }
            if out.len() as u64 > max {
                return Err(broken(&format!("response larger than {max} bytes")));
            }
        }
    }

    fn sleep_ms(&mut self, ms: u64) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}
