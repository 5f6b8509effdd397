//! Running a command with a deadline and capturing its status, stdout and stderr.
//!
//! Output goes to unnamed temporary files rather than pipes: a runtime's
//! `create` or `run -d` hands its stdio to the container, which may hold it
//! open long after the runtime exits, and reading a pipe to EOF would hang.

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::poll::poll;

/// What a finished command did.
#[derive(Debug, Clone)]
pub struct Output {
    /// The command line, for messages.
    pub argv: String,
    /// Exit code; 128+n when the command itself was killed by signal n.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Panics unless the command exited 0.
    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        assert_eq!(self.code, 0, "command failed: {self}");
        self
    }

    /// Panics unless the command exited with `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code: {self}");
        self
    }

    /// Panics unless the command failed (exit code not 0).
    #[track_caller]
    pub fn assert_failed(&self) -> &Self {
        assert_ne!(self.code, 0, "command should have failed: {self}");
        self
    }

    /// The stdout lines with `\r` and surrounding blanks trimmed.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().map(|l| l.trim()).collect()
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` exited {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.argv, self.code, self.stdout, self.stderr
        )
    }
}

/// A command started in the background; killed if dropped before `wait`.
#[derive(Debug)]
pub struct Spawned {
    child: Option<Child>,
    argv: String,
    out: File,
    err: File,
    timeout: Duration,
}

impl Spawned {
    /// Starts `cmd` with `stdin` (or /dev/null) as its input.
    pub fn start(mut cmd: Command, stdin: Option<&[u8]>, timeout: Duration) -> Spawned {
        let argv = describe(&cmd);
        let out = tempfile::tempfile().expect("temp file for stdout");
        let err = tempfile::tempfile().expect("temp file for stderr");
        let input = match stdin {
            Some(bytes) => {
                let mut f = tempfile::tempfile().expect("temp file for stdin");
                f.write_all(bytes).expect("write stdin");
                f.seek(SeekFrom::Start(0)).expect("rewind stdin");
                Stdio::from(f)
            }
            None => Stdio::null(),
        };
        cmd.stdin(input)
            .stdout(out.try_clone().expect("dup stdout"))
            .stderr(err.try_clone().expect("dup stderr"));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{argv}`: {e}"));
        Spawned {
            child: Some(child),
            argv,
            out,
            err,
            timeout,
        }
    }

    /// Process id of the command.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// What the command has written to stdout so far (it may still run).
    pub fn stdout_so_far(&self) -> String {
        use std::os::unix::fs::FileExt as _;
        let mut all = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n) = self.out.read_at(&mut buf, all.len() as u64) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&all).into_owned()
    }

    /// Whether the command has exited.
    pub fn finished(&mut self) -> bool {
        let child = self.child.as_mut().expect("not yet waited");
        matches!(child.try_wait(), Ok(Some(_)))
    }

    /// Waits for the command; on timeout kills it and panics with what it printed.
    #[track_caller]
    pub fn wait(mut self) -> Output {
        let mut child = self.child.take().expect("waited twice");
        match poll(self.timeout, || child.try_wait().expect("wait for child")) {
            Ok(status) => self.collect(status),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let p = self.collect(ExitStatus::from_raw(9));
                panic!(
                    "timed out after {:?}, killed: `{}`\n--- stdout ---\n{}\n--- stderr ---\n{}",
                    self.timeout, p.argv, p.stdout, p.stderr
                );
            }
        }
    }

    fn collect(&mut self, status: ExitStatus) -> Output {
        let code = status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        Output {
            argv: self.argv.clone(),
            code,
            stdout: read_all(&mut self.out),
            stderr: read_all(&mut self.err),
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs `cmd` to completion with a deadline.
#[track_caller]
pub fn run(cmd: Command, stdin: Option<&[u8]>, timeout: Duration) -> Output {
    Spawned::start(cmd, stdin, timeout).wait()
}

/// The trimmed stdout of a command that must succeed (an id, a name);
/// panics unless it exited 0.
#[track_caller]
pub fn ok(out: Output) -> String {
    out.assert_ok();
    out.stdout.trim().to_string()
}

/// Runs a host helper (`ip`, `cp`, …) and panics if it fails.
#[track_caller]
pub fn host(program: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(program);
    cmd.args(args);
    let out = run(cmd, None, Duration::from_secs(60));
    out.assert_ok();
    out
}

fn read_all(f: &mut File) -> String {
    let mut s = Vec::new();
    f.seek(SeekFrom::Start(0)).expect("rewind output");
    f.read_to_end(&mut s).expect("read output");
    String::from_utf8_lossy(&s).into_owned()
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` with output discarded, never panicking (for cleanup in `Drop`):
/// the exit code, or `None` if it could not start or was killed at the deadline.
pub fn run_quiet(mut cmd: Command, timeout: Duration) -> Option<i32> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().ok()?;
    // Done when it exited (`Some(status)`) or cannot be waited for (`None`).
    let exited = poll(timeout, || match child.try_wait() {
        Ok(None) => None,
        Ok(Some(st)) => Some(Some(st)),
        Err(_) => Some(None),
    });
    match exited {
        Ok(Some(st)) => st.code(),
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            None
        }
    }
}
