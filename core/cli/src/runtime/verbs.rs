//! One function per runtime verb: parse the verb's flags into library calls
//! and print what runc prints.

use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{bail, Context, Result};
use berth_runtime::{CreateOptions, ExecOptions, Runtime};
use clap::Args;
use oci_spec::runtime::Process;

use super::{CreateArgs, Verb};

#[derive(Args, Debug)]
pub struct ExecArgs {
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Working directory in the container.
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Set an environment variable (NAME=VALUE).
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Allocate a terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// UID[:GID] to run as.
    #[arg(short, long)]
    pub user: Option<String>,
    /// Additional groups.
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// A process.json to run instead of the arguments.
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Detach from the process.
    #[arg(short, long)]
    pub detach: bool,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Add a capability to the bounding, effective and permitted sets.
    #[arg(short, long)]
    pub cap: Vec<String>,
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// Refused when non-zero.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    pub id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub fn dispatch(rt: &Runtime, verb: Verb) -> Result<i32> {
    match verb {
        Verb::Create(a) => {
            let o = create_options(&a)?;
            rt.create(&o)?;
            Ok(0)
        }
        Verb::Start { id } => rt.start(&id).map(|_| 0).map_err(Into::into),
        Verb::Run {
            create,
            detach,
            keep,
        } => {
            let o = create_options(&create)?;
            if detach {
                rt.create(&o)?;
                if let Err(e) = rt.start(&o.id) {
                    let _ = rt.delete(&o.id, true);
                    return Err(e.into());
                }
                Ok(0)
            } else if keep {
                bail!("--keep is not supported by berth yet: the container's state is removed when it exits")
            } else {
                Ok(rt.run(&o)?)
            }
        }
        Verb::State { id } => {
            let st = rt.state(&id)?;
            crate::say!("{}", serde_json::to_string_pretty(&st)?);
            Ok(0)
        }
        Verb::Kill { all, id, signal } => {
            let sig = berth_runtime::signal::parse(signal.as_deref().unwrap_or("SIGTERM"))?;
            rt.kill(&id, sig, all)?;
            Ok(0)
        }
        Verb::Delete { force, id } => {
            match rt.delete(&id, force) {
                // runc: deleting a container that does not exist with --force is not an error.
                Err(berth_runtime::RuntimeError::NotFound { .. }) if force => Ok(0),
                r => r.map(|_| 0).map_err(Into::into),
            }
        }
        Verb::Exec(a) => exec(rt, a),
        Verb::Ps {
            format,
            id,
            ps_args,
        } => ps(rt, &format, &id, ps_args),
        Verb::List { format, quiet } => list(rt, &format, quiet),
        Verb::Pause { id } => rt.pause(&id).map(|_| 0).map_err(Into::into),
        Verb::Resume { id } => rt.resume(&id).map(|_| 0).map_err(Into::into),
        Verb::Update(a) => update(rt, &a),
        Verb::Features => {
            crate::say!("{}", serde_json::to_string_pretty(&features())?);
            Ok(0)
        }
        Verb::Events { stats, id } => {
            if !stats {
                bail!("events without --stats (a stream) is not supported yet; use --stats");
            }
            let s = rt.stats(&id)?;
            crate::say!(
                "{}",
                serde_json::json!({"type": "stats", "id": id, "data": s})
            );
            Ok(0)
        }
    }
}

fn create_options(a: &CreateArgs) -> Result<CreateOptions> {
    if a.no_pivot {
        bail!("--no-pivot is refused: berth uses pivot_root in the container's mount namespace, because a chroot can be escaped (only a config without a mount namespace is run with chroot)");
    }
    if a.preserve_fds != 0 {
        bail!("--preserve-fds is not supported by berth yet");
    }
    Ok(CreateOptions {
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
    })
}

fn exec(rt: &Runtime, a: ExecArgs) -> Result<i32> {
    if a.preserve_fds != 0 {
        bail!("--preserve-fds is not supported by berth yet");
    }
    let process: Process = if let Some(p) = &a.process {
        let text = std::fs::read(p)
            .with_context(|| format!("reading the process file {}", p.display()))?;
        serde_json::from_slice(&text)
            .with_context(|| format!("parsing the process file {}", p.display()))?
    } else {
        if a.command.is_empty() {
            bail!("exec: give a command to run (or --process FILE)");
        }
        let rec = berth_runtime::state::Record::load(&rt.root, &a.id)?;
        let mut p = rec.spec.process().clone().unwrap_or_default();
        p.set_args(Some(a.command.clone()));
        p.set_terminal(Some(a.tty));
        let mut env = p.env().clone().unwrap_or_default();
        for e in &a.env {
            let key = e.split('=').next().unwrap_or("");
            env.retain(|x| x.split('=').next() != Some(key));
            env.push(e.clone());
        }
        p.set_env(Some(env));
        if let Some(c) = &a.cwd {
            p.set_cwd(c.clone());
        }
        if let Some(u) = &a.user {
            let (uid, gid) = match u.split_once(':') {
                Some((u, g)) => (u.parse()?, g.parse()?),
                None => (u.parse()?, 0),
            };
            let user = p.user_mut();
            user.set_uid(uid);
            user.set_gid(gid);
        }
        if !a.additional_gids.is_empty() {
            p.user_mut()
                .set_additional_gids(Some(a.additional_gids.clone()));
        }
        if a.no_new_privs {
            p.set_no_new_privileges(Some(true));
        }
        if !a.cap.is_empty() {
            let mut caps = p.capabilities().clone().unwrap_or_default();
            for c in &a.cap {
                let cap = oci_spec::runtime::Capability::from_str(c)
                    .map_err(|_| anyhow::anyhow!("unknown capability {c}"))?;
                for set in [
                    caps.bounding().clone(),
                    caps.effective().clone(),
                    caps.permitted().clone(),
                ] {
                    let _ = set;
                }
                let mut b = caps.bounding().clone().unwrap_or_default();
                b.insert(cap);
                caps.set_bounding(Some(b));
                let mut e = caps.effective().clone().unwrap_or_default();
                e.insert(cap);
                caps.set_effective(Some(e));
                let mut pm = caps.permitted().clone().unwrap_or_default();
                pm.insert(cap);
                caps.set_permitted(Some(pm));
            }
            p.set_capabilities(Some(caps));
        }
        p
    };
    let o = ExecOptions {
        pid_file: a.pid_file,
        console_socket: a.console_socket,
        detach: a.detach,
    };
    Ok(rt.exec(&a.id, &process, &o)?)
}

fn ps(rt: &Runtime, format: &str, id: &str, ps_args: Vec<String>) -> Result<i32> {
    let pids = rt.ps(id)?;
    match format {
        "json" => {
            crate::say!("{}", serde_json::to_string(&pids)?);
            Ok(0)
        }
        "table" => {
            let args = if ps_args.is_empty() {
                vec!["-ef".to_string()]
            } else {
                ps_args
            };
            let out = std::process::Command::new("ps")
                .args(&args)
                .output()
                .context("running ps(1)")?;
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or("");
            let col = header
                .split_whitespace()
                .position(|h| h == "PID")
                .context("ps output has no PID column")?;
            crate::say!("{header}");
            for l in lines {
                if let Some(p) = l
                    .split_whitespace()
                    .nth(col)
                    .and_then(|p| p.parse::<i32>().ok())
                {
                    if pids.contains(&p) {
                        crate::say!("{l}");
                    }
                }
            }
            Ok(0)
        }
        f => bail!("unknown --format {f:?} (use table or json)"),
    }
}

fn list(rt: &Runtime, format: &str, quiet: bool) -> Result<i32> {
    let all = rt.list()?;
    if quiet {
        for (r, _) in &all {
            crate::say!("{}", r.id);
        }
        return Ok(0);
    }
    match format {
        "json" => {
            let v: Vec<_> = all
                .iter()
                .map(|(r, s)| {
                    serde_json::json!({
                        "ociVersion": "1.0.2",
                        "id": r.id,
                        "pid": if *s == berth_runtime::Status::Stopped { 0 } else { r.pid },
                        "status": s.as_str(),
                        "bundle": r.bundle,
                        "rootfs": r.rootfs,
                        "created": r.created,
                        "annotations": r.annotations,
                        "owner": "root",
                    })
                })
                .collect();
            crate::say!("{}", serde_json::to_string(&v)?);
        }
        "table" => {
            crate::say!(
                "{:<12} {:<10} {:<10} {:<40} {:<30} OWNER",
                "ID",
                "PID",
                "STATUS",
                "BUNDLE",
                "CREATED"
            );
            for (r, s) in &all {
                let pid = if *s == berth_runtime::Status::Stopped {
                    0
                } else {
                    r.pid
                };
                crate::say!(
                    "{:<12} {:<10} {:<10} {:<40} {:<30} root",
                    r.id,
                    pid,
                    s.as_str(),
                    r.bundle.display(),
                    r.created,
                );
            }
        }
        f => bail!("unknown --format {f:?} (use table or json)"),
    }
    Ok(0)
}

fn features() -> serde_json::Value {
    let caps: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": ["async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "mand",
            "noatime", "nodev", "nodiratime", "noexec", "nomand", "norelatime", "nostrictatime", "nosuid",
            "private", "rbind", "relatime", "remount", "ro", "rprivate", "rshared", "rslave", "runbindable",
            "rw", "shared", "slave", "strictatime", "suid", "sync", "unbindable"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                    "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
            },
            "apparmor": {"enabled": true},
            "selinux": {"enabled": false}
        },
        "annotations": {"io.github.berth.version": env!("CARGO_PKG_VERSION")}
    })
}

/// `update`: the resources from `--resources` with the single flags over them.
fn update(rt: &Runtime, a: &super::UpdateArgs) -> Result<i32> {
    use oci_spec::runtime::{LinuxPids, LinuxResources};
    let mut r: LinuxResources = match a.resources.as_deref() {
        Some("-") => serde_json::from_reader(std::io::stdin().lock())
            .context("reading the resources (JSON) from stdin")?,
        Some(path) => {
            serde_json::from_slice(&std::fs::read(path).with_context(|| format!("reading {path}"))?)
                .with_context(|| format!("{path} is not a LinuxResources JSON"))?
        }
        None => LinuxResources::default(),
    };
    let bytes = |flag: &str, v: &str| -> Result<i64> {
        if v == "-1" {
            return Ok(-1);
        }
        berth_engine::containers::config::parse_size(v)
            .map_err(|e| anyhow::anyhow!("invalid value {v:?} for --{flag}: {e}"))
    };
    if a.memory.is_some() || a.memory_swap.is_some() || a.memory_reservation.is_some() {
        let mut m = (*r.memory()).unwrap_or_default();
        if let Some(v) = &a.memory {
            m.set_limit(Some(bytes("memory", v)?));
        }
        if let Some(v) = &a.memory_swap {
            m.set_swap(Some(bytes("memory-swap", v)?));
        }
        if let Some(v) = &a.memory_reservation {
            m.set_reservation(Some(bytes("memory-reservation", v)?));
        }
        r.set_memory(Some(m));
    }
    if a.cpu_period.is_some()
        || a.cpu_quota.is_some()
        || a.cpu_share.is_some()
        || a.cpuset_cpus.is_some()
    {
        let mut c = r.cpu().clone().unwrap_or_default();
        if a.cpu_period.is_some() {
            c.set_period(a.cpu_period);
        }
        if a.cpu_quota.is_some() {
            c.set_quota(a.cpu_quota);
        }
        if a.cpu_share.is_some() {
            c.set_shares(a.cpu_share);
        }
        if a.cpuset_cpus.is_some() {
            c.set_cpus(a.cpuset_cpus.clone());
        }
        r.set_cpu(Some(c));
    }
    if let Some(p) = a.pids_limit {
        let mut pids = LinuxPids::default();
        pids.set_limit(p);
        r.set_pids(Some(pids));
    }
    rt.update(&a.id, &r)?;
    Ok(0)
}
