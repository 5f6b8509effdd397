//! Health checks (docker's `HEALTHCHECK` and `--health-*`): while a container
//! runs, its test runs every interval as an exec; the container is
//! `starting` until the first pass (or until start-period ends), `healthy`
//! after a pass, `unhealthy` after `retries` failures in a row.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::io::AsyncReadExt;

use super::config::HealthConfig;
use super::exec::ExecConfig;
use super::{Containers, Entry, Status};

/// One probe's result, as docker's `State.Health.Log`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Probe {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

/// docker's `State.Health`.
#[derive(Debug, Clone, Serialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    pub status: String,
    pub failing_streak: u32,
    pub log: Vec<Probe>,
}

const NS: i64 = 1_000_000_000;

/// The check a container runs: its own `Healthcheck`, over the image's,
/// with docker's defaults (30 s interval and timeout, 3 retries).
pub fn effective(own: Option<&HealthConfig>, image: Option<&HealthConfig>) -> Option<HealthConfig> {
    let mut h = match (own, image) {
        (Some(o), Some(i)) => {
            let mut h = o.clone();
            if h.test.is_empty() {
                h.test = i.test.clone();
            }
            h
        }
        (Some(o), None) => o.clone(),
        (None, Some(i)) => i.clone(),
        (None, None) => return None,
    };
    if h.test.is_empty() || h.test[0] == "NONE" {
        return None;
    }
    if h.interval <= 0 {
        h.interval = 30 * NS;
    }
    if h.timeout <= 0 {
        h.timeout = 30 * NS;
    }
    if h.retries <= 0 {
        h.retries = 3;
    }
    Some(h)
}

/// The command of a test (`CMD …` or `CMD-SHELL …`).
fn command(test: &[String]) -> Option<Vec<String>> {
    match test.first().map(String::as_str) {
        Some("CMD") => Some(test[1..].to_vec()),
        Some("CMD-SHELL") => Some(vec!["/bin/sh".into(), "-c".into(), test[1..].join(" ")]),
        _ => None,
    }
}

impl Containers {
    /// The image's `Healthcheck` (kept in the raw image config).
    pub(crate) fn image_health(&self, id: &str) -> Option<HealthConfig> {
        let raw: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.cdir(id).join("image-config.json")).ok()?)
                .ok()?;
        serde_json::from_value(raw.get("config")?.get("Healthcheck")?.clone()).ok()
    }

    /// A container's health, if it has a check.
    pub fn health(&self, key: &str) -> Option<Health> {
        let e = self.entry(key).ok()?;
        let h = e.health.lock().expect("health lock").clone();
        h
    }

    /// Starts the checks of a container that just started.
    pub(crate) fn start_health(self: &Arc<Self>, e: &Arc<Entry>, started: u64) {
        let rec = e.get();
        let Some(check) = effective(
            rec.config.healthcheck.as_ref(),
            self.image_health(&rec.id).as_ref(),
        ) else {
            *e.health.lock().expect("health lock") = None;
            return;
        };
        let Some(cmd) = command(&check.test) else {
            return;
        };
        *e.health.lock().expect("health lock") = Some(Health {
            status: "starting".into(),
            ..Default::default()
        });
        let me = self.clone();
        let e = e.clone();
        tokio::spawn(async move {
            let begun = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(Duration::from_nanos(check.interval as u64)).await;
                let rec = e.get();
                // Stop with the run that started us (a restart starts anew).
                if rec.status != Status::Running
                    || e.starts.load(std::sync::atomic::Ordering::SeqCst) != started
                {
                    return;
                }
                let start = crate::store::now();
                let (code, output) = me
                    .probe(&rec.id, &cmd, Duration::from_nanos(check.timeout as u64))
                    .await;
                let probe = Probe {
                    start,
                    end: crate::store::now(),
                    exit_code: code,
                    output,
                };
                let in_start_period =
                    begun.elapsed() < Duration::from_nanos(check.start_period.max(0) as u64);
                let mut changed = None;
                {
                    let mut g = e.health.lock().expect("health lock");
                    let Some(h) = g.as_mut() else { return };
                    let before = h.status.clone();
                    if code == 0 {
                        h.failing_streak = 0;
                        h.status = "healthy".into();
                    } else if !in_start_period {
                        h.failing_streak += 1;
                        if h.failing_streak >= check.retries as u32 {
                            h.status = "unhealthy".into();
                        }
                    }
                    h.log.push(probe);
                    if h.log.len() > 5 {
                        h.log.remove(0);
                    }
                    if h.status != before {
                        changed = Some(h.status.clone());
                    }
                }
                if let Some(s) = changed {
                    me.emit(&rec, &format!("health_status: {s}"), &[]);
                }
            }
        });
    }

    /// Runs one probe; returns its exit code and (at most 4 KiB of) output.
    async fn probe(&self, id: &str, cmd: &[String], timeout: Duration) -> (i32, String) {
        let cfg = ExecConfig {
            attach_stdout: true,
            attach_stderr: true,
            cmd: cmd.to_vec(),
            ..Default::default()
        };
        let eid = match self.exec_create(id, cfg) {
            Ok(x) => x,
            Err(e) => return (-1, e.to_string()),
        };
        let (ours, theirs) = tokio::io::duplex(64 << 10);
        let run = self.exec_start(&eid, Some(theirs), None);
        let read = async move {
            let mut ours = ours;
            let mut raw = Vec::new();
            let _ = ours.read_to_end(&mut raw).await;
            raw
        };
        let r = tokio::time::timeout(timeout, async { tokio::join!(run, read) }).await;
        let code = self.exec_inspect(&eid).ok().and_then(|x| x.state.exit_code);
        self.execs.lock().expect("execs lock").remove(&eid);
        match r {
            Err(_) => (-1, format!("Health check exceeded timeout ({timeout:?})")),
            Ok((Err(e), _)) => (-1, e.to_string()),
            Ok((Ok(()), raw)) => {
                let mut out = Vec::new();
                let mut i = 0;
                while i + 8 <= raw.len() {
                    let n = u32::from_be_bytes([raw[i + 4], raw[i + 5], raw[i + 6], raw[i + 7]])
                        as usize;
                    out.extend_from_slice(&raw[i + 8..(i + 8 + n).min(raw.len())]);
                    i += 8 + n;
                }
                out.truncate(4096);
                (
                    code.unwrap_or(-1),
                    String::from_utf8_lossy(&out).into_owned(),
                )
            }
        }
    }
}

/// Shared by the entry: the current health, if the container has a check.
pub(crate) type Slot = Mutex<Option<Health>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_none() {
        let t = |v: &[&str]| HealthConfig {
            test: v.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let h = effective(None, Some(&t(&["CMD-SHELL", "true"]))).unwrap();
        assert_eq!((h.interval, h.retries), (30 * NS, 3));
        assert!(effective(Some(&t(&["NONE"])), Some(&t(&["CMD", "true"]))).is_none());
        assert_eq!(
            command(&t(&["CMD-SHELL", "exit 1"]).test).unwrap()[2],
            "exit 1"
        );
    }
}
