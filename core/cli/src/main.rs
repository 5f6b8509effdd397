//! berth: the command line. `berth runtime …` is an OCI runtime with runc's
//! command line; invoked as `berth-runtime` the binary behaves as `berth runtime`.

/// Prints a line to stdout; a closed pipe (`berth … | head`) is not an error.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}
pub(crate) use say;

mod api;
mod archive;
mod client;
mod daemon;
mod local;
mod plugins;
mod progress;
mod runtime;
mod shim;
mod terminal;
mod tls;

use clap::{Parser, Subcommand};

/// The system allocator, counting what the host allocates for each plugin
/// call against the call's memory cap (berth-host's `watch`).
#[global_allocator]
static ALLOC: berth_engine::berth_host::CountingAlloc = berth_engine::berth_host::CountingAlloc;

#[derive(Parser, Debug)]
#[command(name = "berth", version, about = "berth container engine")]
struct Cli {
    #[command(flatten)]
    engine: local::EngineArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The OCI runtime (runc's command line): create, start, state, kill, delete, run, exec, ...
    Runtime(runtime::RuntimeCli),
    /// Download an image from a registry.
    Pull {
        /// Set the platform (os/arch[/variant]) of a multi-platform image.
        #[arg(long)]
        platform: Option<String>,
        /// Print only the image name.
        #[arg(short, long)]
        quiet: bool,
        image: String,
    },
    /// Upload an image to a registry.
    Push(client::share::PushArgs),
    /// Build an image from a Dockerfile.
    Build(Box<client::build::BuildArgs>),
    /// Manage builds (prune the cache).
    #[command(subcommand)]
    Builder(client::build::BuilderCmd),
    /// Log in to a registry.
    Login(client::share::LoginArgs),
    /// Log out from a registry.
    Logout {
        /// The registry (docker.io when omitted).
        server: Option<String>,
    },
    /// List images.
    Images(local::ImagesArgs),
    /// Manage images.
    #[command(subcommand)]
    Image(local::ImageCmd),
    /// Create a tag TARGET that refers to SOURCE.
    Tag { source: String, target: String },
    /// Remove images.
    Rmi(local::RmiArgs),
    /// Show the history of an image.
    History(local::HistoryArgs),
    /// Load images from a tar archive or an OCI layout directory.
    Load {
        /// The archive (or directory) to read.
        #[arg(short, long)]
        input: std::path::PathBuf,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Save images to a tar archive (OCI layout + docker manifest.json).
    Save {
        #[arg(short, long)]
        output: std::path::PathBuf,
        images: Vec<String>,
    },
    /// Run a command in a new container.
    Run(Box<local::RunArgs>),
    #[command(flatten)]
    Container(client::ContainerCmd),
    /// Manage containers (prune).
    #[command(name = "container", subcommand)]
    ContainerGroup(client::system::ContainerGroup),
    /// Manage berth (prune).
    #[command(subcommand)]
    System(client::system::SystemCmd),
    /// Show the berth client and daemon versions.
    Version,
    /// Display system-wide information.
    Info,
    /// Get real time events from the daemon.
    Events {
        /// Show events created since this time (unix seconds or RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Stream events until this time.
        #[arg(long)]
        until: Option<String>,
        /// Filter (type=, event=, container=, image=).
        #[arg(short, long)]
        filter: Vec<String>,
    },
    /// Export a container's filesystem as a tar archive.
    Export {
        /// Write to a file instead of stdout.
        #[arg(short, long)]
        output: Option<std::path::PathBuf>,
        container: String,
    },
    /// Import a tar archive of a filesystem as an image.
    Import {
        /// Apply a Dockerfile instruction to the image (as commit -c).
        #[arg(short, long = "change")]
        change: Vec<String>,
        /// Commit message for the imported image.
        #[arg(short, long)]
        message: Option<String>,
        /// The archive, or - for stdin.
        file: String,
        /// REPOSITORY[:TAG] of the new image.
        reference: Option<String>,
    },
    /// List port mappings of a container.
    Port {
        container: String,
        /// PRIVATE_PORT[/PROTO].
        private: Option<String>,
    },
    /// Serve the Docker Engine API on a unix socket.
    Daemon(daemon::DaemonArgs),
    /// The monitor of one container (started by the daemon).
    #[command(hide = true)]
    Shim(ShimArgs),
    /// Tar and untar in a container's root filesystem (for cp; started by the daemon).
    #[command(hide = true)]
    Archive(archive::ArchiveArgs),
    /// Compile the plugin component on stdin into OUT (started by the daemon,
    /// so that compiling leaves nothing in its memory).
    #[command(hide = true, name = "plugin-compile")]
    PluginCompile { out: std::path::PathBuf },
    /// Copy files between a container and the local filesystem (CONTAINER:PATH).
    Cp {
        /// Always follow symlinks in SRC (accepted; berth copies links as links).
        #[arg(short = 'L', long = "follow-link")]
        follow: bool,
        src: String,
        dst: String,
    },
}

/// The monitor's arguments, passed through to `berth_engine::monitor`,
/// which defines them (the engine renders them, the monitor parses them).
#[derive(clap::Args, Debug)]
struct ShimArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<std::ffi::OsString>,
}

/// Where a command goes: the local engine when `--root` (or BERTH_ROOT) is
/// given and no `-H`/BERTH_HOST (daemonless, as podman), else the daemon.
fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    let e = &cli.engine;
    let local = e.host.is_none() && e.root.is_some();
    match cli.command {
        Command::Runtime(r) => return Ok(runtime::main(r)),
        Command::Daemon(a) => return daemon::main(a),
        Command::Shim(a) => return Ok(shim(a)),
        Command::Archive(a) => return archive::main(a),
        Command::PluginCompile { out } => return plugins::compile(&out),
        Command::Logout { server } => return client::share::logout(server.as_deref()),
        _ => {}
    }
    if local {
        return match cli.command {
            Command::Pull {
                platform,
                quiet,
                image,
            } => local::pull(e, &image, platform.as_deref(), quiet),
            Command::Images(a) => local::images(e, &a),
            Command::Image(local::ImageCmd::Ls(a)) => local::images(e, &a),
            Command::Image(local::ImageCmd::Inspect {
                images: names,
                format,
            }) => local::inspect(e, &names, format.as_deref()),
            Command::Image(local::ImageCmd::Rm(a)) | Command::Rmi(a) => local::rmi(e, &a),
            Command::History(a) | Command::Image(local::ImageCmd::History(a)) => local::history(e, &a),
            Command::Tag { source, target } => local::tag(e, &source, &target),
            Command::Load { input, quiet } => local::load(e, &input, quiet),
            Command::Save {
                output,
                images: names,
            } => local::save(e, &output, &names),
            Command::Run(a) => local::run(e, *a),
            Command::Push(a) => client::share::push_local(&local::open(e)?, &a),
            Command::Login(a) => client::share::login_local(&local::open(e)?, &a),
            Command::Image(local::ImageCmd::Prune { all, force }) => {
                local::image_prune(e, all, force)
            }
            Command::Build(a) => client::build::build_local(local::open(e)?, &a),
            Command::Container(_)
            | Command::ContainerGroup(_)
            | Command::System(_)
            | Command::Version
            | Command::Info
            | Command::Events { .. }
            | Command::Port { .. }
            | Command::Export { .. }
            | Command::Import { .. }
            | Command::Builder(_)
            | Command::Cp { .. } => anyhow::bail!(
                "this command needs the berth daemon: give -H unix://PATH (or BERTH_HOST) instead of --root"
            ),
            Command::Runtime(_)
            | Command::Daemon(_)
            | Command::Shim(_)
            | Command::Archive(_)
            | Command::Logout { .. }
            | Command::PluginCompile { .. } => unreachable!(),
        };
    }
    let host = e
        .host
        .clone()
        .unwrap_or_else(|| client::DEFAULT_HOST.to_string());
    let c = client::Client::from_host(&host, &e.tls)?;
    let rt = async_runtime()?;
    let r = rt.block_on(async move {
        use client::images as ci;
        match cli.command {
            Command::Pull {
                platform,
                quiet,
                image,
            } => ci::pull(&c, &image, platform.as_deref(), quiet, false).await,
            Command::Images(a) | Command::Image(local::ImageCmd::Ls(a)) => {
                ci::images(&c, a.all, a.quiet, a.format.as_deref()).await
            }
            Command::Image(local::ImageCmd::Inspect {
                images: names,
                format,
            }) => client::containers::inspect(&c, &names, format.as_deref(), Some("image")).await,
            Command::Image(local::ImageCmd::Rm(a)) | Command::Rmi(a) => {
                ci::rmi(&c, &a.images, a.force).await
            }
            Command::History(a) | Command::Image(local::ImageCmd::History(a)) => {
                ci::history(&c, &a).await
            }
            Command::Tag { source, target } => ci::tag(&c, &source, &target).await,
            Command::Load { input, quiet } => ci::load(&c, &input, quiet).await,
            Command::Save {
                output,
                images: names,
            } => ci::save(&c, &output, &names).await,
            Command::Run(a) => {
                client::containers::run(&c, &a.container, a.detach, a.rm, a.detach_keys.as_deref())
                    .await
            }
            Command::Container(cmd) => client::container(&c, &cmd).await,
            Command::ContainerGroup(cmd) => client::system::container_group(&c, &cmd).await,
            Command::System(cmd) => client::system::system(&c, &cmd).await,
            Command::Version => client::info::version(&c).await,
            Command::Info => client::info::info(&c).await,
            Command::Push(a) => client::share::push(&c, &a).await,
            Command::Login(a) => client::share::login(&c, &a).await,
            Command::Events {
                since,
                until,
                filter,
            } => client::info::events(&c, since.as_deref(), until.as_deref(), &filter).await,
            Command::Port { container, private } => {
                client::info::port(&c, &container, private.as_deref()).await
            }
            Command::Export { output, container } => {
                ci::export(&c, &container, output.as_deref()).await
            }
            Command::Import {
                change,
                message,
                file,
                reference,
            } => ci::import(&c, &file, reference.as_deref(), &change, message.as_deref()).await,
            Command::Image(local::ImageCmd::Prune { all, force }) => {
                client::system::image_prune(&c, all, force).await
            }
            Command::Cp { src, dst, .. } => client::cp::cp(&c, &src, &dst).await,
            Command::Build(a) => client::build::build(&c, &a).await,
            Command::Builder(cmd) => client::build::builder(&c, &cmd).await,
            Command::Runtime(_)
            | Command::Daemon(_)
            | Command::Shim(_)
            | Command::Archive(_)
            | Command::Logout { .. }
            | Command::PluginCompile { .. } => unreachable!(),
        }
    });
    // A read of our stdin may still block in the runtime's blocking pool;
    // waiting for it would hang after the container is gone.
    rt.shutdown_background();
    r
}

/// The async runtime a command (the client's, or the daemonless mode's) runs on.
fn async_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context as _;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn shim(a: ShimArgs) -> i32 {
    match berth_engine::monitor::MonitorArgs::parse(a.args) {
        Ok(args) => shim::main(args),
        Err(e) => {
            // The engine reads the report on stdout.
            let failed = berth_engine::monitor::StartReport::Failed {
                error: e.to_string(),
            };
            print!("{}", failed.to_line());
            2
        }
    }
}

fn main() {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let name = std::path::Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let code = if name == "berth-runtime" {
        let cli = runtime::RuntimeCli::parse_from(
            std::iter::once(argv0).chain(std::env::args_os().skip(1)),
        );
        runtime::main(cli)
    } else {
        let cli = Cli::parse();
        let r = dispatch(cli);
        match r {
            Ok(code) => code,
            Err(err) => {
                eprintln!("berth: {}", runtime::error_text(&err));
                if err.downcast_ref::<clap::Error>().is_some() {
                    2
                } else {
                    125
                }
            }
        }
    };
    std::process::exit(code);
}
