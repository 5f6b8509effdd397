//! `exec`: a command run in a running container, attached or detached.

use anyhow::Result;
use hyper::Method;

use super::attach::{pump, watch_size};
use crate::api::exec::{ExecConfig, ExecInspect, ExecStartRequest};
use crate::api::IdResponse;
use crate::client::create;
use crate::client::http::{enc, Client, Json};

#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    /// Detached mode: run the command in the background.
    #[arg(short, long)]
    pub detach: bool,
    /// Keep stdin open.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables.
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: name|uid[:group|gid]).
    #[arg(short, long)]
    pub user: Option<String>,
    /// Give extended privileges to the command.
    #[arg(long)]
    pub privileged: bool,
    /// Override the key sequence for detaching.
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    pub container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

pub async fn exec(c: &Client, a: &ExecArgs) -> Result<i32> {
    let (h, w) = if a.tty {
        create::terminal_size()
    } else {
        (0, 0)
    };
    let console_size = (h > 0).then_some([h, w]);
    let body = Json::of(&ExecConfig {
        attach_stdin: a.interactive && !a.detach,
        attach_stdout: !a.detach,
        attach_stderr: !a.detach,
        tty: a.tty,
        env: a.env.clone(),
        cmd: a.command.clone(),
        working_dir: a.workdir.clone().unwrap_or_default(),
        user: a.user.clone().unwrap_or_default(),
        privileged: a.privileged,
        detach_keys: a.detach_keys.clone().unwrap_or_default(),
        console_size,
    })?;
    let v: IdResponse = c
        .json(
            Method::POST,
            &format!("/containers/{}/exec", enc(&a.container)),
            Some(&body),
        )
        .await?;
    let eid = v.id;
    let start = Json::of(&ExecStartRequest {
        detach: a.detach,
        tty: a.tty,
        console_size,
    })?;
    if a.detach {
        c.call(Method::POST, &format!("/exec/{eid}/start"), Some(&start))
            .await?;
        return Ok(0);
    }
    let io = c
        .hijack(&format!("/exec/{eid}/start"), Some(&start))
        .await?;
    let raw = if a.tty && a.interactive {
        berth_runtime::tty::RawMode::stdin()
    } else {
        None
    };
    let resize = a.tty.then(|| watch_size(c, format!("/exec/{eid}/resize")));
    pump(io, a.tty, a.interactive, None).await?;
    drop(raw);
    if let Some(r) = resize {
        r.abort();
    }
    let v: ExecInspect = c
        .json(Method::GET, &format!("/exec/{eid}/json"), None)
        .await?;
    Ok(v.exit_code.unwrap_or(126))
}
