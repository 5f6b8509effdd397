//! The process's identity: the bounding set, groups, uid and gid, then the
//! capability sets and ambient capabilities.

use super::{check, fail, R};
use crate::process::plan::{CapSets, ProcessPlan};
use crate::process::sync::{errno, Stage};

pub(super) fn identity(p: &ProcessPlan) -> R {
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
