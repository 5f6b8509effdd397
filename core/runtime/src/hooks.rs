//! Hooks that run in the runtime's namespaces (prestart, createRuntime,
//! poststart, poststop): the state JSON on stdin, the hook's timeout enforced.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

use crate::error::{HookFailure, Result, RuntimeError};

/// Runs `hooks` in order; the first failure stops and is returned.
pub fn run(kind: &'static str, hooks: &[Hook], state: &[u8]) -> Result<()> {
    for h in hooks {
        run_one(kind, h, state)?;
    }
    Ok(())
}

fn run_one(kind: &'static str, h: &Hook, state: &[u8]) -> Result<()> {
    let err = |failure: HookFailure| RuntimeError::Hook {
        hook: kind,
        path: h.path().clone(),
        failure,
    };
    let args = h.args().clone().unwrap_or_default();
    let mut cmd = Command::new(h.path());
    if let Some((arg0, rest)) = args.split_first() {
        use std::os::unix::process::CommandExt;
        cmd.arg0(arg0).args(rest);
    }
    cmd.env_clear()
        .envs(h.env().iter().flatten().filter_map(|e| e.split_once('=')))
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
    let mut child = cmd.spawn().map_err(|e| err(HookFailure::Spawn(e)))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine.
        let _ = stdin.write_all(state);
    }
    let deadline = h
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    loop {
        match child.try_wait() {
            Ok(Some(st)) if st.success() => return Ok(()),
            Ok(Some(st)) => return Err(err(HookFailure::Exit(st))),
            Ok(None) => {}
            Err(e) => return Err(err(HookFailure::Wait(e))),
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(err(HookFailure::Timeout(h.timeout().unwrap_or(0))));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
