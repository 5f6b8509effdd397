//! The monitor of one running container (`berth shim`, as containerd-shim or
//! conmon): it creates the container through the runtime so the container's
//! init is its child, holds the container's stdio (pipes or a pty), writes
//! the json-file log, serves attach/start/resize on its socket, and when
//! the container ends, deletes it from the runtime, unmounts its root
//! filesystem and records the exit status in `exit.json`. It is detached
//! from the daemon (own session), so containers outlive a daemon restart.
//!
//! Protocol on the socket: the client sends one JSON line (`Request`); for
//! `start` and `resize` the shim answers one line (`ok` or `error: …`); for
//! `attach` the connection becomes a stream: output in docker's multiplexed
//! frames (8-byte header: stream, 0, 0, 0, big-endian length), input raw.

use std::io::Write as _;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

use super::logs::{Rotation, Writer};

/// What the daemon tells the shim to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    Start,
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    Resize {
        h: u16,
        w: u16,
    },
}

/// How the container ended (`exit.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Exit {
    pub exit_code: i32,
    pub finished_at: String,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub error: String,
}

/// The shim's command line.
#[derive(Debug, Clone)]
pub struct Args {
    pub runtime_root: PathBuf,
    /// The container's directory: `config.json`, `rootfs/`, the log, the socket.
    pub dir: PathBuf,
    pub id: String,
    /// Where to serve attach/start/resize.
    pub socket: PathBuf,
    pub stdin: bool,
    pub stdin_once: bool,
    pub rotation: Rotation,
    /// The terminal's first size (rows, columns).
    pub size: Option<(u16, u16)>,
}

pub const EXIT: &str = "exit.json";

/// The log file of container `id` in `dir`.
pub fn log_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}-json.log"))
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)
}

fn dup2(fd: RawFd, to: RawFd) -> std::io::Result<()> {
    // SAFETY: dup2 on descriptors we own; `to` is one of 0, 1, 2.
    if unsafe { libc::dup2(fd, to) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Runs the shim. The caller's stdout is the report pipe: the shim writes
/// `ok PID` once the container is created (or `error: …`), then detaches.
/// Returns only in the first process (the one the daemon waits for).
pub fn main(args: Args) -> i32 {
    // Detach: a new session, and a fork so the daemon reaps the parent at once
    // and the shim is nobody's child but init's.
    let _ = nix::unistd::setsid();
    // SAFETY: the shim is single-threaded here (no runtime started yet).
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { .. }) => return 0,
        Ok(nix::unistd::ForkResult::Child) => {}
        Err(e) => {
            println!("error: forking the container monitor: {e}");
            return 1;
        }
    }
    // fd 1 is the report pipe; keep a copy, as 1 becomes the container's stdout.
    // CLOEXEC: the container's init must not carry it into the container.
    let mut report =
        match nix::fcntl::fcntl(std::io::stdout(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3)) {
            // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nothing else owns.
            Ok(fd) => std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) }),
            Err(e) => {
                println!("error: duplicating the report pipe: {e}");
                return 1;
            }
        };
    match setup(&args) {
        Ok(io) => {
            let _ = writeln!(report, "ok {} {}", io.pid, std::process::id());
            drop(report);
            serve(args, io);
            0
        }
        Err(e) => {
            let _ = writeln!(report, "error: {e}");
            1
        }
    }
}

/// The container's stdio as the shim holds it.
struct Io {
    pid: i32,
    stdin: Option<OwnedFd>,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    pty: Option<OwnedFd>,
    listener: std::os::unix::net::UnixListener,
}

fn setup(args: &Args) -> Result<Io, String> {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("opening /dev/null: {e}"))?;
    let io_err = |what: &str, e: std::io::Error| format!("{what}: {e}");
    // Our own stderr (shim.log), kept for after the container has 0, 1, 2.
    let log = nix::fcntl::fcntl(std::io::stderr(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))
        // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor nothing else owns.
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
        .map_err(|e| format!("duplicating stderr: {e}"))?;
    let (in_r, in_w) = if args.stdin {
        let (r, w) = pipe().map_err(|e| io_err("making the stdin pipe", e))?;
        (Some(r), Some(w))
    } else {
        (None, None)
    };
    let (out_r, out_w) = pipe().map_err(|e| io_err("making the stdout pipe", e))?;
    let (err_r, err_w) = pipe().map_err(|e| io_err("making the stderr pipe", e))?;
    // The init inherits 0, 1, 2 (the runtime passes them through).
    dup2(in_r.as_ref().map_or(null.as_raw_fd(), |f| f.as_raw_fd()), 0)
        .and_then(|_| dup2(out_w.as_raw_fd(), 1))
        .and_then(|_| dup2(err_w.as_raw_fd(), 2))
        .map_err(|e| io_err("redirecting stdio", e))?;
    let rt = berth_runtime::Runtime::new(&args.runtime_root);
    let created = rt.create_for_monitor(&berth_runtime::CreateOptions {
        id: args.id.clone(),
        bundle: args.dir.clone(),
        pid_file: None,
        console_socket: None,
    });
    let _ = dup2(null.as_raw_fd(), 0);
    let _ = dup2(null.as_raw_fd(), 1);
    let _ = dup2(log.as_raw_fd(), 2);
    drop((in_r, out_w, err_w));
    let (rec, pty) = created.map_err(|e| e.to_string())?;
    if let (Some(m), Some((h, w))) = (&pty, args.size) {
        set_winsize(m, h, w);
    }
    let sock = args.socket.clone();
    let _ = std::fs::remove_file(&sock);
    let listener = std::os::unix::net::UnixListener::bind(&sock).map_err(|e| {
        let _ = rt.delete(&args.id, true);
        format!("listening on {}: {e}", sock.display())
    })?;
    let (stdout, stderr) = if pty.is_some() {
        (None, None)
    } else {
        (Some(out_r), Some(err_r))
    };
    Ok(Io {
        pid: rec.pid,
        stdin: in_w,
        stdout,
        stderr,
        pty,
        listener,
    })
}

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

fn serve(args: Args, io: Io) {
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

/// Deletes the container from the runtime, unmounts its root filesystem
/// and writes `exit.json` (atomically: the daemon trusts what it finds).
fn finish(args: &Args, mut exit: Exit) {
    let rt = berth_runtime::Runtime::new(&args.runtime_root);
    if let Ok(st) = rt.stats(&args.id) {
        exit.oom_killed = st.memory.and_then(|m| m.oom_kills).unwrap_or(0) > 0;
    }
    if let Err(e) = rt.delete(&args.id, true) {
        eprintln!("berth shim: deleting container {}: {e}", args.id);
    }
    let _ = crate::mount::unmount_all(&args.dir.join("rootfs"));
    let _ = std::fs::remove_file(&args.socket);
    exit.finished_at = super::now();
    let _ = super::write_json(&args.dir.join(EXIT), &exit);
}

async fn run(args: &Args, io: Io) -> Exit {
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
    args: Args,
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
    let Ok(afd) = super::async_fd(fd, tokio::io::Interest::READABLE) else {
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
    let mut line = String::new();
    if r.read_line(&mut line).await.is_err() {
        return;
    }
    let req: Request = match serde_json::from_str(line.trim()) {
        Ok(q) => q,
        Err(e) => {
            let _ = w
                .write_all(format!("error: bad request: {e}\n").as_bytes())
                .await;
            return;
        }
    };
    match req {
        Request::Start => {
            let rt = berth_runtime::Runtime::new(&ctx.args.runtime_root);
            let reply = match rt.start(&ctx.args.id) {
                Ok(()) => "ok\n".to_string(),
                Err(e) => {
                    eprintln!("berth shim: starting {}: {e}", ctx.args.id);
                    format!("error: {e}\n")
                }
            };
            let _ = w.write_all(reply.as_bytes()).await;
        }
        Request::Resize { h, w: cols } => {
            let reply = match &ctx.pty {
                Some(m) => {
                    let ws = libc::winsize {
                        ws_row: h,
                        ws_col: cols,
                        ws_xpixel: 0,
                        ws_ypixel: 0,
                    };
                    // SAFETY: TIOCSWINSZ with a valid winsize on the pty master we own.
                    if unsafe { libc::ioctl(m.as_raw_fd(), libc::TIOCSWINSZ, &ws) } == 0 {
                        "ok\n".to_string()
                    } else {
                        format!(
                            "error: resizing the terminal: {}\n",
                            std::io::Error::last_os_error()
                        )
                    }
                }
                None => "error: the container has no terminal\n".to_string(),
            };
            let _ = w.write_all(reply.as_bytes()).await;
        }
        Request::Attach {
            stdin,
            stdout,
            stderr,
        } => {
            let (tx, mut rx) = mpsc::unbounded_channel::<Frame>();
            ctx.shared.borrow_mut().clients.push(tx);
            ctx.shared.borrow_mut().writing += 1;
            let _ = w.write_all(b"ok\n").await;
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

/// Sets a terminal's size; false (with errno set) when the kernel refuses.
pub fn set_winsize(m: &OwnedFd, rows: u16, cols: u16) -> bool {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ with a valid winsize on a pty master the caller holds.
    unsafe { libc::ioctl(m.as_raw_fd(), libc::TIOCSWINSZ, &ws) == 0 }
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
