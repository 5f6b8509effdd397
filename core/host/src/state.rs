//! The data of one call's `Store`: WASI context, resources, limits, journal
//! and what the call is allowed to reach.
//!
//! A store lives for exactly one call (instantiated from the plugin's
//! `InstancePre`) and is dropped afterwards, trap or not.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};
use wasmtime_wasi_io::streams::OutputStream;
use wasmtime_wasi_io::IoView;

use crate::beneath::Root;
use crate::blobs::{ContentStore, PushLedger};
use crate::http::HttpPolicy;
use crate::journal::Journal;
use crate::streams::{lock, SharedReader, WriteStream};

/// Memory cap of one store: the guest's linear memory and what the host
/// allocated for the call count together; remembers whether it was hit.
#[derive(Debug)]
pub(crate) struct Limiter {
    pub limit: usize,
    pub hit: bool,
    /// The guest's linear memory, as last grown.
    pub guest: usize,
    /// The call's host-side allocations.
    pub watch: Arc<crate::watch::Watch>,
}

impl Limiter {
    /// Whether guest and host memory together are past the cap (noted).
    pub(crate) fn over(&mut self) -> bool {
        if self.guest + self.watch.host_bytes() > self.limit {
            self.hit = true;
        }
        self.hit
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired + self.watch.host_bytes() > self.limit {
            self.hit = true;
            return Ok(false);
        }
        self.guest = desired;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}

/// Store data of one plugin call.
pub(crate) struct State {
    pub plugin: Arc<str>,
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub limiter: Limiter,
    pub deadline: Instant,
    /// The first policy violation of this call (a refused path, host, mount).
    pub violation: Option<crate::error::Refusal>,
    pub root: Arc<Root>,
    pub journal: Journal,
    pub devices_granted: bool,
    /// The layer tar of an `apply-layer` call: its stream's resource id and reader.
    pub tar: Option<(u32, SharedReader)>,
    pub http_ctx: WasiHttpCtx,
    pub http: HttpPolicy,
    pub blobs: Option<Arc<dyn ContentStore>>,
    /// The engine's ledger during a `push` call.
    pub push: Option<Arc<dyn PushLedger>>,
    pub stderr: OutputLog,
}

impl State {
    /// Records a policy violation (the first one is reported) and returns it
    /// as a trap.
    pub(crate) fn violation(&mut self, what: crate::error::Refusal) -> wasmtime::Error {
        tracing::warn!(plugin = %self.plugin, "refused: {what}");
        let err = wasmtime::format_err!("{what}");
        self.violation.get_or_insert(what);
        err
    }
}

impl IoView for State {
    fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http_ctx,
            table: &mut self.table,
            hooks: &mut self.http,
        }
    }
}

/// A plugin's stdout or stderr: complete lines go to `tracing` with the
/// plugin's name, and the last few KiB are kept to explain a trap (a Rust
/// guest prints its panic message there before it aborts).
#[derive(Clone)]
pub(crate) struct OutputLog {
    inner: Arc<Mutex<Option<LineLog>>>,
}

pub(crate) struct LineLog {
    plugin: Arc<str>,
    stream: &'static str,
    line: Vec<u8>,
    tail: VecDeque<u8>,
}

const TAIL: usize = 4096;

impl OutputLog {
    pub(crate) fn new(plugin: Arc<str>, stream: &'static str) -> OutputLog {
        OutputLog {
            inner: Arc::new(Mutex::new(Some(LineLog {
                plugin,
                stream,
                line: Vec::new(),
                tail: VecDeque::new(),
            }))),
        }
    }

    /// The last lines written, for an error message.
    pub(crate) fn tail(&self) -> String {
        let guard = lock(&self.inner);
        let Some(log) = guard.as_ref() else {
            return String::new();
        };
        let bytes: Vec<u8> = log.tail.iter().copied().collect();
        String::from_utf8_lossy(&bytes).trim().to_owned()
    }
}

impl Write for LineLog {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for &b in buf {
            if self.tail.len() == TAIL {
                self.tail.pop_front();
            }
            self.tail.push_back(b);
            if b == b'\n' {
                self.flush()?;
            } else if self.line.len() < TAIL {
                self.line.push(b);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.line.is_empty() {
            let line = String::from_utf8_lossy(&self.line);
            tracing::info!(plugin = %self.plugin, stream = self.stream, "{line}");
            self.line.clear();
        }
        Ok(())
    }
}

impl IsTerminal for OutputLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for OutputLog {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(WriteStream::new(self.inner.clone()))
    }
}

impl tokio::io::AsyncWrite for OutputLog {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(match lock(&self.inner).as_mut() {
            Some(log) => log.write(buf),
            None => Ok(buf.len()),
        })
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
