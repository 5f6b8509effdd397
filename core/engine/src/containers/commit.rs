//! `commit`: a container's writable layer made into an image (and `diff`:
//! what that layer changed). The image's
//! runtime config is the container's image's, with what the container was
//! created with on top (docker merges them at create), then the `--change`
//! instructions; a running container is paused for the commit unless told
//! otherwise.

use serde_json::{json, Map, Value};

use super::record::{Record, Status};
use super::Containers;
use crate::dockerfile::{parse_changes, Changes};
use crate::engine::CommitMeta;
use crate::error::{ContainerOp, EngineError, Result};
use crate::reference::Reference;

/// docker's `commit` options.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// `REPO[:TAG]` (the tag defaults to `latest`); `None` keeps the image
    /// under its id only.
    pub reference: Option<String>,
    pub author: String,
    pub comment: String,
    /// Dockerfile instructions (`CMD ["sh"]`, `ENV A=1`, …).
    pub changes: Vec<String>,
    /// Pause a running container while its layer is read (docker's default).
    pub pause: bool,
}

impl Containers {
    /// Commits a container into an image; returns the image id.
    pub async fn commit(&self, key: &str, opts: CommitOptions) -> Result<String> {
        let e = self.entry(key)?;
        let rec = e.get();
        if matches!(rec.status, Status::Removing | Status::Dead) {
            return Err(super::refused(&rec, ContainerOp::Commit));
        }
        let changes = parse_changes(&opts.changes)?;
        let full_name = match opts.reference.as_deref().filter(|r| !r.is_empty()) {
            Some(r) => {
                let parsed = Reference::parse(r)?;
                if parsed.digest.is_some() {
                    return Err(EngineError::invalid(
                        "repository",
                        r,
                        format!(
                            "invalid reference format: {r} names a digest; commit needs REPO[:TAG]"
                        ),
                    ));
                }
                Some(parsed.full())
            }
            None => None,
        };
        let image = self.image_config_json(&rec.id);
        let mut config = image
            .get("config")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        merge_container(&mut config, &rec);
        Changes::apply(&mut config, &changes);
        let (path, args) = rec.path_args(self.image_config(&rec.id).as_ref());
        let meta = CommitMeta {
            author: opts.author,
            comment: opts.comment,
            created_by: std::iter::once(path)
                .chain(args)
                .collect::<Vec<_>>()
                .join(" "),
            container: rec.id.clone(),
            mount_stubs: Vec::new(),
        };
        // Hold off starts, stops and removal while the layer is read.
        let _op = e.op.lock().await;
        let paused = opts.pause && e.get().status == Status::Running;
        if paused {
            self.machine.pause(&rec.id)?;
        }
        let made = self
            .machine
            .commit(&rec.id, &rec.image_id, config, &meta, full_name.as_deref())
            .await;
        if paused {
            if let Err(err) = self.machine.resume(&rec.id) {
                tracing::warn!("resuming container {} after its commit: {err}", rec.id);
            }
        }
        let id = made?;
        self.emit(&e.get(), "commit", &[]);
        Ok(id)
    }

    /// Commits container `key`'s layer with `config` as the image's runtime
    /// config, as given (a build step: the stage's config, not the step's
    /// command); the image keeps no name. Returns its id.
    pub async fn commit_as(
        &self,
        key: &str,
        config: Map<String, Value>,
        meta: CommitMeta,
    ) -> Result<String> {
        let e = self.entry(key)?;
        let rec = e.get();
        let _op = e.op.lock().await;
        self.machine
            .commit(&rec.id, &rec.image_id, config, &meta, None)
            .await
    }

    /// What a container changed in its root filesystem (docker's `diff`).
    pub async fn changes(&self, key: &str) -> Result<Vec<crate::engine::Change>> {
        let e = self.entry(key)?;
        let rec = e.get();
        if matches!(rec.status, Status::Removing | Status::Dead) {
            return Err(super::refused(&rec, ContainerOp::Commit));
        }
        let _op = e.op.lock().await;
        self.machine.changes(&rec.id, &rec.image_id).await
    }

    /// The container's image config as stored at create (docker's JSON).
    fn image_config_json(&self, id: &str) -> Value {
        std::fs::read(self.cdir(id).join("image-config.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| json!({}))
    }
}

/// What the container was created with, over its image's config.
fn merge_container(config: &mut Map<String, Value>, rec: &Record) {
    let c = &rec.config;
    let mut set = |k: &str, v: Value| {
        config.insert(k.to_string(), v);
    };
    if let Some(cmd) = &c.cmd {
        set("Cmd", json!(cmd));
    }
    if let Some(ep) = &c.entrypoint {
        set("Entrypoint", json!(ep));
        if c.cmd.is_none() {
            // docker: an entrypoint given at create drops the image's cmd.
            set("Cmd", Value::Null);
        }
    }
    if !c.user.is_empty() {
        set("User", json!(c.user));
    }
    if !c.working_dir.is_empty() {
        set("WorkingDir", json!(c.working_dir));
    }
    if let Some(s) = &c.stop_signal {
        set("StopSignal", json!(s));
    }
    if let Some(h) = &c.healthcheck {
        set(
            "Healthcheck",
            serde_json::to_value(h).expect("serializable"),
        );
    }
    if !c.env.is_empty() {
        let mut env: Vec<Value> = config
            .get("Env")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for kv in &c.env {
            let name = kv.split_once('=').map_or(kv.as_str(), |(n, _)| n);
            let same = |e: &Value| {
                e.as_str()
                    .is_some_and(|s| s.split_once('=').map_or(s, |(n, _)| n) == name)
            };
            match env.iter_mut().find(|e| same(e)) {
                Some(e) => *e = json!(kv),
                None => env.push(json!(kv)),
            }
        }
        config.insert("Env".into(), Value::Array(env));
    }
    for (key, extra) in [
        ("ExposedPorts", json!(c.exposed_ports)),
        ("Volumes", json!(c.volumes)),
        ("Labels", json!(c.labels)),
    ] {
        let Value::Object(extra) = extra else {
            continue;
        };
        if extra.is_empty() {
            continue;
        }
        let v = config.entry(key).or_insert(Value::Null);
        if !v.is_object() {
            *v = json!({});
        }
        let o = v.as_object_mut().expect("an object");
        o.extend(extra);
    }
}
