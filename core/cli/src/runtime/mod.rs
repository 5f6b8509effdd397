//! `berth runtime`: the OCI runtime command line, flag for flag as runc's so
//! that containerd, CRI-O and podman can drive berth. Each verb is a small
//! function over `berth_runtime::Runtime`; errors go to stderr (and to
//! `--log` in runc's text or JSON format) with exit status 1.

mod log;
mod verbs;

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// Global flags, as runc's.
#[derive(clap::Parser, Debug)]
#[command(
    name = "berth-runtime",
    version,
    about = "berth's OCI runtime (runc-compatible command line)"
)]
pub struct RuntimeCli {
    /// Directory for container state (runc: --root).
    #[arg(long, global = true, default_value = "/run/berth/runtime")]
    pub root: PathBuf,
    /// Log file (errors and debug messages); stderr if not set.
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long = "log-format", global = true, default_value = "text")]
    pub log_format: String,
    /// Debug logging.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Accepted for compatibility; berth drives cgroupfs and refuses systemd cgroup paths.
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Accepted for compatibility (auto-detected).
    #[arg(long, global = true)]
    pub rootless: Option<String>,
    #[command(subcommand)]
    pub verb: Verb,
}

#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    /// Path to the bundle directory (default: the current directory).
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket to which the pty master is sent when process.terminal is true.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// File to write the container's init pid to.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Refused: berth always uses pivot_root.
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Accepted for compatibility (berth does not create a session keyring).
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Refused when non-zero: passing extra fds is not supported yet.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    pub id: String,
}

#[derive(Subcommand, Debug)]
pub enum Verb {
    /// Create a container (its process waits for `start`).
    Create(CreateArgs),
    /// Start a created container.
    Start { id: String },
    /// Create and start a container; in the foreground unless --detach.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Detach: return once the container is started.
        #[arg(short, long)]
        detach: bool,
        /// Keep the container's state after it exits (not deleted).
        #[arg(long)]
        keep: bool,
    },
    /// Print the OCI state of a container as JSON.
    State { id: String },
    /// Send a signal (default SIGTERM) to the container's init.
    Kill {
        /// Send the signal to all processes of the container.
        #[arg(short, long)]
        all: bool,
        id: String,
        signal: Option<String>,
    },
    /// Delete a container and everything made for it.
    Delete {
        /// Kill a running container first.
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// Run a new process inside a running container.
    Exec(verbs::ExecArgs),
    /// List the processes of a container.
    Ps {
        #[arg(short, long, default_value = "table")]
        format: String,
        id: String,
        /// Arguments for ps(1) in table format (default -ef).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// List containers.
    #[command(alias = "ls")]
    List {
        #[arg(short, long, default_value = "table")]
        format: String,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Freeze all processes of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// Change a container's cgroup limits (runc's update).
    Update(UpdateArgs),
    /// Print the features berth implements, as JSON.
    Features,
    /// Print resource usage statistics of a container as JSON.
    Events {
        /// Print one set of statistics and exit.
        #[arg(long)]
        stats: bool,
        id: String,
    },
}

pub fn main(cli: RuntimeCli) -> i32 {
    let logger = log::Logger::init(cli.log.as_deref(), &cli.log_format, cli.debug);
    let rt = berth_runtime::Runtime::new(&cli.root);
    match verbs::dispatch(&rt, cli.verb) {
        Ok(code) => code,
        Err(e) => {
            logger.error(&error_text(&e));
            1
        }
    }
}

/// The error and its causes, without repeating a cause its parent already quotes.
pub fn error_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}

/// `update`'s flags, as runc's: a whole `LinuxResources` JSON from a file
/// (or `-` for stdin, as containerd sends it), and/or single limits.
#[derive(clap::Args, Debug)]
pub struct UpdateArgs {
    /// A LinuxResources JSON file, or - for stdin.
    #[arg(short, long)]
    pub resources: Option<String>,
    /// Memory limit (bytes, or with a unit: 64m).
    #[arg(long)]
    pub memory: Option<String>,
    /// Memory plus swap limit (-1 for unlimited).
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit.
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// CFS period in microseconds.
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    /// CFS quota in microseconds (-1 for none).
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU shares.
    #[arg(long = "cpu-share")]
    pub cpu_share: Option<u64>,
    /// CPUs to run on (0-3, 0,1).
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Maximum number of processes (-1 for unlimited).
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    pub id: String,
}
