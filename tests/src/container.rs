//! A container of the runtime under test, deleted (`delete --force`) and
//! cleaned up when dropped, even when the test failed.

use crate::cmd::{Output, Spawned};
use crate::poll::{poll, until};
use crate::{cgroup, leak, Bundle, Runtime};
use serde_json::Value;
use std::time::Duration;

/// A bundle's container: its id is the bundle's id.
#[derive(Debug)]
pub struct Container<'r> {
    rt: &'r Runtime,
    bundle: Bundle,
}

impl<'r> Container<'r> {
    /// Writes the bundle's `config.json`; nothing runs yet.
    pub fn new(rt: &'r Runtime, bundle: Bundle) -> Container<'r> {
        bundle.write();
        Container { rt, bundle }
    }

    /// A container running `sleep 600` (the bundle's process arguments are
    /// replaced), created and started; returns once `state` says it runs.
    #[track_caller]
    pub fn started(rt: &'r Runtime, mut bundle: Bundle) -> Container<'r> {
        bundle.args(&["sleep", "600"]);
        let c = Container::new(rt, bundle);
        c.create(&[]).assert_ok();
        c.start().assert_ok();
        c.wait_status("running");
        c
    }

    /// A container whose init is `sh` waiting for `sleeps` (at least one)
    /// background `sleep 600`, created and started; returns once init has
    /// started them all (it writes `/ready` then).
    #[track_caller]
    pub fn started_sh(rt: &'r Runtime, mut bundle: Bundle, sleeps: usize) -> Container<'r> {
        assert!(sleeps > 0, "with nothing to wait for, init exits at once");
        bundle.sh(&format!(
            "{} : > /ready; wait",
            "sleep 600 & ".repeat(sleeps)
        ));
        let c = Container::new(rt, bundle);
        c.create(&[]).assert_ok();
        c.start().assert_ok();
        c.wait_file("/ready");
        c
    }

    /// Kills the container with SIGKILL, waits until it is stopped, deletes
    /// it and checks that it left nothing behind.
    #[track_caller]
    pub fn stop_and_delete(&self) {
        self.kill("KILL").assert_ok();
        self.wait_status("stopped");
        self.delete().assert_ok();
        self.assert_no_leaks();
    }

    pub fn id(&self) -> &str {
        self.bundle.id()
    }
    pub fn bundle(&self) -> &Bundle {
        &self.bundle
    }
    pub fn runtime(&self) -> &'r Runtime {
        self.rt
    }

    fn bundle_arg(&self) -> String {
        self.bundle.path().to_string_lossy().into_owned()
    }

    /// `run --bundle B ID` in the foreground.
    #[track_caller]
    pub fn run(&self) -> Output {
        self.rt
            .cmd(&["run", "--bundle", &self.bundle_arg(), self.id()])
    }
    /// `run` with `stdin` piped to the container.
    #[track_caller]
    pub fn run_stdin(&self, stdin: &[u8]) -> Output {
        self.rt
            .cmd_stdin(&["run", "--bundle", &self.bundle_arg(), self.id()], stdin)
    }
    /// `run` in the background (foreground mode, the runtime waits for the container).
    pub fn spawn_run(&self) -> Spawned {
        self.rt
            .spawn(&["run", "--bundle", &self.bundle_arg(), self.id()])
    }
    /// `create --bundle B [extra…] ID`.
    #[track_caller]
    pub fn create(&self, extra: &[&str]) -> Output {
        let b = self.bundle_arg();
        let mut args = vec!["create", "--bundle", &b];
        args.extend_from_slice(extra);
        args.push(self.id());
        self.rt.cmd(&args)
    }
    #[track_caller]
    pub fn start(&self) -> Output {
        self.rt.cmd(&["start", self.id()])
    }
    #[track_caller]
    pub fn kill(&self, signal: &str) -> Output {
        self.rt.cmd(&["kill", self.id(), signal])
    }
    #[track_caller]
    pub fn delete(&self) -> Output {
        self.rt.cmd(&["delete", self.id()])
    }
    /// `exec [flags…] ID cmd…` — `args` holds the flags, then the command.
    #[track_caller]
    pub fn exec(&self, flags: &[&str], cmd: &[&str]) -> Output {
        let mut args = vec!["exec"];
        args.extend_from_slice(flags);
        args.push(self.id());
        args.extend_from_slice(cmd);
        self.rt.cmd(&args)
    }

    /// `state ID`, or `None` once the runtime no longer knows the container.
    pub fn state(&self) -> Option<Value> {
        self.rt.state(self.id())
    }
    /// The `status` field of `state`; panics if the container is unknown.
    #[track_caller]
    pub fn status(&self) -> String {
        let st = self
            .state()
            .unwrap_or_else(|| panic!("`state {}` failed", self.id()));
        st["status"]
            .as_str()
            .expect("status is a string")
            .to_string()
    }
    /// The host pid of the container's init, from `state`.
    #[track_caller]
    pub fn pid(&self) -> u32 {
        let st = self
            .state()
            .unwrap_or_else(|| panic!("`state {}` failed", self.id()));
        st["pid"].as_u64().expect("state has a pid") as u32
    }
    /// Waits until `state` reports `status`.
    #[track_caller]
    pub fn wait_status(&self, status: &str) {
        let what = format!("container {} to be {status}", self.id());
        until(&what, self.rt.timeout(), || {
            self.state().is_some_and(|s| s["status"] == status)
        });
    }
    /// Waits until a file appears in the rootfs (the container's readiness marker).
    #[track_caller]
    pub fn wait_file(&self, path_in_rootfs: &str) {
        let p = self
            .bundle
            .rootfs()
            .join(path_in_rootfs.trim_start_matches('/'));
        until(&format!("{}", p.display()), self.rt.timeout(), || {
            p.exists()
        });
    }

    /// Everything this container left behind (see [`leak::find`]).
    pub fn leaks(&self) -> Vec<String> {
        let rootfs = self.bundle.rootfs();
        let cg = self.bundle.cgroups_path();
        let mut found = leak::find(leak::Scope {
            id: self.id(),
            root: self.rt.root(),
            bundle: self.bundle.path(),
            rootfs: &rootfs,
            cgroups_path: &cg,
        });
        if self.state().is_some() {
            found.push(format!("`state {}` still succeeds", self.id()));
        }
        if self.rt.list_ids().iter().any(|i| i == self.id()) {
            found.push(format!("`list` still shows {}", self.id()));
        }
        found
    }

    /// Panics listing what the container left behind, if anything.
    #[track_caller]
    pub fn assert_no_leaks(&self) {
        // A runtime may finish cleaning just after its command returns.
        let clean = poll(Duration::from_secs(2), || {
            let found = self.leaks();
            (found.is_empty(), found.join("\n  "))
        });
        if let Err(found) = clean {
            panic!("container {} left behind:\n  {found}", self.id());
        }
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let delete = self.rt.command(&["delete", "--force", self.id()]);
        let _ = crate::cmd::run_quiet(delete, Duration::from_secs(30));
        // What a faulty runtime left. The shared parent (/berth-test) stays:
        // other tests may be creating their cgroups in it right now.
        let cg = self.bundle.cgroups_path();
        if !cg.is_empty() {
            for dir in cgroup::dirs(&cg) {
                cgroup::remove_tree(&dir);
            }
        }
    }
}
