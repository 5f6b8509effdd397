//! The process's own setup before execve, for the init and for an exec:
//! fds, terminal, rlimits, umask, no_new_privs, AppArmor, seccomp, identity,
//! cwd, the lookup of the binary, and execve itself.

use std::convert::Infallible;

use super::identity::identity;
use super::steps::exists;
use super::terminal::terminal;
use super::{check, fail, Fail, CLOEXEC_STEP, R};
use crate::process::plan::ProcessPlan;
use crate::process::sync::{errno, Channel, Stage};

/// Terminal, rlimits, umask, cwd, identity, capabilities, the binary lookup.
/// Returns the index of the candidate path to execute.
pub(crate) fn prepare_process(p: &ProcessPlan, chan: &Channel, _init: bool) -> R<usize> {
    prepare_process_console(p, chan, false, false)
}

pub(super) fn prepare_process_console(
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
