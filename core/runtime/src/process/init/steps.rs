//! The init's filesystem steps (mounts, directories, device nodes, links,
//! masks, read-only paths, sysctl writes), each one or a few raw syscalls.

use std::ffi::CStr;

use super::{fail, R};
use crate::process::plan::{Step, Steps};
use crate::process::sync::{errno, write_all, Stage};

fn ptr(c: &Option<std::ffi::CString>) -> *const libc::c_char {
    c.as_ref().map_or(std::ptr::null(), |s| s.as_ptr())
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

pub(super) fn exists(path: &CStr) -> Option<libc::mode_t> {
    // SAFETY: st is plain data filled by the kernel.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: path is a valid C string, st a valid out-pointer.
    if unsafe { libc::stat(path.as_ptr(), &mut st) } == 0 {
        Some(st.st_mode)
    } else {
        None
    }
}

pub(super) fn run_steps(steps: &Steps, stage: Stage) -> R {
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

pub(super) fn write_file(path: &CStr, value: &CStr) -> Result<(), i32> {
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
