//! The OCI runtime spec of a container made from an image: the image config
//! (Entrypoint, Cmd, Env, WorkingDir, User) and docker's defaults
//! (capabilities, masked paths, mounts), with what the user asked for on top.

use std::path::Path;

use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::Spec;
use serde_json::json;

use crate::error::{EngineError, Result};

/// What `berth run` asks for beyond the image.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub image: String,
    /// Replaces the image's Cmd (and is appended to its Entrypoint).
    pub cmd: Vec<String>,
    /// Replaces the image's Entrypoint (`--entrypoint`; empty string clears it).
    pub entrypoint: Option<String>,
    /// `NAME=VALUE`, added to (and overriding) the image's Env.
    pub env: Vec<String>,
    pub workdir: Option<String>,
    /// `uid`, `uid:gid`, `name` or `name:group`.
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub tty: bool,
    pub name: Option<String>,
}

/// docker's default capability set.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

fn lookup(file: &Path, name: &str) -> Option<(u32, Option<u32>)> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 3 && f[0] == name)
            .then(|| (f[2].parse().ok()?, f.get(3).and_then(|g| g.parse().ok())).into())
            .flatten()
    })
}

/// Resolves `user` against the container's /etc/passwd and /etc/group.
pub fn resolve_user(rootfs: &Path, user: &str) -> Result<(u32, u32)> {
    let passwd = berth_runtime::paths::secure_join(rootfs, Path::new("/etc/passwd"));
    let group = berth_runtime::paths::secure_join(rootfs, Path::new("/etc/group"));
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let (uid, primary) = match u.parse::<u32>() {
        Ok(n) => (n, None),
        Err(_) => lookup(&passwd, u).ok_or_else(|| EngineError::Image {
            name: String::new(),
            reason: format!("user {u:?} not found in the container's /etc/passwd"),
        })?,
    };
    let gid = match g {
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup(&group, g)
                .map(|(n, _)| n)
                .ok_or_else(|| EngineError::Image {
                    name: String::new(),
                    reason: format!("group {g:?} not found in the container's /etc/group"),
                })?,
        },
        None => primary.unwrap_or(0),
    };
    Ok((uid, gid))
}

/// Builds the spec. `rootfs` is the mounted root filesystem (for user names).
pub fn spec(
    id: &str,
    image: &ImageConfiguration,
    opts: &RunOptions,
    rootfs: &Path,
) -> Result<Spec> {
    let cfg = image.config().clone().unwrap_or_default();
    let entrypoint: Vec<String> = match &opts.entrypoint {
        Some(e) if e.is_empty() => vec![],
        Some(e) => vec![e.clone()],
        None => cfg.entrypoint().clone().unwrap_or_default(),
    };
    let cmd = if !opts.cmd.is_empty() {
        opts.cmd.clone()
    } else if opts.entrypoint.is_some() {
        vec![]
    } else {
        cfg.cmd().clone().unwrap_or_default()
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(EngineError::Image {
            name: opts.image.clone(),
            reason: "no command given and the image has neither Entrypoint nor Cmd".into(),
        });
    }
    let mut env: Vec<String> = cfg.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    for e in &opts.env {
        let key = e.split('=').next().unwrap_or("");
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    let hostname = opts
        .hostname
        .clone()
        .unwrap_or_else(|| id.chars().take(12).collect());
    env.push(format!("HOSTNAME={hostname}"));
    if opts.tty {
        env.push("TERM=xterm".into());
    }
    let user = opts
        .user
        .clone()
        .or_else(|| cfg.user().clone())
        .filter(|u| !u.is_empty());
    let (uid, gid) = match &user {
        Some(u) => resolve_user(rootfs, u)?,
        None => (0, 0),
    };
    let cwd = opts
        .workdir
        .clone()
        .or_else(|| cfg.working_dir().clone())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        return Err(EngineError::Image {
            name: opts.image.clone(),
            reason: format!("working directory {cwd:?} is not absolute"),
        });
    }
    let v = json!({
        "ociVersion": "1.0.2",
        "root": {"path": rootfs, "readonly": false},
        "hostname": hostname,
        "process": {
            "terminal": opts.tty,
            "user": {"uid": uid, "gid": gid},
            "args": args,
            "env": env,
            "cwd": cwd,
            "capabilities": {"bounding": DEFAULT_CAPS, "effective": DEFAULT_CAPS, "permitted": DEFAULT_CAPS},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1048576u64.min(host_nofile_hard()), "soft": 1024u64.min(host_nofile_hard())}],
            "noNewPrivileges": false
        },
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "network"}, {"type": "cgroup"}],
            "cgroupsPath": format!("/berth/{id}"),
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "maskedPaths": ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    });
    serde_json::from_value(v).map_err(|e| EngineError::Image {
        name: opts.image.clone(),
        reason: format!("building the container spec: {e}"),
    })
}

fn host_nofile_hard() -> u64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(_, h)| h)
        .unwrap_or(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(cfg: serde_json::Value) -> ImageConfiguration {
        serde_json::from_value(json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}, "config": cfg})).unwrap()
    }

    #[test]
    fn image_config_and_options_make_the_process() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("etc")).unwrap();
        std::fs::write(
            t.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(t.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        let img = image(
            json!({"Entrypoint": ["/bin/ep"], "Cmd": ["a"], "Env": ["A=1", "B=2"], "WorkingDir": "/w", "User": "app"}),
        );
        let o = RunOptions {
            env: vec!["B=3".into()],
            ..Default::default()
        };
        let s = spec("abc", &img, &o, t.path()).unwrap();
        let p = s.process().as_ref().unwrap();
        assert_eq!(
            p.args().as_ref().unwrap(),
            &vec!["/bin/ep".to_string(), "a".into()]
        );
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 1001));
        assert_eq!(p.cwd(), Path::new("/w"));
        let env = p.env().as_ref().unwrap();
        assert!(
            env.contains(&"A=1".to_string())
                && env.contains(&"B=3".to_string())
                && !env.contains(&"B=2".to_string())
        );

        let o = RunOptions {
            cmd: vec!["echo".into(), "hi".into()],
            entrypoint: Some(String::new()),
            user: Some("app:staff".into()),
            ..Default::default()
        };
        let s = spec("abc", &img, &o, t.path()).unwrap();
        let p = s.process().as_ref().unwrap();
        assert_eq!(
            p.args().as_ref().unwrap(),
            &vec!["echo".to_string(), "hi".into()]
        );
        assert_eq!(p.user().gid(), 50);

        let o = RunOptions {
            user: Some("nobody".into()),
            ..Default::default()
        };
        assert!(spec("abc", &img, &o, t.path())
            .unwrap_err()
            .to_string()
            .contains("nobody"));
        let empty = image(json!({}));
        assert!(spec("abc", &empty, &RunOptions::default(), t.path()).is_err());
    }
}
