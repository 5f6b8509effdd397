//! An OCI bundle in a temporary directory: a busybox rootfs and a
//! `config.json` built from the default with chainable setters.

use crate::{config, leak, rootfs, unique_name};
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// A bundle and the container id it is meant for.
#[derive(Debug)]
pub struct Bundle {
    dir: TempDir,
    id: String,
    config: Value,
}

impl Bundle {
    /// A fresh bundle with a copy of the busybox rootfs, a unique id
    /// (`bt-<pid>-<n>`) and the default config, whose cgroupsPath is
    /// `/berth-test/<id>`.
    pub fn new() -> Bundle {
        crate::require_root();
        let id = unique_name("bt");
        let dir = tempfile::Builder::new()
            .prefix(&format!("berth-test-{id}-"))
            .tempdir()
            .expect("temp dir for the bundle");
        // Readable by everyone, so a user-namespaced container can reach its rootfs.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod bundle");
        rootfs::copy_to(&dir.path().join("rootfs"));
        let config = config::default(&format!("/berth-test/{id}"));
        Bundle { dir, id, config }
    }

    pub fn id(&self) -> &str {
        &self.id
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn rootfs(&self) -> PathBuf {
        self.path().join("rootfs")
    }
    pub fn config_path(&self) -> PathBuf {
        self.path().join("config.json")
    }
    pub fn config(&self) -> &Value {
        &self.config
    }
    /// The raw config, for settings without a setter.
    pub fn config_mut(&mut self) -> &mut Value {
        &mut self.config
    }
    /// `linux.cgroupsPath` as configured.
    pub fn cgroups_path(&self) -> String {
        self.config["linux"]["cgroupsPath"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Writes `config.json`.
    pub fn write(&self) {
        let text = serde_json::to_string_pretty(&self.config).expect("serialize config");
        fs::write(self.config_path(), text).expect("write config.json");
    }

    /// Sets the value at a JSON pointer such as `/process/cwd`, creating objects on the way.
    pub fn set(&mut self, pointer: &str, value: Value) -> &mut Self {
        let mut cur = &mut self.config;
        for key in pointer.trim_start_matches('/').split('/') {
            if !cur.is_object() {
                *cur = json!({});
            }
            cur = cur
                .as_object_mut()
                .unwrap()
                .entry(key)
                .or_insert(Value::Null);
        }
        *cur = value;
        self
    }

    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.set("/process/args", json!(args))
    }
    /// Runs `sh -c script`.
    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.args(&["sh", "-c", script])
    }
    /// Adds `KEY=VALUE` to the environment.
    pub fn env(&mut self, key: &str, value: &str) -> &mut Self {
        push(
            &mut self.config["process"]["env"],
            json!(format!("{key}={value}")),
        );
        self
    }
    pub fn cwd(&mut self, cwd: &str) -> &mut Self {
        self.set("/process/cwd", json!(cwd))
    }
    pub fn hostname(&mut self, name: &str) -> &mut Self {
        self.set("/hostname", json!(name))
    }
    pub fn terminal(&mut self, on: bool) -> &mut Self {
        self.set("/process/terminal", json!(on))
    }
    pub fn user(&mut self, uid: u32, gid: u32, additional_gids: &[u32]) -> &mut Self {
        self.set(
            "/process/user",
            json!({ "uid": uid, "gid": gid, "additionalGids": additional_gids }),
        )
    }
    pub fn readonly_root(&mut self, on: bool) -> &mut Self {
        self.set("/root/readonly", json!(on))
    }
    pub fn no_new_privileges(&mut self, on: bool) -> &mut Self {
        self.set("/process/noNewPrivileges", json!(on))
    }
    /// Replaces the rlimit of `kind` (e.g. `RLIMIT_NOFILE`).
    pub fn rlimit(&mut self, kind: &str, soft: u64, hard: u64) -> &mut Self {
        let list = &mut self.config["process"]["rlimits"];
        if let Some(a) = list.as_array_mut() {
            a.retain(|r| r["type"] != kind);
        }
        push(list, json!({ "type": kind, "soft": soft, "hard": hard }));
        self
    }
    /// Sets the same capability list for bounding, effective and permitted.
    pub fn capabilities(&mut self, caps: &[&str]) -> &mut Self {
        self.set(
            "/process/capabilities",
            json!({ "bounding": caps, "effective": caps, "permitted": caps }),
        )
    }
    /// Merges `resources` (an OCI `linux.resources` object) into the config.
    pub fn resources(&mut self, resources: Value) -> &mut Self {
        for (k, v) in resources.as_object().expect("resources is an object") {
            self.set(&format!("/linux/resources/{k}"), v.clone());
        }
        self
    }
    pub fn set_cgroups_path(&mut self, path: &str) -> &mut Self {
        self.set("/linux/cgroupsPath", json!(path))
    }
    /// Appends a mount.
    pub fn mount(&mut self, dest: &str, kind: &str, source: &str, options: &[&str]) -> &mut Self {
        let m = json!({ "destination": dest, "type": kind, "source": source, "options": options });
        push(&mut self.config["mounts"], m);
        self
    }
    /// Appends a bind mount of a host path (`ro` adds the read-only option).
    pub fn bind(&mut self, host: &Path, dest: &str, ro: bool) -> &mut Self {
        let opts: &[&str] = if ro {
            &["rbind", "ro"]
        } else {
            &["rbind", "rw"]
        };
        self.mount(dest, "bind", &host.to_string_lossy(), opts)
    }
    /// Appends a hook of `kind` (`prestart`, `createRuntime`, …, `poststop`).
    pub fn hook(&mut self, kind: &str, path: &str, args: &[&str]) -> &mut Self {
        push(
            &mut self.config["hooks"][kind],
            json!({ "path": path, "args": args }),
        );
        self
    }
    /// Adds (or replaces) a namespace, joining `path` when given.
    pub fn namespace(&mut self, kind: &str, path: Option<&Path>) -> &mut Self {
        self.remove_namespace(kind);
        let ns = match path {
            Some(p) => json!({ "type": kind, "path": p.to_string_lossy() }),
            None => json!({ "type": kind }),
        };
        push(&mut self.config["linux"]["namespaces"], ns);
        self
    }
    pub fn remove_namespace(&mut self, kind: &str) -> &mut Self {
        if let Some(a) = self.config["linux"]["namespaces"].as_array_mut() {
            a.retain(|n| n["type"] != kind);
        }
        self
    }
    /// A user namespace mapping container ids 0..size to host ids host..host+size.
    pub fn user_namespace(&mut self, host: u32, size: u32) -> &mut Self {
        let map = json!([{ "containerID": 0, "hostID": host, "size": size }]);
        self.namespace("user", None);
        self.set("/linux/uidMappings", map.clone())
            .set("/linux/gidMappings", map)
    }
    pub fn sysctl(&mut self, key: &str, value: &str) -> &mut Self {
        self.set(&format!("/linux/sysctl/{key}"), json!(value))
    }
    pub fn seccomp(&mut self, profile: Value) -> &mut Self {
        self.set("/linux/seccomp", profile)
    }
}

impl Default for Bundle {
    fn default() -> Self {
        Bundle::new()
    }
}

impl Drop for Bundle {
    /// Never deletes through a mount a faulty runtime left behind: detach what
    /// is mounted under the bundle first, and keep the directory if that fails.
    fn drop(&mut self) {
        if !leak::unmount_under(self.path()) {
            eprintln!(
                "warning: mounts remain under {}; leaving it in place",
                self.path().display()
            );
            self.dir.disable_cleanup(true);
        }
    }
}

fn push(list: &mut Value, item: Value) {
    if !list.is_array() {
        *list = json!([]);
    }
    list.as_array_mut().unwrap().push(item);
}
