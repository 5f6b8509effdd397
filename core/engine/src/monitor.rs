//! The protocol between the engine and a container's monitor (`berth shim`,
//! whose program lives with the binary in core/cli): its command line (one
//! struct that renders to and parses from argv), the start report it writes
//! on its stdout once the container is created, the requests and replies on
//! its socket (one JSON line each; an `attach` connection then becomes
//! docker's multiplexed stream: 8-byte header — stream, 0, 0, 0, big-endian
//! length — then the bytes, input raw), and the exit record it leaves.
//!
//! ```
//! use berth_engine::monitor::{MonitorArgs, StartReport};
//! let a = MonitorArgs { id: "c1".into(), stdin: true, ..Default::default() };
//! assert_eq!(MonitorArgs::parse(a.to_argv()).unwrap(), a);
//! let r = StartReport::Created { pid: 7, monitor_pid: 9 };
//! assert_eq!(StartReport::parse(&r.to_line()).unwrap(), r);
//! ```

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::containers::logs::Rotation;

/// The subcommand of the `berth` binary that runs a monitor.
pub const SUBCOMMAND: &str = "shim";

/// The exit record a monitor leaves in the container's directory.
pub const EXIT: &str = "exit.json";

/// The log file of container `id` in its directory.
pub fn log_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}-json.log"))
}

/// A monitor's command line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MonitorArgs {
    /// The runtime's state root.
    pub runtime_root: PathBuf,
    /// The container's directory: `config.json`, `rootfs/`, the log.
    pub dir: PathBuf,
    pub id: String,
    /// Where to serve attach/start/resize.
    pub socket: PathBuf,
    /// Keep the container's stdin open for attaches.
    pub stdin: bool,
    /// Close the container's stdin when the first attach closes its input.
    pub stdin_once: bool,
    pub rotation: Rotation,
    /// The terminal's first size (rows, columns).
    pub size: Option<(u16, u16)>,
}

/// A monitor's command line, start report or exit record that is not what
/// this protocol says.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("monitor command line: {0} is missing")]
    MissingArgument(&'static str),
    #[error("monitor command line: {arg} {value:?} is not valid")]
    BadValue { arg: &'static str, value: String },
    #[error("monitor command line: unknown argument {0:?}")]
    UnknownArgument(String),
    #[error("the monitor exited without a word")]
    NoReport,
    #[error("the monitor's report {line:?} is not understood: {reason}")]
    BadReport { line: String, reason: String },
}

impl MonitorArgs {
    /// The arguments after the subcommand.
    pub fn to_argv(&self) -> Vec<OsString> {
        let mut v: Vec<OsString> = vec![
            "--runtime-root".into(),
            self.runtime_root.clone().into(),
            "--dir".into(),
            self.dir.clone().into(),
            "--id".into(),
            self.id.clone().into(),
            "--socket".into(),
            self.socket.clone().into(),
            "--log-max-size".into(),
            self.rotation.max_size.to_string().into(),
            "--log-max-files".into(),
            self.rotation.max_files.to_string().into(),
        ];
        if self.stdin {
            v.push("--stdin".into());
        }
        if self.stdin_once {
            v.push("--stdin-once".into());
        }
        if let Some((h, w)) = self.size {
            v.push("--size".into());
            v.push(format!("{h}x{w}").into());
        }
        v
    }

    /// Parses what [`MonitorArgs::to_argv`] renders.
    pub fn parse(argv: impl IntoIterator<Item = OsString>) -> Result<Self, ProtocolError> {
        let mut it = argv.into_iter();
        let (mut root, mut dir, mut id, mut socket) = (None, None, None, None);
        let mut a = MonitorArgs::default();
        fn num<T: std::str::FromStr>(arg: &'static str, v: OsString) -> Result<T, ProtocolError> {
            let s = v.to_string_lossy().into_owned();
            s.parse()
                .map_err(|_| ProtocolError::BadValue { arg, value: s })
        }
        while let Some(flag) = it.next() {
            let flag = flag.to_string_lossy().into_owned();
            let mut value =
                |arg: &'static str| it.next().ok_or(ProtocolError::MissingArgument(arg));
            match flag.as_str() {
                "--runtime-root" => root = Some(PathBuf::from(value("--runtime-root")?)),
                "--dir" => dir = Some(PathBuf::from(value("--dir")?)),
                "--id" => id = Some(value("--id")?.to_string_lossy().into_owned()),
                "--socket" => socket = Some(PathBuf::from(value("--socket")?)),
                "--log-max-size" => {
                    a.rotation.max_size = num("--log-max-size", value("--log-max-size")?)?
                }
                "--log-max-files" => {
                    a.rotation.max_files = num("--log-max-files", value("--log-max-files")?)?
                }
                "--stdin" => a.stdin = true,
                "--stdin-once" => a.stdin_once = true,
                "--size" => {
                    let v = value("--size")?.to_string_lossy().into_owned();
                    let bad = || ProtocolError::BadValue {
                        arg: "--size",
                        value: v.clone(),
                    };
                    let (h, w) = v.split_once('x').ok_or_else(bad)?;
                    a.size = Some((h.parse().map_err(|_| bad())?, w.parse().map_err(|_| bad())?));
                }
                _ => return Err(ProtocolError::UnknownArgument(flag)),
            }
        }
        a.runtime_root = root.ok_or(ProtocolError::MissingArgument("--runtime-root"))?;
        a.dir = dir.ok_or(ProtocolError::MissingArgument("--dir"))?;
        a.id = id.ok_or(ProtocolError::MissingArgument("--id"))?;
        a.socket = socket.ok_or(ProtocolError::MissingArgument("--socket"))?;
        Ok(a)
    }
}

/// What a monitor reports on its stdout, one JSON line, once the
/// container is created (or could not be).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartReport {
    Created { pid: i32, monitor_pid: i32 },
    Failed { error: String },
}

impl StartReport {
    /// The report as the line the monitor writes (with its newline).
    pub fn to_line(&self) -> String {
        let mut s = serde_json::to_string(self).expect("serializable");
        s.push('\n');
        s
    }

    /// Parses a report line; an empty line (the monitor died before it
    /// could say anything) or a report with pids that are not positive is
    /// an error.
    pub fn parse(line: &str) -> Result<Self, ProtocolError> {
        let line = line.trim();
        let bad = |reason: &str| ProtocolError::BadReport {
            line: line.to_string(),
            reason: reason.to_string(),
        };
        if line.is_empty() {
            return Err(ProtocolError::NoReport);
        }
        let r: StartReport = serde_json::from_str(line).map_err(|e| bad(&e.to_string()))?;
        match r {
            StartReport::Created { pid, monitor_pid } if pid <= 0 || monitor_pid <= 0 => {
                Err(bad("a pid is not positive"))
            }
            r => Ok(r),
        }
    }
}

/// What the engine asks a monitor to do, one JSON line on its socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    /// Let the created container's process run.
    Start,
    /// Become a stream of the container's output (and input).
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    /// Set the terminal's size.
    Resize { h: u16, w: u16 },
}

/// A monitor's answer to a request, one JSON line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "lowercase")]
pub enum Reply {
    Ok,
    Error { message: String },
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

async fn write_line<T: Serialize>(w: &mut (impl AsyncWrite + Unpin), v: &T) -> std::io::Result<()> {
    let mut msg = serde_json::to_vec(v).expect("serializable");
    msg.push(b'\n');
    w.write_all(&msg).await
}

/// Reads one line byte by byte: what follows it belongs to the stream.
async fn read_line(r: &mut (impl AsyncRead + Unpin)) -> std::io::Result<String> {
    let mut line = Vec::new();
    loop {
        let mut b = [0u8; 1];
        if r.read(&mut b).await? == 0 || b[0] == b'\n' {
            break;
        }
        line.push(b[0]);
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// The monitor's side: reads one request (`Err` with the reason when it is
/// not one).
pub async fn read_request(
    r: &mut (impl AsyncRead + Unpin),
) -> std::io::Result<Result<Request, String>> {
    let line = read_line(r).await?;
    Ok(serde_json::from_str(line.trim()).map_err(|e| format!("bad request: {e}")))
}

/// The monitor's side: answers a request.
pub async fn write_reply(w: &mut (impl AsyncWrite + Unpin), reply: &Reply) -> std::io::Result<()> {
    write_line(w, reply).await
}

async fn exchange(s: &mut UnixStream, req: &Request) -> std::io::Result<Reply> {
    write_line(s, req).await?;
    let line = read_line(s).await?;
    serde_json::from_str(&line).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the monitor's reply {line:?} is not understood: {e}"),
        )
    })
}

/// Sends one request to a monitor and waits for its answer.
pub async fn request(sock: &Path, req: &Request) -> Result<(), String> {
    let mut s = UnixStream::connect(sock)
        .await
        .map_err(|e| format!("connecting to the monitor at {}: {e}", sock.display()))?;
    match exchange(&mut s, req).await {
        Ok(Reply::Ok) => Ok(()),
        Ok(Reply::Error { message }) => Err(message),
        Err(e) => Err(format!("talking to the monitor: {e}")),
    }
}

/// Opens an attach stream to a monitor.
pub async fn connect_attach(sock: &Path, req: &Request) -> std::io::Result<UnixStream> {
    let mut s = UnixStream::connect(sock).await?;
    match exchange(&mut s, req).await? {
        Reply::Ok => Ok(s),
        Reply::Error { message } => Err(std::io::Error::other(message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_round_trips() {
        let a = MonitorArgs {
            runtime_root: "/run/berth/runtime".into(),
            dir: "/var/lib/berth/containers/abc".into(),
            id: "abc".into(),
            socket: "/var/lib/berth/sock/abc".into(),
            stdin: true,
            stdin_once: false,
            rotation: Rotation {
                max_size: 10 << 20,
                max_files: 3,
            },
            size: Some((24, 80)),
        };
        assert_eq!(MonitorArgs::parse(a.to_argv()).unwrap(), a);
        let none = MonitorArgs {
            size: None,
            stdin: false,
            ..a.clone()
        };
        assert_eq!(MonitorArgs::parse(none.to_argv()).unwrap(), none);
    }

    #[test]
    fn bad_command_lines_say_what_is_wrong() {
        let argv = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        let e = MonitorArgs::parse(argv(&["--dir", "/d", "--id", "x", "--socket", "/s"]));
        assert!(matches!(
            e,
            Err(ProtocolError::MissingArgument("--runtime-root"))
        ));
        let e = MonitorArgs::parse(argv(&["--size", "24by80"])).unwrap_err();
        assert!(e.to_string().contains("--size \"24by80\""), "{e}");
        let e = MonitorArgs::parse(argv(&["--colour"])).unwrap_err();
        assert!(matches!(e, ProtocolError::UnknownArgument(_)));
        let e = MonitorArgs::parse(argv(&["--id"])).unwrap_err();
        assert!(matches!(e, ProtocolError::MissingArgument("--id")));
    }

    #[test]
    fn reports_round_trip_and_nonsense_is_refused() {
        for r in [
            StartReport::Created {
                pid: 10,
                monitor_pid: 11,
            },
            StartReport::Failed {
                error: "exec: not found".into(),
            },
        ] {
            assert_eq!(StartReport::parse(&r.to_line()).unwrap(), r);
        }
        assert!(StartReport::parse("").is_err());
        assert!(StartReport::parse("ok 1 2").is_err());
        assert!(StartReport::parse(r#"{"created":{"pid":0,"monitor_pid":3}}"#).is_err());
    }

    #[tokio::test]
    async fn requests_and_replies_cross_a_socket() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let server = tokio::spawn(async move {
            let req = read_request(&mut b).await.unwrap().unwrap();
            assert_eq!(req, Request::Resize { h: 3, w: 4 });
            write_reply(
                &mut b,
                &Reply::Error {
                    message: "no terminal".into(),
                },
            )
            .await
            .unwrap();
        });
        let reply = exchange(&mut a, &Request::Resize { h: 3, w: 4 })
            .await
            .unwrap();
        assert_eq!(
            reply,
            Reply::Error {
                message: "no terminal".into()
            }
        );
        server.await.unwrap();
    }
}
