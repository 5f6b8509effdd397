//! The OCI runtime spec of a container made from an image: the image config
//! (Entrypoint, Cmd, Env, WorkingDir, User) and docker's defaults
//! (capabilities, masked paths, mounts), with what the user asked for
//! (docker's `Config` and `HostConfig`) on top.

use std::path::{Path, PathBuf};

use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::Spec;
use serde_json::json;

use crate::containers::config::{ContainerConfig, HostConfig};
use crate::error::{EngineError, Result};

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

/// Where a container's named volumes and bind mounts come from.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    pub id: &'a str,
    /// The image name, for errors.
    pub image_name: &'a str,
    pub image: &'a ImageConfiguration,
    pub config: &'a ContainerConfig,
    pub host: &'a HostConfig,
    /// The mounted root filesystem (user names are looked up in it).
    pub rootfs: &'a Path,
    /// `<root>/volumes`: a named volume `NAME` is `<volumes>/NAME/_data`.
    pub volumes: &'a Path,
    /// The container's directory holding its /etc/hosts, /etc/hostname and
    /// /etc/resolv.conf (see `networks::files`); `None` keeps the image's.
    pub etc: Option<&'a Path>,
}

fn bad(name: &str, reason: String) -> EngineError {
    EngineError::Image {
        name: name.into(),
        reason,
    }
}

/// The process's arguments: docker's Entrypoint/Cmd rules.
pub fn args(image: &ImageConfiguration, c: &ContainerConfig) -> Vec<String> {
    let cfg = image.config().clone().unwrap_or_default();
    let entrypoint: Vec<String> = match &c.entrypoint {
        // `--entrypoint ""` clears the image's entrypoint.
        Some(e) if e.len() == 1 && e[0].is_empty() => vec![],
        Some(e) => e.clone(),
        None => cfg.entrypoint().clone().unwrap_or_default(),
    };
    let cmd = match &c.cmd {
        Some(cmd) if !cmd.is_empty() => cmd.clone(),
        _ if c.entrypoint.is_some() => vec![],
        _ => cfg.cmd().clone().unwrap_or_default(),
    };
    entrypoint.into_iter().chain(cmd).collect()
}

/// Normalizes a capability name (`net_admin`, `CAP_NET_ADMIN`) to `CAP_NET_ADMIN`.
fn cap_name(name: &str, image: &str) -> Result<String> {
    let up = name.to_ascii_uppercase();
    let full = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    if full == "CAP_ALL" {
        return Ok(full);
    }
    full.parse::<caps::Capability>()
        .map(|_| full.clone())
        .map_err(|_| bad(image, format!("unknown capability {name:?}")))
}

fn capabilities(h: &HostConfig, image: &str) -> Result<Vec<String>> {
    let all: Vec<String> = {
        let mut v: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
        v.sort();
        v
    };
    if h.privileged {
        return Ok(all);
    }
    let mut set: Vec<String> = DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
    for d in &h.cap_drop {
        match cap_name(d, image)?.as_str() {
            "CAP_ALL" => set.clear(),
            c => set.retain(|x| x != c),
        }
    }
    for a in &h.cap_add {
        match cap_name(a, image)?.as_str() {
            "CAP_ALL" => set = all.clone(),
            c if !set.iter().any(|x| x == c) => set.push(c.to_string()),
            _ => {}
        }
    }
    Ok(set)
}

/// The mounts of `-v`, `--mount` and `--tmpfs`.
fn user_mounts(i: &Inputs<'_>) -> Result<Vec<serde_json::Value>> {
    let mut out = Vec::new();
    let source = |src: &str| -> Result<PathBuf> {
        if src.starts_with('/') {
            let p = PathBuf::from(src);
            if !p.exists() {
                return Err(bad(
                    i.image_name,
                    format!("bind source path does not exist: {src}"),
                ));
            }
            Ok(p)
        } else {
            crate::containers::volumes::check_name(src).map_err(|r| bad(i.image_name, r))?;
            let d = i.volumes.join(src).join("_data");
            std::fs::create_dir_all(&d).map_err(|e| EngineError::io("creating", &d, e))?;
            Ok(d)
        }
    };
    let dest = |d: &str| -> Result<()> {
        if d.starts_with('/') && d != "/" {
            Ok(())
        } else {
            Err(bad(
                i.image_name,
                format!(
                    "invalid mount destination {d:?}: it must be an absolute path other than /"
                ),
            ))
        }
    };
    for b in &i.host.binds {
        let parts: Vec<&str> = b.split(':').collect();
        let (src, dst, opts) = match parts.as_slice() {
            [s, d] => (*s, *d, ""),
            [s, d, o] => (*s, *d, *o),
            _ => {
                return Err(bad(
                    i.image_name,
                    format!("invalid volume specification: '{b}'"),
                ))
            }
        };
        dest(dst)?;
        let ro = opts.split(',').any(|o| o == "ro");
        let mut o = vec!["rbind"];
        if ro {
            o.push("ro");
        }
        out.push(json!({"destination": dst, "type": "bind", "source": source(src)?, "options": o}));
    }
    for m in &i.host.mounts {
        dest(&m.target)?;
        match m.kind.as_str() {
            "bind" | "volume" | "" => {
                if m.kind == "bind" && !m.source.starts_with('/') {
                    return Err(bad(
                        i.image_name,
                        format!("invalid mount source {:?}: a bind mount needs an absolute path", m.source),
                    ));
                }
                let mut o = vec!["rbind"];
                if m.read_only {
                    o.push("ro");
                }
                out.push(json!({"destination": m.target, "type": "bind", "source": source(&m.source)?, "options": o}));
            }
            "tmpfs" => out.push(json!({"destination": m.target, "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]})),
            other => return Err(bad(i.image_name, format!("mount type {other:?} is not supported (bind, volume, tmpfs)"))),
        }
    }
    for (dst, opts) in &i.host.tmpfs {
        dest(dst)?;
        let mut o = vec![
            "nosuid".to_string(),
            "nodev".to_string(),
            "noexec".to_string(),
        ];
        o.extend(opts.split(',').filter(|s| !s.is_empty()).map(String::from));
        out.push(json!({"destination": dst, "type": "tmpfs", "source": "tmpfs", "options": o}));
    }
    Ok(out)
}

fn resources(h: &HostConfig, image: &str) -> Result<serde_json::Value> {
    let mut r = json!({"devices": [{"allow": h.privileged, "access": "rwm"}]});
    let mut mem = serde_json::Map::new();
    if h.memory < 0 || (h.memory > 0 && h.memory < 6 << 20) {
        return Err(bad(image, "minimum memory limit allowed is 6MB".into()));
    }
    if h.memory > 0 {
        mem.insert("limit".into(), json!(h.memory));
        match h.memory_swap {
            0 => {
                mem.insert("swap".into(), json!(h.memory * 2));
            }
            -1 => {
                mem.insert("swap".into(), json!(-1));
            }
            s if s < h.memory => {
                return Err(bad(
                    image,
                    "minimum memoryswap limit should be larger than memory limit, see usage".into(),
                ))
            }
            s => {
                mem.insert("swap".into(), json!(s));
            }
        }
    } else if h.memory_swap > 0 {
        return Err(bad(
            image,
            "you should always set the memory limit when using memoryswap limit, see usage".into(),
        ));
    }
    if h.memory_reservation > 0 {
        mem.insert("reservation".into(), json!(h.memory_reservation));
    }
    if !mem.is_empty() {
        r["memory"] = mem.into();
    }
    let mut cpu = serde_json::Map::new();
    if h.nano_cpus != 0 {
        if h.cpu_quota != 0 || h.cpu_period != 0 {
            return Err(bad(
                image,
                "conflicting options: Nano CPUs and CPU Period cannot both be set".into(),
            ));
        }
        let ncpu = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1) as i64;
        if h.nano_cpus < 0 || h.nano_cpus > ncpu * 1_000_000_000 {
            return Err(bad(image, format!("range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available")));
        }
        cpu.insert("period".into(), json!(100_000u64));
        cpu.insert("quota".into(), json!(h.nano_cpus * 100_000 / 1_000_000_000));
    }
    if h.cpu_period > 0 {
        cpu.insert("period".into(), json!(h.cpu_period));
    }
    if h.cpu_quota > 0 {
        cpu.insert("quota".into(), json!(h.cpu_quota));
    }
    if h.cpu_shares > 0 {
        cpu.insert("shares".into(), json!(h.cpu_shares));
    }
    if !h.cpuset_cpus.is_empty() {
        cpu.insert("cpus".into(), json!(h.cpuset_cpus));
    }
    if !cpu.is_empty() {
        r["cpu"] = cpu.into();
    }
    if let Some(p) = h.pids_limit.filter(|p| *p > 0) {
        r["pids"] = json!({"limit": p});
    }
    Ok(r)
}

fn rlimits(h: &HostConfig, image: &str) -> Result<Vec<serde_json::Value>> {
    let hard = host_nofile_hard();
    let mut out = vec![
        json!({"type": "RLIMIT_NOFILE", "hard": 1048576u64.min(hard), "soft": 1024u64.min(hard)}),
    ];
    for u in &h.ulimits {
        let name = format!("RLIMIT_{}", u.name.to_ascii_uppercase());
        if !RLIMITS.contains(&name.as_str()) {
            return Err(bad(image, format!("invalid ulimit type: {}", u.name)));
        }
        if u.soft > u.hard {
            return Err(bad(
                image,
                format!(
                    "ulimit {}: soft limit {} is larger than hard limit {}",
                    u.name, u.soft, u.hard
                ),
            ));
        }
        out.retain(|r| r["type"] != name.as_str());
        out.push(json!({"type": name, "hard": u.hard, "soft": u.soft}));
    }
    Ok(out)
}

const RLIMITS: &[&str] = &[
    "RLIMIT_AS",
    "RLIMIT_CORE",
    "RLIMIT_CPU",
    "RLIMIT_DATA",
    "RLIMIT_FSIZE",
    "RLIMIT_LOCKS",
    "RLIMIT_MEMLOCK",
    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",
    "RLIMIT_NOFILE",
    "RLIMIT_NPROC",
    "RLIMIT_RSS",
    "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME",
    "RLIMIT_SIGPENDING",
    "RLIMIT_STACK",
];

/// Checks what a spec would refuse in `h` without a root filesystem, so
/// that `create` fails rather than a later `start`.
pub fn check_host(h: &HostConfig) -> Result<()> {
    capabilities(h, "container")?;
    resources(h, "container")?;
    rlimits(h, "container")?;
    security(h, "container")?;
    namespaces(h, "container")?;
    Ok(())
}

fn security(h: &HostConfig, image: &str) -> Result<bool> {
    for o in &h.security_opt {
        if !o.starts_with("no-new-privileges")
            && o != "seccomp=unconfined"
            && !o.starts_with("label")
            && !o.starts_with("apparmor")
        {
            return Err(bad(image, format!("invalid --security-opt: {o:?} (berth knows no-new-privileges, seccomp=unconfined)")));
        }
    }
    Ok(h.security_opt.iter().any(|o| {
        o == "no-new-privileges" || o == "no-new-privileges:true" || o == "no-new-privileges=true"
    }))
}

fn namespaces(h: &HostConfig, image: &str) -> Result<Vec<serde_json::Value>> {
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
        json!({"type": "cgroup"}),
    ];
    match h.network_mode.as_str() {
        "host" => {}
        m if m.starts_with("container:") => {
            return Err(bad(
                image,
                format!(
                    "--network {m}: sharing another container's network is not supported by berth"
                ),
            ))
        }
        // none, the default bridge or a named network: a namespace of its own.
        _ => namespaces.push(json!({"type": "network"})),
    }
    Ok(namespaces)
}

/// The init that `--init` runs as PID 1 (docker's `docker-init` is tini):
/// a statically linked binary, as it runs inside any image.
fn init_binary() -> Result<PathBuf> {
    [
        "/usr/bin/tini-static",
        "/usr/libexec/docker/docker-init",
        "/usr/local/bin/docker-init",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
    .ok_or_else(|| EngineError::Invalid {
        reason:
            "--init needs a statically linked init: install Debian's tini (/usr/bin/tini-static)"
                .into(),
    })
}

/// Where `--init` puts its init in the container (as docker does).
pub const INIT_PATH: &str = "/sbin/docker-init";

/// Builds the spec.
pub fn spec(i: &Inputs<'_>) -> Result<Spec> {
    let (c, h) = (i.config, i.host);
    let cfg = i.image.config().clone().unwrap_or_default();
    let mut args = args(i.image, c);
    if args.is_empty() {
        return Err(bad(
            i.image_name,
            "no command given and the image has neither Entrypoint nor Cmd".into(),
        ));
    }
    let init = if h.init == Some(true) {
        args.splice(0..0, [INIT_PATH.to_string(), "--".to_string()]);
        Some(init_binary()?)
    } else {
        None
    };
    let mut env: Vec<String> = cfg.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    for e in &c.env {
        let key = e.split('=').next().unwrap_or("");
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    let hostname = if c.hostname.is_empty() {
        i.id.chars().take(12).collect()
    } else {
        c.hostname.clone()
    };
    env.push(format!("HOSTNAME={hostname}"));
    if c.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    let user = Some(c.user.clone())
        .filter(|u| !u.is_empty())
        .or_else(|| cfg.user().clone())
        .filter(|u| !u.is_empty());
    let (uid, gid) = match &user {
        Some(u) => resolve_user(i.rootfs, u)?,
        None => (0, 0),
    };
    let cwd = Some(c.working_dir.clone())
        .filter(|w| !w.is_empty())
        .or_else(|| cfg.working_dir().clone())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        return Err(bad(
            i.image_name,
            format!("working directory {cwd:?} is not absolute"),
        ));
    }
    let caps = capabilities(h, i.image_name)?;
    let no_new_privs = security(h, i.image_name)?;
    let namespaces = namespaces(h, i.image_name)?;
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", if h.privileged { "rw" } else { "ro" }]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", if h.privileged { "rw" } else { "ro" }]}),
    ];
    if let Some(etc) = i.etc.filter(|_| h.network_mode != "host") {
        for name in crate::networks::files::FILES {
            let src = crate::networks::files::path(etc, name);
            mounts.push(json!({"destination": format!("/etc/{name}"), "type": "bind", "source": src, "options": ["rbind", "rprivate"]}));
        }
    }
    mounts.extend(user_mounts(i)?);
    if let Some(init) = init {
        mounts.push(json!({"destination": INIT_PATH, "type": "bind", "source": init, "options": ["rbind", "ro"]}));
    }
    let (masked, readonly): (Vec<&str>, Vec<&str>) = if h.privileged {
        (vec![], vec![])
    } else {
        (
            vec![
                "/proc/asound",
                "/proc/acpi",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/proc/scsi",
                "/sys/firmware",
            ],
            vec![
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger",
            ],
        )
    };
    let v = json!({
        "ociVersion": "1.0.2",
        "root": {"path": i.rootfs, "readonly": h.readonly_rootfs},
        "hostname": hostname,
        "process": {
            "terminal": c.tty,
            "user": {"uid": uid, "gid": gid},
            "args": args,
            "env": env,
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": rlimits(h, i.image_name)?,
            "noNewPrivileges": no_new_privs
        },
        "mounts": mounts,
        "linux": {
            "namespaces": namespaces,
            "cgroupsPath": format!("/berth/{}", i.id),
            "resources": resources(h, i.image_name)?,
            "maskedPaths": masked,
            "readonlyPaths": readonly
        }
    });
    serde_json::from_value(v)
        .map_err(|e| bad(i.image_name, format!("building the container spec: {e}")))
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

    fn make(
        img: &ImageConfiguration,
        c: &ContainerConfig,
        h: &HostConfig,
        root: &Path,
    ) -> Result<Spec> {
        spec(&Inputs {
            id: "abc",
            image_name: "img",
            image: img,
            config: c,
            host: h,
            rootfs: root,
            volumes: &root.join("volumes"),
            etc: None,
        })
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
        let h = HostConfig::default();
        let c = ContainerConfig {
            env: vec!["B=3".into()],
            ..Default::default()
        };
        let s = make(&img, &c, &h, t.path()).unwrap();
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

        let c = ContainerConfig {
            cmd: Some(vec!["echo".into(), "hi".into()]),
            entrypoint: Some(vec![String::new()]),
            user: "app:staff".into(),
            ..Default::default()
        };
        let s = make(&img, &c, &h, t.path()).unwrap();
        let p = s.process().as_ref().unwrap();
        assert_eq!(
            p.args().as_ref().unwrap(),
            &vec!["echo".to_string(), "hi".into()]
        );
        assert_eq!(p.user().gid(), 50);

        let c = ContainerConfig {
            user: "nobody".into(),
            ..Default::default()
        };
        assert!(make(&img, &c, &h, t.path())
            .unwrap_err()
            .to_string()
            .contains("nobody"));
        let empty = image(json!({}));
        assert!(make(&empty, &ContainerConfig::default(), &h, t.path()).is_err());
    }

    #[test]
    fn host_config_becomes_limits_caps_and_mounts() {
        let t = tempfile::tempdir().unwrap();
        let img = image(json!({"Cmd": ["sh"]}));
        let h = HostConfig {
            memory: 64 << 20,
            nano_cpus: 500_000_000,
            pids_limit: Some(10),
            cap_add: vec!["net_admin".into()],
            cap_drop: vec!["CHOWN".into()],
            binds: vec![format!("{}:/data:ro", t.path().display()), "vol1:/v".into()],
            tmpfs: [("/run".to_string(), "size=1m".to_string())].into(),
            network_mode: "host".into(),
            security_opt: vec!["no-new-privileges".into()],
            ..Default::default()
        };
        let s = make(&img, &ContainerConfig::default(), &h, t.path()).unwrap();
        let v = serde_json::to_value(&s).unwrap();
        let r = &v["linux"]["resources"];
        assert_eq!(r["memory"]["limit"], 64 << 20);
        assert_eq!(r["cpu"]["quota"], 50_000);
        assert_eq!(r["pids"]["limit"], 10);
        let caps = v["process"]["capabilities"]["bounding"].as_array().unwrap();
        assert!(caps.contains(&json!("CAP_NET_ADMIN")) && !caps.contains(&json!("CAP_CHOWN")));
        assert_eq!(v["process"]["noNewPrivileges"], true);
        let ns = v["linux"]["namespaces"].as_array().unwrap();
        assert!(!ns.iter().any(|n| n["type"] == "network"));
        let m = v["mounts"].as_array().unwrap();
        assert!(m.iter().any(|m| m["destination"] == "/data"
            && m["options"].as_array().unwrap().contains(&json!("ro"))));
        assert!(m.iter().any(|m| m["destination"] == "/v"
            && m["source"]
                .as_str()
                .unwrap()
                .ends_with("volumes/vol1/_data")));
        assert!(m
            .iter()
            .any(|m| m["destination"] == "/run" && m["type"] == "tmpfs"));

        let bad_cap = HostConfig {
            cap_add: vec!["FLY".into()],
            ..Default::default()
        };
        assert!(make(&img, &ContainerConfig::default(), &bad_cap, t.path())
            .unwrap_err()
            .to_string()
            .contains("FLY"));
        let tiny = HostConfig {
            memory: 1000,
            ..Default::default()
        };
        assert!(make(&img, &ContainerConfig::default(), &tiny, t.path())
            .unwrap_err()
            .to_string()
            .contains("6MB"));
        let missing = HostConfig {
            binds: vec!["/no/such/dir:/x".into()],
            ..Default::default()
        };
        assert!(make(&img, &ContainerConfig::default(), &missing, t.path())
            .unwrap_err()
            .to_string()
            .contains("/no/such/dir"));
    }
}
