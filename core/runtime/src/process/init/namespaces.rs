//! The init's namespaces and root: joining and creating namespaces around
//! the parent's `Go`, then pivot_root (or chroot without a mount namespace).

use std::ffi::CStr;

use super::{check, fail, proto, R};
use crate::process::plan::InitPlan;
use crate::process::sync::{Channel, Msg, Stage};

/// Before `Go`: join namespaces by path; on the slow path, make the new user
/// namespace and ask the parent for its maps.
pub(super) fn join_namespaces(plan: &InitPlan, chan: &Channel) -> R {
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
pub(super) fn new_namespaces(plan: &InitPlan, chan: &Channel) -> R {
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
pub(super) fn chroot(rootfs: &CStr) -> R {
    let s = Stage::PivotRoot;
    // SAFETY: valid C strings; these calls only change this process's root and cwd.
    unsafe {
        check(libc::chdir(rootfs.as_ptr()) as _, s, 10)?;
        check(libc::chroot(c".".as_ptr()) as _, s, 11)?;
        check(libc::chdir(c"/".as_ptr()) as _, s, 12)?;
    }
    Ok(())
}

pub(super) fn pivot_root(rootfs: &CStr) -> R {
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
