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

mod runtime;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "berth", version, about = "berth container engine")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The OCI runtime (runc's command line): create, start, state, kill, delete, run, exec, ...
    Runtime(runtime::RuntimeCli),
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
        match Cli::parse().command {
            Command::Runtime(r) => runtime::main(r),
        }
    };
    std::process::exit(code);
}
