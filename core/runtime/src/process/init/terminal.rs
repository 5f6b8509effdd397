//! The process's terminal: a new pty whose peer becomes stdio and the
//! controlling terminal, its master handed to the parent.

use std::ffi::CStr;
use std::os::fd::BorrowedFd;

use super::{check, Fail, R};
use crate::process::plan::ProcessPlan;
use crate::process::sync::{Channel, Msg, Stage};

pub(super) fn terminal(p: &ProcessPlan, chan: &Channel, console_bind: bool) -> R {
    let s = Stage::Terminal;
    // SAFETY: ioctl/open/dup2 on fds we own with valid arguments; the slave
    // is borrowed only while it is open.
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
            let _ = crate::tty::set_winsize(BorrowedFd::borrow_raw(slave), rows, cols);
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
