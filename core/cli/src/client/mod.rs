//! `berth` as a client of the daemon (docker's verbs and flags): the daemon
//! is found with `-H unix://PATH`, `BERTH_HOST`, or at /run/berth/berth.sock.

pub mod build;
pub mod containers;
pub mod cp;
pub mod create;
pub mod credentials;
pub mod flags;
pub mod format;
pub mod http;
pub mod images;
pub mod info;
pub mod networks;
pub mod share;
pub mod system;
pub mod volumes;

use anyhow::Result;
use clap::Subcommand;

pub use http::Client;

/// The daemon's default socket.
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

/// Container commands: only through the daemon.
#[derive(Subcommand, Debug)]
pub enum ContainerCmd {
    /// Create a new container.
    Create(Box<create::ContainerArgs>),
    /// Start one or more stopped containers.
    Start {
        /// Attach stdout/stderr and forward signals.
        #[arg(short, long)]
        attach: bool,
        /// Attach the container's stdin.
        #[arg(short, long)]
        interactive: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Stop one or more running containers.
    Stop {
        /// Seconds to wait before killing the container.
        #[arg(short, long)]
        time: Option<i64>,
        /// Signal to send to the container.
        #[arg(short, long)]
        signal: Option<String>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Restart one or more containers.
    Restart {
        #[arg(short, long)]
        time: Option<i64>,
        #[arg(short, long)]
        signal: Option<String>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Kill one or more running containers.
    Kill {
        /// Signal to send to the container.
        #[arg(short, long, default_value = "KILL")]
        signal: String,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove one or more containers.
    Rm {
        /// Force the removal of a running container (uses SIGKILL).
        #[arg(short, long)]
        force: bool,
        /// Remove anonymous volumes associated with the container.
        #[arg(short, long)]
        volumes: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// List containers.
    #[command(alias = "ls")]
    Ps(containers::PsArgs),
    /// Fetch the logs of a container.
    Logs {
        /// Follow log output.
        #[arg(short, long)]
        follow: bool,
        /// Number of lines to show from the end of the logs ("all").
        #[arg(short = 'n', long)]
        tail: Option<String>,
        /// Show timestamps.
        #[arg(short, long)]
        timestamps: bool,
        /// Show logs since a unix timestamp.
        #[arg(long)]
        since: Option<String>,
        container: String,
    },
    /// Execute a command in a running container.
    Exec(containers::ExecArgs),
    /// Return low-level information on containers, images or volumes.
    Inspect {
        /// Format the output using a template ({{.State.Status}}, {{json .Config}}).
        #[arg(short, long)]
        format: Option<String>,
        /// Only inspect objects of this type (container, image).
        #[arg(long = "type")]
        kind: Option<String>,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Block until containers stop, then print their exit codes.
    Wait {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Display the running processes of a container.
    Top {
        container: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Display a live stream of container resource usage.
    Stats {
        /// Print one sample and exit.
        #[arg(long = "no-stream")]
        no_stream: bool,
        containers: Vec<String>,
    },
    /// Rename a container.
    Rename { container: String, new_name: String },
    /// Pause all processes within one or more containers.
    Pause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Unpause all processes within one or more containers.
    Unpause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Inspect changes to files or directories on a container's filesystem.
    Diff { container: String },
    /// Update the limits (and restart policy) of one or more containers.
    Update(containers::UpdateArgs),
    /// Create a new image from a container's changes.
    Commit {
        /// Author (e.g. "Ann <ann@example.com>").
        #[arg(short, long)]
        author: Option<String>,
        /// Apply a Dockerfile instruction to the image (CMD, ENTRYPOINT, ENV,
        /// EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR, STOPSIGNAL, HEALTHCHECK).
        #[arg(short, long = "change")]
        change: Vec<String>,
        /// Commit message.
        #[arg(short, long)]
        message: Option<String>,
        /// Pause the container during the commit (the default).
        #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
        pause: bool,
        container: String,
        /// REPOSITORY[:TAG] of the new image.
        reference: Option<String>,
    },
    /// Manage volumes.
    #[command(subcommand)]
    Volume(volumes::VolumeCmd),
    /// Manage networks.
    #[command(subcommand)]
    Network(networks::NetworkCmd),
}

/// Runs a container command against the daemon.
pub async fn container(c: &Client, cmd: &ContainerCmd) -> Result<i32> {
    use containers as k;
    match cmd {
        ContainerCmd::Create(a) => k::create(c, a).await,
        ContainerCmd::Start {
            attach,
            interactive,
            containers,
        } => k::start(c, containers, *attach, *interactive).await,
        ContainerCmd::Stop {
            time,
            signal,
            containers,
        } => k::stop(c, containers, *time, signal.as_deref(), false).await,
        ContainerCmd::Restart {
            time,
            signal,
            containers,
        } => k::stop(c, containers, *time, signal.as_deref(), true).await,
        ContainerCmd::Kill { signal, containers } => k::kill(c, containers, signal).await,
        ContainerCmd::Rm {
            force,
            volumes,
            containers,
        } => k::rm(c, containers, *force, *volumes).await,
        ContainerCmd::Ps(a) => k::ps(c, a).await,
        ContainerCmd::Logs {
            follow,
            tail,
            timestamps,
            since,
            container,
        } => {
            k::logs(
                c,
                container,
                *follow,
                tail.as_deref(),
                *timestamps,
                since.as_deref(),
            )
            .await
        }
        ContainerCmd::Exec(a) => k::exec(c, a).await,
        ContainerCmd::Inspect {
            format,
            kind,
            names,
        } => k::inspect(c, names, format.as_deref(), kind.as_deref()).await,
        ContainerCmd::Wait { containers } => k::wait(c, containers).await,
        ContainerCmd::Top { container, ps_args } => k::top(c, container, ps_args).await,
        ContainerCmd::Stats {
            no_stream,
            containers,
        } => k::stats(c, containers, *no_stream).await,
        ContainerCmd::Rename {
            container,
            new_name,
        } => k::rename(c, container, new_name).await,
        ContainerCmd::Diff { container } => k::diff(c, container).await,
        ContainerCmd::Update(a) => k::update(c, a).await,
        ContainerCmd::Commit {
            author,
            change,
            message,
            pause,
            container,
            reference,
        } => {
            let opts = k::CommitArgs {
                author: author.as_deref(),
                changes: change,
                message: message.as_deref(),
                pause: *pause,
            };
            k::commit(c, container, reference.as_deref(), &opts).await
        }
        ContainerCmd::Pause { containers } => k::simple(c, containers, "pause").await,
        ContainerCmd::Unpause { containers } => k::simple(c, containers, "unpause").await,
        ContainerCmd::Volume(v) => volumes::main(c, v).await,
        ContainerCmd::Network(n) => networks::main(c, n).await,
    }
}
