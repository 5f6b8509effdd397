//! The daemonless (local) mode, as podman's: with `--root` and no `-H`,
//! the image commands (pull, images, image inspect, tag, rmi, load, save)
//! and `run --rm` in the foreground open the engine in this process and
//! print what docker prints. Also the global and image flags both modes
//! share.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
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
}

#[derive(Subcommand, Debug)]
pub enum ImageCmd {
    /// Show the details of images as JSON.
    Inspect { images: Vec<String> },
    /// List images.
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Remove images.
    Rm(RmiArgs),
}

#[derive(Args, Debug)]
pub struct ImagesArgs {
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

fn open(e: &EngineArgs) -> Result<Engine> {
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
    let list = engine.list_images()?;
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

pub fn inspect(e: &EngineArgs, names: &[String]) -> Result<i32> {
    let engine = open(e)?;
    let mut out = Vec::new();
    for n in names {
        out.push(engine.inspect_image(n)?);
    }
    say!("{}", serde_json::to_string_pretty(&out)?);
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

pub fn run(e: &EngineArgs, a: RunArgs) -> Result<i32> {
    if !a.rm || a.detach {
        bail!("without a daemon, berth runs containers in the foreground with --rm: start `berth daemon` and give -H (or BERTH_HOST) for -d and kept containers");
    }
    // Signals for the container are forwarded by the runtime; block them
    // before any thread exists so every thread inherits the mask.
    berth_runtime::supervise::block_signals()?;
    let engine = open(e)?;
    let rt = crate::async_runtime()?;
    let opts = crate::client::create::request(&a.container, true, true)?;
    Ok(rt.block_on(engine.run(&opts, Arc::new(Display::on_stderr())))?)
}
