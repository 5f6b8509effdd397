//! The container side of the sync protocol: what runs in the cloned child
//! until execve. Everything here is async-signal-safe: raw syscalls on data
//! the parent prepared (see `plan`), no allocation, no formatting, no locks.

use std::convert::Infallible;
use std::ffi::CStr;

use super::plan::{CapSets, HookPlan, InitPlan, ProcessPlan, RootChange, Step, Steps};
use super::sync::{errno, write_all, Channel, Msg, Stage};

/// A failure in the child: where, which step, and the errno (or 1000 + exit
/// status for a hook that failed, 2000 for a hook that timed out).
#[derive(Debug, Clone, Copy)]
pub struct Fail {
    pub stage: Stage,
    pub index: u32,
    pub errno: i32,
}

pub const HOOK_STATUS_BASE: i32 = 1000;
/// The `Stage::Exec` index of marking fds 3+ close-on-exec.
pub const CLOEXEC_STEP: usize = u32::MAX as usize;
pub const HOOK_TIMEOUT: i32 = 2000;

type R<T = ()> = Result<T, Fail>;

fn fail(stage: Stage, index: usize) -> Fail {
    Fail {
        stage,
        index: index as u32,
        errno: errno(),
    }
}

fn check(rc: libc::c_long, stage: Stage, index: usize) -> R<libc::c_long> {
    if rc < 0 {
        Err(fail(stage, index))
    } else {
        Ok(rc)
    }
}

fn ptr(c: &Option<std::ffi::CString>) -> *const libc::c_char {
    c.as_ref().map_or(std::ptr::null(), |s| s.as_ptr())
}

/// Entry point of the container's init after clone. Never returns.
pub fn run_init(plan: &mut InitPlan, chan: &Channel) -> ! {
    let Err(f) = init(plan, chan);
    report(chan, f);
}

/// Entry point of an `exec`'d process after fork. Never returns.
pub fn run_exec(
    plan: &ProcessPlan,
    joins: &[(std::os::fd::OwnedFd, libc::c_int)],
    chan: &Channel,
) -> ! {
    let r = (|| -> R<Infallible> {
        reset_signals();
        expect(chan, Msg::Go)?;
        for (i, (fd, typ)) in joins.iter().enumerate() {
            use std::os::fd::AsRawFd;
            check(
                // SAFETY: setns on an fd we own; affects only this process.
                unsafe { libc::setns(fd.as_raw_fd(), *typ) } as _,
                Stage::Namespaces,
                i,
            )?;
        }
        let idx = prepare_process(plan, chan, false)?;
        chan.send(Msg::Ready).map_err(proto)?;
        exec_process(plan, idx)
    })();
    let Err(f) = r;
    report(chan, f);
}

fn report(chan: &Channel, f: Fail) -> ! {
    let _ = chan.send(Msg::Fail {
        stage: f.stage,
        index: f.index,
        errno: f.errno,
    });
    // SAFETY: _exit is async-signal-safe and ends this process only.
    unsafe { libc::_exit(1) }
}

fn proto(e: i32) -> Fail {
    Fail {
        stage: Stage::Protocol,
        index: 0,
        errno: e,
    }
}

fn expect(chan: &Channel, want: Msg) -> R {
    match chan.recv() {
        Ok(Some(m)) if m == want => Ok(()),
        Ok(None) => {
            // The parent is gone: nobody will start us.
            // SAFETY: ending this process is always sound.
            unsafe { libc::_exit(1) }
        }
        Ok(Some(_)) => Err(proto(libc::EPROTO)),
        Err(e) => Err(proto(e)),
    }
}

fn reset_signals() {
    // SAFETY: sigprocmask/signal are async-signal-safe; an empty set and
    // SIG_DFL are always valid arguments.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn init(plan: &mut InitPlan, chan: &Channel) -> R<Infallible> {
    reset_signals();
    join_namespaces(plan, chan)?;
    expect(chan, Msg::Go)?;
    new_namespaces(plan, chan)?;
    if let Some(h) = &plan.hostname {
        check(
            // SAFETY: h is a valid C string; its length is passed.
            unsafe { libc::sethostname(h.as_ptr(), h.as_bytes().len()) } as _,
            Stage::Hostname,
            0,
        )?;
    }
    if let Some(d) = &plan.domainname {
        check(
            // SAFETY: as above.
            unsafe { libc::setdomainname(d.as_ptr(), d.as_bytes().len()) } as _,
            Stage::Hostname,
            1,
        )?;
    }
    if let Some(v) = &plan.process.oom_score_adj {
        write_file(c"/proc/self/oom_score_adj", v).map_err(|e| Fail {
            stage: Stage::Rlimits,
            index: u32::MAX,
            errno: e,
        })?;
    }
    run_steps(&plan.pre_pivot, Stage::Mounts)?;

    chan.send(Msg::HooksNow).map_err(proto)?;
    match chan.recv() {
        Ok(Some(Msg::State(n))) if (n as usize) <= plan.state_buf.len() => {
            chan.recv_bytes(&mut plan.state_buf[..n as usize])
                .map_err(proto)?;
            plan.state_len = n as usize;
        }
        Ok(None) => {
            // SAFETY: parent gone; end quietly.
            unsafe { libc::_exit(1) }
        }
        Ok(_) => return Err(proto(libc::EPROTO)),
        Err(e) => return Err(proto(e)),
    }
    expect(chan, Msg::HooksDone)?;
    let state = &plan.state_buf[..plan.state_len];
    for (i, h) in plan.create_hooks.iter().enumerate() {
        run_hook(h, state).map_err(|e| Fail {
            stage: Stage::CreateHooks,
            index: i as u32,
            errno: e,
        })?;
    }
    match plan.root_change {
        RootChange::PivotRoot => pivot_root(&plan.rootfs)?,
        RootChange::Chroot => chroot(&plan.rootfs)?,
    }
    run_steps(&plan.post_pivot, Stage::PostPivotMounts)?;
    // SAFETY: setsid has no memory-safety preconditions.
    unsafe { libc::setsid() };
    // The exec fifo was opened read-write by the parent and inherited (see
    // InitPlan::exec_fifo); `start` writes a byte into it.
    let fifo = plan.exec_fifo;
    let idx = prepare_process_console(&plan.process, chan, true, plan.console_bind)?;
    chan.send(Msg::Ready).map_err(proto)?;

    // Wait for `start`.
    match fifo {
        Some(fd) => {
            let mut b = [0u8; 1];
            loop {
                // SAFETY: reading one byte into a valid buffer from our fd.
                let n = unsafe { libc::read(fd, b.as_mut_ptr().cast(), 1) };
                if n == 1 {
                    break;
                }
                if n < 0 && errno() == libc::EINTR {
                    continue;
                }
                return Err(fail(Stage::WaitStart, 1));
            }
            // SAFETY: fd is ours.
            unsafe { libc::close(fd) };
        }
        None => expect(chan, Msg::Start)?,
    }
    for (i, h) in plan.start_hooks.iter().enumerate() {
        run_hook(h, state).map_err(|e| Fail {
            stage: Stage::StartHooks,
            index: i as u32,
            errno: e,
        })?;
    }
    exec_process(&plan.process, idx)
}

/// Before `Go`: join namespaces by path; on the slow path, make the new user
/// namespace and ask the parent for its maps.
fn join_namespaces(plan: &InitPlan, chan: &Channel) -> R {
    use std::os::fd::AsRawFd;
    let ns = &plan.ns;
    for (i, (fd, typ)) in ns.join.iter().enumerate() {
        check(
            // SAFETY: setns on an fd we own; affects only this process.
            unsafe { libc::setns(fd.as_raw_fd(), *typ) } as _,
            Stage::Namespaces,
            i,
        )?;
    }
    if ns.unshare_flags != 0 && ns.new_userns {
        check(
            // SAFETY: unshare has no memory-safety preconditions.
            unsafe { libc::unshare(libc::CLONE_NEWUSER) } as _,
            Stage::Namespaces,
            100,
        )?;
        chan.send(Msg::NeedMaps).map_err(proto)?;
    }
    Ok(())
}

/// After `Go` (maps written, cgroup joined): become root of a new user
/// namespace, make the remaining namespaces, fork to be pid 1 of a new pid
/// namespace (slow path), and unshare the cgroup namespace last so its root
/// is the container's cgroup.
fn new_namespaces(plan: &InitPlan, chan: &Channel) -> R {
    let ns = &plan.ns;
    if ns.new_userns {
        check(
            // SAFETY: plain credential syscalls.
            unsafe { libc::setresgid(0, 0, 0) } as _,
            Stage::Namespaces,
            102,
        )?;
        check(
            // SAFETY: as above.
            unsafe { libc::setresuid(0, 0, 0) } as _,
            Stage::Namespaces,
            103,
        )?;
    }
    if ns.unshare_flags & !libc::CLONE_NEWUSER != 0 {
        check(
            // SAFETY: unshare has no memory-safety preconditions.
            unsafe { libc::unshare(ns.unshare_flags & !libc::CLONE_NEWUSER) } as _,
            Stage::Namespaces,
            100,
        )?;
    }
    if ns.fork_for_pidns {
        // CLONE_PARENT: the real init becomes the runtime's child, not ours,
        // so the runtime can wait for it after we exit.
        let flags = (libc::CLONE_PARENT | libc::SIGCHLD) as libc::c_ulong;
        // SAFETY: a fork-like clone in a single-threaded process; the child
        // continues on a copy of this stack and only makes syscalls.
        let pid = unsafe { libc::syscall(libc::SYS_clone, flags, 0, 0, 0, 0) };
        if pid < 0 {
            return Err(fail(Stage::Namespaces, 101));
        }
        if pid > 0 {
            let _ = chan.send(Msg::InitPid(pid as i32));
            // SAFETY: the intermediate process ends here; its child carries on.
            unsafe { libc::_exit(0) }
        }
    }
    if ns.new_cgroupns {
        check(
            // SAFETY: unshare has no memory-safety preconditions.
            unsafe { libc::unshare(libc::CLONE_NEWCGROUP) } as _,
            Stage::Namespaces,
            104,
        )?;
    }
    Ok(())
}

/// Without a mount namespace: chroot, touching no mount (see RootChange).
fn chroot(rootfs: &CStr) -> R {
    let s = Stage::PivotRoot;
    // SAFETY: valid C strings; these calls only change this process's root and cwd.
    unsafe {
        check(libc::chdir(rootfs.as_ptr()) as _, s, 10)?;
        check(libc::chroot(c".".as_ptr()) as _, s, 11)?;
        check(libc::chdir(c"/".as_ptr()) as _, s, 12)?;
    }
    Ok(())
}

fn pivot_root(rootfs: &CStr) -> R {
    let s = Stage::PivotRoot;
    // SAFETY: all pointers are valid C strings or null where the kernel allows null.
    unsafe {
        check(libc::chdir(rootfs.as_ptr()) as _, s, 0)?;
        check(
            libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()),
            s,
            1,
        )?;
        // Keep the unmount of the old root from propagating to the host.
        check(
            libc::mount(
                std::ptr::null(),
                c".".as_ptr(),
                std::ptr::null(),
                libc::MS_SLAVE | libc::MS_REC,
                std::ptr::null(),
            ) as _,
            s,
            2,
        )?;
        check(libc::umount2(c".".as_ptr(), libc::MNT_DETACH) as _, s, 3)?;
        check(libc::chdir(c"/".as_ptr()) as _, s, 4)?;
    }
    Ok(())
}

/// Flags the kernel locks on a mount (as statfs reports them), to keep on remount.
fn locked_flags(path: &CStr) -> libc::c_ulong {
    // SAFETY: st is plain data filled by the kernel.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: path is a valid C string, st a valid out-pointer.
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return 0;
    }
    let f = st.f_flag as libc::c_ulong;
    let mut out = 0;
    for (st_flag, ms) in [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if f & st_flag != 0 {
            out |= ms;
        }
    }
    out
}

fn remount_bind(dst: &CStr, flags: libc::c_ulong) -> libc::c_int {
    let locked = locked_flags(dst);
    let atime = libc::MS_NOATIME | libc::MS_RELATIME | libc::MS_NODIRATIME | libc::MS_STRICTATIME;
    let mut fl = libc::MS_REMOUNT
        | libc::MS_BIND
        | flags
        | (locked & (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC));
    if flags & atime == 0 {
        fl |= locked & atime;
    }
    // SAFETY: dst is a valid C string; null source/type/data are allowed for a remount.
    unsafe {
        libc::mount(
            std::ptr::null(),
            dst.as_ptr(),
            std::ptr::null(),
            fl,
            std::ptr::null(),
        )
    }
}

fn exists(path: &CStr) -> Option<libc::mode_t> {
    // SAFETY: st is plain data filled by the kernel.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: path is a valid C string, st a valid out-pointer.
    if unsafe { libc::stat(path.as_ptr(), &mut st) } == 0 {
        Some(st.st_mode)
    } else {
        None
    }
}

fn run_steps(steps: &Steps, stage: Stage) -> R {
    for (i, step) in steps.steps.iter().enumerate() {
        // SAFETY: every pointer is a valid C string owned by
        // the plan or null where the syscall allows it.
        let rc: libc::c_int = unsafe {
            match step {
                Step::Mount {
                    src,
                    dst,
                    fstype,
                    flags,
                    data,
                } => libc::mount(
                    ptr(src),
                    dst.as_ptr(),
                    ptr(fstype),
                    *flags,
                    ptr(data).cast(),
                ),
                Step::RemountBind { dst, flags } => remount_bind(dst, *flags),
                Step::Propagation { dst, flags } => libc::mount(
                    std::ptr::null(),
                    dst.as_ptr(),
                    std::ptr::null(),
                    *flags,
                    std::ptr::null(),
                ),
                Step::Mkdir { path, mode } => {
                    let rc = libc::mkdir(path.as_ptr(), *mode);
                    if rc < 0 && errno() == libc::EEXIST {
                        0
                    } else {
                        rc
                    }
                }
                Step::Touch { path } => {
                    let fd = libc::open(
                        path.as_ptr(),
                        libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                        0o644,
                    );
                    if fd >= 0 {
                        libc::close(fd);
                        0
                    } else if errno() == libc::EISDIR {
                        0
                    } else {
                        fd
                    }
                }
                Step::Mknod {
                    path,
                    mode,
                    dev,
                    uid,
                    gid,
                } => {
                    // mknod applies the umask; the mode is set again after
                    // the chown (which may clear set-id bits), as runc does.
                    let mut rc = libc::mknod(path.as_ptr(), *mode, *dev);
                    if rc == 0 {
                        rc = libc::chown(path.as_ptr(), *uid, *gid);
                    }
                    if rc == 0 {
                        rc = libc::chmod(path.as_ptr(), *mode & 0o7777);
                    }
                    rc
                }
                Step::Symlink { target, link } => {
                    let rc = libc::symlink(target.as_ptr(), link.as_ptr());
                    if rc < 0 && errno() == libc::EEXIST {
                        0
                    } else {
                        rc
                    }
                }
                Step::Mask { path } => match exists(path) {
                    None => 0,
                    Some(m) if m & libc::S_IFMT == libc::S_IFDIR => libc::mount(
                        c"tmpfs".as_ptr(),
                        path.as_ptr(),
                        c"tmpfs".as_ptr(),
                        libc::MS_RDONLY,
                        std::ptr::null(),
                    ),
                    Some(_) => libc::mount(
                        c"/dev/null".as_ptr(),
                        path.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND,
                        std::ptr::null(),
                    ),
                },
                Step::ReadOnly { path } => match exists(path) {
                    None => 0,
                    Some(_) => {
                        let rc = libc::mount(
                            path.as_ptr(),
                            path.as_ptr(),
                            std::ptr::null(),
                            libc::MS_BIND | libc::MS_REC,
                            std::ptr::null(),
                        );
                        if rc == 0 {
                            remount_bind(path, libc::MS_RDONLY | libc::MS_REC)
                        } else {
                            rc
                        }
                    }
                },
                Step::Write { path, value } => match write_file(path, value) {
                    Ok(()) => 0,
                    Err(e) => {
                        *libc::__errno_location() = e;
                        -1
                    }
                },
            }
        };
        if rc < 0 {
            return Err(fail(stage, i));
        }
    }
    Ok(())
}

fn write_file(path: &CStr, value: &CStr) -> Result<(), i32> {
    // SAFETY: path is a valid C string.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_WRONLY | libc::O_TRUNC | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(errno());
    }
    let r = write_all(fd, value.to_bytes());
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
    r
}

/// Runs one hook: fork, the state on stdin, wait with its timeout.
fn run_hook(h: &HookPlan, state: &[u8]) -> Result<(), i32> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(errno());
    }
    // SAFETY: fork-like clone in a single-threaded process.
    let pid = unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_ulong, 0, 0, 0, 0) }
        as libc::pid_t;
    if pid < 0 {
        return Err(errno());
    }
    if pid == 0 {
        // SAFETY: only async-signal-safe calls before execve / _exit.
        unsafe {
            libc::dup2(fds[0], 0);
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            libc::execve(h.path.as_ptr(), h.args.as_ptr(), h.env.as_ptr());
            libc::_exit(127);
        }
    }
    // SAFETY: closing our copy of the read end; SIGPIPE ignored so a hook that
    // does not read its stdin cannot kill us.
    unsafe {
        libc::close(fds[0]);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let _ = write_all(fds[1], state);
    // SAFETY: fds[1] is ours.
    unsafe { libc::close(fds[1]) };
    let start = now_ms();
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            break;
        }
        if r < 0 && errno() != libc::EINTR {
            return Err(errno());
        }
        if h.timeout_secs > 0 && now_ms() - start > h.timeout_secs * 1000 {
            // SAFETY: signalling and reaping our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return Err(HOOK_TIMEOUT);
        }
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 1_000_000,
        };
        // SAFETY: ts is valid; the remainder pointer may be null.
        unsafe { libc::nanosleep(&ts, std::ptr::null_mut()) };
    }
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else if libc::WIFEXITED(status) {
        Err(HOOK_STATUS_BASE + libc::WEXITSTATUS(status))
    } else {
        Err(HOOK_STATUS_BASE + 128 + libc::WTERMSIG(status))
    }
}

fn now_ms() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
}

/// Terminal, rlimits, umask, cwd, identity, capabilities, the binary lookup.
/// Returns the index of the candidate path to execute.
pub(crate) fn prepare_process(p: &ProcessPlan, chan: &Channel, _init: bool) -> R<usize> {
    prepare_process_console(p, chan, false, false)
}

fn prepare_process_console(
    p: &ProcessPlan,
    chan: &Channel,
    init: bool,
    console_bind: bool,
) -> R<usize> {
    cloexec_from_3()?;
    if p.terminal {
        terminal(p, chan, init && console_bind)?;
    }
    for (i, (res, lim)) in p.rlimits.iter().enumerate() {
        check(
            // SAFETY: lim is a valid rlimit.
            unsafe { libc::setrlimit(*res, lim) } as _,
            Stage::Rlimits,
            i,
        )?;
    }
    if let Some(m) = p.umask {
        // SAFETY: umask cannot fail.
        unsafe { libc::umask(m) };
    }
    if p.no_new_privs {
        check(
            // SAFETY: prctl with integer arguments.
            unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } as _,
            Stage::Identity,
            10,
        )?;
    }
    apparmor(p)?;
    if !p.no_new_privs {
        // Without no_new_privs the filter must go on while we still hold
        // CAP_SYS_ADMIN (as runc does); the profile must allow what follows.
        load_seccomp(p)?;
    }
    identity(p)?;
    // SAFETY: cwd is a valid C string.
    check(unsafe { libc::chdir(p.cwd.as_ptr()) } as _, Stage::Cwd, 0)?;
    let mut last = libc::ENOENT;
    for (i, c) in p.candidates.iter().enumerate() {
        match exists(c) {
            Some(m) if m & libc::S_IFMT == libc::S_IFREG => {
                // SAFETY: c is a valid C string.
                if unsafe {
                    libc::faccessat(libc::AT_FDCWD, c.as_ptr(), libc::X_OK, libc::AT_EACCESS)
                } == 0
                {
                    return Ok(i);
                }
                last = libc::EACCES;
            }
            Some(_) => last = libc::EACCES,
            None => {}
        }
    }
    Err(Fail {
        stage: Stage::ExecLookup,
        index: 0,
        errno: last,
    })
}

/// Nothing of ours leaks into the container: fds 3 and up close on exec.
/// Done before the seccomp filter goes on, which may refuse close_range
/// (a profile older than it answers ENOSYS); then fd by fd up to the limit.
fn cloexec_from_3() -> R {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets fd flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            4u32, /* CLOSE_RANGE_CLOEXEC */
        )
    };
    if rc == 0 {
        return Ok(());
    }
    if errno() != libc::ENOSYS && errno() != libc::EINVAL {
        return Err(fail(Stage::Exec, CLOEXEC_STEP));
    }
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: lim is a valid out-pointer.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    check(rc as _, Stage::Exec, CLOEXEC_STEP)?;
    for fd in 3..lim.rlim_cur.min(1 << 20) as libc::c_int {
        // SAFETY: F_SETFD on a number that may or may not be an open fd (EBADF then).
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

/// Asks AppArmor to confine the process from its execve on. Done as root,
/// before the identity switch: afterwards the process is not dumpable and
/// its /proc files are closed to it.
fn apparmor(p: &ProcessPlan) -> R {
    let Some(req) = &p.apparmor_exec else {
        return Ok(());
    };
    let s = Stage::AppArmor;
    // SAFETY: valid C strings and a buffer of the given length; the fd is ours.
    unsafe {
        let mut fd = libc::open(
            c"/proc/thread-self/attr/apparmor/exec".as_ptr(),
            libc::O_WRONLY | libc::O_CLOEXEC,
        );
        if fd < 0 && errno() == libc::ENOENT {
            fd = libc::open(
                c"/proc/self/attr/exec".as_ptr(),
                libc::O_WRONLY | libc::O_CLOEXEC,
            );
        }
        let fd = check(fd as _, s, 0)? as libc::c_int;
        let len = req.as_bytes().len();
        let n = libc::write(fd, req.as_ptr().cast(), len);
        let e = errno();
        libc::close(fd);
        if n != len as isize {
            return Err(Fail {
                stage: s,
                index: 1,
                errno: if n < 0 { e } else { libc::EIO },
            });
        }
    }
    Ok(())
}

fn terminal(p: &ProcessPlan, chan: &Channel, console_bind: bool) -> R {
    let s = Stage::Terminal;
    // SAFETY: ioctl/open/dup2 on fds we own with valid arguments.
    unsafe {
        let master = check(
            libc::open(
                c"/dev/ptmx".as_ptr(),
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            ) as _,
            s,
            0,
        )? as libc::c_int;
        let unlock: libc::c_int = 0;
        check(libc::ioctl(master, libc::TIOCSPTLCK, &unlock) as _, s, 1)?;
        let slave = check(
            libc::ioctl(master, libc::TIOCGPTPEER, libc::O_RDWR | libc::O_NOCTTY) as _,
            s,
            2,
        )? as libc::c_int;
        if let Some((rows, cols)) = p.console_size {
            let ws = libc::winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            libc::ioctl(slave, libc::TIOCSWINSZ, &ws);
        }
        libc::fchown(slave, p.uid, u32::MAX);
        if console_bind {
            let mut buf = [0u8; 32];
            let path = fd_path(&mut buf, slave);
            check(
                libc::mount(
                    path.as_ptr(),
                    c"/dev/console".as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                ) as _,
                s,
                3,
            )?;
        }
        libc::setsid();
        check(libc::ioctl(slave, libc::TIOCSCTTY, 0) as _, s, 4)?;
        for fd in 0..3 {
            check(libc::dup2(slave, fd) as _, s, 5)?;
        }
        if slave > 2 {
            libc::close(slave);
        }
        chan.send_fd(Msg::PtyMaster, master).map_err(|e| Fail {
            stage: s,
            index: 6,
            errno: e,
        })?;
        libc::close(master);
    }
    Ok(())
}

/// Writes "/proc/self/fd/N\0" into buf without allocating.
fn fd_path(buf: &mut [u8; 32], fd: libc::c_int) -> &CStr {
    let prefix = b"/proc/self/fd/";
    buf[..prefix.len()].copy_from_slice(prefix);
    let mut digits = [0u8; 10];
    let mut n = fd as u32;
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        buf[prefix.len() + i] = digits[len - 1 - i];
    }
    buf[prefix.len() + len] = 0;
    CStr::from_bytes_until_nul(&buf[..]).unwrap_or(c"/dev/null")
}

fn identity(p: &ProcessPlan) -> R {
    let s = Stage::Identity;
    let caps = p.caps;
    if let Some(c) = caps {
        for cap in 0..=c.last_cap {
            if c.bounding & (1 << cap) == 0 {
                // SAFETY: prctl with integer arguments.
                let rc =
                    unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
                if rc < 0 && errno() != libc::EINVAL {
                    return Err(fail(Stage::Capabilities, 0));
                }
            }
        }
    }
    // SAFETY: credential syscalls with valid pointers.
    unsafe {
        libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0);
        let rc = libc::setgroups(p.additional_gids.len(), p.additional_gids.as_ptr());
        if rc < 0 && !(errno() == libc::EPERM && p.additional_gids.is_empty()) {
            return Err(fail(s, 0));
        }
        check(libc::setresgid(p.gid, p.gid, p.gid) as _, s, 1)?;
        check(libc::setresuid(p.uid, p.uid, p.uid) as _, s, 2)?;
        libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0);
    }
    if let Some(c) = caps {
        set_caps(&c)?;
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

fn set_caps(c: &CapSets) -> R {
    let hdr = CapHeader {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let data = [
        CapData {
            effective: c.effective as u32,
            permitted: c.permitted as u32,
            inheritable: c.inheritable as u32,
        },
        CapData {
            effective: (c.effective >> 32) as u32,
            permitted: (c.permitted >> 32) as u32,
            inheritable: (c.inheritable >> 32) as u32,
        },
    ];
    check(
        // SAFETY: header and two data words as capset(2) requires for version 3.
        unsafe { libc::syscall(libc::SYS_capset, &hdr as *const CapHeader, data.as_ptr()) },
        Stage::Capabilities,
        1,
    )?;
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    };
    for cap in 0..=c.last_cap {
        if c.ambient & (1 << cap) != 0 {
            // A capability missing from the inheritable set cannot be made
            // ambient; runc ignores that too.
            // SAFETY: prctl with integer arguments.
            unsafe {
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE,
                    cap as libc::c_ulong,
                    0,
                    0,
                )
            };
        }
    }
    Ok(())
}

fn load_seccomp(p: &ProcessPlan) -> R {
    let Some(prog) = &p.seccomp else {
        return Ok(());
    };
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    check(
        // SAFETY: fprog points at the program, which outlives the call.
        unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                1, /* SECCOMP_SET_MODE_FILTER */
                p.seccomp_flags,
                &fprog,
            )
        },
        Stage::Seccomp,
        0,
    )?;
    Ok(())
}

/// Final steps and execve. Only returns through an error.
pub(crate) fn exec_process(p: &ProcessPlan, idx: usize) -> R<Infallible> {
    if p.no_new_privs {
        load_seccomp(p)?;
    }
    // SAFETY: execve with arrays prepared by the parent.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let path = &p.candidates[idx];
        libc::execve(path.as_ptr(), p.argv.as_ptr(), p.envp.as_ptr());
    }
    Err(fail(Stage::Exec, idx))
}
