//! `RUN`: the command runs in a container of the stage's image (the
//! build's network, the stage's env with the build arguments in effect,
//! its user and working directory), its output streamed to the client; a
//! zero exit is committed with the stage's config (not the command), the
//! container removed either way. `--mount=type=cache` keeps a directory
//! across builds (by `id`, else target); `type=bind` shows a stage's,
//! image's or the context's files read-only; `type=tmpfs` a tmpfs.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::cache::Key;
use super::stage::{Run, State};
use super::{failed, short, stage_ref};
use crate::containers::config::{ContainerConfig, CreateRequest, HostConfig};
use crate::containers::stream::AttachOptions;
use crate::containers::Containers;
use crate::containers::WaitCondition;
use crate::dockerfile::parse::RawInstruction;
use crate::engine::CommitMeta;
use crate::error::{EngineError, Result};

/// What a `RUN --mount` asks for, resolved to what the container gets.
#[derive(Debug, Default)]
struct Mounts {
    /// `host:container[:ro]` binds.
    binds: Vec<String>,
    /// tmpfs mounts.
    tmpfs: BTreeMap<String, String>,
    /// What decides the step's result beyond the command (cache key).
    key: Vec<String>,
    /// Helper containers whose root filesystems are bound in.
    helpers: Vec<String>,
}

impl Mounts {
    /// The mount targets and their parents, relative to the root: made for
    /// the step, left out of its layer when nothing else is in them.
    fn stubs(&self) -> Vec<String> {
        let targets = self
            .binds
            .iter()
            .filter_map(|b| b.split(':').nth(1))
            .chain(self.tmpfs.keys().map(String::as_str));
        let mut out = Vec::new();
        for t in targets {
            let parts: Vec<&str> = t.split('/').filter(|p| !p.is_empty()).collect();
            for n in 1..=parts.len() {
                let p = parts[..n].join("/");
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
        out
    }
}

/// `k=v,k2=v2` (a bare `k` is `k=true`).
fn options(spec: &str) -> BTreeMap<String, String> {
    spec.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), v.trim().to_owned()),
            None => (p.trim().to_ascii_lowercase(), "true".to_owned()),
        })
        .collect()
}

/// The shell script of a shell-form `RUN`: the arguments, and after them
/// each heredoc as the shell itself reads one; a `RUN` that is nothing but
/// a heredoc runs the heredoc's body.
fn script(ins: &RawInstruction) -> String {
    let only_heredoc = ins.heredocs.len() == 1
        && ins
            .args
            .trim()
            .trim_start_matches("<<")
            .trim_start_matches('-')
            .trim_matches(['"', '\''])
            == ins.heredocs[0].delimiter;
    if only_heredoc {
        return ins.heredocs[0].content.clone();
    }
    let mut s = ins.args.clone();
    for h in &ins.heredocs {
        s.push('\n');
        s.push_str(&h.content);
        s.push_str(&h.delimiter);
    }
    s
}

impl Run<'_> {
    pub(super) async fn run(&mut self, st: &mut State, ins: &RawInstruction) -> Result<String> {
        let argv = match &ins.json {
            Some(v) => v.clone(),
            None => {
                let mut a = st.shell();
                a.push(script(ins));
                a
            }
        };
        let network = match self.flag(st, ins, "network")? {
            Some(n) if n == "default" => self.opts.network.clone(),
            Some(n) => n,
            None => self.opts.network.clone(),
        };
        let parent = match &st.image {
            Some(id) => id.clone(),
            None => {
                let shown = json!("");
                let id = self.config_step(st, "#(nop) ", shown).await?;
                st.image = Some(id.clone());
                id
            }
        };
        let mut mounts = Mounts::default();
        let made = self.mounts(st, ins, &mut mounts).await;
        let result = match made {
            Ok(()) => self.run_in(st, &parent, &argv, &network, &mounts).await,
            Err(e) => Err(e),
        };
        for h in &mounts.helpers {
            self.builder.containers.release_rootfs(h).await;
            let _ = self.builder.containers.remove(h, true, false).await;
        }
        result
    }

    async fn run_in(
        &mut self,
        st: &State,
        parent: &str,
        argv: &[String],
        network: &str,
        mounts: &Mounts,
    ) -> Result<String> {
        let created_by = format!("{}{}", st.args_prefix(), argv.join(" "));
        let key = Key::new(parent)
            .add(
                "run",
                serde_json::to_string(argv).unwrap_or_default().as_bytes(),
            )
            .add("created-by", created_by.as_bytes())
            .add(
                "config",
                serde_json::to_string(&st.config)
                    .unwrap_or_default()
                    .as_bytes(),
            )
            .add("network", network.as_bytes())
            .add("mounts", mounts.key.join("\n").as_bytes())
            .finish();
        if let Some(id) = self.cached(&key) {
            return Ok(id);
        }
        let mut env: Vec<String> = st
            .config
            .get("Env")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        for (k, v) in &st.args {
            if !env
                .iter()
                .any(|e| e.split_once('=').map_or(e.as_str(), |(n, _)| n) == k)
            {
                env.push(format!("{k}={v}"));
            }
        }
        let text = |k: &str| {
            st.config
                .get(k)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_owned()
        };
        let req = CreateRequest {
            config: ContainerConfig {
                image: parent.to_owned(),
                cmd: Some(argv.to_vec()),
                entrypoint: Some(vec![String::new()]),
                env,
                user: text("User"),
                working_dir: text("WorkingDir"),
                attach_stdout: true,
                attach_stderr: true,
                ..Default::default()
            },
            host_config: HostConfig {
                network_mode: network.to_owned(),
                binds: mounts.binds.clone(),
                tmpfs: mounts.tmpfs.clone(),
                ..Default::default()
            },
            ..Default::default()
        };
        let c = &self.builder.containers;
        let id = c.create(None, req).await?;
        self.log
            .stream(&format!(" ---> Running in {}\n", short(&id)));
        let outcome = self.execute(c, &id).await;
        let committed = match outcome {
            Ok(0) => {
                let meta = CommitMeta {
                    created_by,
                    container: id.clone(),
                    mount_stubs: mounts.stubs(),
                    ..Default::default()
                };
                c.commit_as(&id, st.config.clone(), meta).await
            }
            Ok(code) => Err(EngineError::BuildStep {
                command: argv.join(" "),
                code: code.into(),
            }),
            Err(e) => Err(e),
        };
        if let Err(e) = c.remove(&id, true, false).await {
            tracing::warn!("removing build container {id}: {e}");
        }
        let image = committed?;
        self.log
            .stream(&format!("Removing intermediate container {}\n", short(&id)));
        self.cache().put(&key, &image)?;
        Ok(image)
    }

    /// Starts container `id` with its output streamed; its exit code.
    async fn execute(&self, c: &Arc<Containers>, id: &str) -> Result<i32> {
        let attached = c
            .attach(
                id,
                AttachOptions {
                    stdin: false,
                    stdout: true,
                    stderr: true,
                    detach_keys: String::new(),
                },
            )
            .await?;
        let (mut ours, theirs) = tokio::io::duplex(64 << 10);
        // No input for the step: closed now, so the stream does not wait
        // for more of it after the output ends.
        ours.shutdown()
            .await
            .map_err(|e| failed(format!("closing a build step's input: {e}")))?;
        let pump = tokio::spawn(attached.without_detach_keys().run(theirs));
        c.start(id).await?;
        let mut hdr = [0u8; 8];
        let mut buf = Vec::new();
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(300));
        let mut killed = false;
        loop {
            tokio::select! {
                r = ours.read_exact(&mut hdr) => {
                    if r.is_err() {
                        break;
                    }
                    let n = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]) as usize;
                    buf.resize(n, 0);
                    if ours.read_exact(&mut buf).await.is_err() {
                        break;
                    }
                    self.log.stream(&String::from_utf8_lossy(&buf));
                }
                _ = tick.tick() => {
                    if !killed && self.log.cancelled() {
                        killed = true;
                        let _ = c.kill(id, Some("SIGKILL"));
                    }
                }
            }
        }
        let _ = pump.await;
        let (code, _) = c.wait(id, WaitCondition::NotRunning).await?;
        if killed {
            return Err(failed("the build was cancelled: the client went away"));
        }
        Ok(code)
    }

    /// Resolves the `--mount` flags of `ins`.
    async fn mounts(&mut self, st: &State, ins: &RawInstruction, m: &mut Mounts) -> Result<()> {
        for (k, spec) in &ins.flags {
            if k != "mount" {
                continue;
            }
            let spec = self.expand(st, ins, spec)?;
            let o = options(&spec);
            let target = o
                .get("target")
                .or_else(|| o.get("dst"))
                .or_else(|| o.get("destination"))
                .cloned()
                .ok_or_else(|| {
                    failed(format!("line {}: RUN --mount={spec}: no target", ins.line))
                })?;
            let kind = o.get("type").map(String::as_str).unwrap_or("bind");
            match kind {
                "cache" => {
                    let id = o.get("id").cloned().unwrap_or_else(|| target.clone());
                    let dir = self
                        .builder
                        .engine
                        .root()
                        .join("build-mounts")
                        .join(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(id.as_bytes())));
                    std::fs::create_dir_all(&dir)
                        .map_err(|e| crate::error::EngineError::io("creating", &dir, e))?;
                    m.binds.push(format!("{}:{target}", dir.display()));
                    // A cache's content never decides a step's result.
                    m.key.push(format!("cache {target}"));
                }
                "tmpfs" => {
                    m.tmpfs.insert(target.clone(), String::new());
                    m.key.push(format!("tmpfs {target}"));
                }
                "bind" => {
                    let source = o.get("source").or_else(|| o.get("src")).cloned().unwrap_or_default();
                    let rw = o.get("rw").or_else(|| o.get("readwrite")).is_some_and(|v| v == "true");
                    let suffix = if rw { "" } else { ":ro" };
                    match o.get("from") {
                        Some(from) => {
                            let image = match stage_ref(self.file, self.file.stages.len(), from) {
                                Some(j) => self.done.get(&j).cloned().ok_or_else(|| {
                                    failed(format!("line {}: stage {from} is not built yet", ins.line))
                                })?,
                                None => self.record_of_name(from).await?,
                            };
                            let helper = self.helper(&image).await?;
                            m.helpers.push(helper.clone());
                            let (_, root, _) = self.builder.containers.rootfs(&helper).await?;
                            let src = super::context::clean_relative(&source).ok_or_else(|| {
                                failed(format!("line {}: RUN --mount: source {source} climbs out of {from}", ins.line))
                            })?;
                            m.binds.push(format!("{}:{target}{suffix}", root.join(src).display()));
                            m.key.push(format!("bind {image} {source} {target}{suffix}"));
                        }
                        None => {
                            let src = super::context::clean_relative(&source).ok_or_else(|| {
                                failed(format!("line {}: RUN --mount: source {source} is outside the build context", ins.line))
                            })?;
                            let path = self.ctx.path().join(&src);
                            let sum = super::copy::checksum_of(self.ctx.path(), &path)?;
                            m.binds.push(format!("{}:{target}{suffix}", path.display()));
                            m.key.push(format!("bind context {source} {sum} {target}{suffix}"));
                        }
                    }
                }
                other => {
                    return Err(failed(format!(
                        "line {}: RUN --mount=type={other} is not supported (berth has cache, bind and tmpfs)",
                        ins.line
                    )))
                }
            }
        }
        Ok(())
    }

    /// A created (never started) container of image `image`, to read its files.
    pub(super) async fn helper(&self, image: &str) -> Result<String> {
        let req = CreateRequest {
            config: ContainerConfig {
                image: image.to_owned(),
                cmd: Some(vec!["/nonexistent".into()]),
                entrypoint: Some(vec![String::new()]),
                ..Default::default()
            },
            host_config: HostConfig {
                network_mode: "none".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        self.builder.containers.create(None, req).await
    }

    /// An image by name for `--from`: here, or pulled.
    pub(super) async fn record_of_name(&self, name: &str) -> Result<String> {
        if let Ok((_, rec)) = self.builder.engine.image(name) {
            return Ok(rec.config);
        }
        super::pull_for(&self.builder.engine, self.opts, name, None).await?;
        Ok(self.builder.engine.image(name)?.1.config)
    }
}
