//! Builds the init plan and process plan from a validated spec, in the
//! parent, before clone: every string converted, every path resolved.

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Hook, LinuxNamespaceType, PosixRlimitType, Process, Spec};

use super::plan::{CStrArray, HookPlan, InitPlan, NsPlan, ProcessPlan, RootChange};
use crate::error::{Result, RuntimeError};
use crate::paths::{cpath, cstr, secure_join};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub(crate) fn ns_flag(t: LinuxNamespaceType) -> libc::c_int {
    match t {
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Time => 0x80, // CLONE_NEWTIME
    }
}

fn rlimit_resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

fn cstrings(v: &[String]) -> Result<Vec<CString>> {
    v.iter().map(|s| cstr(s.as_bytes())).collect()
}

/// The home directory of `uid` in the container's /etc/passwd, if any.
fn home_of(rootfs: &Path, uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string(secure_join(rootfs, Path::new("/etc/passwd"))).ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && f[2].parse() == Ok(uid)).then(|| f[5].to_string())
    })
}

/// Builds the plan for a process. `rootfs` is used to find HOME when the
/// environment has none.
pub fn process_plan(p: &Process, rootfs: Option<&Path>) -> Result<ProcessPlan> {
    let args = p.args().clone().unwrap_or_default();
    let mut env = p.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        let home = rootfs
            .and_then(|r| home_of(r, p.user().uid()))
            .unwrap_or_else(|| "/".into());
        env.push(format!("HOME={home}"));
    }
    let path_env = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
        .to_string();
    let arg0 = &args[0];
    let candidates = if arg0.contains('/') {
        vec![cstr(arg0.as_bytes())?]
    } else {
        path_env
            .split(':')
            .map(|d| if d.is_empty() { "." } else { d })
            .map(|d| cstr(format!("{}/{arg0}", d.trim_end_matches('/')).as_bytes()))
            .collect::<Result<_>>()?
    };
    let mut rlimits = Vec::new();
    let mut rlimit_descs = Vec::new();
    for r in p.rlimits().iter().flatten() {
        rlimits.push((
            rlimit_resource(r.typ()),
            libc::rlimit {
                rlim_cur: r.soft(),
                rlim_max: r.hard(),
            },
        ));
        let name = serde_json::to_value(r.typ())
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        rlimit_descs.push(format!(
            "setting rlimit {name} to soft {} hard {}",
            r.soft(),
            r.hard()
        ));
    }
    let caps = p
        .capabilities()
        .as_ref()
        .map(crate::caps::sets)
        .transpose()?;
    // Checked for every process, so that `exec` refuses a label too.
    check_selinux(p.selinux_label().as_deref(), Path::new("/sys"))?;
    Ok(ProcessPlan {
        cwd: cpath(p.cwd())?,
        argv: CStrArray::new(cstrings(&args)?),
        envp: CStrArray::new(cstrings(&env)?),
        candidates,
        rlimits,
        rlimit_descs,
        uid: p.user().uid(),
        gid: p.user().gid(),
        additional_gids: p.user().additional_gids().clone().unwrap_or_default(),
        caps,
        no_new_privs: p.no_new_privileges().unwrap_or(false),
        seccomp: None,
        seccomp_flags: 0,
        apparmor_exec: apparmor_plan(p, Path::new("/sys"))?,
        umask: p.user().umask(),
        oom_score_adj: p
            .oom_score_adj()
            .map(|v| cstr(v.to_string().as_bytes()))
            .transpose()?,
        terminal: p.terminal().unwrap_or(false),
        console_size: p
            .console_size()
            .map(|b| (b.height() as u16, b.width() as u16)),
    })
}

/// `process.apparmorProfile` as the request the init writes before execve.
/// On a host without AppArmor the container is refused, as runc and crun
/// refuse it: a user must never believe a container is confined when it is
/// not. `sys` is where sysfs is mounted (a fake tree in tests).
fn apparmor_plan(p: &Process, sys: &Path) -> Result<Option<CString>> {
    let Some(profile) = p.apparmor_profile().as_deref().filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if !apparmor_enabled(sys) {
        return Err(RuntimeError::AppArmorUnavailable {
            profile: profile.to_string(),
            enabled: sys.join("module/apparmor/parameters/enabled"),
        });
    }
    Ok(Some(cstr(format!("exec {profile}").as_bytes())?))
}

/// berth does not apply SELinux labels. Where SELinux is not enabled a label
/// confines nothing under any runtime (runc and crun skip it there too);
/// where it is enabled, a labelled container is refused rather than run
/// unlabelled.
fn check_selinux(label: Option<&str>, sys: &Path) -> Result<()> {
    if let Some(l) = label.filter(|l| !l.is_empty()) {
        if sys.join("fs/selinux/enforce").exists() {
            return Err(RuntimeError::SelinuxLabel { label: l.into() });
        }
    }
    Ok(())
}

/// Whether the AppArmor LSM is enabled (as runc decides it: its securityfs
/// directory exists and its module parameter says `Y`).
fn apparmor_enabled(sys: &Path) -> bool {
    sys.join("kernel/security/apparmor").is_dir()
        && std::fs::read(sys.join("module/apparmor/parameters/enabled"))
            .is_ok_and(|b| b.starts_with(b"Y"))
}

/// Adds the compiled seccomp profile of the spec to a process plan.
pub fn add_seccomp(plan: &mut ProcessPlan, spec: &Spec) -> Result<()> {
    if let Some(profile) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        let c = crate::seccomp::compile_cached(profile)?;
        plan.seccomp = Some(c.program);
        plan.seccomp_flags = c.flags;
    }
    Ok(())
}

pub(crate) fn hook_plans(hooks: &[Hook]) -> Result<Vec<HookPlan>> {
    hooks
        .iter()
        .map(|h| {
            let mut args = h.args().clone().unwrap_or_default();
            if args.is_empty() {
                args.push(h.path().to_string_lossy().into_owned());
            }
            Ok(HookPlan {
                path: cpath(h.path())?,
                args: CStrArray::new(cstrings(&args)?),
                env: CStrArray::new(cstrings(&h.env().clone().unwrap_or_default())?),
                timeout_secs: h.timeout().unwrap_or(0),
            })
        })
        .collect()
}

/// Namespace plan: which to create at clone, which to join, and whether the
/// slow path (join first, then unshare and fork) is needed. Also returns the
/// pid namespace to join from the parent, if any.
pub fn ns_plan(spec: &Spec) -> Result<(NsPlan, Option<OwnedFd>)> {
    let namespaces = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    let mut plan = NsPlan::default();
    let mut new_flags = 0;
    let mut pid_join = None;
    let mut joins: Vec<(OwnedFd, libc::c_int, bool)> = Vec::new();
    for ns in &namespaces {
        let flag = ns_flag(ns.typ());
        match ns.path() {
            None => new_flags |= flag,
            Some(p) => {
                let fd: OwnedFd = std::fs::File::open(p)
                    .map_err(|e| RuntimeError::io("opening the namespace to join", p, e))?
                    .into();
                if flag == libc::CLONE_NEWPID {
                    pid_join = Some(fd);
                } else {
                    joins.push((fd, flag, flag == libc::CLONE_NEWUSER));
                }
            }
        }
    }
    // The user namespace is joined first: the others are owned by it.
    joins.sort_by_key(|j| !j.2);
    plan.new_userns = new_flags & libc::CLONE_NEWUSER != 0;
    plan.new_cgroupns = new_flags & libc::CLONE_NEWCGROUP != 0;
    new_flags &= !libc::CLONE_NEWCGROUP;
    let slow = joins.iter().any(|j| j.2) || (plan.new_userns && !joins.is_empty());
    if slow {
        plan.unshare_flags = new_flags;
        plan.fork_for_pidns = new_flags & libc::CLONE_NEWPID != 0;
    } else {
        plan.clone_flags = new_flags;
    }
    plan.join = joins.into_iter().map(|(fd, f, _)| (fd, f)).collect();
    Ok((plan, pid_join))
}

/// Everything else of the init plan (namespaces and mounts come from their builders).
#[derive(Debug)]
pub struct InitInputs<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub ns: NsPlan,
    pub cgroup_dirs: Vec<(String, PathBuf)>,
    pub cgroup_v2: bool,
    pub exec_fifo: Option<libc::c_int>,
}

/// A name to set (hostname, domainname) as a C string; empty means none.
fn nonempty_cstr(name: &Option<String>) -> Result<Option<CString>> {
    name.as_deref()
        .filter(|n| !n.is_empty())
        .map(|n| cstr(n.as_bytes()))
        .transpose()
}

pub fn init_plan(i: InitInputs<'_>) -> Result<InitPlan> {
    let spec = i.spec;
    let process = spec
        .process()
        .as_ref()
        .ok_or(RuntimeError::MissingProcess)?;
    let mut pplan = process_plan(process, Some(i.rootfs))?;
    add_seccomp(&mut pplan, spec)?;
    let namespaces = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    let new = |t: LinuxNamespaceType| {
        namespaces
            .iter()
            .any(|n| n.typ() == t && n.path().is_none())
    };
    let has_mount_ns = namespaces
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::Mount);
    let (pre, post, console_bind, root_change) = if has_mount_ns {
        let ctx = crate::rootfs::RootfsContext {
            rootfs: i.rootfs,
            new_netns: new(LinuxNamespaceType::Network),
            new_userns: new(LinuxNamespaceType::User),
            terminal: pplan.terminal,
            cgroup_dirs: i.cgroup_dirs,
            cgroup_v2: i.cgroup_v2,
        };
        let (pre, post, console_bind) = crate::rootfs::build(spec, &ctx)?;
        (pre, post, console_bind, RootChange::PivotRoot)
    } else {
        let pre = crate::rootfs::build_without_mount_ns(spec)?;
        (pre, Default::default(), false, RootChange::Chroot)
    };
    let hooks = spec.hooks().clone().unwrap_or_default();
    Ok(InitPlan {
        ns: i.ns,
        hostname: nonempty_cstr(spec.hostname())?,
        domainname: nonempty_cstr(spec.domainname())?,
        rootfs: cpath(i.rootfs)?,
        pre_pivot: pre,
        post_pivot: post,
        console_bind,
        create_hooks: hook_plans(hooks.create_container().as_deref().unwrap_or(&[]))?,
        start_hooks: hook_plans(hooks.start_container().as_deref().unwrap_or(&[]))?,
        process: pplan,
        exec_fifo: i.exec_fifo,
        state_buf: vec![0; 256 << 10],
        state_len: 0,
        root_change,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(profile: Option<&str>) -> Process {
        let mut v = serde_json::json!({"user": {"uid": 0, "gid": 0}, "args": ["true"], "cwd": "/"});
        if let Some(p) = profile {
            v["apparmorProfile"] = p.into();
        }
        serde_json::from_value(v).unwrap()
    }

    fn sys(enabled: Option<&str>) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        if let Some(e) = enabled {
            std::fs::create_dir_all(d.path().join("kernel/security/apparmor")).unwrap();
            let params = d.path().join("module/apparmor/parameters");
            std::fs::create_dir_all(&params).unwrap();
            std::fs::write(params.join("enabled"), e).unwrap();
        }
        d
    }

    #[test]
    fn an_apparmor_profile_is_refused_without_apparmor() {
        for d in [sys(None), sys(Some("N\n"))] {
            let e = apparmor_plan(&process(Some("berth-default")), d.path()).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains("\"berth-default\""), "{msg}");
            assert!(msg.contains("AppArmor is not enabled"), "{msg}");
        }
    }

    #[test]
    fn an_apparmor_profile_becomes_an_exec_request_where_enabled() {
        let d = sys(Some("Y\n"));
        let req = apparmor_plan(&process(Some("berth-default")), d.path()).unwrap();
        assert_eq!(req.unwrap().as_bytes(), b"exec berth-default");
        assert!(apparmor_plan(&process(None), d.path()).unwrap().is_none());
        assert!(apparmor_plan(&process(Some("")), d.path())
            .unwrap()
            .is_none());
    }
}
