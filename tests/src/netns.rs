//! A named network namespace (`ip netns add`) for tests that join one by path;
//! deleted on drop.

use crate::{cmd, unique_name};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

#[derive(Debug)]
pub struct NetNs {
    name: String,
}

impl NetNs {
    pub fn new() -> NetNs {
        let name = unique_name("berth-test");
        cmd::host("ip", &["netns", "add", &name]);
        NetNs { name }
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    /// `/run/netns/NAME`, the path a config joins.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }
    /// A command that runs `program` inside the namespace (through
    /// `nsenter --net`, which execs it: the child's pid is the program's).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.path().display()))
            .arg("--")
            .arg(program);
        c
    }
    /// The names of the links in the namespace.
    pub fn links(&self) -> Vec<String> {
        self.ip(&["-o", "link", "show"])
            .stdout
            .lines()
            .filter_map(|l| {
                let name = l.split(": ").nth(1)?;
                Some(name.split('@').next()?.to_string())
            })
            .collect()
    }
    /// Runs `ip -n NAME args…` and panics if it fails.
    pub fn ip(&self, args: &[&str]) -> cmd::Output {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        cmd::host("ip", &all)
    }
}

impl Default for NetNs {
    fn default() -> Self {
        NetNs::new()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let mut c = Command::new("ip");
        c.args(["netns", "delete", &self.name]);
        let _ = cmd::run_quiet(c, Duration::from_secs(30));
    }
}
