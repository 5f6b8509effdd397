//! Turns a child's failure report (stage, step index, errno) into an error
//! whose words name the step, from the plan the parent kept: the child
//! cannot format, so the parent says what it was doing.

use nix::errno::Errno;

use super::init::{Fail, HOOK_STATUS_BASE, HOOK_TIMEOUT};
use super::plan::{InitPlan, ProcessPlan};
use super::sync::Stage;
use crate::error::RuntimeError;

/// The error for a failed step: its description, and the errno unless the
/// failure is a hook's exit status or timeout.
pub(super) fn step_failed(id: &str, f: Fail, step: String) -> RuntimeError {
    RuntimeError::InitStep {
        id: id.into(),
        stage: f.stage,
        errno: (f.errno < HOOK_STATUS_BASE).then(|| Errno::from_raw(f.errno)),
        step,
    }
}

fn errno_text(e: i32) -> String {
    Errno::from_raw(e).desc().to_lowercase()
}

fn hook_text(kind: &str, path: &std::ffi::CStr, e: i32) -> String {
    let path = path.to_string_lossy();
    if e == HOOK_TIMEOUT {
        format!("{kind} hook {path} timed out")
    } else if e >= HOOK_STATUS_BASE + 128 {
        format!(
            "{kind} hook {path} was killed by signal {}",
            e - HOOK_STATUS_BASE - 128
        )
    } else if e >= HOOK_STATUS_BASE {
        format!(
            "{kind} hook {path} exited with status {}",
            e - HOOK_STATUS_BASE
        )
    } else {
        format!("{kind} hook {path}: {}", errno_text(e))
    }
}

/// Turns an init failure into a sentence.
pub fn describe_init(plan: &InitPlan, f: Fail) -> String {
    let i = f.index as usize;
    let what = match f.stage {
        Stage::Namespaces => match i {
            100 => "creating namespaces".to_string(),
            101 => "forking into the new pid namespace".into(),
            102 | 103 => "becoming root in the new user namespace (is uid/gid 0 mapped?)".into(),
            104 => "creating the cgroup namespace".into(),
            _ => format!("joining namespace #{i} of linux.namespaces"),
        },
        Stage::Hostname => "setting the hostname".into(),
        Stage::Mounts => plan.pre_pivot.describe(f.index).to_string(),
        Stage::CreateHooks => {
            return hook_text(
                "createContainer",
                &plan.create_hooks[i.min(plan.create_hooks.len() - 1)].path,
                f.errno,
            )
        }
        Stage::StartHooks => {
            return hook_text(
                "startContainer",
                &plan.start_hooks[i.min(plan.start_hooks.len() - 1)].path,
                f.errno,
            )
        }
        Stage::PivotRoot if f.index >= 10 => {
            format!("chroot into {}", plan.rootfs.to_string_lossy())
        }
        Stage::PivotRoot => format!("pivot_root into {}", plan.rootfs.to_string_lossy()),
        Stage::PostPivotMounts | Stage::Sysctl => plan.post_pivot.describe(f.index).to_string(),
        _ => return describe_process(&plan.process, f),
    };
    format!("{what}: {}", errno_text(f.errno))
}

/// Turns a failure in the process setup into a sentence.
pub fn describe_process(p: &ProcessPlan, f: Fail) -> String {
    let i = f.index as usize;
    let arg0 = p
        .argv
        .items
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    match f.stage {
        Stage::Rlimits if f.index == u32::MAX => {
            format!("setting oom_score_adj: {}", errno_text(f.errno))
        }
        Stage::Rlimits => {
            let mut s = format!(
                "{}: {}",
                p.rlimit_descs
                    .get(i)
                    .map(String::as_str)
                    .unwrap_or("setting an rlimit"),
                errno_text(f.errno)
            );
            if f.errno == libc::EPERM {
                s.push_str(" (raising a hard limit above the current one needs CAP_SYS_RESOURCE, which berth does not have here)");
            }
            s
        }
        Stage::AppArmor => format!(
            "applying the AppArmor profile ({}): {}",
            p.apparmor_exec
                .as_ref()
                .map(|r| r.to_string_lossy().into_owned())
                .unwrap_or_default(),
            errno_text(f.errno)
        ),
        Stage::Cwd => format!(
            "changing to the working directory {}: {}",
            p.cwd.to_string_lossy(),
            errno_text(f.errno)
        ),
        Stage::Identity if i == 10 => format!("setting no_new_privs: {}", errno_text(f.errno)),
        Stage::Identity => format!(
            "switching to user {}:{} (groups {:?}): {}",
            p.uid,
            p.gid,
            p.additional_gids,
            errno_text(f.errno)
        ),
        Stage::Capabilities => format!("setting capabilities: {}", errno_text(f.errno)),
        Stage::Terminal => format!(
            "setting up the terminal (step {i}): {}",
            errno_text(f.errno)
        ),
        Stage::ExecLookup if f.errno == libc::ENOENT && arg0.contains('/') => {
            format!("exec {arg0}: no such file or directory in the container's root filesystem")
        }
        Stage::ExecLookup if f.errno == libc::ENOENT => {
            format!("exec {arg0:?}: executable file not found in $PATH of the container")
        }
        Stage::ExecLookup => format!("executable {arg0}: {}", errno_text(f.errno)),
        Stage::Seccomp => format!("loading the seccomp filter: {}", errno_text(f.errno)),
        Stage::Exec if f.index as usize == super::init::CLOEXEC_STEP => format!(
            "marking the runtime's file descriptors close-on-exec: {}",
            errno_text(f.errno)
        ),
        Stage::Exec => format!("exec {arg0}: {}", errno_text(f.errno)),
        Stage::WaitStart => format!("waiting for start: {}", errno_text(f.errno)),
        _ => format!("{:?}: {}", f.stage, errno_text(f.errno)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::plan::CStrArray;

    fn fail(stage: Stage, errno: i32) -> Fail {
        Fail {
            stage,
            index: 0,
            errno,
        }
    }

    #[test]
    fn a_missing_binary_is_named_and_keeps_its_errno() {
        let p = ProcessPlan {
            argv: CStrArray::new(vec![c"nope".into()]),
            ..Default::default()
        };
        let f = fail(Stage::ExecLookup, libc::ENOENT);
        let e = step_failed("c1", f, describe_process(&p, f));
        assert_eq!(
            e.to_string(),
            "container \"c1\": exec \"nope\": executable file not found in $PATH of the container"
        );
        assert!(matches!(
            e,
            RuntimeError::InitStep {
                errno: Some(Errno::ENOENT),
                ..
            }
        ));
    }

    #[test]
    fn a_hooks_exit_status_is_not_an_errno() {
        let e = step_failed(
            "c1",
            fail(Stage::CreateHooks, HOOK_STATUS_BASE + 3),
            "hook".into(),
        );
        assert!(matches!(e, RuntimeError::InitStep { errno: None, .. }));
    }
}
