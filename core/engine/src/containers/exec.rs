//! `exec` instances (docker's `/containers/{id}/exec` and `/exec/{id}/…`):
//! a process run in a running container by `berth runtime exec` with the
//! container's own process settings (capabilities, rlimits, env) as the
//! base. Its stdio is bridged to the client's hijacked stream: multiplexed
//! frames, or raw through a pty when it has a terminal.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::exec_io::{bridge, recv_master};
use super::stream::drain;
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
