//! `exec` instances (docker's `/containers/{id}/exec` and `/exec/{id}/…`):
//! a process run in a running container by `berth runtime exec` with the
//! container's own process settings (capabilities, rlimits, env) as the
//! base. Its stdio is bridged to the client's hijacked stream: multiplexed
//! frames, or raw through a pty when it has a terminal.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{Containers, Status};
use crate::error::{ContainerOp, EngineError, ExecOp, Result};

/// docker's `ExecConfig`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecConfig {
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub tty: bool,
    #[serde(deserialize_with = "nullable_vec")]
    pub env: Vec<String>,
    #[serde(deserialize_with = "nullable_vec")]
    pub cmd: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub privileged: bool,
    pub detach_keys: String,
    /// The client's terminal size `[height, width]` (exec start sends it too).
    pub console_size: Option<[u16; 2]>,
}

fn nullable_vec<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// What `GET /exec/{id}/json` shows.
#[derive(Debug, Clone, Default)]
pub struct ExecState {
    pub running: bool,
    pub exit_code: Option<i32>,
    pub pid: i32,
}

pub(crate) struct ExecEntry {
    pub id: String,
    pub container: String,
    pub config: ExecConfig,
    pub state: Mutex<ExecState>,
    pty: Mutex<Option<Arc<OwnedFd>>>,
}

/// A snapshot of an exec instance.
#[derive(Debug, Clone)]
pub struct ExecInfo {
    pub id: String,
    pub container: String,
    pub config: ExecConfig,
    pub state: ExecState,
}

fn not_found(id: &str) -> EngineError {
    EngineError::NotFound {
        what: "exec instance",
        name: id.into(),
    }
}

/// Receives the pty master the runtime sends on a console socket.
fn recv_master(s: std::os::unix::net::UnixStream) -> std::io::Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<UnixAddr>(s.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::empty())
        .map_err(std::io::Error::from)?;
    for c in msg.cmsgs().map_err(std::io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: SCM_RIGHTS just installed `fd` in this process; nothing else owns it.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(std::io::Error::other("the runtime sent no terminal"))
}

impl Containers {
    fn exec_entry(&self, id: &str) -> Result<Arc<ExecEntry>> {
        self.execs
            .lock()
            .expect("execs lock")
            .get(id)
            .cloned()
            .ok_or_else(|| not_found(id))
    }

    /// The exec instances of a container.
    pub fn exec_ids(&self, container: &str) -> Vec<String> {
        self.execs
            .lock()
            .expect("execs lock")
            .values()
            .filter(|x| x.container == container)
            .map(|x| x.id.clone())
            .collect()
    }

    /// Creates an exec instance in a running container.
    pub fn exec_create(&self, key: &str, config: ExecConfig) -> Result<String> {
        let rec = self.get(key)?;
        if rec.status != Status::Running {
            return Err(super::refused(&rec, ContainerOp::Exec));
        }
        if config.cmd.is_empty() {
            return Err(EngineError::invalid(
                "exec command",
                "",
                "No exec command specified",
            ));
        }
        super::stream::parse_detach_keys(&config.detach_keys)?;
        let id = crate::store::new_id()?;
        self.execs.lock().expect("execs lock").insert(
            id.clone(),
            Arc::new(ExecEntry {
                id: id.clone(),
                container: rec.id,
                config,
                state: Mutex::new(ExecState::default()),
                pty: Mutex::new(None),
            }),
        );
        Ok(id)
    }

    pub fn exec_inspect(&self, id: &str) -> Result<ExecInfo> {
        let x = self.exec_entry(id)?;
        let state = x.state.lock().expect("exec lock").clone();
        Ok(ExecInfo {
            id: x.id.clone(),
            container: x.container.clone(),
            config: x.config.clone(),
            state,
        })
    }

    /// Checks that an exec instance can start (before the stream is hijacked).
    pub fn exec_check(&self, id: &str) -> Result<()> {
        let x = self.exec_entry(id)?;
        let st = x.state.lock().expect("exec lock");
        if st.running || st.exit_code.is_some() {
            return Err(EngineError::ExecState {
                id: id.to_string(),
                op: ExecOp::Start,
            });
        }
        drop(st);
        let rec = self.get(&x.container)?;
        if rec.status != Status::Running {
            return Err(super::refused(&rec, ContainerOp::ExecStart));
        }
        Ok(())
    }

    /// The process.json of an exec: the container's process with the exec's
    /// settings; a terminal gets `size` (rows, columns) before the process runs.
    fn exec_process(&self, x: &ExecEntry, size: Option<[u16; 2]>) -> Result<PathBuf> {
        let cdir = self.cdir(&x.container);
        let spec: oci_spec::runtime::Spec = serde_json::from_slice(
            &std::fs::read(cdir.join("config.json"))
                .map_err(|e| EngineError::io("reading", cdir.join("config.json"), e))?,
        )
        .map_err(|source| EngineError::Bundle {
            id: x.container.clone(),
            source,
        })?;
        let mut p =
            serde_json::to_value(spec.process().clone().unwrap_or_default()).expect("serializable");
        let c = &x.config;
        p["args"] = serde_json::json!(c.cmd);
        p["terminal"] = serde_json::json!(c.tty);
        // Set by the runtime on the pty before exec: sizing it once the
        // master reaches us races with what the process reads first.
        if let Some([h, w]) = size.filter(|s| c.tty && s[0] > 0 && s[1] > 0) {
            p["consoleSize"] = serde_json::json!({"height": h, "width": w});
        }
        let mut env: Vec<String> = p["env"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        for e in &c.env {
            let key = e.split('=').next().unwrap_or("");
            env.retain(|x| x.split('=').next() != Some(key));
            env.push(e.clone());
        }
        if c.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".into());
        }
        p["env"] = serde_json::json!(env);
        if !c.working_dir.is_empty() {
            p["cwd"] = serde_json::json!(c.working_dir);
        }
        if !c.user.is_empty() {
            let (uid, gid) = crate::bundle::resolve_user(&cdir.join("rootfs"), &c.user)?;
            p["user"] = serde_json::json!({"uid": uid, "gid": gid});
        }
        if c.privileged {
            let all: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
            p["capabilities"] =
                serde_json::json!({"bounding": all, "effective": all, "permitted": all});
        }
        let path = cdir.join(format!("exec-{}.json", x.id));
        super::write_json(&path, &p)?;
        Ok(path)
    }

    /// Starts an exec instance. With `conn` the process's stdio is bridged
    /// to it until the process ends; without, it runs detached.
    pub async fn exec_start<S>(
        &self,
        id: &str,
        conn: Option<S>,
        size: Option<[u16; 2]>,
    ) -> Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.exec_check(id)?;
        let x = self.exec_entry(id)?;
        let process = self.exec_process(&x, size.or(x.config.console_size))?;
        let mut cmd = tokio::process::Command::new(&self.exe);
        cmd.arg("runtime")
            .arg("--root")
            .arg(self.machine.runtime_root())
            .arg("exec")
            .arg("--process")
            .arg(&process);
        let sock = self.socket_named(&x.container, &format!("-{}", &x.id[..12]));
        let listener = if x.config.tty {
            let _ = std::fs::remove_file(&sock);
            let l = tokio::net::UnixListener::bind(&sock)
                .map_err(|e| EngineError::io("listening on", &sock, e))?;
            cmd.arg("--console-socket").arg(&sock);
            Some(l)
        } else {
            None
        };
        let detached = conn.is_none();
        if detached {
            cmd.arg("--detach");
        }
        cmd.arg(&x.container);
        let piped = |on: bool| {
            if on {
                std::process::Stdio::piped()
            } else {
                std::process::Stdio::null()
            }
        };
        let tty = x.config.tty;
        cmd.stdin(piped(!tty && x.config.attach_stdin && !detached))
            .stdout(piped(!tty && !detached))
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(false);
        let mut child = cmd
            .spawn()
            .map_err(|e| EngineError::io("starting", &self.exe, e))?;
        x.state.lock().expect("exec lock").running = true;
        let cleanup = || {
            let _ = std::fs::remove_file(&process);
            let _ = std::fs::remove_file(&sock);
        };
        let master = match listener {
            Some(l) if !detached => {
                // The runtime hands over the pty, then waits for a process
                // that may end at once: when both are ready, take the pty
                // (an unbiased select lost it, and the output, half the time).
                let accepted = tokio::select! {
                    biased;
                    a = l.accept() => a.ok(),
                    _ = child.wait() => None,
                };
                match accepted {
                    Some((s, _)) => match s.into_std().and_then(recv_master) {
                        Ok(m) => Some(Arc::new(m)),
                        Err(_) => None,
                    },
                    None => None,
                }
            }
            _ => None,
        };
        if let Some(m) = &master {
            if let Some([h, w]) = size
                .or(x.config.console_size)
                .filter(|s| s[0] > 0 && s[1] > 0)
            {
                let _ = berth_runtime::tty::set_winsize(m.as_ref(), h, w);
            }
            *x.pty.lock().expect("exec lock") = Some(m.clone());
        }
        let code = match conn {
            None => {
                let out = child.wait_with_output().await;
                cleanup();
                let mut st = x.state.lock().expect("exec lock");
                st.running = false;
                match out {
                    Ok(o) if o.status.success() => {
                        // The process runs on; its exit code is not known.
                        return Ok(());
                    }
                    Ok(o) => {
                        st.exit_code = Some(o.status.code().unwrap_or(126));
                        return Err(EngineError::Start {
                            id: x.container.clone(),
                            reason: String::from_utf8_lossy(&o.stderr).trim().to_string(),
                        });
                    }
                    Err(e) => return Err(EngineError::io("running", &self.exe, e)),
                }
            }
            Some(conn) => {
                let (code, cw, reader) = bridge(&mut child, conn, master, &x).await;
                cleanup();
                {
                    let mut st = x.state.lock().expect("exec lock");
                    st.running = false;
                    st.exit_code = Some(code);
                }
                *x.pty.lock().expect("exec lock") = None;
                // The client reads the exit code once its stream ends: set it first.
                let _ = cw.lock().await.shutdown().await;
                if let Some(mut r) = reader {
                    drain(&mut r).await;
                }
                code
            }
        };
        let _ = code;
        Ok(())
    }

    /// Resizes an exec's terminal. Clients resize right after they start
    /// an exec (API < 1.42 sends no size with the start): as docker, wait
    /// up to 10 s for a terminal exec's pty rather than refuse the resize.
    pub async fn exec_resize(&self, id: &str, h: u16, w: u16) -> Result<()> {
        let x = self.exec_entry(id)?;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        let m = loop {
            if let Some(m) = x.pty.lock().expect("exec lock").clone() {
                break m;
            }
            let ended = x.state.lock().expect("exec lock").exit_code.is_some();
            if !x.config.tty || ended || tokio::time::Instant::now() >= deadline {
                return Err(EngineError::ExecState {
                    id: id.to_string(),
                    op: ExecOp::Resize,
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        };
        if let Err(e) = berth_runtime::tty::set_winsize(m.as_ref(), h, w) {
            return Err(EngineError::io("resizing the terminal of exec", id, e));
        }
        Ok(())
    }
}

fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(data.len() + 8);
    v.extend_from_slice(&[stream, 0, 0, 0]);
    v.extend_from_slice(&(data.len() as u32).to_be_bytes());
    v.extend_from_slice(data);
    v
}

/// Copies between the client and the exec process; returns its exit code.
async fn bridge<S>(
    child: &mut tokio::process::Child,
    conn: S,
    master: Option<Arc<OwnedFd>>,
    x: &ExecEntry,
) -> (
    i32,
    Arc<tokio::sync::Mutex<tokio::io::WriteHalf<S>>>,
    Option<tokio::io::ReadHalf<S>>,
)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (cr, cw) = tokio::io::split(conn);
    // The client's input goes to the process until it ends; the read half
    // then comes back, so the client's last bytes can be drained.
    let stop = Arc::new(tokio::sync::Notify::new());
    let mut client_in = Some(cr);
    let cw = Arc::new(tokio::sync::Mutex::new(cw));
    let tty = x.config.tty;
    let mut tasks = Vec::new();
    // The runtime's own errors (before the process runs) reach the client as stderr.
    if let Some(mut err) = child.stderr.take() {
        let cw = cw.clone();
        tasks.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 16 << 10];
            while let Ok(n) = err.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let data = if tty {
                    buf[..n].to_vec()
                } else {
                    frame(2, &buf[..n])
                };
                if cw.lock().await.write_all(&data).await.is_err() {
                    break;
                }
            }
        }));
    }
    if let Some(mut out) = child.stdout.take() {
        let cw = cw.clone();
        tasks.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 32 << 10];
            while let Ok(n) = out.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                if cw
                    .lock()
                    .await
                    .write_all(&frame(1, &buf[..n]))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }));
    }
    let mut input = None;
    if let (Some(mut stdin), Some(mut cr)) = (
        child.stdin.take(),
        client_in.take_if(|_| x.config.attach_stdin && !tty),
    ) {
        let stop = stop.clone();
        input = Some(tokio::spawn(async move {
            tokio::select! {
                _ = tokio::io::copy(&mut cr, &mut stdin) => {}
                _ = stop.notified() => {}
            }
            cr
        }));
    } else if let Some(m) = &master {
        let _ = nix::fcntl::fcntl(
            m.as_ref(),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
        let afd = m.try_clone().ok().and_then(|fd| {
            super::async_fd(
                fd,
                tokio::io::Interest::READABLE | tokio::io::Interest::WRITABLE,
            )
            .ok()
        });
        if let Some(afd) = afd {
            let afd = Arc::new(afd);
            let reader = afd.clone();
            let cw2 = cw.clone();
            tasks.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 32 << 10];
                loop {
                    let Ok(mut g) = reader.readable().await else {
                        break;
                    };
                    match g.try_io(|f| {
                        nix::unistd::read(f.get_ref(), &mut buf).map_err(std::io::Error::from)
                    }) {
                        Ok(Ok(0)) | Ok(Err(_)) => break,
                        Ok(Ok(n)) => {
                            if cw2.lock().await.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        Err(_) => continue,
                    }
                }
            }));
            if let Some(mut cr) = client_in.take_if(|_| x.config.attach_stdin) {
                let stop = stop.clone();
                input = Some(tokio::spawn(async move {
                    tokio::select! {
                        _ = pty_input(&mut cr, &afd) => {}
                        _ = stop.notified() => {}
                    }
                    cr
                }));
            }
        }
    }
    let status = child.wait().await;
    for t in tasks {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), t).await;
    }
    if let Some(i) = input {
        stop.notify_one();
        client_in = i.await.ok();
    }
    let code = match status {
        Ok(s) => s.code().unwrap_or(137),
        Err(_) => 126,
    };
    (code, cw, client_in)
}

/// Copies a client's input to an exec's pty until the client closes it.
async fn pty_input<R: AsyncRead + Unpin>(cr: &mut R, afd: &tokio::io::unix::AsyncFd<OwnedFd>) {
    let mut buf = vec![0u8; 16 << 10];
    loop {
        let n = match cr.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut off = 0;
        while off < n {
            let Ok(mut g) = afd.writable().await else {
                return;
            };
            match g.try_io(|f| {
                nix::unistd::write(f.get_ref(), &buf[off..n]).map_err(std::io::Error::from)
            }) {
                Ok(Ok(k)) => off += k,
                Ok(Err(_)) => return,
                Err(_) => continue,
            }
        }
    }
}

/// Reads what the client still sends until it closes its side (or 2 s
/// pass): closing a unix socket with unread input makes the client's read
/// fail with "connection reset by peer" instead of ending cleanly.
pub(super) async fn drain<R: AsyncRead + Unpin>(r: &mut R) {
    let mut buf = [0u8; 4096];
    let mut total = 0;
    let end = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        loop {
            match r.read(&mut buf).await {
                Ok(0) => return "end of input".to_string(),
                Ok(n) => total += n,
                Err(e) => return e.to_string(),
            }
        }
    })
    .await
    .unwrap_or_else(|_| "timed out".into());
    tracing::debug!("drained {total} bytes of the client's input: {end}");
}
