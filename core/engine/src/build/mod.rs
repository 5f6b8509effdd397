//! Dockerfile builds (docker's classic builder, `POST /build`, plus what
//! users otherwise need BuildKit for): the stages the target needs, in
//! order; each instruction makes an image (an intermediate one, hidden from
//! `images`), taken from the cache when the same parent, instruction, build
//! arguments and copied content made one before. `RUN` steps run as
//! containers through the lifecycle (the default bridge unless the build
//! says otherwise) and are committed through the storage plugin's `diff`;
//! `COPY`/`ADD` go in through the chrooted archive helper.
//!
//! `context` prepares the build context, `stage` runs one stage's
//! instructions, `run` and `copy` the two that touch files, `cache` keeps
//! what made which image.

pub mod cache;
pub mod context;
mod copy;
mod run;
mod stage;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use crate::containers::Containers;
use crate::dockerfile::expand::{arg_decls, expand_word};
use crate::dockerfile::parse::{self, Dockerfile, RawInstruction};
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::reference::Reference;

pub use context::Context;

/// docker's build parameters.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The Dockerfile's path in the context (`Dockerfile` when empty).
    pub dockerfile: String,
    /// Names the result gets (`REPO[:TAG]`).
    pub tags: Vec<String>,
    /// `--build-arg K=V` (`None`: declared without a value, which leaves the
    /// Dockerfile's default).
    pub build_args: BTreeMap<String, Option<String>>,
    /// The stage to stop at (the last when empty).
    pub target: String,
    /// Run every step, using no cache.
    pub no_cache: bool,
    /// Pull every base image even if it is here.
    pub pull: bool,
    /// Labels added to the result.
    pub labels: BTreeMap<String, String>,
    /// The network `RUN` steps use (`default`/empty: the bridge; `none`, `host`, a network).
    pub network: String,
    /// Credentials for pulls, by registry host (docker's `X-Registry-Config`).
    pub registry_auth: BTreeMap<String, berth_host::Credentials>,
    /// The platform base images are pulled for (`--platform`; empty: the
    /// host's), unless a `FROM --platform` says otherwise.
    pub platform: String,
}

/// Pulls `name` for a build, with the client's credentials for its
/// registry when it sent some.
pub(crate) async fn pull_for(
    engine: &Engine,
    opts: &BuildOptions,
    name: &str,
    platform: Option<&str>,
) -> Result<()> {
    let credentials = Reference::parse(name)
        .ok()
        .and_then(|r| opts.registry_auth.get(&r.registry).cloned());
    engine
        .pull_as(name, platform, credentials, Arc::new(crate::Quiet))
        .await
        .map(|_| ())
        .map_err(|e| failed(format!("pulling {name}: {e}")))
}

/// Where a build's output goes: docker's `{"stream": …}` lines.
pub trait BuildLog: Send + Sync {
    /// Text for the client (lines end with `\n`).
    fn stream(&self, text: &str);
    /// Whether the client went away: the build stops (a running step's
    /// container is killed and removed) and fails.
    fn cancelled(&self) -> bool {
        false
    }
}

/// The build arguments docker predefines (usable without an `ARG`).
const PREDEFINED: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// A failed build: what failed, as docker says it.
pub(crate) fn failed(reason: impl Into<String>) -> EngineError {
    EngineError::Build {
        reason: reason.into(),
    }
}

/// The short form of an image id (`sha256:` dropped, 12 characters).
pub(crate) fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

/// Runs builds for one engine and its containers.
#[derive(Debug)]
pub struct Builder {
    pub(crate) engine: Arc<Engine>,
    pub(crate) containers: Arc<Containers>,
}

impl Builder {
    pub fn new(engine: Arc<Engine>, containers: Arc<Containers>) -> Builder {
        Builder { engine, containers }
    }

    /// Builds `ctx` as `opts` say; returns the image id. Nothing is tagged
    /// unless every step worked; no build container is left either way.
    pub async fn build(
        &self,
        ctx: &Context,
        opts: &BuildOptions,
        log: &dyn BuildLog,
    ) -> Result<String> {
        let name = if opts.dockerfile.is_empty() {
            "Dockerfile"
        } else {
            opts.dockerfile.as_str()
        };
        let text = ctx.dockerfile(name)?;
        let file = parse::parse(&text).map_err(|e| failed(format!("{name}: {e}")))?;
        let tags = opts
            .tags
            .iter()
            .map(|t| Reference::parse(t).map(|r| (r.full(), r.short())))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let target = self.target_index(&file, &opts.target)?;
        let needed = needed_stages(&file, target)?;
        let globals = global_args(&file, opts)?;
        let total: usize = needed
            .iter()
            .map(|&i| 1 + file.stages[i].instructions.len())
            .sum();
        let mut run = stage::Run {
            builder: self,
            file: &file,
            ctx,
            opts,
            log,
            globals,
            done: BTreeMap::new(),
            step: 0,
            total,
            used_args: BTreeSet::new(),
            author: String::new(),
        };
        let mut id = String::new();
        for &i in &needed {
            id = run.stage(i).await?;
        }
        let unused: Vec<&String> = opts
            .build_args
            .keys()
            .filter(|k| !run.used_args.contains(*k) && !PREDEFINED.contains(&k.as_str()))
            .collect();
        if !unused.is_empty() {
            log.stream(&format!(
                "[Warning] One or more build-args [{}] were not consumed\n",
                unused
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
        }
        if !opts.labels.is_empty() {
            id = run.label_result(&id).await?;
        }
        log.stream(&format!("Successfully built {}\n", short(&id)));
        for (full, shown) in &tags {
            self.engine.tag(&id, full)?;
            log.stream(&format!("Successfully tagged {shown}\n"));
        }
        Ok(id)
    }

    /// The stage `target` names (the last when empty).
    fn target_index(&self, file: &Dockerfile, target: &str) -> Result<usize> {
        if target.is_empty() {
            return Ok(file.stages.len() - 1);
        }
        let t = target.to_ascii_lowercase();
        file.stages
            .iter()
            .position(|s| s.name.as_deref() == Some(t.as_str()))
            .ok_or_else(|| {
                failed(format!(
                    "failed to reach build target {target} in Dockerfile"
                ))
            })
    }
}

/// The stage a `--from`/`FROM` value names: by name or index, if it is one.
pub(crate) fn stage_ref(file: &Dockerfile, before: usize, value: &str) -> Option<usize> {
    let v = value.to_ascii_lowercase();
    if let Some(i) = file.stages[..before]
        .iter()
        .position(|s| s.name.as_deref() == Some(v.as_str()))
    {
        return Some(i);
    }
    v.parse::<usize>().ok().filter(|i| *i < before)
}

/// The flag values of an instruction named `name`.
pub(crate) fn flag<'a>(ins: &'a RawInstruction, name: &str) -> Option<&'a str> {
    ins.flags
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The stages `target` depends on (through `FROM`, `COPY --from` and
/// `RUN --mount=…,from=`), and itself, in Dockerfile order: the others are
/// not built.
fn needed_stages(file: &Dockerfile, target: usize) -> Result<Vec<usize>> {
    let mut need = BTreeSet::new();
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if !need.insert(i) {
            continue;
        }
        let s = &file.stages[i];
        if let Some(j) = stage_ref(file, i, &s.base).filter(|_| !s.base.contains('$')) {
            todo.push(j);
        }
        for ins in &s.instructions {
            let mut froms: Vec<String> = Vec::new();
            if matches!(ins.keyword.as_str(), "COPY" | "ADD") {
                froms.extend(flag(ins, "from").map(str::to_owned));
            }
            if ins.keyword == "RUN" {
                for (k, v) in &ins.flags {
                    if k == "mount" {
                        froms.extend(
                            v.split(',')
                                .filter_map(|kv| kv.strip_prefix("from="))
                                .map(str::to_owned),
                        );
                    }
                }
            }
            for f in froms {
                if let Some(j) = stage_ref(file, i, &f) {
                    todo.push(j);
                }
            }
        }
    }
    Ok(need.into_iter().collect())
}

/// The values of the `ARG`s before the first `FROM` (defaults, or the
/// build's values), for `FROM` lines.
fn global_args(file: &Dockerfile, opts: &BuildOptions) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for ins in &file.global_args {
        let decls = arg_decls(&ins.args, file.escape)
            .map_err(|e| failed(format!("line {}: ARG: {e}", ins.line)))?;
        for (k, default) in decls {
            let value = match opts.build_args.get(&k) {
                Some(Some(v)) => Some(v.clone()),
                _ => match default {
                    Some(d) => Some(
                        expand_word(&d, &|n: &str| out.get(n).cloned(), file.escape)
                            .map_err(|e| failed(format!("line {}: {e}", ins.line)))?,
                    ),
                    None => None,
                },
            };
            out.insert(k, value.unwrap_or_default());
        }
    }
    Ok(out)
}

/// `a/b` relative paths of files under `dir` (for messages and globs).
pub(crate) fn rel(dir: &Path, p: &Path) -> String {
    p.strip_prefix(dir)
        .unwrap_or(p)
        .to_string_lossy()
        .into_owned()
}
