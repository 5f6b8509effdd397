//! The init plan: everything the container's init process does between
//! `clone` and `execve`, computed by the parent beforehand. The child only
//! walks these vectors and makes syscalls, so it never allocates, formats or
//! takes a lock (async-signal-safe by construction). Each step carries, in a
//! parallel vector kept for the parent, a description used in error messages.

use std::ffi::CString;
use std::os::fd::OwnedFd;

use libc::{c_char, c_ulong};

/// One filesystem action of the init process.
#[derive(Debug)]
pub enum Step {
    Mount {
        src: Option<CString>,
        dst: CString,
        fstype: Option<CString>,
        flags: c_ulong,
        data: Option<CString>,
    },
    /// Re-mount a bind mount with `flags`, keeping the flags the kernel locks
    /// (nodev, nosuid, noexec, ro, atime) as they are on the mount.
    RemountBind {
        dst: CString,
        flags: c_ulong,
    },
    /// Change propagation of a mount point.
    Propagation {
        dst: CString,
        flags: c_ulong,
    },
    /// Create a directory; an existing one is fine.
    Mkdir {
        path: CString,
        mode: u32,
    },
    /// Create an empty file (bind-mount target); an existing one is fine.
    Touch {
        path: CString,
    },
    Mknod {
        path: CString,
        mode: u32,
        dev: u64,
        uid: u32,
        gid: u32,
    },
    Symlink {
        target: CString,
        link: CString,
    },
    /// maskedPaths: /dev/null over a file, an empty read-only tmpfs over a
    /// directory; a path that does not exist is skipped.
    Mask {
        path: CString,
    },
    /// readonlyPaths: bind the path onto itself read-only; a missing path is skipped.
    ReadOnly {
        path: CString,
    },
    /// Write a value to a file (sysctl under /proc/sys).
    Write {
        path: CString,
        value: CString,
    },
}

/// A list of steps and the words that describe each for error messages.
#[derive(Debug, Default)]
pub struct Steps {
    pub steps: Vec<Step>,
    pub descs: Vec<String>,
}

impl Steps {
    pub fn push(&mut self, step: Step, desc: impl Into<String>) {
        self.steps.push(step);
        self.descs.push(desc.into());
    }
    pub fn describe(&self, i: u32) -> &str {
        self.descs
            .get(i as usize)
            .map(String::as_str)
            .unwrap_or("?")
    }
}

/// A NUL-terminated array of C strings for execve, with the storage it points into.
#[derive(Debug, Default)]
pub struct CStrArray {
    pub items: Vec<CString>,
    ptrs: Vec<*const c_char>,
}

impl CStrArray {
    pub fn new(items: Vec<CString>) -> Self {
        let mut ptrs: Vec<*const c_char> = items.iter().map(|s| s.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        CStrArray { items, ptrs }
    }
    pub fn as_ptr(&self) -> *const *const c_char {
        self.ptrs.as_ptr()
    }
}

/// Capability sets as bit masks (bit n = capability n).
#[derive(Debug, Default, Clone, Copy)]
pub struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
    pub last_cap: u32,
}

/// A hook run from inside the container (createContainer, startContainer).
#[derive(Debug)]
pub struct HookPlan {
    pub path: CString,
    pub args: CStrArray,
    pub env: CStrArray,
    pub timeout_secs: i64,
}

/// The process to execute: the container's init or an `exec`.
#[derive(Debug, Default)]
pub struct ProcessPlan {
    pub cwd: CString,
    pub argv: CStrArray,
    pub envp: CStrArray,
    /// Where to look for argv[0]: the path itself, or each $PATH entry joined with it.
    pub candidates: Vec<CString>,
    pub rlimits: Vec<(libc::__rlimit_resource_t, libc::rlimit)>,
    pub rlimit_descs: Vec<String>,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<libc::gid_t>,
    pub caps: Option<CapSets>,
    pub no_new_privs: bool,
    /// A compiled classic-BPF seccomp program (array of `sock_filter`).
    pub seccomp: Option<Vec<libc::sock_filter>>,
    pub seccomp_flags: libc::c_ulong,
    /// `exec PROFILE`, written to the process's AppArmor exec attribute so
    /// the profile applies from execve on (only where AppArmor is enabled).
    pub apparmor_exec: Option<CString>,
    pub umask: Option<u32>,
    /// The value for /proc/self/oom_score_adj, as text.
    pub oom_score_adj: Option<CString>,
    pub terminal: bool,
    pub console_size: Option<(u16, u16)>,
}

/// Namespace work for the child.
#[derive(Debug, Default)]
pub struct NsPlan {
    /// CLONE_NEW* flags passed to clone (fast path).
    pub clone_flags: libc::c_int,
    /// Namespaces to join with setns, in order, after clone.
    pub join: Vec<(OwnedFd, libc::c_int)>,
    /// Wait for the parent to write uid/gid maps, then become root in the new user ns.
    pub new_userns: bool,
    /// Unshare the cgroup namespace once the parent has placed us in the cgroup.
    pub new_cgroupns: bool,
    /// Slow path: namespaces created with unshare after the joins, then a fork
    /// so that the init is pid 1 of a new pid namespace.
    pub unshare_flags: libc::c_int,
    pub fork_for_pidns: bool,
}

/// Everything the container's init does, computed before clone.
#[derive(Debug, Default)]
pub struct InitPlan {
    pub ns: NsPlan,
    pub hostname: Option<CString>,
    pub domainname: Option<CString>,
    pub rootfs: CString,
    /// Mounts and files made before pivot_root (host paths under the rootfs).
    pub pre_pivot: Steps,
    /// sysctls, masked and read-only paths, root read-only (container paths).
    pub post_pivot: Steps,
    /// Bind the pty onto /dev/console when there is a terminal and a /dev tmpfs.
    pub console_bind: bool,
    pub create_hooks: Vec<HookPlan>,
    pub start_hooks: Vec<HookPlan>,
    pub process: ProcessPlan,
    /// The exec fifo, opened read-write by the parent before clone and
    /// inherited: opening it in the child would need the host's root, which a
    /// container whose root maps to another host uid is not (and once the
    /// process's user is set, /proc/self/fd is closed to it too). `None` when
    /// the parent sends `Start` itself (`run`).
    pub exec_fifo: Option<libc::c_int>,
    /// Buffer (allocated before clone) for the state JSON that hooks read on stdin.
    pub state_buf: Vec<u8>,
    pub state_len: usize,
    /// How the init makes `rootfs` its root.
    pub root_change: RootChange,
}

/// How the init process makes the rootfs its root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RootChange {
    /// pivot_root in the container's own mount namespace, then detach the
    /// old root (the default).
    #[default]
    PivotRoot,
    /// chroot, for a config without a mount namespace: the container shares
    /// the host's mount table, so pivot_root would change the host's root.
    /// No mount is made at all (the config may not ask for any).
    Chroot,
}
