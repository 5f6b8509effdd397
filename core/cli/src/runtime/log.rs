//! Error and debug output of `berth runtime`, as runc writes it: to stderr,
//! or to `--log FILE` in text or JSON lines (containerd reads the JSON form).

use std::io::Write;
use std::path::{Path, PathBuf};

pub struct Logger {
    file: Option<PathBuf>,
    json: bool,
}

impl Logger {
    pub fn init(file: Option<&Path>, format: &str, debug: bool) -> Logger {
        let json = format == "json";
        let level = if debug { "debug" } else { "warn" };
        let filter = tracing_subscriber::EnvFilter::try_new(level).unwrap_or_default();
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_target(false);
        let opened = file.and_then(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .ok()
        });
        match (opened, json) {
            (Some(f), true) => {
                let _ = builder
                    .json()
                    .with_writer(std::sync::Mutex::new(f))
                    .try_init();
            }
            (Some(f), false) => {
                let _ = builder
                    .with_ansi(false)
                    .with_writer(std::sync::Mutex::new(f))
                    .try_init();
            }
            (None, _) => {
                let _ = builder.with_writer(std::io::stderr).try_init();
            }
        }
        Logger {
            file: file.map(Path::to_path_buf),
            json,
        }
    }

    /// Reports a fatal error: always on stderr, and in the log file if any.
    pub fn error(&self, msg: &str) {
        eprintln!("berth: {msg}");
        if let Some(p) = &self.file {
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
            {
                let time = berth_runtime::state::now_rfc3339();
                let line = if self.json {
                    serde_json::json!({"level": "error", "msg": msg, "time": time}).to_string()
                } else {
                    format!("time=\"{time}\" level=error msg={msg:?}")
                };
                let _ = writeln!(f, "{line}");
            }
        }
    }
}
