//! The monitor's event loop: it copies the container's output to the log
//! and to attached clients, their input to the container, answers requests
//! on the socket, and reaps the container's init.

use std::os::fd::OwnedFd;

use berth_engine::containers::logs::Writer;
use berth_engine::monitor::{
    log_path, read_request, write_reply, Exit, MonitorArgs, Reply, Request,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

use super::{finish, Io};

/// An output chunk for attached clients: (stream, bytes); stream 1 or 2.
type Frame = (u8, Vec<u8>);

struct Shared {
    clients: Vec<mpsc::UnboundedSender<Frame>>,
    /// Attach writers still sending their last frames.
    writing: usize,
    log: Option<Writer>,
    partial: [Vec<u8>; 2],
}

impl Shared {
    fn output(&mut self, stream: u8, data: &[u8]) {
        self.clients
            .retain(|c| c.send((stream, data.to_vec())).is_ok());
        let idx = (stream - 1) as usize;
        let name = if stream == 1 { "stdout" } else { "stderr" };
        self.partial[idx].extend_from_slice(data);
        // One log entry per line, as docker's json-file; long partial lines
        // are written at 16 KiB.
        while let Some(pos) = self.partial[idx].iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial[idx].drain(..=pos).collect();
            self.write_log(name, &line);
        }
        if self.partial[idx].len() >= 16 << 10 {
            let line = std::mem::take(&mut self.partial[idx]);
            self.write_log(name, &line);
        }
    }

    fn write_log(&mut self, stream: &str, line: &[u8]) {
        if let Some(w) = &mut self.log {
            if let Err(e) = w.write(stream, &String::from_utf8_lossy(line)) {
                eprintln!("berth shim: writing the container log: {e}");
            }
        }
    }

    fn flush(&mut self) {
        for idx in 0..2 {
            let line = std::mem::take(&mut self.partial[idx]);
            if !line.is_empty() {
                self.write_log(if idx == 0 { "stdout" } else { "stderr" }, &line);
            }
        }
    }
}

type SharedRef = std::rc::Rc<std::cell::RefCell<Shared>>;

pub(crate) fn serve(args: MonitorArgs, io: Io) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            finish(
                &args,
                Exit {
                    exit_code: 255,
                    error: format!("starting the monitor's event loop: {e}"),
                    ..Default::default()
                },
            );
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    let exit = local.block_on(&rt, run(&args, io));
    finish(&args, exit);
}

async fn run(args: &MonitorArgs, io: Io) -> Exit {
    let Io {
        pid,
        stdin,
        stdout,
        stderr,
        pty,
        listener,
    } = io;
    let log = Writer::open(&log_path(&args.dir, &args.id), args.rotation)
        .map_err(|e| eprintln!("berth shim: opening the container log: {e}"))
        .ok();
    let shared: SharedRef = std::rc::Rc::new(std::cell::RefCell::new(Shared {
        clients: Vec::new(),
        log,
        partial: [Vec::new(), Vec::new()],
        writing: 0,
    }));
    let mut sigchld = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child()) {
        Ok(s) => s,
        Err(e) => {
            return Exit {
                exit_code: 255,
                error: format!("watching the container's exit: {e}"),
                ..Default::default()
            }
        }
    };
    // The writer side of the container's input: a pipe, or the pty master.
    let pty = pty.map(std::sync::Arc::new);
    let input: std::rc::Rc<std::cell::RefCell<Option<Input>>> =
        std::rc::Rc::new(std::cell::RefCell::new(match (&stdin, &pty) {
            (_, Some(m)) => Some(Input::Pty(m.clone())),
            (Some(_), None) => stdin.map(Input::Pipe),
            _ => None,
        }));
    let mut readers = Vec::new();
    if let Some(m) = &pty {
        readers.push(tokio::task::spawn_local(read_pty(
            m.clone(),
            shared.clone(),
        )));
    }
    for (n, fd) in [(1u8, stdout), (2u8, stderr)] {
        if let Some(fd) = fd {
            readers.push(tokio::task::spawn_local(read_pipe(fd, n, shared.clone())));
        }
    }
    if let Err(e) = listener.set_nonblocking(true) {
        tracing::warn!("{e}");
    }
    let listener = match UnixListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            return Exit {
                exit_code: 255,
                error: format!("serving the monitor socket: {e}"),
                ..Default::default()
            }
        }
    };
    let ctx = Ctx {
        args: args.clone(),
        shared: shared.clone(),
        input,
        pty: pty.clone(),
    };
    let accept = tokio::task::spawn_local(async move {
        loop {
            if let Ok((conn, _)) = listener.accept().await {
                tokio::task::spawn_local(handle(conn, ctx.clone()));
            }
        }
    });
    // Reap the init.
    let code = loop {
        match nix::sys::wait::waitpid(
            nix::unistd::Pid::from_raw(pid),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        ) {
            Ok(nix::sys::wait::WaitStatus::StillAlive) => {}
            Ok(st) => {
                if let Some(c) = berth_runtime::supervise::exit_code(st) {
                    break c;
                }
            }
            Err(_) => break 255,
        }
        sigchld.recv().await;
    };
    // Reap anything else that was reparented to us, and drain the output.
    while let Ok(st) = nix::sys::wait::waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
        if st == nix::sys::wait::WaitStatus::StillAlive {
            break;
        }
    }
    for r in readers {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), r).await;
    }
    accept.abort();
    {
        let mut s = shared.borrow_mut();
        s.flush();
        // Closing the senders ends each client's writer after its last frame.
        s.clients.clear();
    }
    // Attached clients get their last output before the exit is recorded
    // (a waiting `docker run` reads the status right after its stream ends).
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
    while shared.borrow().writing > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    Exit {
        exit_code: code,
        ..Default::default()
    }
}

enum Input {
    Pipe(OwnedFd),
    Pty(std::sync::Arc<OwnedFd>),
}

impl Clone for Input {
    fn clone(&self) -> Self {
        match self {
            Input::Pipe(f) => Input::Pipe(f.try_clone().expect("dup of the stdin pipe")),
            Input::Pty(m) => Input::Pty(m.clone()),
        }
    }
}

#[derive(Clone)]
struct Ctx {
    args: MonitorArgs,
    shared: SharedRef,
    input: std::rc::Rc<std::cell::RefCell<Option<Input>>>,
    pty: Option<std::sync::Arc<OwnedFd>>,
}

async fn read_pipe(fd: OwnedFd, stream: u8, shared: SharedRef) {
    let Ok(mut rx) = tokio::net::unix::pipe::Receiver::from_owned_fd(fd) else {
        return;
    };
    let mut buf = vec![0u8; 32 << 10];
    loop {
        match rx.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => shared.borrow_mut().output(stream, &buf[..n]),
        }
    }
}

async fn read_pty(m: std::sync::Arc<OwnedFd>, shared: SharedRef) {
    let Ok(fd) = m.try_clone() else { return };
    let _ = nix::fcntl::fcntl(
        &fd,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    let Ok(afd) = berth_engine::containers::async_fd(fd, tokio::io::Interest::READABLE) else {
        return;
    };
    let mut buf = vec![0u8; 32 << 10];
    loop {
        let Ok(mut g) = afd.readable().await else {
            break;
        };
        match g.try_io(|f| nix::unistd::read(f.get_ref(), &mut buf).map_err(std::io::Error::from)) {
            Ok(Ok(0)) | Ok(Err(_)) => break, // EIO: the last slave closed
            Ok(Ok(n)) => shared.borrow_mut().output(1, &buf[..n]),
            Err(_would_block) => continue,
        }
    }
}

async fn handle(conn: UnixStream, ctx: Ctx) {
    let (r, mut w) = conn.into_split();
    let mut r = BufReader::new(r);
    let req = match read_request(&mut r).await {
        Ok(Ok(q)) => q,
        Ok(Err(message)) => {
            let _ = write_reply(&mut w, &Reply::Error { message }).await;
            return;
        }
        Err(_) => return,
    };
    match req {
        Request::Start => {
            let rt = berth_runtime::Runtime::new(&ctx.args.runtime_root);
            let reply = match rt.start(&ctx.args.id) {
                Ok(()) => Reply::Ok,
                Err(e) => {
                    eprintln!("berth shim: starting {}: {e}", ctx.args.id);
                    Reply::Error {
                        message: e.to_string(),
                    }
                }
            };
            let _ = write_reply(&mut w, &reply).await;
        }
        Request::Resize { h, w: cols } => {
            let resized = ctx
                .pty
                .as_deref()
                .map(|m| berth_runtime::tty::set_winsize(m, h, cols));
            let reply = match resized {
                Some(Ok(())) => Reply::Ok,
                Some(Err(e)) => Reply::Error {
                    message: format!("resizing the terminal: {e}"),
                },
                None => Reply::Error {
                    message: "the container has no terminal".into(),
                },
            };
            let _ = write_reply(&mut w, &reply).await;
        }
        Request::Attach {
            stdin,
            stdout,
            stderr,
        } => {
            let (tx, mut rx) = mpsc::unbounded_channel::<Frame>();
            ctx.shared.borrow_mut().clients.push(tx);
            ctx.shared.borrow_mut().writing += 1;
            let _ = write_reply(&mut w, &Reply::Ok).await;
            let shared = ctx.shared.clone();
            let writer = tokio::task::spawn_local(async move {
                // Counted down however the writer ends.
                struct Done(SharedRef);
                impl Drop for Done {
                    fn drop(&mut self) {
                        self.0.borrow_mut().writing -= 1;
                    }
                }
                let _done = Done(shared);
                while let Some((stream, data)) = rx.recv().await {
                    if (stream == 1 && !stdout) || (stream == 2 && !stderr) {
                        continue;
                    }
                    let mut hdr = [stream, 0, 0, 0, 0, 0, 0, 0];
                    hdr[4..].copy_from_slice(&(data.len() as u32).to_be_bytes());
                    if w.write_all(&hdr).await.is_err() || w.write_all(&data).await.is_err() {
                        return;
                    }
                }
                let _ = w.shutdown().await;
            });
            if stdin {
                copy_input(&mut r, &ctx).await;
            }
            let _ = writer.await;
        }
    }
}

/// Copies an attached client's input to the container until the client
/// closes it; with `stdin_once` that closes the container's stdin too.
async fn copy_input(r: &mut BufReader<tokio::net::unix::OwnedReadHalf>, ctx: &Ctx) {
    let input = ctx.input.borrow().clone();
    let Some(input) = input else { return };
    let mut buf = vec![0u8; 16 << 10];
    match input {
        Input::Pipe(fd) => {
            let Ok(mut tx) = tokio::net::unix::pipe::Sender::from_owned_fd(fd) else {
                return;
            };
            loop {
                match r.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            }
            drop(tx);
            if ctx.args.stdin_once {
                // The last copy of the pipe's write end: the container sees EOF.
                ctx.input.borrow_mut().take();
            }
        }
        Input::Pty(m) => loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut off = 0;
                    while off < n {
                        match nix::unistd::write(m.as_ref(), &buf[off..n]) {
                            Ok(k) => off += k,
                            Err(nix::errno::Errno::EAGAIN) => {
                                tokio::time::sleep(std::time::Duration::from_millis(1)).await
                            }
                            Err(_) => return,
                        }
                    }
                }
            }
        },
    }
}
