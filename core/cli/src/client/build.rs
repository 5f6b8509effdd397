//! `berth build`, as docker's classic build client: the context directory
//! is sent as a tar stream made while it is sent (never held in memory),
//! left out what its `.dockerignore` excludes (the Dockerfile and
//! `.dockerignore` are always sent; the daemon drops them after reading
//! when they are excluded); a `-f` outside the context (or `-f -`) travels
//! as `.dockerfile.<random>`; `-` reads a tar context, or a lone
//! Dockerfile, from stdin. The daemon's JSON lines are printed as they come.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use berth_engine::dockerfile::ignore::Ignore;
use bytes::Bytes;
use http_body_util::StreamBody;
use hyper::body::Frame;
use hyper::Method;
use tokio::sync::mpsc;

use super::http::{enc, Client, JsonLines};
use crate::api::images::JsonMessage;

/// docker's `build` flags.
#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// Name and optionally a tag (NAME[:TAG]); repeatable.
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// Name of the Dockerfile (default: PATH/Dockerfile; - for stdin).
    #[arg(short = 'f', long = "file")]
    pub file: Option<String>,
    /// Set a build-time variable (K=V, or K to take it from the environment).
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    /// Set the target build stage to build.
    #[arg(long)]
    pub target: Option<String>,
    /// Do not use the cache when building the image.
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Always attempt to pull a newer version of the base images.
    #[arg(long)]
    pub pull: bool,
    /// Set metadata for an image (K=V).
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Suppress the build output and print the image ID on success.
    #[arg(short, long)]
    pub quiet: bool,
    /// Set the platform (os/arch) of the base images.
    #[arg(long)]
    pub platform: Option<String>,
    /// The network RUN steps use (default, none, host, or a network).
    #[arg(long)]
    pub network: Option<String>,
    /// Write the image ID to this file.
    #[arg(long)]
    pub iidfile: Option<PathBuf>,
    /// Always remove intermediate containers (berth always does).
    #[arg(long = "force-rm")]
    pub force_rm: bool,
    /// PATH of the context directory, or - to read a tar or a Dockerfile from stdin.
    pub context: String,
}

/// The context as it will be sent.
enum Source {
    /// A directory, walked into a tar; `extra` is the Dockerfile from
    /// outside it (name in the tar, content).
    Dir {
        dir: PathBuf,
        ignore: Option<Ignore>,
        extra: Option<(String, Vec<u8>)>,
        dockerignore: Option<Vec<u8>>,
    },
    /// A tar (maybe compressed) read from stdin, sent as it is.
    Stdin(Vec<u8>),
    /// Only a Dockerfile (from stdin).
    Lone(Vec<u8>),
}

/// What `name` would be, relative to `dir`, with both made absolute and
/// symlinks resolved; `None` when it is outside.
fn inside(dir: &Path, name: &Path) -> Option<String> {
    let d = std::fs::canonicalize(dir).ok()?;
    let n = std::fs::canonicalize(name).ok()?;
    n.strip_prefix(&d)
        .ok()
        .map(|r| r.to_string_lossy().into_owned())
}

fn random_name() -> Result<String> {
    let mut b = [0u8; 10];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .context("reading /dev/urandom")?;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(".dockerfile.{hex}"))
}

fn read_stdin() -> Result<Vec<u8>> {
    let mut b = Vec::new();
    std::io::stdin()
        .read_to_end(&mut b)
        .context("reading stdin")?;
    Ok(b)
}

/// Whether `b` starts like a tar or a compressed stream (docker's test).
fn is_archive(b: &[u8]) -> bool {
    b.starts_with(&[0x1f, 0x8b])
        || b.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || b.starts_with(b"BZh")
        || b.starts_with(&[0xfd, b'7', b'z', b'X', b'Z'])
        || (b.len() >= 262 && &b[257..262] == b"ustar")
}

/// Works out what is sent and the Dockerfile's name in it.
fn source(a: &BuildArgs) -> Result<(Source, String)> {
    let from_stdin = a.file.as_deref() == Some("-");
    if a.context == "-" {
        if from_stdin {
            bail!("invalid argument: can't use stdin for both build context and dockerfile");
        }
        let data = read_stdin()?;
        if is_archive(&data) {
            return Ok((Source::Stdin(data), a.file.clone().unwrap_or_default()));
        }
        return Ok((Source::Lone(data), "Dockerfile".into()));
    }
    if a.context.contains("://") || a.context.starts_with("git@") {
        bail!(
            "unable to prepare context: remote contexts ({}) are not supported; \
             give a local directory or - for stdin",
            a.context
        );
    }
    let dir = PathBuf::from(&a.context);
    match std::fs::metadata(&dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => bail!(
            "unable to prepare context: context must be a directory: {}",
            dir.display()
        ),
        Err(e) => bail!(
            "unable to prepare context: path {:?} not found: {e}",
            a.context
        ),
    }
    let read_ignore = || -> Result<Option<(Vec<u8>, Ignore)>> {
        let p = dir.join(".dockerignore");
        match std::fs::read(&p) {
            Ok(b) => {
                let i = Ignore::parse(&String::from_utf8_lossy(&b))
                    .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
                Ok(Some((b, i)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
        }
    };
    let ignored = read_ignore()?;
    let (raw_ignore, ignore) = match ignored {
        Some((b, i)) => (Some(b), Some(i)),
        None => (None, None),
    };
    let outside = |content: Vec<u8>| -> Result<(Source, String)> {
        let name = random_name()?;
        // Listed in .dockerignore so `COPY .` leaves it out, as docker does.
        let mut di = raw_ignore.clone().unwrap_or_default();
        di.extend_from_slice(format!("\n.dockerignore\n{name}\n").as_bytes());
        Ok((
            Source::Dir {
                dir: dir.clone(),
                ignore: ignore.clone(),
                extra: Some((name.clone(), content)),
                dockerignore: Some(di),
            },
            name,
        ))
    };
    if from_stdin {
        return outside(read_stdin()?);
    }
    let file = match &a.file {
        // Relative to the current directory, as docker reads -f.
        Some(f) => PathBuf::from(f),
        None => {
            let upper = dir.join("Dockerfile");
            if upper.exists() {
                upper
            } else {
                dir.join("dockerfile")
            }
        }
    };
    if !file.is_file() {
        bail!(
            "unable to prepare context: Cannot locate specified Dockerfile: {}",
            file.display()
        );
    }
    match inside(&dir, &file) {
        Some(rel) => Ok((
            Source::Dir {
                dir,
                ignore,
                extra: None,
                dockerignore: None,
            },
            rel,
        )),
        None => {
            outside(std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?)
        }
    }
}

/// A writer that hands what it is given to the request body in chunks.
struct ChannelWriter {
    tx: mpsc::Sender<std::io::Result<Bytes>>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::other("the daemon stopped reading the context"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A header for a file of the context: its mode, size, mtime and type,
/// owned by root as docker's client sends it.
fn header_of(meta: &std::fs::Metadata) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
    h.set_uid(0);
    h.set_gid(0);
    let _ = h.set_username("");
    let _ = h.set_groupname("");
    h
}

/// Writes `dir` (minus what `ignore` excludes, but never `keep`) into `b`.
fn walk(
    b: &mut tar::Builder<impl Write>,
    base: &Path,
    dir: &Path,
    ignore: Option<&Ignore>,
    keep: &[&str],
    skip: &[&str],
) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("reading {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let rel = p
            .strip_prefix(base)
            .expect("under the context")
            .to_string_lossy()
            .into_owned();
        if skip.contains(&rel.as_str()) {
            continue;
        }
        let meta =
            std::fs::symlink_metadata(&p).with_context(|| format!("reading {}", p.display()))?;
        let excluded = ignore.is_some_and(|i| i.excluded(&rel)) && !keep.contains(&rel.as_str());
        if excluded {
            // An exception may take back something inside.
            if meta.is_dir() && ignore.is_some_and(Ignore::has_exceptions) {
                walk(b, base, &p, ignore, keep, skip)?;
            }
            continue;
        }
        let mut h = header_of(&meta);
        let ft = meta.file_type();
        if ft.is_dir() {
            h.set_size(0);
            b.append_data(&mut h, format!("{rel}/"), std::io::empty())?;
            walk(b, base, &p, ignore, keep, skip)?;
        } else if ft.is_symlink() {
            let target =
                std::fs::read_link(&p).with_context(|| format!("reading {}", p.display()))?;
            h.set_size(0);
            b.append_link(&mut h, &rel, &target)?;
        } else if ft.is_file() {
            let f = std::fs::File::open(&p)
                .with_context(|| format!("can't open {}: check its permissions", p.display()))?;
            b.append_data(&mut h, &rel, f)?;
        }
        // Sockets, FIFOs and devices are not sent, as docker's client.
    }
    Ok(())
}

/// Makes the tar of `src` into `out`.
fn write_context(src: Source, dockerfile: &str, out: impl Write) -> Result<()> {
    let mut b = tar::Builder::new(std::io::BufWriter::with_capacity(256 << 10, out));
    match src {
        Source::Stdin(data) => {
            let mut w = b.into_inner()?;
            w.write_all(&data)?;
            w.flush()?;
            return Ok(());
        }
        Source::Lone(data) => {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o600);
            h.set_size(data.len() as u64);
            b.append_data(&mut h, dockerfile, &data[..])?;
        }
        Source::Dir {
            dir,
            ignore,
            extra,
            dockerignore,
        } => {
            let mut skip = Vec::new();
            if let Some(di) = &dockerignore {
                skip.push(".dockerignore");
                let mut h = tar::Header::new_gnu();
                h.set_mode(0o600);
                h.set_size(di.len() as u64);
                b.append_data(&mut h, ".dockerignore", &di[..])?;
            }
            if let Some((name, content)) = &extra {
                let mut h = tar::Header::new_gnu();
                h.set_mode(0o600);
                h.set_size(content.len() as u64);
                b.append_data(&mut h, name, &content[..])?;
            }
            walk(
                &mut b,
                &dir,
                &dir,
                ignore.as_ref(),
                &[dockerfile, ".dockerignore"],
                &skip,
            )?;
        }
    }
    b.into_inner()?.flush()?;
    Ok(())
}

/// `K=V` pairs as docker's JSON map; `K` alone takes `$K` (build args,
/// null when unset) or "" (labels).
fn kv_json(items: &[String], from_env: bool) -> String {
    serde_json::to_string(&kv_map(items, from_env)).expect("a map of strings")
}

/// `K=V` pairs as a map; `K` alone takes `$K` (build args, `None` when
/// unset) or "" (labels).
fn kv_map(items: &[String], from_env: bool) -> BTreeMap<String, Option<String>> {
    let mut m: BTreeMap<String, Option<String>> = BTreeMap::new();
    for it in items {
        match it.split_once('=') {
            Some((k, v)) => m.insert(k.to_owned(), Some(v.to_owned())),
            None if from_env => m.insert(it.clone(), std::env::var(it).ok()),
            None => m.insert(it.clone(), Some(String::new())),
        };
    }
    m
}

/// Build output on our stdout (the daemonless build).
struct Printed {
    quiet: bool,
}

impl berth_engine::build::BuildLog for Printed {
    fn stream(&self, text: &str) {
        if !self.quiet {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
    }
}

/// `berth build` without a daemon (`--root`): the context goes through a
/// pipe straight into the engine's unpacker, and the build runs here with
/// the local lifecycle. `RUN` steps get `--network none` unless `host` is
/// asked for (there is no daemon to own a bridge).
pub fn build_local(engine: berth_engine::Engine, a: &BuildArgs) -> Result<i32> {
    use berth_engine::build::{BuildOptions, Builder, Context as BuildContext};
    let network = match a.network.as_deref() {
        None | Some("default") | Some("none") => "none",
        Some("host") => "host",
        Some(other) => bail!(
            "without a daemon, build steps have --network none or host, not {other:?}: start \
             `berth daemon` and give -H (or BERTH_HOST) for networks"
        ),
    };
    for t in &a.tags {
        berth_engine::reference::Reference::parse(t)
            .map_err(|e| anyhow::anyhow!("invalid argument {t:?} for \"-t, --tag\" flag: {e}"))?;
    }
    let (src, dockerfile) = source(a)?;
    let opts = BuildOptions {
        dockerfile: dockerfile.clone(),
        tags: a.tags.clone(),
        build_args: kv_map(&a.build_args, true),
        target: a.target.clone().unwrap_or_default(),
        no_cache: a.no_cache,
        pull: a.pull,
        labels: kv_map(&a.labels, false)
            .into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect(),
        network: network.to_owned(),
        registry_auth: Default::default(),
        platform: a.platform.clone().unwrap_or_default(),
    };
    let engine = std::sync::Arc::new(engine);
    let exe = std::env::current_exe().context("finding the berth executable")?;
    let rt = crate::async_runtime()?;
    let r = rt.block_on(async {
        let (reader, writer) = nix::unistd::pipe().context("making a pipe for the context")?;
        let (reader, writer) = (std::fs::File::from(reader), std::fs::File::from(writer));
        let name = dockerfile.clone();
        let maker = std::thread::spawn(move || write_context(src, &name, writer));
        let dir = engine.root().join("build");
        let ctx =
            tokio::task::spawn_blocking(move || BuildContext::unpack(reader, &dir, &dockerfile))
                .await
                .context("unpacking the build context")?;
        let made = maker
            .join()
            .map_err(|_| anyhow::anyhow!("making the build context panicked"))?;
        let ctx = match (ctx, made) {
            (Ok(c), Ok(())) => c,
            (_, Err(e)) => return Err(e.context("making the build context")),
            (Err(e), Ok(())) => return Err(e.into()),
        };
        let containers =
            berth_engine::containers::Containers::open_local(engine.clone(), exe).await?;
        let builder = Builder::new(engine, containers);
        let log = Printed { quiet: a.quiet };
        match builder.build(&ctx, &opts, &log).await {
            Ok(id) => {
                if a.quiet {
                    println!("{id}");
                }
                if let Some(f) = &a.iidfile {
                    std::fs::write(f, &id).with_context(|| format!("writing {}", f.display()))?;
                }
                Ok(0)
            }
            Err(berth_engine::EngineError::BuildStep { command, code }) => {
                eprintln!("The command '{command}' returned a non-zero code: {code}");
                Ok(if code == 0 { 1 } else { code as i32 })
            }
            Err(e) => Err(e.into()),
        }
    });
    rt.shutdown_background();
    r
}

/// The query of `POST /build` for these flags.
fn query(a: &BuildArgs, dockerfile: &str) -> String {
    let mut q = vec![
        "version=1".to_string(),
        "rm=1".to_string(),
        format!("dockerfile={}", enc(dockerfile)),
    ];
    q.extend(a.tags.iter().map(|t| format!("t={}", enc(t))));
    if !a.build_args.is_empty() {
        q.push(format!("buildargs={}", enc(&kv_json(&a.build_args, true))));
    }
    if !a.labels.is_empty() {
        q.push(format!("labels={}", enc(&kv_json(&a.labels, false))));
    }
    for (k, v) in [
        ("target", &a.target),
        ("platform", &a.platform),
        ("networkmode", &a.network),
    ] {
        if let Some(v) = v {
            q.push(format!("{k}={}", enc(v)));
        }
    }
    for (k, on) in [
        ("nocache", a.no_cache),
        ("pull", a.pull),
        ("q", a.quiet),
        ("forcerm", a.force_rm),
    ] {
        if on {
            q.push(format!("{k}=1"));
        }
    }
    q.join("&")
}

pub async fn build(c: &Client, a: &BuildArgs) -> Result<i32> {
    for t in &a.tags {
        berth_engine::reference::Reference::parse(t)
            .map_err(|e| anyhow::anyhow!("invalid argument {t:?} for \"-t, --tag\" flag: {e}"))?;
    }
    let (src, dockerfile) = source(a)?;
    let auth = super::credentials::registry_config_header()?;
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(8);
    let name = dockerfile.clone();
    let maker = tokio::task::spawn_blocking(move || {
        let err_tx = tx.clone();
        let made = write_context(src, &name, ChannelWriter { tx });
        if made.is_err() && !err_tx.is_closed() {
            // Ends the request body with an error: the daemon sees a
            // broken context, not a short one.
            let _ = err_tx.blocking_send(Err(std::io::Error::other("the context is incomplete")));
        }
        // A closed channel: the daemon went away; its answer says why.
        (made, err_tx.is_closed())
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item.map(Frame::data), rx))
    });
    let path = format!("/build?{}", query(a, &dockerfile));
    let sent = c
        .send_stream(
            Method::POST,
            &path,
            &[
                ("Content-Type", "application/x-tar"),
                ("X-Registry-Config", &auth),
            ],
            StreamBody::new(stream),
        )
        .await;
    let (made, daemon_gone) = maker.await.context("making the build context")?;
    let body = match (sent, made) {
        (Ok(body), Ok(())) => body,
        (Err(e), _) if daemon_gone => return Err(e),
        (_, Err(e)) => return Err(e.context("sending the build context")),
        (Err(e), Ok(())) => return Err(e),
    };
    let mut id = None;
    let mut lines = JsonLines::new(body);
    while let Some(m) = lines.next::<JsonMessage>().await {
        let m = m?;
        if let Some(e) = m.error {
            let code = m.error_detail.and_then(|d| d.code).unwrap_or(1);
            eprintln!("{e}");
            return Ok(if code == 0 { 1 } else { code as i32 });
        }
        if let Some(s) = m.stream {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(s.as_bytes());
            let _ = out.flush();
        }
        if let Some(aux) = m.aux {
            if let Some(i) = aux["ID"].as_str() {
                id = Some(i.to_owned());
            }
        }
    }
    let Some(id) = id else {
        bail!("the daemon ended the build without an image id");
    };
    if let Some(f) = &a.iidfile {
        std::fs::write(f, &id).with_context(|| format!("writing {}", f.display()))?;
    }
    Ok(0)
}

/// `berth builder …`.
#[derive(clap::Subcommand, Debug)]
pub enum BuilderCmd {
    /// Remove the build cache.
    Prune {
        /// Also what is in use (accepted: berth's cache holds no space of its own).
        #[arg(short, long)]
        all: bool,
        /// Do not prompt for confirmation.
        #[arg(short, long)]
        force: bool,
    },
}

pub async fn builder(c: &Client, cmd: &BuilderCmd) -> Result<i32> {
    let BuilderCmd::Prune { all, force } = cmd;
    let warning = "WARNING! This will remove all dangling build cache.";
    if !super::system::confirm(warning, *force)? {
        return Ok(0);
    }
    let path = if *all {
        "/build/prune?all=1"
    } else {
        "/build/prune"
    };
    let r: crate::api::images::BuildPruneResponse = c.json(Method::POST, path, None).await?;
    say!(
        "Total:\t{}",
        crate::api::units::human_size(r.space_reclaimed)
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(tar: &[u8]) -> Vec<String> {
        let mut ar = tar::Archive::new(tar);
        ar.entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn the_context_leaves_out_what_dockerignore_excludes_but_not_the_dockerfile() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        for (f, body) in [
            ("Dockerfile", "FROM scratch\n"),
            (
                ".dockerignore",
                "*.md\n!KEEP.md\nDockerfile\nbuild\n!build/keep\n",
            ),
            ("README.md", "r"),
            ("KEEP.md", "k"),
            ("src/a.rs", "a"),
            ("build/out", "o"),
            ("build/keep", "x"),
        ] {
            std::fs::create_dir_all(p.join(f).parent().unwrap()).unwrap();
            std::fs::write(p.join(f), body).unwrap();
        }
        std::os::unix::fs::symlink("src/a.rs", p.join("link")).unwrap();
        let src = Source::Dir {
            dir: p.to_path_buf(),
            ignore: Some(
                Ignore::parse(&std::fs::read_to_string(p.join(".dockerignore")).unwrap()).unwrap(),
            ),
            extra: None,
            dockerignore: None,
        };
        let mut out = Vec::new();
        write_context(src, "Dockerfile", &mut out).unwrap();
        let mut n = names(&out);
        n.sort();
        assert_eq!(
            n,
            [
                ".dockerignore",
                "Dockerfile",
                "KEEP.md",
                "build/keep",
                "link",
                "src/",
                "src/a.rs"
            ]
        );
    }

    #[test]
    fn a_dockerfile_from_outside_travels_under_a_random_name() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a"), "a").unwrap();
        let src = Source::Dir {
            dir: d.path().to_path_buf(),
            ignore: None,
            extra: Some((".dockerfile.abc".into(), b"FROM scratch\n".to_vec())),
            dockerignore: Some(b"\n.dockerignore\n.dockerfile.abc\n".to_vec()),
        };
        let mut out = Vec::new();
        write_context(src, ".dockerfile.abc", &mut out).unwrap();
        assert_eq!(names(&out), [".dockerignore", ".dockerfile.abc", "a"]);
    }

    #[test]
    fn build_args_without_a_value_come_from_the_environment() {
        std::env::set_var("BERTH_TEST_BUILD_ARG", "env");
        let j = kv_json(
            &[
                "A=1".into(),
                "BERTH_TEST_BUILD_ARG".into(),
                "BERTH_TEST_UNSET_ARG".into(),
            ],
            true,
        );
        assert_eq!(
            j,
            r#"{"A":"1","BERTH_TEST_BUILD_ARG":"env","BERTH_TEST_UNSET_ARG":null}"#
        );
        assert_eq!(kv_json(&["L".into()], false), r#"{"L":""}"#);
    }

    #[test]
    fn archives_are_told_from_dockerfiles() {
        assert!(is_archive(&[0x1f, 0x8b, 8]));
        assert!(!is_archive(b"FROM busybox\nRUN true\n"));
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(1);
        h.set_cksum();
        b.append_data(&mut h, "x", &b"x"[..]).unwrap();
        assert!(is_archive(&b.into_inner().unwrap()));
    }
}
