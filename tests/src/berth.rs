//! The `berth` command line with its own `--root` and `--config`, for the
//! image and engine tests.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::binary;
use crate::cmd::{self, Output};

/// berth with a private state root.
#[derive(Debug)]
pub struct Berth {
    pub root: tempfile::TempDir,
    pub config: PathBuf,
}

impl Berth {
    /// A fresh root; `config` is the text of berth.toml.
    pub fn new(config: &str) -> Berth {
        crate::require_root();
        binary::berth(); // fail early, naming the build to make
        let root = tempfile::Builder::new()
            .prefix("berth-root-")
            .tempdir()
            .expect("temp root");
        let path = root.path().join("berth.toml");
        std::fs::write(&path, config).expect("write berth.toml");
        Berth { root, config: path }
    }

    /// `berth --root ROOT --config CONFIG ARGS`, not yet run.
    pub fn command(&self, args: &[&str]) -> Command {
        binary::on_root(self.root.path(), &self.config, args)
    }

    /// Runs `berth ARGS` (5 minute deadline: pulls of large images).
    pub fn cmd(&self, args: &[&str]) -> Output {
        cmd::run(
            self.command(args),
            None,
            std::time::Duration::from_secs(300),
        )
    }

    /// `berth load -i LAYOUT`, which must work; the name it loaded.
    pub fn load(&self, layout: &Path) -> String {
        let out = self.cmd(&["load", "-i", &layout.to_string_lossy()]);
        out.assert_ok();
        loaded_name(&out.stdout)
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        // Anything still mounted under the root would keep it from being removed.
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let root = self.root.path().to_string_lossy().into_owned();
        let mut points: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|p| p.starts_with(&root))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// The name in `load`'s `Loaded image: NAME` line (its first one).
pub fn loaded_name(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("Loaded image: "))
        .unwrap_or_else(|| panic!("load named no image: {stdout}"))
        .trim()
        .to_string()
}
