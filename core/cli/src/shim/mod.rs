//! The monitor of one running container (`berth shim`, as containerd-shim or
//! conmon): it creates the container through the runtime so the container's
//! init is its child, holds the container's stdio (pipes or a pty), writes
//! the json-file log, serves attach/start/resize on its socket, and when
//! the container ends, deletes it from the runtime, unmounts its root
//! filesystem and records the exit status in `exit.json`. It is detached
//! from the daemon (own session), so containers outlive a daemon restart.
//! What it says to the engine and how (its command line, the start report,
//! the socket's requests and replies) is `berth_engine::monitor`; this
//! module is the program (`serve` its event loop).

mod serve;

use std::io::Write as _;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use berth_engine::monitor::{Exit, MonitorArgs, StartReport, EXIT};

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

/// Runs the monitor. The caller's stdout is the report pipe: the monitor
/// writes its [`StartReport`] once the container is created (or could not
/// be), then detaches. Returns only in the first process (the one the daemon
/// waits for).
pub fn main(args: MonitorArgs) -> i32 {
    let fail = |error: String| {
        print!("{}", StartReport::Failed { error }.to_line());
        1
    };
    // Detach: a new session, and a fork so the daemon reaps the parent at once
    // and the monitor is nobody's child but init's.
    let _ = nix::unistd::setsid();
    // SAFETY: the monitor is single-threaded here (no runtime started yet).
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { .. }) => return 0,
        Ok(nix::unistd::ForkResult::Child) => {}
        Err(e) => return fail(format!("forking the container monitor: {e}")),
    }
    // fd 1 is the report pipe; keep a copy, as 1 becomes the container's stdout.
    // CLOEXEC: the container's init must not carry it into the container.
    let mut report =
        match nix::fcntl::fcntl(std::io::stdout(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3)) {
            // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nothing else owns.
            Ok(fd) => std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) }),
            Err(e) => return fail(format!("duplicating the report pipe: {e}")),
        };
    match setup(&args) {
        Ok(io) => {
            let created = StartReport::Created {
                pid: io.pid,
                monitor_pid: std::process::id() as i32,
            };
            let _ = report.write_all(created.to_line().as_bytes());
            drop(report);
            serve::serve(args, io);
            0
        }
        Err(error) => {
            let _ = report.write_all(StartReport::Failed { error }.to_line().as_bytes());
            1
        }
    }
}

/// The container's stdio as the shim holds it.
pub(crate) struct Io {
    pid: i32,
    stdin: Option<OwnedFd>,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    pty: Option<OwnedFd>,
    listener: std::os::unix::net::UnixListener,
}

fn setup(args: &MonitorArgs) -> Result<Io, String> {
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
        let _ = berth_runtime::tty::set_winsize(m, h, w);
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

/// Deletes the container from the runtime, unmounts its root filesystem
/// and writes `exit.json` (atomically: the daemon trusts what it finds).
pub(crate) fn finish(args: &MonitorArgs, mut exit: Exit) {
    let rt = berth_runtime::Runtime::new(&args.runtime_root);
    if let Ok(st) = rt.stats(&args.id) {
        exit.oom_killed = st.memory.and_then(|m| m.oom_kills).unwrap_or(0) > 0;
    }
    if let Err(e) = rt.delete(&args.id, true) {
        eprintln!("berth shim: deleting container {}: {e}", args.id);
    }
    let _ = berth_engine::mount::unmount_all(&args.dir.join("rootfs"));
    let _ = std::fs::remove_file(&args.socket);
    exit.finished_at = berth_engine::store::now();
    let _ = berth_engine::store::write_json(&args.dir.join(EXIT), &exit);
}
