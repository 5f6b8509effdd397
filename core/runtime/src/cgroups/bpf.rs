//! The bpf(2) calls needed to put a device-filter program on a cgroup2 directory: load it, list
//! and detach the programs attached before, attach the new one. Raw syscalls, because the
//! handful of `union bpf_attr` layouts needed here is smaller than a BPF library.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::devices::Insn;
use super::CgroupError;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

#[repr(C)]
#[derive(Default)]
struct ProgQuery {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFdById {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// Calls bpf(2) with `attr`; returns the non-negative result.
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<i64> {
    // SAFETY: `attr` is a live, exclusively borrowed `#[repr(C)]` prefix of `union bpf_attr`
    // for `cmd`, and its exact size is passed, so the kernel reads and writes only inside it
    // (the kernel treats the bytes it knows beyond that size as zero). Pointers stored inside
    // `attr` by callers point to buffers that outlive this call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            size_of::<T>() as libc::c_uint,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn owned_fd(raw: i64) -> OwnedFd {
    // SAFETY: `raw` was just returned by a successful bpf(2) call that creates a new file
    // descriptor, so it is open and owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(raw as i32) }
}

/// Loads `insns` as a cgroup device program; on failure retries with the verifier log on so
/// the error explains itself.
fn load(dir: &Path, insns: &[Insn]) -> Result<OwnedFd, CgroupError> {
    let license = CString::new("Apache-2.0").expect("no NUL in the license");
    let mut name = [0u8; 16];
    name[..9].copy_from_slice(b"berth_dev");
    let mut log = Vec::new();
    for log_size in [0usize, 1 << 16] {
        log.resize(log_size, 0);
        let mut attr = ProgLoad {
            prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
            insn_cnt: insns.len() as u32,
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
            log_level: u32::from(log_size > 0),
            log_size: log_size as u32,
            log_buf: log.as_mut_ptr() as u64,
            prog_name: name,
            ..Default::default()
        };
        match bpf(BPF_PROG_LOAD, &mut attr) {
            Ok(fd) => return Ok(owned_fd(fd)),
            Err(source)
                if log_size > 0
                    || !matches!(source.raw_os_error(), Some(libc::EACCES | libc::EINVAL)) =>
            {
                let text = String::from_utf8_lossy(&log);
                let text = text.trim_end_matches('\0').trim();
                return Err(CgroupError::BpfLoad {
                    path: dir.to_path_buf(),
                    log: if text.is_empty() {
                        String::new()
                    } else {
                        format!("\nverifier log:\n{text}")
                    },
                    source,
                });
            }
            Err(_) => {}
        }
    }
    unreachable!("the second attempt always returns")
}

/// IDs of the device programs attached to the cgroup open as `dir_fd`.
fn attached(dir: &Path, dir_fd: &File) -> Result<Vec<u32>, CgroupError> {
    let mut ids = vec![0u32; 64];
    loop {
        let mut attr = ProgQuery {
            target_fd: dir_fd.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: ids.len() as u32,
            ..Default::default()
        };
        match bpf(BPF_PROG_QUERY, &mut attr) {
            Ok(_) => {
                ids.truncate(attr.prog_cnt as usize);
                return Ok(ids);
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                ids.resize(attr.prog_cnt as usize + 8, 0);
            }
            Err(source) => {
                return Err(CgroupError::Bpf {
                    op: "query",
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// Attaches `insns` to the cgroup2 directory `dir` alongside what is there (BPF_F_ALLOW_MULTI,
/// so ancestors' programs keep applying), then detaches the device programs that were
/// attached before, so the new rules replace the old ones rather than narrowing them.
pub(crate) fn replace_device_program(dir: &Path, insns: &[Insn]) -> Result<(), CgroupError> {
    let err = |op, source| CgroupError::Bpf {
        op,
        path: dir.to_path_buf(),
        source,
    };
    let dir_fd = File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(dir)
        .map_err(|e| err("open", e))?;
    let old = attached(dir, &dir_fd)?;
    let prog = load(dir, insns)?;
    let mut attach = ProgAttach {
        target_fd: dir_fd.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    bpf(BPF_PROG_ATTACH, &mut attach).map_err(|e| err("attach", e))?;
    for id in old {
        let mut by_id = GetFdById {
            prog_id: id,
            ..Default::default()
        };
        let old_fd = match bpf(BPF_PROG_GET_FD_BY_ID, &mut by_id) {
            Ok(fd) => owned_fd(fd),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(err("detach", e)),
        };
        let mut detach = ProgAttach {
            target_fd: dir_fd.as_raw_fd() as u32,
            attach_bpf_fd: old_fd.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            ..Default::default()
        };
        match bpf(BPF_PROG_DETACH, &mut detach) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(err("detach", e)),
        }
    }
    Ok(())
}

/// Number of device programs attached directly to the cgroup2 directory `dir`.
pub fn attached_device_programs(dir: &Path) -> Result<usize, CgroupError> {
    let dir_fd = File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(dir)
        .map_err(|source| CgroupError::Bpf {
            op: "open",
            path: dir.to_path_buf(),
            source,
        })?;
    Ok(attached(dir, &dir_fd)?.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attr_layouts_match_the_kernel() {
        assert_eq!(size_of::<ProgLoad>(), 72);
        assert_eq!(std::mem::offset_of!(ProgLoad, prog_name), 48);
        assert_eq!(std::mem::offset_of!(ProgLoad, expected_attach_type), 68);
        assert_eq!(size_of::<ProgAttach>(), 20);
        assert_eq!(std::mem::offset_of!(ProgQuery, prog_ids), 16);
        assert_eq!(std::mem::offset_of!(ProgQuery, prog_cnt), 24);
        assert_eq!(size_of::<Insn>(), 8);
    }

    #[test]
    fn attach_to_a_plain_directory_fails_with_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let err = replace_device_program(tmp.path(), &[]).unwrap_err();
        assert!(
            err.to_string().contains(&tmp.path().display().to_string()),
            "{err}"
        );
    }
}
