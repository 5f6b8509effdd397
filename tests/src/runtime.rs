//! The OCI runtime under test: its command line and a private `--root`.

use crate::cmd::{self, Output, Spawned};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use tempfile::TempDir;

/// Environment variable naming the runtime command line (e.g. `runc`).
pub const RUNTIME_ENV: &str = "BERTH_TEST_RUNTIME";
/// Environment variable overriding the per-command timeout, in seconds.
pub const TIMEOUT_ENV: &str = "BERTH_TEST_TIMEOUT";

/// A runtime command line with its own state directory (`--root`).
#[derive(Debug)]
pub struct Runtime {
    argv: Vec<String>,
    root: TempDir,
    timeout: Duration,
}

impl Runtime {
    /// The runtime from `BERTH_TEST_RUNTIME`, or `berth runtime` of the build
    /// under test (see [`crate::binary`]).
    /// Panics unless running as root or when the berth binary is missing.
    pub fn new() -> Runtime {
        crate::require_root();
        let argv = match std::env::var(RUNTIME_ENV) {
            Ok(s) if !s.trim().is_empty() => s.split_whitespace().map(String::from).collect(),
            _ => default_argv(),
        };
        let root = tempfile::Builder::new()
            .prefix("berth-test-root-")
            .tempdir()
            .expect("temp dir for --root");
        let secs = std::env::var(TIMEOUT_ENV)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60);
        Runtime {
            argv,
            root,
            timeout: Duration::from_secs(secs),
        }
    }

    /// The command line, without `--root`.
    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    /// The state directory passed as `--root`.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Deadline for one runtime command.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether the runtime is berth (its program name starts with `berth`).
    /// Only berth's error messages are asserted; exit codes are checked for all.
    pub fn is_berth(&self) -> bool {
        Path::new(&self.argv[0])
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("berth"))
    }

    /// A `Command` for `RUNTIME --root ROOT args…`.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..])
            .arg("--root")
            .arg(self.root())
            .args(args);
        cmd
    }

    /// Runs a subcommand to completion (stdin is /dev/null).
    #[track_caller]
    pub fn cmd(&self, args: &[&str]) -> Output {
        cmd::run(self.command(args), None, self.timeout)
    }

    /// Runs a subcommand with `stdin` as its input.
    #[track_caller]
    pub fn cmd_stdin(&self, args: &[&str], stdin: &[u8]) -> Output {
        cmd::run(self.command(args), Some(stdin), self.timeout)
    }

    /// Starts a subcommand in the background.
    pub fn spawn(&self, args: &[&str]) -> Spawned {
        Spawned::start(self.command(args), None, self.timeout)
    }

    /// `state ID` parsed, or `None` when the runtime does not know the id.
    pub fn state(&self, id: &str) -> Option<Value> {
        let out = self.cmd(&["state", id]);
        if out.code != 0 {
            return None;
        }
        Some(
            serde_json::from_str(&out.stdout)
                .unwrap_or_else(|e| panic!("`state` printed invalid JSON ({e}): {out}")),
        )
    }

    /// Ids printed by `list -q`.
    #[track_caller]
    pub fn list_ids(&self) -> Vec<String> {
        let out = self.cmd(&["list", "-q"]);
        out.assert_ok();
        out.stdout
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// When the runtime is berth, asserts that stderr mentions every needle
    /// (case-insensitive), so a user can tell what failed and on what.
    #[track_caller]
    pub fn expect_message(&self, out: &Output, needles: &[&str]) {
        if !self.is_berth() {
            return;
        }
        let err = out.stderr.to_lowercase();
        for n in needles {
            assert!(
                err.contains(&n.to_lowercase()),
                "stderr should mention {n:?}: {out}"
            );
        }
    }
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime::new()
    }
}

fn default_argv() -> Vec<String> {
    let bin = crate::binary::berth_or(&format!(
        ", or set {RUNTIME_ENV} to a runtime command line (e.g. {RUNTIME_ENV}=runc)"
    ));
    vec![bin.to_string_lossy().into_owned(), "runtime".into()]
}
