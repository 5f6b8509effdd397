//! Configurations other engines and OCI tools generate, run as runc and crun
//! run them: an old seccomp profile, the state prestart hooks read, device
//! modes, no mount namespace, a user namespace whose root is not the host's,
//! and an AppArmor profile on a host without AppArmor.

use berth_tests::{cmd, require_path, Bundle, Container, Runtime};
use serde_json::json;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// The syscalls a 2017-era profile allowed (docker's default of then, by
/// name): nothing newer than copy_file_range, so no faccessat2, statx,
/// clone3, close_range or openat2.
const CLASSIC_SYSCALLS: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "arch_prctl",
    "bind",
    "brk",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chroot",
    "clock_getres",
    "clock_gettime",
    "clock_nanosleep",
    "clone",
    "close",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_pwait",
    "epoll_wait",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "fadvise64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchown",
    "fchownat",
    "fcntl",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstatfs",
    "fsync",
    "ftruncate",
    "futex",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "geteuid",
    "getgid",
    "getgroups",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresuid",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "gettid",
    "gettimeofday",
    "getuid",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "kill",
    "lchown",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "madvise",
    "memfd_create",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedsend",
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
    "open",
    "openat",
    "pause",
    "pipe",
    "pipe2",
    "poll",
    "ppoll",
    "prctl",
    "pread64",
    "preadv",
    "prlimit64",
    "pselect6",
    "pwrite64",
    "pwritev",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recvfrom",
    "recvmmsg",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
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
    "sendfile",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsuid",
    "setgid",
    "setgroups",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setresgid",
    "setresuid",
    "setreuid",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_tid_address",
    "setuid",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "socket",
    "socketpair",
    "splice",
    "stat",
    "statfs",
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
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_settime",
    "timer_getoverrun",
    "timer_gettime",
    "timer_settime",
    "times",
    "tkill",
    "truncate",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "write",
    "writev",
];

fn classic_profile() -> serde_json::Value {
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{ "names": CLASSIC_SYSCALLS, "action": "SCMP_ACT_ALLOW" }]
    })
}

/// glibc 2.36 looks programs up with faccessat2; under a profile that does
/// not name it, the runtime's own lookup and every program in the container
/// must still work (newer syscalls answer ENOSYS, so libc falls back). With
/// and without no_new_privs, which decides whether the filter goes on before
/// or after the runtime's lookup.
#[test]
fn a_profile_without_faccessat2_runs_programs() {
    require_path("/proc/sys/kernel/seccomp/actions_avail", "seccomp filters");
    let rt = Runtime::new();
    for nnp in [false, true] {
        let mut b = Bundle::new();
        b.seccomp(classic_profile())
            .no_new_privileges(nnp)
            .sh("grep Seccomp: /proc/self/status; test -x /bin/sh && ls / >/dev/null && echo ran");
        let c = Container::new(&rt, b);
        let out = c.run();
        out.assert_ok();
        let lines = out.lines();
        assert_eq!(
            lines.first().copied(),
            Some("Seccomp:\t2"),
            "nnp {nnp}: {out}"
        );
        assert_eq!(lines.last().copied(), Some("ran"), "nnp {nnp}: {out}");
        c.assert_no_leaks();
    }
}

/// Tools that read the state on a prestart hook's stdin check for `created`
/// (the spec's and crun's status there).
#[test]
fn prestart_hooks_receive_the_created_state() {
    let rt = Runtime::new();
    let out_dir = tempfile::tempdir().expect("temp dir");
    let file = out_dir.path().join("prestart.json");
    let mut b = Bundle::new();
    b.hook(
        "prestart",
        "/bin/sh",
        &["sh", "-c", &format!("cat > {}", file.display())],
    )
    .sh("true");
    let c = Container::new(&rt, b);
    c.create(&[]).assert_ok();
    let st: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&file).expect("prestart did not run")).unwrap();
    assert_eq!(st["id"], c.id(), "{st}");
    if rt.is_berth() {
        // Debian's runc 1.1.5 hands prestart `creating`.
        assert_eq!(st["status"], "created", "{st}");
    }
    assert!(st["pid"].as_u64().unwrap_or(0) > 0, "{st}");
    c.start().assert_ok();
    c.wait_status("stopped");
    c.delete().assert_ok();
    c.assert_no_leaks();
}

/// `linux.devices` modes are set as given, whatever the runtime's umask.
#[test]
fn device_nodes_keep_their_mode() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set(
        "/linux/devices",
        json!([
            { "path": "/dev/berth-null", "type": "c", "major": 1, "minor": 3,
              "fileMode": 0o660, "uid": 0, "gid": 5 },
            { "path": "/dev/berth-zero", "type": "c", "major": 1, "minor": 5,
              "fileMode": 0o666, "uid": 0, "gid": 0 }
        ]),
    )
    .sh("stat -c '%a %g %t:%T' /dev/berth-null /dev/berth-zero");
    let c = Container::new(&rt, b);
    let out = c.run();
    out.assert_ok();
    assert_eq!(out.lines(), ["660 5 1:3", "666 0 1:5"], "{out}");
    c.assert_no_leaks();
}

fn mount_ns_inode(pid: &str) -> u64 {
    fs::metadata(format!("/proc/{pid}/ns/mnt"))
        .expect("mount namespace")
        .ino()
}

/// Mount points of this process's mount namespace that name `path`.
fn mounts_under(path: &Path) -> Vec<String> {
    let p = path.to_string_lossy().into_owned();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&p))
        .map(str::to_string)
        .collect()
}

/// Without a mount namespace the container shares the host's mount table:
/// it is chrooted into its rootfs, no mount is made, and the host's root and
/// mounts are as they were.
#[test]
fn no_mount_namespace_chroots_and_leaves_the_host_alone() {
    let rt = Runtime::new();
    let root_before = fs::metadata("/").unwrap();
    let root_line = |s: &str| {
        s.lines()
            .find(|l| l.split(' ').nth(4) == Some("/"))
            .map(str::to_string)
    };
    let host_root_before = root_line(&fs::read_to_string("/proc/self/mountinfo").unwrap());
    let mut b = Bundle::new();
    b.remove_namespace("mount")
        .set("/mounts", json!([]))
        .set("/linux/maskedPaths", json!([]))
        .set("/linux/readonlyPaths", json!([]))
        .sh("echo inside > /chrooted; ls /");
    let c = Container::new(&rt, b);
    c.create(&[]).assert_ok();
    let pid = c.pid().to_string();
    assert_eq!(
        mount_ns_inode(&pid),
        mount_ns_inode("self"),
        "the container is not in the host's mount namespace"
    );
    let root = fs::read_link(format!("/proc/{pid}/root")).unwrap();
    assert_eq!(
        root,
        c.bundle().rootfs().canonicalize().unwrap(),
        "the container's root is not its rootfs"
    );
    c.start().assert_ok();
    c.wait_status("stopped");
    assert_eq!(
        fs::read_to_string(c.bundle().rootfs().join("chrooted")).unwrap(),
        "inside\n"
    );
    c.delete().assert_ok();
    let root_after = fs::metadata("/").unwrap();
    assert_eq!(
        (root_before.dev(), root_before.ino()),
        (root_after.dev(), root_after.ino()),
        "the host's root changed"
    );
    assert_eq!(
        host_root_before,
        root_line(&fs::read_to_string("/proc/self/mountinfo").unwrap()),
        "the host's root mount changed"
    );
    assert!(
        mounts_under(c.bundle().path()).is_empty(),
        "mounts under the bundle: {:?}",
        mounts_under(c.bundle().path())
    );
    c.assert_no_leaks();
}

/// A config without a mount namespace that still asks for mounts is refused
/// by berth with a message naming them (it would have to mount them into the
/// host's mount table), and nothing is left behind.
#[test]
fn no_mount_namespace_with_mounts_is_refused_by_name() {
    let rt = Runtime::new();
    if !rt.is_berth() {
        return; // runc makes such mounts in the host's mount namespace
    }
    let mut b = Bundle::new();
    b.remove_namespace("mount")
        .set("/linux/maskedPaths", json!([]))
        .set("/linux/readonlyPaths", json!([]))
        .sh("true");
    let c = Container::new(&rt, b);
    let out = c.create(&[]);
    out.assert_failed();
    rt.expect_message(
        &out,
        &["no mount namespace", "mounts (/proc, /dev", "/sys)"],
    );
    assert!(mounts_under(c.bundle().path()).is_empty());
    c.assert_no_leaks();
}

/// With a user namespace whose root is host uid 100000, `create` then
/// `start` works: the exec fifo is opened before the init enters the user
/// namespace.
#[test]
fn create_and_start_with_a_remapped_root() {
    require_path("/proc/self/ns/user", "user namespaces");
    let rt = Runtime::new();
    let mut b = Bundle::new();
    cmd::host(
        "chown",
        &["-hR", "100000:100000", &b.rootfs().to_string_lossy()],
    );
    let out_dir = tempfile::tempdir().expect("temp dir");
    fs::set_permissions(out_dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    // A new network namespace owned by the user namespace: sysfs mounts.
    b.user_namespace(100000, 65536)
        .bind(out_dir.path(), "/out", false)
        .sh("id -u > /out/uid; cat /proc/self/uid_map > /out/map");
    let c = Container::new(&rt, b);
    c.create(&[]).assert_ok();
    let out = c.start();
    out.assert_ok();
    c.wait_status("stopped");
    assert_eq!(
        fs::read_to_string(out_dir.path().join("uid")).unwrap(),
        "0\n"
    );
    let map = fs::read_to_string(out_dir.path().join("map")).unwrap();
    assert_eq!(
        map.split_whitespace().collect::<Vec<_>>(),
        ["0", "100000", "65536"]
    );
    c.delete().assert_ok();
    c.assert_no_leaks();
}

/// An AppArmor profile on a host without AppArmor is refused, naming the
/// profile and the missing LSM: a user must never believe a container is
/// confined when it is not.
#[test]
fn an_apparmor_profile_without_apparmor_is_refused() {
    let enabled = fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .map(|s| s.starts_with('Y'))
        .unwrap_or(false);
    assert!(
        !enabled,
        "this test needs a host without AppArmor (as CI's); AppArmor is enabled here"
    );
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set("/process/apparmorProfile", json!("berth-test-profile"))
        .sh("true");
    let c = Container::new(&rt, b);
    let out = c.create(&[]);
    out.assert_failed();
    rt.expect_message(&out, &["berth-test-profile", "AppArmor is not enabled"]);
    c.assert_no_leaks();
}
