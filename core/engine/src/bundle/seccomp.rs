//! Seccomp for containers, as docker does it: a default profile for every
//! container (an allow-list: what is not listed fails with `EPERM`; calls
//! that need a capability are allowed when the container has it; `clone`
//! with namespace flags, `unshare` and `setns` only with `CAP_SYS_ADMIN`),
//! `--security-opt seccomp=unconfined` and `--privileged` without a filter,
//! and `--security-opt seccomp=<profile JSON>` in docker's format (the
//! client reads the file, as docker's does). A docker profile is resolved
//! for the container — its `includes`/`excludes` (capabilities,
//! architectures, minimum kernel) and `archMap` — into the OCI form the
//! runtime compiles.
//!
//! The default profile is berth's own list, written to have the effect of
//! docker's default: the same calls allowed, refused and capability-gated.

use std::collections::BTreeSet;

use oci_spec::runtime::LinuxSeccomp;
use serde_json::{json, Value};

use super::bad;
use crate::containers::config::HostConfig;
use crate::error::Result;

/// What every container may call.
const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
];

/// Calls allowed with a capability: (capability, calls).
const WITH_CAPABILITY: &[(&str, &[&str])] = &[
    (
        "CAP_SYS_ADMIN",
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "name_to_handle_at",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    (
        "CAP_SYS_MODULE",
        &["delete_module", "init_module", "finit_module"],
    ),
    ("CAP_SYS_PACCT", &["acct"]),
    (
        "CAP_SYS_PTRACE",
        &["kcmp", "pidfd_getfd", "process_madvise", "userfaultfd"],
    ),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    (
        "CAP_SYS_TIME",
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
    ),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    (
        "CAP_SYS_NICE",
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
];

/// The namespace flags of `clone` (CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC,
/// NEWUSER, NEWPID, NEWNET): without `CAP_SYS_ADMIN`, `clone` is allowed
/// only with none of them.
const CLONE_NAMESPACE_FLAGS: u64 = 0x0002_0000 | 0x0200_0000 | 0x7C00_0000;

/// docker's default profile, in docker's format (what `resolve` takes).
pub fn default_profile() -> Value {
    let mut rules = vec![
        json!({"names": ALLOWED, "action": "SCMP_ACT_ALLOW"}),
        // Sockets of every family but AF_VSOCK (40).
        json!({"names": ["socket"], "action": "SCMP_ACT_ALLOW",
               "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]}),
        // Tracing other processes the kernel lets through since 4.8.
        json!({"names": ["process_vm_readv", "process_vm_writev", "ptrace"],
               "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}}),
        // personality: Linux and the 32-bit variants, and the query.
        json!({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
               "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]}),
        json!({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
               "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}),
        json!({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
               "args": [{"index": 0, "value": 0x20000, "op": "SCMP_CMP_EQ"}]}),
        json!({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
               "args": [{"index": 0, "value": 0x20008, "op": "SCMP_CMP_EQ"}]}),
        json!({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
               "args": [{"index": 0, "value": 0xffff_ffffu64, "op": "SCMP_CMP_EQ"}]}),
        // x86's own calls.
        json!({"names": ["arch_prctl", "modify_ldt"], "action": "SCMP_ACT_ALLOW",
               "includes": {"arches": ["amd64", "x32", "x86"]}}),
        // arm's own calls.
        json!({"names": ["arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2",
                         "breakpoint", "cacheflush", "set_tls"],
               "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm", "arm64"]}}),
        // clone without namespace flags; clone3 (whose flags a filter
        // cannot see) answers ENOSYS, so libc falls back to clone.
        json!({"names": ["clone"], "action": "SCMP_ACT_ALLOW",
               "args": [{"index": 0, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0,
                         "op": "SCMP_CMP_MASKED_EQ"}],
               "excludes": {"caps": ["CAP_SYS_ADMIN"]}}),
        json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS,
               "excludes": {"caps": ["CAP_SYS_ADMIN"]}}),
    ];
    for (cap, names) in WITH_CAPABILITY {
        rules.push(json!({"names": names, "action": "SCMP_ACT_ALLOW",
                          "includes": {"caps": [cap]}}));
    }
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": libc::EPERM,
        "archMap": [
            {"architecture": "SCMP_ARCH_X86_64",
             "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
        ],
        "syscalls": rules,
    })
}

/// The filter a container gets: `None` for `unconfined` and `--privileged`,
/// its own profile for `seccomp=<JSON>`, else the default; resolved for its
/// capabilities (`CAP_…` names).
pub fn for_container(
    h: &HostConfig,
    caps: &BTreeSet<String>,
    image: &str,
) -> Result<Option<LinuxSeccomp>> {
    let mut chosen = None;
    for o in &h.security_opt {
        let Some(v) = o
            .strip_prefix("seccomp=")
            .or_else(|| o.strip_prefix("seccomp:"))
        else {
            continue;
        };
        chosen = Some(v);
    }
    if h.privileged || chosen == Some("unconfined") {
        return Ok(None);
    }
    if chosen.is_none() {
        return Ok(Some(default_for(caps)));
    }
    let profile = match chosen {
        None => default_profile(),
        Some(text) => serde_json::from_str(text).map_err(|e| {
            bad(
                image,
                format!("the seccomp profile given with --security-opt is not JSON: {e}"),
            )
        })?,
    };
    resolve(&profile, caps, native_arch(), &kernel_release())
        .map(Some)
        .map_err(|e| bad(image, format!("the seccomp profile: {e}")))
}

/// The default profile resolved for `caps` on this machine, kept per
/// capability set: every container of an engine asks for it, at create and
/// at start, and most have the same capabilities.
fn default_for(caps: &BTreeSet<String>) -> LinuxSeccomp {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static RESOLVED: OnceLock<Mutex<HashMap<BTreeSet<String>, LinuxSeccomp>>> = OnceLock::new();
    let cache = RESOLVED.get_or_init(Default::default);
    if let Some(p) = cache.lock().ok().and_then(|c| c.get(caps).cloned()) {
        return p;
    }
    let p = resolve(&default_profile(), caps, native_arch(), &kernel_release())
        .expect("berth's default profile resolves");
    if let Ok(mut c) = cache.lock() {
        c.insert(caps.clone(), p.clone());
    }
    p
}

/// docker's name of this machine's architecture, as profiles' `arches` use it.
fn native_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "x86",
        "arm" => "arm",
        "s390x" => "s390x",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// libseccomp's name of an architecture of docker's.
fn scmp_arch(arch: &str) -> &'static str {
    match arch {
        "amd64" => "SCMP_ARCH_X86_64",
        "arm64" => "SCMP_ARCH_AARCH64",
        "x86" => "SCMP_ARCH_X86",
        "arm" => "SCMP_ARCH_ARM",
        "s390x" => "SCMP_ARCH_S390X",
        "ppc64le" => "SCMP_ARCH_PPC64LE",
        _ => "",
    }
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// `major.minor` of a kernel release (`6.18.0-1-amd64` → (6, 18)).
fn version(release: &str) -> (u32, u32) {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// A docker-format profile for a container with `caps` on `arch` under
/// kernel `release`, in the OCI form: the rules whose `includes` hold and
/// whose `excludes` do not, the architectures from `archMap` (the native
/// one and its sub-architectures) or `architectures`.
pub fn resolve(
    profile: &Value,
    caps: &BTreeSet<String>,
    arch: &str,
    release: &str,
) -> std::result::Result<LinuxSeccomp, String> {
    let obj = profile
        .as_object()
        .ok_or_else(|| "a profile is a JSON object".to_string())?;
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let native = scmp_arch(arch);
    let mut arches: Vec<String> = Vec::new();
    for m in obj
        .get("archMap")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if m["architecture"].as_str() == Some(native) {
            arches.push(native.to_owned());
            arches.extend(strings(&m["subArchitectures"]));
        }
    }
    if arches.is_empty() {
        arches = strings(obj.get("architectures").unwrap_or(&Value::Null));
    }
    let kernel = version(release);
    let holds = |cond: &Value, include: bool| -> bool {
        let rule_caps = strings(&cond["caps"]);
        let rule_arches = strings(&cond["arches"]);
        if include {
            let min = cond["minKernel"].as_str().map(version);
            rule_caps.iter().all(|c| caps.contains(c))
                && (rule_arches.is_empty() || rule_arches.iter().any(|a| a == arch))
                && min.is_none_or(|m| kernel >= m)
        } else {
            rule_caps.iter().any(|c| caps.contains(c)) || rule_arches.iter().any(|a| a == arch)
        }
    };
    let mut syscalls = Vec::new();
    for (i, rule) in obj
        .get("syscalls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if !holds(&rule["includes"], true) || holds(&rule["excludes"], false) {
            continue;
        }
        let mut names = strings(&rule["names"]);
        if let Some(n) = rule["name"].as_str() {
            names.push(n.to_owned());
        }
        if names.is_empty() {
            return Err(format!("syscalls[{i}] names no syscall"));
        }
        let mut out = json!({"names": names, "action": rule["action"]});
        for k in ["errnoRet", "args"] {
            if !rule[k].is_null() {
                out[k] = rule[k].clone();
            }
        }
        syscalls.push(out);
    }
    let mut oci = json!({
        "defaultAction": obj.get("defaultAction").cloned().unwrap_or(Value::Null),
        "architectures": arches,
        "syscalls": syscalls,
    });
    for k in ["defaultErrnoRet", "flags"] {
        if let Some(v) = obj.get(k).filter(|v| !v.is_null()) {
            oci[k] = v.clone();
        }
    }
    serde_json::from_value(oci).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_allowed(p: &LinuxSeccomp) -> BTreeSet<String> {
        p.syscalls()
            .iter()
            .flatten()
            .filter(|s| {
                s.action() == oci_spec::runtime::LinuxSeccompAction::ScmpActAllow
                    && s.args().as_ref().is_none_or(|a| a.is_empty())
            })
            .flat_map(|s| s.names().clone())
            .collect()
    }

    #[test]
    fn capabilities_open_their_calls_and_close_the_clone_filter() {
        let none = BTreeSet::new();
        let p = resolve(&default_profile(), &none, "amd64", "6.1.0").unwrap();
        let allowed = names_allowed(&p);
        for n in [
            "read", "execve", "clone3", "mount", "unshare", "keyctl", "bpf",
        ] {
            assert_eq!(allowed.contains(n), ["read", "execve"].contains(&n), "{n}");
        }
        assert!(allowed.contains("ptrace"), "allowed from kernel 4.8 on");
        assert!(allowed.contains("arch_prctl"));
        assert!(!allowed.contains("set_tls"), "arm only");
        let arches: Vec<String> = p
            .architectures()
            .iter()
            .flatten()
            .map(|a| {
                serde_json::to_value(a)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(
            arches,
            ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
        );
        let clone_rules = p
            .syscalls()
            .iter()
            .flatten()
            .filter(|s| s.names().iter().any(|n| n == "clone" || n == "clone3"))
            .count();
        assert_eq!(clone_rules, 2, "the masked clone and clone3's ENOSYS");
        let admin: BTreeSet<String> = ["CAP_SYS_ADMIN".to_string()].into();
        let p = resolve(&default_profile(), &admin, "amd64", "6.1.0").unwrap();
        let allowed = names_allowed(&p);
        for n in ["mount", "unshare", "setns", "clone", "clone3"] {
            assert!(allowed.contains(n), "{n}");
        }
        assert!(!allowed.contains("keyctl"), "no capability opens keyctl");
        // An old kernel: no ptrace.
        let p = resolve(&default_profile(), &none, "amd64", "4.4.0").unwrap();
        assert!(!names_allowed(&p).contains("ptrace"));
    }

    #[test]
    fn the_kept_default_is_the_resolved_one_per_capability_set() {
        let none = BTreeSet::new();
        let admin: BTreeSet<String> = ["CAP_SYS_ADMIN".to_string()].into();
        for caps in [&none, &admin, &none] {
            let fresh =
                resolve(&default_profile(), caps, native_arch(), &kernel_release()).unwrap();
            assert_eq!(default_for(caps), fresh);
        }
        assert_ne!(default_for(&none), default_for(&admin));
    }

    #[test]
    fn a_docker_profile_resolves_or_says_what_is_wrong() {
        let caps = BTreeSet::new();
        let p = json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                       "syscalls": [{"name": "mkdir", "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]});
        let r = resolve(&p, &caps, "amd64", "6.1.0").unwrap();
        assert_eq!(r.syscalls().as_ref().unwrap()[0].errno_ret(), Some(13));
        let bad = json!({"defaultAction": "SCMP_ACT_MAYBE", "syscalls": []});
        let e = resolve(&bad, &caps, "amd64", "6.1.0").unwrap_err();
        assert!(e.contains("SCMP_ACT_MAYBE"), "{e}");
        let nameless = json!({"defaultAction": "SCMP_ACT_ALLOW",
                              "syscalls": [{"action": "SCMP_ACT_ERRNO"}]});
        assert!(resolve(&nameless, &caps, "amd64", "6.1.0")
            .unwrap_err()
            .contains("syscalls[0]"));
    }
}
