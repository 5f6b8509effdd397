//! Compiles the spec's seccomp profile to a classic BPF program with
//! libseccomp, in the parent. The init process only hands the program to
//! seccomp(2) right before execve.
//!
//! Syscalls newer than every syscall a profile names answer `ENOSYS` instead
//! of the profile's default action (as runc does): a profile written before,
//! say, `faccessat2` existed would otherwise answer it with `EPERM`, and libc
//! falls back to the older call only on `ENOSYS`.

use std::io::{Read, Seek};
use std::str::FromStr;

use libseccomp::error::SeccompError;
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};

use crate::error::{Result, RuntimeError};

/// libseccomp refused `rule` of the profile (for `map_err`).
fn refused(rule: String) -> impl FnOnce(SeccompError) -> RuntimeError {
    move |source| RuntimeError::SeccompRule { rule, source }
}

/// Building or exporting the filter failed (for `map_err`).
fn filter(op: &'static str) -> impl FnOnce(SeccompError) -> RuntimeError {
    move |source| RuntimeError::SeccompFilter { op, source }
}

fn export(op: &'static str) -> impl FnOnce(std::io::Error) -> RuntimeError {
    move |source| RuntimeError::SeccompExport { op, source }
}

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Result<ScmpAction> {
    use LinuxSeccompAction::*;
    Ok(match a {
        ScmpActKill | ScmpActKillThread => ScmpAction::KillThread,
        ScmpActKillProcess => ScmpAction::KillProcess,
        ScmpActTrap => ScmpAction::Trap,
        ScmpActErrno => ScmpAction::Errno(errno.unwrap_or(libc::EPERM as u32) as i32),
        ScmpActTrace => ScmpAction::Trace(errno.unwrap_or(libc::EPERM as u32) as u16),
        ScmpActLog => ScmpAction::Log,
        ScmpActAllow => ScmpAction::Allow,
        ScmpActNotify => return Err(RuntimeError::SeccompNotify),
    })
}

fn compare(op: LinuxSeccompOperator, value_two: Option<u64>) -> ScmpCompareOp {
    use LinuxSeccompOperator::*;
    match op {
        ScmpCmpNe => ScmpCompareOp::NotEqual,
        ScmpCmpLt => ScmpCompareOp::Less,
        ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        ScmpCmpEq => ScmpCompareOp::Equal,
        ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        ScmpCmpGt => ScmpCompareOp::Greater,
        ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(value_two.unwrap_or(0)),
    }
}

/// A compiled filter: the BPF program and the flags for seccomp(2).
#[derive(Debug)]
pub struct Compiled {
    pub program: Vec<libc::sock_filter>,
    pub flags: libc::c_ulong,
}

/// Compiles a profile.
pub fn compile(profile: &LinuxSeccomp) -> Result<Compiled> {
    let default = action(profile.default_action(), profile.default_errno_ret())?;
    let mut ctx = ScmpFilterContext::new(default).map_err(filter("creating the filter"))?;
    // The runtime applies no_new_privs itself, as the spec says.
    ctx.set_ctl_nnp(false)
        .map_err(filter("leaving no_new_privs to the runtime"))?;
    for arch in profile.architectures().iter().flatten() {
        let name = serde_json::to_value(arch)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let a = ScmpArch::from_str(&name)
            .map_err(|_| RuntimeError::SeccompUnknownArch { arch: name.clone() })?;
        ctx.add_arch(a)
            .map_err(refused(format!("architecture {name}")))?;
    }
    for sc in profile.syscalls().iter().flatten() {
        let act = action(sc.action(), sc.errno_ret())?;
        if act == default {
            continue; // libseccomp refuses rules equal to the default action
        }
        for name in sc.names() {
            let Ok(nr) = ScmpSyscall::from_name(name) else {
                tracing::warn!(
                    "seccomp: syscall {name} is unknown on this architecture; ignoring it"
                );
                continue;
            };
            let args = sc.args().clone().unwrap_or_default();
            let conds: Vec<ScmpArgCompare> = args
                .iter()
                .map(|a| {
                    ScmpArgCompare::new(a.index() as u32, compare(a.op(), a.value_two()), a.value())
                })
                .collect();
            let mut idx: Vec<usize> = args.iter().map(|a| a.index()).collect();
            idx.sort();
            idx.dedup();
            let r = if conds.is_empty() {
                ctx.add_rule(act, nr)
            } else if idx.len() == conds.len() {
                ctx.add_rule_conditional(act, nr, &conds)
            } else {
                // Several conditions on one argument cannot be ANDed: match any of them (as runc).
                conds
                    .iter()
                    .try_for_each(|c| ctx.add_rule_conditional(act, nr, &[*c]).map(|_| ()))
                    .map(|_| &mut ctx)
            };
            r.map_err(refused(format!("the rule for {name}")))?;
        }
    }
    newer_syscalls_enosys(&mut ctx, profile, default)?;
    let mut flags = 0;
    for f in profile.flags().iter().flatten() {
        flags |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => 2,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => 1,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => 4,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => 32,
        };
    }
    let mut mem = tempfile::tempfile().map_err(export("temporary file for the BPF program"))?;
    ctx.export_bpf(&mem)
        .map_err(filter("exporting the BPF program"))?;
    let mut bytes = Vec::new();
    mem.rewind()
        .and_then(|_| mem.read_to_end(&mut bytes))
        .map_err(export("reading the BPF program"))?;
    let program = instructions(&bytes);
    Ok(Compiled { program, flags })
}

/// Where compiled filters are kept, by the hash of their profile: tmpfs,
/// root's alone (a filter found here is loaded as it is, so the directory
/// is trusted only when it is root's and closed to everyone else).
const CACHE_DIR: &str = "/run/berth/seccomp";

/// [`compile`], through a cache of compiled programs keyed by the profile
/// (and the libseccomp and berth versions): every container of an engine
/// has the same default profile, and compiling it costs more than the rest
/// of a start. Without a usable cache directory (not root, not root's)
/// it compiles.
pub fn compile_cached(profile: &LinuxSeccomp) -> Result<Compiled> {
    use sha2::{Digest, Sha256};
    let Ok(json) = serde_json::to_vec(profile) else {
        return compile(profile);
    };
    let v = libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_default();
    let mut h = Sha256::new();
    h.update(env!("CARGO_PKG_VERSION"));
    h.update(v.as_bytes());
    h.update(std::env::consts::ARCH);
    h.update(&json);
    let key: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let dir = std::path::Path::new(CACHE_DIR);
    let trusted = || {
        use std::os::unix::fs::MetadataExt as _;
        std::fs::symlink_metadata(dir).is_ok_and(|m| {
            m.is_dir() && m.uid() == nix::unistd::geteuid().as_raw() && m.mode() & 0o077 == 0
        })
    };
    let path = dir.join(&key);
    if trusted() {
        if let Some(c) = std::fs::read(&path).ok().and_then(|b| decode(&b)) {
            return Ok(c);
        }
    }
    let c = compile(profile)?;
    if !trusted() {
        use std::os::unix::fs::DirBuilderExt as _;
        let _ = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir);
    }
    if trusted() {
        // Written whole, then renamed: a reader sees all of it or nothing.
        if let Ok(mut tmp) = tempfile::NamedTempFile::new_in(dir) {
            use std::io::Write as _;
            if tmp.write_all(&encode(&c)).is_ok() {
                let _ = tmp.persist(&path);
            }
        }
    }
    Ok(c)
}

/// A compiled filter as stored: its flags, then its instructions.
fn encode(c: &Compiled) -> Vec<u8> {
    let mut out = c.flags.to_le_bytes().to_vec();
    for f in &c.program {
        out.extend_from_slice(&f.code.to_ne_bytes());
        out.push(f.jt);
        out.push(f.jf);
        out.extend_from_slice(&f.k.to_ne_bytes());
    }
    out
}

/// BPF instructions from their 8-byte native form (libseccomp's export,
/// and the cache's).
fn instructions(bytes: &[u8]) -> Vec<libc::sock_filter> {
    bytes
        .chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect()
}

fn decode(b: &[u8]) -> Option<Compiled> {
    // The flags are a native c_ulong: the cache is per architecture.
    const N: usize = std::mem::size_of::<libc::c_ulong>();
    if b.len() < N + 8 || (b.len() - N) % 8 != 0 {
        return None;
    }
    let flags = libc::c_ulong::from_le_bytes(b[..N].try_into().ok()?);
    let program = instructions(&b[N..]);
    Some(Compiled { program, flags })
}

/// Above this native number no architecture berth runs on has syscalls
/// (x86_64 is near 470; x32's own calls start at 512 and are not native).
const SYSCALL_NR_LIMIT: i32 = 1024;

/// Adds `ENOSYS` rules for every syscall (known to libseccomp) whose native
/// number is above the highest one the profile names, unless the default
/// action already allows them. Rules are added by name, so libseccomp places
/// them for every architecture of the filter.
fn newer_syscalls_enosys(
    ctx: &mut ScmpFilterContext,
    profile: &LinuxSeccomp,
    default: ScmpAction,
) -> Result<()> {
    let enosys = ScmpAction::Errno(libc::ENOSYS);
    if matches!(default, ScmpAction::Allow | ScmpAction::Log) || default == enosys {
        return Ok(());
    }
    let named: std::collections::HashSet<&str> = profile
        .syscalls()
        .iter()
        .flatten()
        .flat_map(|s| s.names().iter().map(String::as_str))
        .collect();
    let Some(highest) = named
        .iter()
        .filter_map(|n| ScmpSyscall::from_name(n).ok())
        .map(|s| s.as_raw_syscall())
        .filter(|&nr| nr >= 0)
        .max()
    else {
        return Ok(()); // a profile naming nothing: its default decides everything
    };
    for nr in highest + 1..SYSCALL_NR_LIMIT {
        let Ok(name) = ScmpSyscall::from_raw_syscall(nr).get_name() else {
            continue;
        };
        if named.contains(name.as_str()) {
            continue;
        }
        let Ok(sc) = ScmpSyscall::from_name(&name) else {
            continue;
        };
        ctx.add_rule(enosys, sc)
            .map_err(refused(format!("the ENOSYS rule for {name}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_filter_reads_back_the_same() {
        let c = Compiled {
            program: vec![
                libc::sock_filter {
                    code: 0x20,
                    jt: 0,
                    jf: 0,
                    k: 4,
                },
                libc::sock_filter {
                    code: 0x06,
                    jt: 1,
                    jf: 2,
                    k: 0x7fff_0000,
                },
            ],
            flags: 3,
        };
        let back = decode(&encode(&c)).unwrap();
        assert_eq!(back.flags, 3);
        assert_eq!(back.program.len(), 2);
        assert_eq!(
            (back.program[1].jt, back.program[1].jf, back.program[1].k),
            (1, 2, 0x7fff_0000)
        );
        assert!(
            decode(&encode(&c)[..12]).is_none(),
            "a torn file is not a filter"
        );
    }

    #[test]
    fn compiles_a_profile() {
        let p: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": ["mkdir", "mkdirat", "no_such_call"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_NE"}]}
            ]
        }))
        .unwrap();
        let c = compile(&p).unwrap();
        assert!(c.program.len() > 5);
    }

    #[test]
    fn notify_is_refused_with_a_reason() {
        let p: LinuxSeccomp =
            serde_json::from_value(serde_json::json!({"defaultAction": "SCMP_ACT_NOTIFY"}))
                .unwrap();
        assert!(compile(&p)
            .unwrap_err()
            .to_string()
            .contains("SCMP_ACT_NOTIFY"));
    }

    /// Runs `probe` in a forked child under the compiled filter and returns
    /// what it returned (an errno, or 0).
    fn errno_under(c: &Compiled, probe: fn() -> i32) -> i32 {
        let fprog = libc::sock_fprog {
            len: c.program.len() as u16,
            filter: c.program.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: the child makes only raw syscalls and leaves with _exit, so
        // forking this multi-threaded test process is sound.
        unsafe {
            let pid = libc::fork();
            assert!(pid >= 0, "fork failed");
            if pid == 0 {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                if libc::syscall(libc::SYS_seccomp, 1, c.flags, &fprog) != 0 {
                    libc::_exit(255);
                }
                libc::_exit(probe());
            }
            let mut status = 0;
            libc::waitpid(pid, &mut status, 0);
            assert!(libc::WIFEXITED(status), "probe child died: {status:#x}");
            libc::WEXITSTATUS(status)
        }
    }

    fn errno_of(rc: libc::c_long) -> i32 {
        if rc >= 0 {
            0
        } else {
            std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(254)
        }
    }

    fn faccessat2() -> i32 {
        // SAFETY: a raw syscall with a valid C string.
        errno_of(unsafe {
            libc::syscall(
                libc::SYS_faccessat2,
                libc::AT_FDCWD,
                c"/".as_ptr(),
                libc::X_OK,
                0,
            )
        })
    }

    fn faccessat() -> i32 {
        // SAFETY: a raw syscall with a valid C string.
        errno_of(unsafe {
            libc::syscall(
                libc::SYS_faccessat,
                libc::AT_FDCWD,
                c"/".as_ptr(),
                libc::X_OK,
            )
        })
    }

    fn getppid() -> i32 {
        // SAFETY: a raw syscall without arguments.
        errno_of(unsafe { libc::syscall(libc::SYS_getppid) })
    }

    #[test]
    fn syscalls_newer_than_the_profile_answer_enosys() {
        let p: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["exit", "exit_group", "prctl", "seccomp", "faccessat"],
                          "action": "SCMP_ACT_ALLOW"}]
        }))
        .unwrap();
        let c = compile(&p).unwrap();
        assert_eq!(
            errno_under(&c, faccessat2),
            libc::ENOSYS,
            "newer than seccomp(2)"
        );
        assert_eq!(errno_under(&c, faccessat), 0, "named and allowed");
        assert_eq!(
            errno_under(&c, getppid),
            libc::EPERM,
            "older, not named: default"
        );
    }

    #[test]
    fn an_allowing_default_adds_no_enosys_rules() {
        let p: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]
        }))
        .unwrap();
        let c = compile(&p).unwrap();
        assert_eq!(errno_under(&c, faccessat2), 0);
        assert_eq!(errno_under(&c, getppid), 13);
    }
}
