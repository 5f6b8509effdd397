//! The daemonless (local) mode, as podman's: with `--root` and no `-H`,
//! the image commands (pull, images, image inspect, tag, rmi, load, save)
//! and `run --rm` in the foreground open the engine in this process and
//! print what docker prints. Also the global and image flags both modes
//! share.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use berth_engine::containers::stream::AttachOptions;
use berth_engine::containers::{Containers, WaitCondition};
use berth_engine::reference::Reference;
use berth_engine::{Engine, Progress};
use clap::{Args, Subcommand};

use crate::progress::Display;

/// Where the engine keeps its state and finds its configuration, or which
/// daemon to talk to.
#[derive(Args, Debug, Clone)]
pub struct EngineArgs {
    /// The daemon's socket (unix:///run/berth/berth.sock when neither this nor --root is given).
    #[arg(short = 'H', long = "host", env = "BERTH_HOST")]
    pub host: Option<String>,
    /// Root of berth's state: work on it directly, without a daemon.
    #[arg(long, env = "BERTH_ROOT")]
    pub root: Option<PathBuf>,
    /// The configuration file (plugins and their grants, registries).
    #[arg(long, default_value = "/etc/berth/berth.toml", env = "BERTH_CONFIG")]
    pub config: PathBuf,
    /// TLS to a daemon on tcp:// (docker's flags).
    #[command(flatten)]
    pub tls: crate::tls::TlsArgs,
}

#[derive(Subcommand, Debug)]
pub enum ImageCmd {
    /// Show the details of images as JSON.
    Inspect {
        /// Format the output using a template ({{.Id}}, {{json .Config}}).
        #[arg(short, long)]
        format: Option<String>,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// List images.
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Remove images.
    Rm(RmiArgs),
    /// Show the history of an image.
    History(HistoryArgs),
    /// Remove unused images: dangling ones, or with -a every one no container uses.
    Prune {
        /// Remove all unused images, not just dangling ones.
        #[arg(short, long)]
        all: bool,
        /// Do not prompt for confirmation.
        #[arg(short, long)]
        force: bool,
    },
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Don't truncate output.
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    pub image: String,
}

#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Show all images (also the intermediate images builds make).
    #[arg(short, long)]
    pub all: bool,
    /// Only image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// `json` for one JSON object per line.
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Remove even if a container uses it.
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Run the container in the background and print its ID.
    #[arg(short, long)]
    pub detach: bool,
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    #[command(flatten)]
    pub container: crate::client::create::ContainerArgs,
}

pub fn open(e: &EngineArgs) -> Result<Engine> {
    let root = e
        .root
        .clone()
        .unwrap_or_else(|| PathBuf::from("/var/lib/berth"));
    Engine::open(
        &root,
        &e.config,
        crate::plugins::builtins(),
        crate::plugins::compiler(),
    )
    .with_context(|| format!("opening berth's state in {}", root.display()))
}

pub fn pull(e: &EngineArgs, reference: &str, platform: Option<&str>, quiet: bool) -> Result<i32> {
    let engine = open(e)?;
    let rt = crate::async_runtime()?;
    let p: Arc<dyn Progress> = if quiet {
        Arc::new(berth_engine::Quiet)
    } else {
        Arc::new(Display::new())
    };
    let before = engine.image(reference).ok().map(|(_, rec)| rec.manifest);
    let digest = rt.block_on(engine.pull(reference, platform, p))?;
    let r = berth_engine::reference::Reference::parse(reference)?;
    if !quiet {
        say!("Digest: {digest}");
        if before.as_deref() == Some(digest.as_str()) {
            say!("Status: Image is up to date for {}", r.short());
        } else {
            say!("Status: Downloaded newer image for {}", r.short());
        }
    }
    say!("{}", r.full());
    Ok(0)
}

pub fn images(e: &EngineArgs, a: &ImagesArgs) -> Result<i32> {
    let engine = open(e)?;
    let list = engine.list_images(a.all)?;
    if a.quiet {
        let mut seen = std::collections::HashSet::new();
        for i in &list {
            if seen.insert(&i.id) {
                say!("{}", &i.id[7..19]);
            }
        }
        return Ok(0);
    }
    if a.format.as_deref() == Some("json") {
        for i in &list {
            say!("{}", serde_json::to_string(i)?);
        }
        return Ok(0);
    }
    if let Some(f) = &a.format {
        bail!("unknown --format {f:?}: berth supports json");
    }
    say!(
        "{:<40} {:<12} {:<14} {:<22} {:>10}",
        "REPOSITORY",
        "TAG",
        "IMAGE ID",
        "CREATED",
        "SIZE"
    );
    for i in &list {
        say!(
            "{:<40} {:<12} {:<14} {:<22} {:>10}",
            i.repository,
            i.tag,
            &i.id[7..19],
            i.created.get(..19).unwrap_or(&i.created),
            crate::api::units::human_size(i.size)
        );
    }
    Ok(0)
}

pub fn inspect(e: &EngineArgs, names: &[String], format: Option<&str>) -> Result<i32> {
    let engine = open(e)?;
    let mut out = Vec::new();
    for n in names {
        out.push(engine.inspect_image(n)?);
    }
    match format {
        Some(t) => {
            for image in &out {
                let v = serde_json::to_value(image)?;
                say!("{}", crate::client::format::render(t, &v)?);
            }
        }
        None => say!("{}", serde_json::to_string_pretty(&out)?),
    }
    Ok(0)
}

pub fn history(e: &EngineArgs, a: &HistoryArgs) -> Result<i32> {
    let rows: Vec<crate::api::images::HistoryItem> = open(e)?
        .image_history(&a.image)?
        .into_iter()
        .map(crate::api::images::HistoryItem::from)
        .collect();
    crate::client::images::print_history(&rows, a);
    Ok(0)
}

/// `image prune [-a]` on the engine's own state (no container runs here
/// without a daemon, so "used" means a container on this root).
pub fn image_prune(e: &EngineArgs, all: bool, force: bool) -> Result<i32> {
    let warning = if all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !crate::client::system::confirm(warning, force)? {
        return Ok(0);
    }
    let engine = open(e)?;
    let (lines, space) = crate::async_runtime()?.block_on(engine.prune_images(all))?;
    let lines: Vec<String> = lines
        .iter()
        .map(|l| {
            let (what, v) = l.split_once(": ").unwrap_or(("deleted", l));
            format!("{}: {v}", what.to_ascii_lowercase())
        })
        .collect();
    crate::client::system::list("Deleted Images:", &lines);
    say!(
        "Total reclaimed space: {}",
        crate::api::units::human_size(space)
    );
    Ok(0)
}

pub fn tag(e: &EngineArgs, source: &str, target: &str) -> Result<i32> {
    open(e)?.tag(source, target)?;
    Ok(0)
}

pub fn rmi(e: &EngineArgs, a: &RmiArgs) -> Result<i32> {
    let engine = open(e)?;
    let rt = crate::async_runtime()?;
    let mut code = 0;
    for n in &a.images {
        match rt.block_on(engine.remove_image(n, a.force)) {
            Ok(lines) => lines.iter().for_each(|l| say!("{l}")),
            Err(err) => {
                eprintln!("Error response from berth: {err}");
                code = 1;
            }
        }
    }
    Ok(code)
}

pub fn load(e: &EngineArgs, input: &std::path::Path, quiet: bool) -> Result<i32> {
    let engine = open(e)?;
    let rt = crate::async_runtime()?;
    let p: Arc<dyn Progress> = if quiet {
        Arc::new(berth_engine::Quiet)
    } else {
        Arc::new(Display::new())
    };
    for name in rt.block_on(engine.load(input, p))? {
        say!(
            "Loaded image: {}",
            berth_engine::reference::Reference::parse(&name)?.short()
        );
    }
    Ok(0)
}

pub fn save(e: &EngineArgs, out: &std::path::Path, names: &[String]) -> Result<i32> {
    if names.is_empty() {
        bail!("save: name at least one image");
    }
    open(e)?.save(names, out)?;
    Ok(0)
}

/// `run --rm` without a daemon: the daemon's own container lifecycle
/// (create, a monitor per container, attach, start, wait, remove) run in
/// this process on `--root`, with our terminal on the container's streams.
/// Containers get no network of a plugin (no daemon keeps one up):
/// `--network none` (the default here) or `host`.
pub fn run(e: &EngineArgs, a: RunArgs) -> Result<i32> {
    if !a.rm || a.detach {
        bail!("without a daemon, berth runs containers in the foreground with --rm: start `berth daemon` and give -H (or BERTH_HOST) for -d and kept containers");
    }
    if a.detach_keys.is_some() {
        bail!("without a daemon, a container cannot be detached from (--detach-keys): start `berth daemon` and give -H (or BERTH_HOST)");
    }
    let mut req = crate::client::create::request(&a.container, true, true)?;
    match req.host_config.network_mode.as_str() {
        "" | "default" => req.host_config.network_mode = "none".into(),
        "none" | "host" => {}
        other => bail!("without a daemon, containers have --network none or host, not {other:?}: start `berth daemon` and give -H (or BERTH_HOST) for networks"),
    }
    let engine = Arc::new(open(e)?);
    let exe = std::env::current_exe().context("finding the berth executable")?;
    let rt = crate::async_runtime()?;
    rt.block_on(async {
        let image = req.config.image.clone();
        if engine.image(&image).is_err() && Reference::parse(&image).is_ok() {
            let p: Arc<dyn Progress> = Arc::new(Display::on_stderr());
            p.status(&image, "Unable to find image locally; pulling");
            engine.pull(&image, None, p).await?;
        }
        let containers = Containers::open_local(engine, exe).await?;
        run_local(
            &containers,
            a.container.name.as_deref(),
            req,
            a.container.interactive,
        )
        .await
    })
}

async fn run_local(
    c: &Arc<Containers>,
    name: Option<&str>,
    req: berth_engine::containers::config::CreateRequest,
    interactive: bool,
) -> Result<i32> {
    let tty = req.config.tty;
    let id = c.create(name, req).await?;
    let attached = c
        .attach(
            &id,
            AttachOptions {
                stdin: interactive,
                stdout: true,
                stderr: true,
                detach_keys: String::new(),
            },
        )
        .await?
        .without_detach_keys();
    let (ours, theirs) = tokio::io::duplex(64 << 10);
    tokio::spawn(attached.run(theirs));
    let raw = if tty && interactive {
        berth_runtime::tty::RawMode::stdin()
    } else {
        None
    };
    if let Err(err) = c.start(&id).await {
        drop(raw);
        // The create's record goes with it (`start` removes a failed `--rm` one).
        let _ = c.remove(&id, true, false).await;
        eprintln!("berth: {err}");
        return Ok(crate::client::containers::start_failure_code(
            &err.to_string(),
        ));
    }
    let resize = tty.then(|| {
        let (c, id) = (c.clone(), id.clone());
        crate::terminal::on_resize(move |h, w| {
            let (c, id) = (c.clone(), id.clone());
            async move {
                let _ = c.resize(&id, h, w).await;
            }
        })
    });
    let proxy = (!tty).then(|| {
        let (c, id) = (c.clone(), id.clone());
        crate::terminal::on_signals(move |name| {
            let _ = c.kill(&id, Some(name));
            std::future::ready(())
        })
    });
    crate::terminal::pump(ours, tty, interactive, None).await?;
    drop(raw);
    let (code, error) = c.wait(&id, WaitCondition::Removed).await?;
    for task in [resize, proxy].into_iter().flatten() {
        task.abort();
    }
    if let Some(e) = error {
        eprintln!("berth: {e}");
    }
    Ok(code)
}
