//! Pull and load progress as docker shows it: on a terminal, one live line
//! per layer with a byte bar while it downloads and extracts; otherwise one
//! plain `ID: Status` line per change (no byte counts), so logs stay readable.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use berth_engine::Progress;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Where progress goes.
pub enum Display {
    /// Live bars on the terminal (stdout).
    Bars {
        multi: MultiProgress,
        /// Each layer's bar, and whether it shows bytes now.
        bars: Mutex<HashMap<String, (ProgressBar, bool)>>,
        /// Whether they are drawn on stderr (else stdout).
        stderr: bool,
    },
    /// Status lines on stdout, or on stderr when stdout carries a
    /// container's output (`run`).
    Lines { stderr: bool },
}

impl Display {
    /// Bars when stdout is a terminal, lines on stdout otherwise (`pull`, `load`).
    pub fn new() -> Display {
        if std::io::stdout().is_terminal() {
            Display::bars(ProgressDrawTarget::stdout(), false)
        } else {
            Display::Lines { stderr: false }
        }
    }

    /// The same on stderr, which `run` uses so stdout is the container's alone.
    pub fn on_stderr() -> Display {
        if std::io::stderr().is_terminal() {
            Display::bars(ProgressDrawTarget::stderr(), true)
        } else {
            Display::Lines { stderr: true }
        }
    }

    fn bars(target: ProgressDrawTarget, stderr: bool) -> Display {
        Display::Bars {
            multi: MultiProgress::with_draw_target(target),
            bars: Mutex::new(HashMap::new()),
            stderr,
        }
    }

    fn with_bar(&self, id: &str, f: impl FnOnce(&ProgressBar, &mut bool)) {
        if let Display::Bars { multi, bars, .. } = self {
            let mut bars = bars.lock().expect("progress lock");
            let (bar, showing_bytes) = bars.entry(id.to_string()).or_insert_with(|| {
                let b = multi.add(ProgressBar::new_spinner());
                b.set_style(status_style());
                b.set_prefix(id.to_string());
                (b, false)
            });
            f(bar, showing_bytes);
        }
    }
}

fn status_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix}: {msg}").expect("valid template")
}

fn bytes_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix}: {msg:<11} [{bar:40}] {bytes:>9}/{total_bytes}")
        .expect("valid template")
        .progress_chars("=> ")
}

impl Progress for Display {
    fn status(&self, id: &str, status: &str) {
        if let Display::Lines { stderr } = self {
            if *stderr {
                eprintln!("{id}: {status}");
            } else {
                say!("{id}: {status}");
            }
            return;
        }
        self.with_bar(id, |bar, showing_bytes| {
            if *showing_bytes {
                bar.set_style(status_style());
                *showing_bytes = false;
            }
            bar.set_message(status.to_string());
            if matches!(status, "Pull complete" | "Already exists" | "Loaded") {
                bar.finish();
            }
        });
    }

    fn bytes(&self, id: &str, done: u64, total: u64) {
        self.with_bar(id, |bar, showing_bytes| {
            if !*showing_bytes {
                bar.set_style(bytes_style());
                bar.set_length(total);
                *showing_bytes = true;
            }
            bar.set_position(done);
        });
    }
}

/// The live lines stay on screen when the display goes away, and the cursor
/// moves below them so what is printed next starts on a line of its own.
impl Drop for Display {
    fn drop(&mut self) {
        if let Display::Bars { bars, stderr, .. } = self {
            let bars = bars.get_mut().expect("progress lock");
            if bars.is_empty() {
                return;
            }
            for (bar, _) in bars.values() {
                if !bar.is_finished() {
                    bar.abandon();
                }
            }
            bars.clear();
            if *stderr {
                eprintln!();
            } else {
                say!();
            }
        }
    }
}
