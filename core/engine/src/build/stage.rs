//! One stage of a build: its base (an image, pulled if missing or asked
//! to, an earlier stage, or `scratch`), the base's `ONBUILD` triggers, then
//! each instruction — from the cache when it can be, else run — printing
//! docker's `Step N/M : …` lines.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use super::cache::{BuildCache, Key};
use super::{failed, flag, short, stage_ref, BuildLog, BuildOptions, Builder, Context};
use crate::dockerfile::expand::{arg_decls, expand_word, expand_words, split_pairs};
use crate::dockerfile::parse::{Dockerfile, RawInstruction};
use crate::dockerfile::{parse_change, Changes, Form, Instruction};
use crate::engine::CommitMeta;
use crate::error::Result;
use crate::images::ImageRecord;

/// A build in progress.
pub(super) struct Run<'a> {
    pub builder: &'a Builder,
    pub file: &'a Dockerfile,
    pub ctx: &'a Context,
    pub opts: &'a BuildOptions,
    pub log: &'a dyn BuildLog,
    /// The global `ARG`s' values (for `FROM` lines).
    pub globals: BTreeMap<String, String>,
    /// The image each finished stage made.
    pub done: BTreeMap<usize, String>,
    pub step: usize,
    pub total: usize,
    /// Build arguments some `ARG` declared.
    pub used_args: BTreeSet<String>,
    /// `MAINTAINER`'s value: the author of the images made from here on.
    pub author: String,
}

/// Where a stage is.
pub(super) struct State {
    /// The current image (`None`: `scratch` before any step).
    pub image: Option<String>,
    /// Its runtime config (docker's `Config`).
    pub config: Map<String, Value>,
    /// `ARG`s declared in this stage, with their values, in order.
    pub args: Vec<(String, String)>,
}

impl State {
    /// A variable as an instruction sees it: `ENV` before `ARG`.
    pub fn lookup(&self, name: &str) -> Option<String> {
        let env = self.config.get("Env").and_then(Value::as_array);
        for e in env.into_iter().flatten().rev() {
            if let Some((k, v)) = e.as_str().and_then(|s| s.split_once('=')) {
                if k == name {
                    return Some(v.to_owned());
                }
            }
        }
        self.args
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    /// The shell of shell-form instructions (`SHELL`, else `/bin/sh -c`).
    pub fn shell(&self) -> Vec<String> {
        self.config
            .get("Shell")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect::<Vec<_>>()
            })
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }

    /// The `|N K=V …` prefix docker writes before a `RUN`'s command in the
    /// history when build arguments are in effect.
    pub fn args_prefix(&self) -> String {
        if self.args.is_empty() {
            return String::new();
        }
        let pairs: Vec<String> = self.args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("|{} {} ", self.args.len(), pairs.join(" "))
    }
}

impl Run<'_> {
    pub fn cache(&self) -> BuildCache {
        BuildCache::open(self.builder.engine.root())
    }

    fn begin(&mut self, ins: &RawInstruction) -> Result<()> {
        if self.log.cancelled() {
            return Err(failed("the build was cancelled: the client went away"));
        }
        self.step += 1;
        self.log.stream(&format!(
            "Step {}/{} : {}\n",
            self.step, self.total, ins.original
        ));
        Ok(())
    }

    /// Expands `word` with the stage's variables.
    pub fn expand(&self, st: &State, ins: &RawInstruction, word: &str) -> Result<String> {
        expand_word(word, &|n: &str| st.lookup(n), self.file.escape)
            .map_err(|e| failed(format!("line {}: {}: {e}", ins.line, ins.keyword)))
    }

    /// Expands and splits `text` into words with the stage's variables.
    pub fn words(&self, st: &State, ins: &RawInstruction, text: &str) -> Result<Vec<String>> {
        expand_words(text, &|n: &str| st.lookup(n), self.file.escape)
            .map_err(|e| failed(format!("line {}: {}: {e}", ins.line, ins.keyword)))
    }

    /// The record of image `id`.
    pub fn record(&self, id: &str) -> Result<ImageRecord> {
        Ok(self.builder.engine.image(id)?.1)
    }

    /// The image a cached step made, if the cache may be used and has it.
    pub fn cached(&self, key: &str) -> Option<String> {
        if self.opts.no_cache {
            return None;
        }
        let id = self.cache().get(key)?;
        self.builder.engine.image(&id).ok()?;
        self.log.stream(" ---> Using cache\n");
        Some(id)
    }

    /// Runs stage `i`; returns its image.
    pub async fn stage(&mut self, i: usize) -> Result<String> {
        let s = &self.file.stages[i];
        self.begin(&s.from)?;
        let globals = self.globals.clone();
        let base = expand_word(
            &s.base,
            &|n: &str| globals.get(n).cloned(),
            self.file.escape,
        )
        .map_err(|e| failed(format!("line {}: FROM: {e}", s.from.line)))?;
        let image = if let Some(j) = stage_ref(self.file, i, &base) {
            Some(self.done[&j].clone())
        } else if base.eq_ignore_ascii_case("scratch") {
            None
        } else {
            Some(self.base_image(&base, s.platform.as_deref()).await?)
        };
        let config = match &image {
            Some(id) => {
                self.log.stream(&format!(" ---> {}\n", short(id)));
                self.image_config(id)?
            }
            None => Map::new(),
        };
        let mut st = State {
            image,
            config,
            args: Vec::new(),
        };
        let triggers: Vec<String> = st
            .config
            .remove("OnBuild")
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        if !triggers.is_empty() {
            self.log.stream(&format!(
                "# Executing {} build trigger{}\n",
                triggers.len(),
                if triggers.len() == 1 { "" } else { "s" }
            ));
            for t in &triggers {
                let parsed = crate::dockerfile::parse::parse(&format!("FROM scratch\n{t}\n"))
                    .map_err(|e| failed(format!("ONBUILD trigger {t:?}: {e}")))?;
                let ins = parsed.stages[0].instructions[0].clone();
                self.instruction(&mut st, &ins).await?;
            }
        }
        for ins in &s.instructions {
            self.begin(ins)?;
            self.instruction(&mut st, ins).await?;
        }
        let id = match st.image.clone() {
            Some(id) => id,
            // `FROM scratch` and nothing else: an empty image.
            None => self.config_step(&mut st, "#(nop) ", json!("")).await?,
        };
        self.done.insert(i, id.clone());
        Ok(id)
    }

    /// The image a `FROM` names: here, or pulled (also when `--pull`).
    async fn base_image(&self, name: &str, platform: Option<&str>) -> Result<String> {
        let engine = &self.builder.engine;
        if !self.opts.pull {
            if let Ok((_, rec)) = engine.image(name) {
                return Ok(rec.config);
            }
        }
        let platform = match platform {
            Some(p) => Some(
                expand_word(p, &|n: &str| self.globals.get(n).cloned(), self.file.escape)
                    .map_err(|e| failed(format!("FROM --platform: {e}")))?,
            ),
            // The build's --platform, if any, for FROMs without their own.
            None => (!self.opts.platform.is_empty()).then(|| self.opts.platform.clone()),
        };
        super::pull_for(engine, self.opts, name, platform.as_deref()).await?;
        Ok(engine.image(name)?.1.config)
    }

    /// The runtime config (docker's `Config`) of image `id`.
    pub fn image_config(&self, id: &str) -> Result<Map<String, Value>> {
        let rec = self.record(id)?;
        let raw: Value = serde_json::from_slice(&self.builder.engine.content().read(&rec.config)?)
            .map_err(|e| failed(format!("image {id}: config is not JSON: {e}")))?;
        Ok(raw
            .get("config")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default())
    }

    /// One instruction.
    async fn instruction(&mut self, st: &mut State, ins: &RawInstruction) -> Result<()> {
        let id = match ins.keyword.as_str() {
            "RUN" => self.run(st, ins).await?,
            "COPY" => self.copy(st, ins, false).await?,
            "ADD" => self.copy(st, ins, true).await?,
            "WORKDIR" => self.workdir(st, ins).await?,
            "MAINTAINER" => {
                let who = self.expand(st, ins, &ins.args)?;
                self.author = who;
                let shown = json!(format!("MAINTAINER {}", ins.args));
                self.config_step(st, "#(nop) ", shown).await?
            }
            "ARG" => {
                self.arg(st, ins)?;
                let shown = json!(format!("ARG {}", ins.args));
                self.config_step(st, "#(nop) ", shown).await?
            }
            _ => {
                let change = self.config_change(st, ins)?;
                let mut config = st.config.clone();
                match change {
                    Some(c) => Changes::apply(&mut config, &[c]),
                    None => self.special(&mut config, ins)?,
                }
                st.config = config;
                let shown = json!(format!("{} {}", ins.keyword, ins.args));
                self.config_step(st, "#(nop) ", shown).await?
            }
        };
        st.image = Some(id.clone());
        self.log.stream(&format!(" ---> {}\n", short(&id)));
        Ok(())
    }

    /// An image with the stage's config and no new layer (from the cache
    /// when the same parent and config made one).
    pub async fn config_step(&mut self, st: &mut State, how: &str, shown: Value) -> Result<String> {
        let created_by = format!("/bin/sh -c {how}{}", shown.as_str().unwrap_or(""));
        let parent = st.image.clone().unwrap_or_default();
        let key = Key::new(&parent)
            .add(
                "config",
                serde_json::to_string(&st.config)
                    .unwrap_or_default()
                    .as_bytes(),
            )
            .add("created-by", created_by.as_bytes())
            .add("author", self.author.as_bytes())
            .finish();
        if let Some(id) = self.cached(&key) {
            return Ok(id);
        }
        let base = match &st.image {
            Some(id) => Some(self.record(id)?),
            None => None,
        };
        let meta = CommitMeta {
            created_by,
            author: self.author.clone(),
            ..Default::default()
        };
        let id = self
            .builder
            .engine
            .derive_image(base.as_ref(), st.config.clone(), &meta)
            .await?;
        self.cache().put(&key, &id)?;
        Ok(id)
    }

    /// `ARG`: declares variables, valued by the build's arguments, else
    /// their defaults, else the global `ARG` of the same name.
    fn arg(&mut self, st: &mut State, ins: &RawInstruction) -> Result<()> {
        let decls = arg_decls(&ins.args, self.file.escape)
            .map_err(|e| failed(format!("line {}: ARG: {e}", ins.line)))?;
        for (k, default) in decls {
            self.used_args.insert(k.clone());
            let value = match self.opts.build_args.get(&k) {
                Some(Some(v)) => v.clone(),
                _ => match default {
                    Some(d) => self.expand(st, ins, &d)?,
                    None => self.globals.get(&k).cloned().unwrap_or_default(),
                },
            };
            st.args.retain(|(n, _)| *n != k);
            st.args.push((k, value));
        }
        Ok(())
    }

    /// The config change of `CMD`, `ENTRYPOINT`, `ENV`, `LABEL`, `EXPOSE`,
    /// `USER`, `VOLUME`, `STOPSIGNAL`, `HEALTHCHECK`, `ONBUILD` after
    /// docker's expansion; `None` for `SHELL` and `MAINTAINER`.
    fn config_change(&self, st: &State, ins: &RawInstruction) -> Result<Option<Instruction>> {
        let shell_form = |args: &str| -> Form {
            let mut argv = st.shell();
            argv.push(args.to_owned());
            Form::Exec(argv)
        };
        let bad = |e: String| failed(format!("line {}: {}: {e}", ins.line, ins.keyword));
        Ok(Some(match ins.keyword.as_str() {
            "CMD" => Instruction::Cmd(match &ins.json {
                Some(v) => Form::Exec(v.clone()),
                None => shell_form(&ins.args),
            }),
            "ENTRYPOINT" => Instruction::Entrypoint(match &ins.json {
                Some(v) => Form::Exec(v.clone()),
                None => shell_form(&ins.args),
            }),
            "ENV" | "LABEL" => {
                let pairs = split_pairs(&ins.args, self.file.escape).map_err(bad)?;
                let mut out = Vec::with_capacity(pairs.len());
                for (k, v) in pairs {
                    let k = self.expand(st, ins, &k)?;
                    out.push((k, self.expand(st, ins, &v)?));
                }
                if ins.keyword == "ENV" {
                    Instruction::Env(out)
                } else {
                    Instruction::Label(out)
                }
            }
            "EXPOSE" => {
                let words = self.words(st, ins, &ins.args)?;
                match parse_change(&format!("EXPOSE {}", words.join(" "))).map_err(bad)? {
                    i @ Instruction::Expose(_) => i,
                    _ => unreachable!("an EXPOSE line parses as EXPOSE"),
                }
            }
            "USER" => Instruction::User(self.expand(st, ins, &ins.args)?),
            "STOPSIGNAL" => Instruction::StopSignal(self.expand(st, ins, &ins.args)?),
            "VOLUME" => Instruction::Volume(match &ins.json {
                Some(v) => v.clone(),
                None => self.words(st, ins, &ins.args)?,
            }),
            "HEALTHCHECK" => {
                let mut line = String::from("HEALTHCHECK");
                for (k, v) in &ins.flags {
                    line.push_str(&format!(" --{k}={v}"));
                }
                line.push(' ');
                line.push_str(&ins.args);
                parse_change(&line).map_err(bad)?
            }
            "ONBUILD" => parse_change(&format!("ONBUILD {}", ins.args)).map_err(bad)?,
            "SHELL" | "MAINTAINER" => return Ok(None),
            other => return Err(bad(format!("unknown instruction: {other}"))),
        }))
    }

    /// `SHELL` and `MAINTAINER`, which `commit --change` does not take.
    fn special(&self, config: &mut Map<String, Value>, ins: &RawInstruction) -> Result<()> {
        if ins.keyword == "SHELL" {
            let v = ins.json.clone().ok_or_else(|| {
                failed(format!(
                    "line {}: SHELL requires the arguments to be in JSON form",
                    ins.line
                ))
            })?;
            config.insert("Shell".into(), json!(v));
        }
        Ok(())
    }

    /// `LABEL`s from `--label`, on the result.
    pub async fn label_result(&mut self, id: &str) -> Result<String> {
        let mut config = self.image_config(id)?;
        let pairs = self
            .opts
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Changes::apply(&mut config, &[Instruction::Label(pairs)]);
        let mut st = State {
            image: Some(id.to_owned()),
            config,
            args: Vec::new(),
        };
        let shown = json!(format!(
            "LABEL {}",
            self.opts
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
        self.config_step(&mut st, "#(nop) ", shown).await
    }

    /// The value of flag `name` of `ins`, expanded.
    pub fn flag(&self, st: &State, ins: &RawInstruction, name: &str) -> Result<Option<String>> {
        flag(ins, name).map(|v| self.expand(st, ins, v)).transpose()
    }
}
