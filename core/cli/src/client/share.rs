//! Sharing images: `push` (docker's progress: `Preparing`, `Pushing`,
//! `Pushed`, `Layer already exists`, `Mounted from …`, then
//! `TAG: digest: … size: N`), `login` and `logout`. Credentials live in
//! docker's config file or its helpers ([`super::credentials`]); the daemon
//! checks a login and is sent credentials with each push, never keeps them.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use berth_engine::reference::Reference;
use berth_engine::Progress;
use hyper::Method;

use super::credentials::{self, Login};
use super::http::{enc, Client, Json, JsonLines};
use crate::api::images::JsonMessage;
use crate::progress::Display;

/// `push`'s arguments.
#[derive(clap::Args, Debug)]
pub struct PushArgs {
    /// Push all tags of the repository.
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Suppress verbose output.
    #[arg(short, long)]
    pub quiet: bool,
    /// NAME[:TAG].
    pub name: String,
}

/// `login`'s arguments.
#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    #[arg(short, long)]
    pub username: Option<String>,
    #[arg(short, long)]
    pub password: Option<String>,
    /// Take the password from stdin.
    #[arg(long)]
    pub password_stdin: bool,
    /// The registry (docker.io when omitted).
    pub server: Option<String>,
}

/// The reference a push names: with `latest` unless a tag is given or
/// every tag is pushed.
fn push_reference(a: &PushArgs) -> Result<(Reference, String)> {
    let r = Reference::parse(&a.name)?;
    let has_tag = a.name.rsplit('/').next().is_some_and(|l| l.contains(':'));
    if a.all_tags && has_tag {
        bail!("tag can't be used with --all-tags/-a");
    }
    let tag = if a.all_tags {
        String::new()
    } else {
        r.tag.clone().unwrap_or_else(|| "latest".into())
    };
    Ok((r, tag))
}

pub async fn push(c: &Client, a: &PushArgs) -> Result<i32> {
    let (r, tag) = push_reference(a)?;
    let auth = credentials::header_for(&r.registry)?;
    let path = format!("/images/{}/push?tag={}", r.name(), enc(&tag));
    let body = c
        .stream_with(Method::POST, &path, &[("X-Registry-Auth", &auth)])
        .await?;
    let display = (!a.quiet).then(Display::new);
    let mut pushed = Vec::new();
    let mut lines = JsonLines::new(body);
    while let Some(m) = lines.next::<JsonMessage>().await {
        let m = m?;
        if let Some(e) = m.error {
            drop(display);
            bail!("{e}");
        }
        if let Some(aux) = &m.aux {
            pushed.push(aux["Tag"].as_str().unwrap_or("").to_owned());
        }
        let status = m.status.as_deref().unwrap_or("");
        match (&display, m.id.as_deref()) {
            (Some(d), Some(id)) => match m.progress_detail.as_ref().and_then(|p| p.current) {
                Some(cur) => d.bytes(
                    id,
                    cur,
                    m.progress_detail.and_then(|p| p.total).unwrap_or(0),
                ),
                None => d.status(id, status),
            },
            (Some(_), None) if !status.is_empty() => say!("{status}"),
            _ => {}
        }
    }
    drop(display);
    if a.quiet {
        for t in pushed {
            say!("{}:{t}", r.short_repository());
        }
    }
    Ok(0)
}

/// Reads a line from the terminal, without echo for a password.
fn prompt(what: &str, secret: bool) -> Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!("cannot ask for the {what}: stdin is not a terminal (give it with -u/-p or --password-stdin)");
    }
    eprint!("{}: ", capitalized(what));
    std::io::stderr().flush()?;
    let restore = if secret {
        use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
        let old = tcgetattr(&stdin).context("reading the terminal's mode")?;
        let mut quiet = old.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        tcsetattr(&stdin, SetArg::TCSANOW, &quiet).context("turning echo off")?;
        Some(old)
    } else {
        None
    };
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(old) = restore {
        let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &old);
        eprintln!();
    }
    read.with_context(|| format!("reading the {what}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// The user name and password a login uses (flags, stdin or prompts).
pub fn login_input(a: &LoginArgs) -> Result<(String, Login)> {
    let server = a
        .server
        .clone()
        .unwrap_or_else(|| credentials::DOCKER_HUB_KEY.to_owned());
    if a.password.is_some() && a.password_stdin {
        bail!("--password and --password-stdin are mutually exclusive");
    }
    if a.password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    let username = match &a.username {
        Some(u) => u.clone(),
        None if a.password_stdin => bail!("Must provide --username with --password-stdin"),
        None => prompt("username", false)?,
    };
    let password = match &a.password {
        Some(p) => p.clone(),
        None if a.password_stdin => {
            let mut s = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut s)
                .context("reading the password from stdin")?;
            s.trim_end_matches(['\r', '\n']).to_owned()
        }
        None => prompt("password", true)?,
    };
    if username.is_empty() || password.is_empty() {
        bail!("Error: Non-null Username and Password Required");
    }
    Ok((
        server,
        Login {
            username,
            secret: password,
        },
    ))
}

pub async fn login(c: &Client, a: &LoginArgs) -> Result<i32> {
    let (server, login) = login_input(a)?;
    let body = serde_json::json!({
        "username": login.username,
        "password": login.secret,
        "serveraddress": server,
    });
    let answer: serde_json::Value = c
        .json(Method::POST, "/auth", Some(&Json::of(&body)?))
        .await?;
    credentials::store(&server, &login)?;
    say!("{}", answer["Status"].as_str().unwrap_or("Login Succeeded"));
    Ok(0)
}

/// `logout [SERVER]`: only the client's file (or helper) is touched.
pub fn logout(server: Option<&str>) -> Result<i32> {
    let server = server.unwrap_or(credentials::DOCKER_HUB_KEY);
    let key = credentials::key_of(server);
    if credentials::erase(server)? {
        say!("Removing login credentials for {key}");
    } else {
        say!("Not logged in to {key}");
    }
    Ok(0)
}

/// The daemonless push: the local engine pushes with the stored credentials.
pub fn push_local(engine: &berth_engine::Engine, a: &PushArgs) -> Result<i32> {
    let (r, tag) = push_reference(a)?;
    if tag.is_empty() {
        bail!("--all-tags needs the daemon (or name each tag)");
    }
    let creds =
        credentials::get(&r.registry)?.map(|l| berth_engine::berth_host::Credentials::Basic {
            username: l.username,
            password: l.secret,
        });
    let reference = format!("{}:{tag}", r.name());
    let p: Arc<dyn Progress> = if a.quiet {
        Arc::new(berth_engine::Quiet)
    } else {
        Arc::new(Display::new())
    };
    if !a.quiet {
        say!("The push refers to repository [{}]", r.short_repository());
    }
    let rt = crate::async_runtime()?;
    let pushed = rt.block_on(engine.push(&reference, creds, p))?;
    if a.quiet {
        say!("{}:{}", r.short_repository(), pushed.tag);
    } else {
        say!(
            "{}: digest: {} size: {}",
            pushed.tag,
            pushed.digest,
            pushed.size
        );
    }
    Ok(0)
}

/// The daemonless login: the local engine checks, the client stores.
pub fn login_local(engine: &berth_engine::Engine, a: &LoginArgs) -> Result<i32> {
    let (server, login) = login_input(a)?;
    let rt = crate::async_runtime()?;
    rt.block_on(engine.login(&server, &login.username, &login.secret))?;
    credentials::store(&server, &login)?;
    say!("Login Succeeded");
    Ok(0)
}
