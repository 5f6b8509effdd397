//! `COPY` and `ADD`: sources from the context (globs, never out of it —
//! not by `..`, not through a symlink), from another stage or image
//! (`--from`), or heredocs; `--chown`, `--chmod`, `--exclude`, `--parents`;
//! `ADD` unpacks a local tar archive (plain, gzip or zstd). The cache key
//! holds a checksum of what is copied — names, content, modes, owners,
//! never times — so touching a file changes nothing and editing one reruns
//! the build from here. The files go in as a tar through the chrooted
//! archive helper, then the container's layer is committed. Files from
//! another image or an archive stay in a spool file on disk until copied.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::cache::Key;
use super::context::clean_relative;
use super::stage::{Run, State};
use super::{failed, stage_ref};
use crate::dockerfile::ignore::Ignore;
use crate::dockerfile::parse::RawInstruction;
use crate::engine::CommitMeta;
use crate::error::{EngineError, Result};

/// One thing to copy, named relative to where it lands.
struct Item {
    /// Its name under the destination directory (`a/b`), or the file's own
    /// name for a single file.
    rel: String,
    kind: Kind,
    mode: u32,
    mtime: u64,
    /// The owner it had in a tar it came from (another image, an archive
    /// `ADD` unpacks): kept unless `--chown` says otherwise, as docker's
    /// classic builder does. Files of the context are root's.
    owner: Option<(u64, u64)>,
}

enum Kind {
    Dir,
    File(PathBuf),
    Bytes(Vec<u8>),
    Symlink(PathBuf),
    /// A regular file of a spooled tar (another image's files, an archive
    /// `ADD` unpacks): the spool, the data's offset and length in it. Read
    /// from the disk when copied, never held in memory.
    Span(std::sync::Arc<std::fs::File>, u64, u64),
    /// Another entry of such a tar (a device, a FIFO, a hard link): its
    /// type, device numbers and link name.
    Tar(tar::EntryType, u64, u64, String),
}

/// Reads `len` bytes at `offset` of a spool (positioned reads: any number
/// of these share the file).
struct SpanReader {
    file: std::sync::Arc<std::fs::File>,
    pos: u64,
    end: u64,
}

impl Read for SpanReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt as _;
        let want = buf.len().min((self.end - self.pos) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the spooled tar ended early",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// The spool read from its start, through a new handle (it shares the
/// file's offset, which the spans never use: they read by position).
fn from_start(file: &std::sync::Arc<std::fs::File>) -> std::io::Result<std::fs::File> {
    use std::io::Seek as _;
    let mut f = file.try_clone()?;
    f.rewind()?;
    Ok(f)
}

fn span(file: &std::sync::Arc<std::fs::File>, offset: u64, len: u64) -> SpanReader {
    SpanReader {
        file: file.clone(),
        pos: offset,
        end: offset + len,
    }
}

/// Whether `s` has glob characters.
fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Go's `filepath.Match` on one path segment: `*`, `?`, `[...]`, `\` escapes.
fn seg_match(p: &[char], s: &[char]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some('*') => (0..=s.len()).any(|i| seg_match(&p[1..], &s[i..])),
        Some('?') => !s.is_empty() && seg_match(&p[1..], &s[1..]),
        Some('[') => {
            let Some(end) = p.iter().position(|c| *c == ']') else {
                return false;
            };
            let Some(c) = s.first() else { return false };
            let set = &p[1..end];
            let (neg, set) = match set.first() {
                Some('^' | '!') => (true, &set[1..]),
                _ => (false, set),
            };
            let mut hit = false;
            let mut i = 0;
            while i < set.len() {
                if i + 2 < set.len() && set[i + 1] == '-' {
                    hit |= set[i] <= *c && *c <= set[i + 2];
                    i += 3;
                } else {
                    hit |= set[i] == *c;
                    i += 1;
                }
            }
            hit != neg && seg_match(&p[end + 1..], &s[1..])
        }
        Some('\\') if p.len() > 1 => s.first() == Some(&p[1]) && seg_match(&p[2..], &s[1..]),
        Some(c) => s.first() == Some(c) && seg_match(&p[1..], &s[1..]),
    }
}

/// Whether the relative path `path` matches glob `pattern` segment by segment.
fn glob_match(pattern: &str, path: &str) -> bool {
    let ps: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
    let ss: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    ps.len() == ss.len()
        && ps.iter().zip(&ss).all(|(p, s)| {
            seg_match(
                &p.chars().collect::<Vec<_>>(),
                &s.chars().collect::<Vec<_>>(),
            )
        })
}

/// Every path under `dir` (relative, `/`-separated), directories included.
fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| EngineError::io("listing", dir, e))?
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        out.push(super::rel(base, &p));
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            walk(&p, base, out)?;
        }
    }
    Ok(())
}

fn meta_mode(m: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    m.permissions().mode() & 0o7777
}

fn meta_mtime(m: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    m.mtime().max(0) as u64
}

/// A path of the context, resolved through symlinks without leaving it.
fn resolve_in(ctx: &Path, rel: &Path, shown: &str) -> Result<PathBuf> {
    let outside = || {
        failed(format!(
            "COPY failed: forbidden path outside the build context: {shown}"
        ))
    };
    let mut cur = ctx.to_path_buf();
    let mut parts: Vec<std::ffi::OsString> = rel.iter().map(|p| p.to_os_string()).collect();
    parts.reverse();
    let mut hops = 0;
    while let Some(part) = parts.pop() {
        if part == ".." {
            if cur == ctx {
                return Err(outside());
            }
            cur.pop();
            continue;
        }
        let next = cur.join(&part);
        match std::fs::symlink_metadata(&next) {
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > 40 {
                    return Err(failed(format!("COPY failed: too many symlinks in {shown}")));
                }
                let target =
                    std::fs::read_link(&next).map_err(|e| EngineError::io("reading", &next, e))?;
                if target.is_absolute() {
                    // An absolute target names a path of the context's root.
                    cur = ctx.to_path_buf();
                }
                let mut t: Vec<std::ffi::OsString> = target
                    .iter()
                    .filter(|p| *p != "/")
                    .map(|p| p.to_os_string())
                    .collect();
                t.reverse();
                parts.extend(t);
            }
            _ => cur = next,
        }
        if !cur.starts_with(ctx) {
            return Err(outside());
        }
    }
    Ok(cur)
}

/// The items of a context path (a file, or a directory's contents).
fn collect(
    abs: &Path,
    rel_base: &str,
    exclude: Option<&Ignore>,
    out: &mut Vec<Item>,
) -> Result<()> {
    let m = std::fs::symlink_metadata(abs).map_err(|e| EngineError::io("reading", abs, e))?;
    if !m.is_dir() {
        out.push(item_of(abs, rel_base.to_owned(), &m)?);
        return Ok(());
    }
    let mut paths = Vec::new();
    walk(abs, abs, &mut paths)?;
    for p in paths {
        if exclude.is_some_and(|x| x.excluded(&p)) {
            continue;
        }
        let full = abs.join(&p);
        let m =
            std::fs::symlink_metadata(&full).map_err(|e| EngineError::io("reading", &full, e))?;
        let rel = if rel_base.is_empty() {
            p
        } else {
            format!("{rel_base}/{p}")
        };
        out.push(item_of(&full, rel, &m)?);
    }
    Ok(())
}

fn item_of(abs: &Path, rel: String, m: &std::fs::Metadata) -> Result<Item> {
    let kind = if m.is_dir() {
        Kind::Dir
    } else if m.file_type().is_symlink() {
        Kind::Symlink(std::fs::read_link(abs).map_err(|e| EngineError::io("reading", abs, e))?)
    } else if m.is_file() {
        Kind::File(abs.to_path_buf())
    } else {
        return Err(failed(format!(
            "COPY failed: {rel} is not a regular file, directory or symlink"
        )));
    };
    Ok(Item {
        rel,
        kind,
        mode: meta_mode(m),
        mtime: meta_mtime(m),
        owner: None,
    })
}

/// A checksum of the content of context path `path` (names, modes, file
/// bytes, link targets), for `RUN --mount=type=bind` of the context.
pub(super) fn checksum_of(ctx: &Path, path: &Path) -> Result<String> {
    let mut items = Vec::new();
    if !path.starts_with(ctx) || std::fs::symlink_metadata(path).is_err() {
        return Err(failed(format!(
            "{} is not in the build context",
            super::rel(ctx, path)
        )));
    }
    collect(path, "", None, &mut items)?;
    let mut h = Sha256::new();
    for it in &items {
        hash_item(&mut h, it, it.mode, 0, 0)?;
    }
    Ok(hex::encode(h.finalize()))
}

fn hash_item(h: &mut Sha256, it: &Item, mode: u32, uid: u64, gid: u64) -> Result<()> {
    h.update(format!("{}\0{mode:o}\0{uid}\0{gid}\0", it.rel));
    match &it.kind {
        Kind::Dir => h.update(b"d"),
        Kind::Symlink(t) => h.update(format!("l{}", t.display())),
        Kind::Bytes(b) => {
            h.update(b"f");
            h.update(b);
        }
        Kind::File(p) => {
            h.update(b"f");
            let mut f = std::fs::File::open(p).map_err(|e| EngineError::io("reading", p, e))?;
            let mut buf = vec![0u8; 64 << 10];
            loop {
                let n = f
                    .read(&mut buf)
                    .map_err(|e| EngineError::io("reading", p, e))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
        }
        Kind::Span(file, offset, len) => {
            h.update(b"f");
            let mut r = span(file, *offset, *len);
            let mut buf = vec![0u8; 64 << 10];
            loop {
                let n = r
                    .read(&mut buf)
                    .map_err(|e| EngineError::io("reading", "a spooled tar", e))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
        }
        Kind::Tar(t, major, minor, link) => {
            h.update(format!("t{}{major}:{minor}{link}", t.as_byte()));
        }
    }
    h.update(b"\n");
    Ok(())
}

/// Whether `data` starts like a tar (possibly compressed) `ADD` unpacks.
fn archive_kind(head: &[u8]) -> Option<crate::layers::Compression> {
    use crate::layers::Compression as C;
    if head.starts_with(&[0x1f, 0x8b]) {
        Some(C::Gzip)
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(C::Zstd)
    } else if head.len() > 262 && &head[257..262] == b"ustar" {
        Some(C::None)
    } else {
        None
    }
}

impl Run<'_> {
    pub(super) async fn copy(
        &mut self,
        st: &mut State,
        ins: &RawInstruction,
        add: bool,
    ) -> Result<String> {
        let what = if add { "ADD" } else { "COPY" };
        let mut words = match &ins.json {
            Some(v) => v
                .iter()
                .map(|w| self.expand(st, ins, w))
                .collect::<Result<Vec<_>>>()?,
            None => self.words(st, ins, &ins.args)?,
        };
        if words.len() < 2 {
            return Err(failed(format!(
                "line {}: {what} requires at least two arguments",
                ins.line
            )));
        }
        let dest_word = words.pop().expect("two words");
        let workdir = st
            .config
            .get("WorkingDir")
            .and_then(|v| v.as_str())
            .filter(|w| !w.is_empty())
            .unwrap_or("/")
            .to_owned();
        let dest = if dest_word.starts_with('/') {
            dest_word.clone()
        } else {
            format!("{}/{dest_word}", workdir.trim_end_matches('/'))
        };
        let dest_dir_named =
            dest_word.ends_with('/') || dest_word == "." || dest_word.ends_with("/.");
        let chown = self.flag(st, ins, "chown")?;
        let chmod =
            match self.flag(st, ins, "chmod")? {
                Some(m) => Some(u32::from_str_radix(&m, 8).map_err(|_| {
                    failed(format!("line {}: invalid chmod parameter: {m}", ins.line))
                })?),
                None => None,
            };
        let parents = self.flag(st, ins, "parents")?.is_some_and(|v| v == "true");
        let excludes: Vec<String> = ins
            .flags
            .iter()
            .filter(|(k, _)| k == "exclude")
            .map(|(_, v)| self.expand(st, ins, v))
            .collect::<Result<_>>()?;
        let exclude = if excludes.is_empty() {
            None
        } else {
            Some(
                Ignore::parse(&excludes.join("\n"))
                    .map_err(|e| failed(format!("--exclude: {e}")))?,
            )
        };
        let from = self.flag(st, ins, "from")?;
        let mut items = Vec::new();
        let mut sources = 0;
        let mut heredocs = ins.heredocs.iter();
        for w in &words {
            if let Some(h) = w.strip_prefix("<<").and_then(|_| heredocs.next()) {
                sources += 1;
                items.push(Item {
                    rel: h.delimiter.clone(),
                    kind: Kind::Bytes(h.content.clone().into_bytes()),
                    mode: 0o644,
                    mtime: 0,
                    owner: None,
                });
                continue;
            }
            if let Some(from) = &from {
                sources += 1;
                self.image_items(ins, from, w, &mut items).await?;
                continue;
            }
            let n = self.context_items(ins, w, parents, add, exclude.as_ref(), &mut items)?;
            sources += n;
        }
        // One file to a name that is not a directory: the file takes that name.
        let single_file = sources == 1
            && !dest_dir_named
            && items.len() == 1
            && !matches!(items[0].kind, Kind::Dir)
            && !words.iter().any(|w| has_glob(w));
        if sources > 1 && !dest_dir_named {
            return Err(failed(format!(
                "When using {what} with more than one source file, the destination must be a directory and end with a /"
            )));
        }
        let forced = match &chown {
            Some(c) => Some(self.owner(st, c).await?),
            None => None,
        };
        let (uid, gid) = forced.unwrap_or((0, 0));
        let mut sum = Sha256::new();
        for it in &items {
            let (u, g) = forced.or(it.owner).unwrap_or((0, 0));
            hash_item(&mut sum, it, chmod.unwrap_or(it.mode), u, g)?;
        }
        let checksum = hex::encode(sum.finalize());
        let parent = match &st.image {
            Some(id) => id.clone(),
            None => {
                let id = self
                    .config_step(st, "#(nop) ", serde_json::json!(""))
                    .await?;
                st.image = Some(id.clone());
                id
            }
        };
        let key = Key::new(&parent)
            .add(what, checksum.as_bytes())
            .add("dest", dest.as_bytes())
            .add("single", &[single_file as u8])
            .add("owner", format!("{uid}:{gid}:{chmod:?}").as_bytes())
            .add(
                "config",
                serde_json::to_string(&st.config)
                    .unwrap_or_default()
                    .as_bytes(),
            )
            .finish();
        if let Some(id) = self.cached(&key) {
            return Ok(id);
        }
        let helper = self.helper(&parent).await?;
        let made = self
            .copy_in(&helper, &items, &dest, single_file, chmod, forced)
            .await;
        let committed = match made {
            Ok(()) => {
                let meta = CommitMeta {
                    created_by: format!("/bin/sh -c #(nop) {what} file:{checksum} in {dest} "),
                    ..Default::default()
                };
                self.builder
                    .containers
                    .commit_as(&helper, st.config.clone(), meta)
                    .await
            }
            Err(e) => Err(e),
        };
        let _ = self.builder.containers.remove(&helper, true, false).await;
        let id = committed?;
        self.cache().put(&key, &id)?;
        Ok(id)
    }

    /// `WORKDIR`: the config's working directory, made in the image (owned
    /// by root, 0755) when it is not there.
    pub(super) async fn workdir(&mut self, st: &mut State, ins: &RawInstruction) -> Result<String> {
        let dir = self.expand(st, ins, &ins.args)?;
        let current = st
            .config
            .get("WorkingDir")
            .and_then(|v| v.as_str())
            .filter(|w| !w.is_empty())
            .unwrap_or("/")
            .to_owned();
        let abs = if dir.starts_with('/') {
            dir
        } else {
            format!("{}/{dir}", current.trim_end_matches('/'))
        };
        let abs = format!(
            "/{}",
            clean_relative(&abs).unwrap_or_default().to_string_lossy()
        );
        st.config
            .insert("WorkingDir".into(), serde_json::json!(abs));
        let parent = match &st.image {
            Some(id) => id.clone(),
            None => {
                let id = self
                    .config_step(st, "#(nop) ", serde_json::json!(""))
                    .await?;
                st.image = Some(id.clone());
                id
            }
        };
        let key = Key::new(&parent)
            .add("workdir", abs.as_bytes())
            .add(
                "config",
                serde_json::to_string(&st.config)
                    .unwrap_or_default()
                    .as_bytes(),
            )
            .finish();
        if let Some(id) = self.cached(&key) {
            return Ok(id);
        }
        let helper = self.helper(&parent).await?;
        let made = async {
            let created_by = format!("/bin/sh -c #(nop) WORKDIR {abs}");
            if abs == "/" || self.is_dir_in(&helper, &abs).await {
                let base = self.record(&parent)?;
                let meta = CommitMeta {
                    created_by,
                    ..Default::default()
                };
                return self
                    .builder
                    .engine
                    .derive_image(Some(&base), st.config.clone(), &meta)
                    .await;
            }
            let item = Item {
                rel: String::new(),
                kind: Kind::Dir,
                mode: 0o755,
                mtime: 0,
                owner: None,
            };
            self.copy_in(&helper, &[item], &abs, true, None, None)
                .await?;
            let meta = CommitMeta {
                created_by,
                ..Default::default()
            };
            self.builder
                .containers
                .commit_as(&helper, st.config.clone(), meta)
                .await
        }
        .await;
        let _ = self.builder.containers.remove(&helper, true, false).await;
        let id = made?;
        self.cache().put(&key, &id)?;
        Ok(id)
    }

    /// The items of context source `w`; how many sources it named.
    fn context_items(
        &self,
        ins: &RawInstruction,
        w: &str,
        parents: bool,
        add: bool,
        exclude: Option<&Ignore>,
        items: &mut Vec<Item>,
    ) -> Result<usize> {
        let what = if add { "ADD" } else { "COPY" };
        if w.contains("://") {
            return Err(failed(format!(
                "line {}: {what} {w}: sources from URLs are not supported by berth (copy the file into the context)",
                ins.line
            )));
        }
        let ctx = self.ctx.path();
        let rel = clean_relative(w).ok_or_else(|| {
            failed(format!(
                "{what} failed: forbidden path outside the build context: {w}"
            ))
        })?;
        let rel_s = rel.to_string_lossy().into_owned();
        let matched: Vec<String> = if has_glob(&rel_s) {
            let mut all = Vec::new();
            walk(ctx, ctx, &mut all)?;
            all.into_iter().filter(|p| glob_match(&rel_s, p)).collect()
        } else {
            vec![rel_s.clone()]
        };
        if matched.is_empty() {
            return Err(failed(format!(
                "{what} failed: no source files were specified by {w}"
            )));
        }
        for m in &matched {
            let abs = resolve_in(ctx, Path::new(m), w)?;
            let meta = std::fs::symlink_metadata(&abs).map_err(|_| {
                failed(format!(
                    "{what} failed: file not found in build context or excluded by .dockerignore: stat {m}: file does not exist"
                ))
            })?;
            let base_name = if parents {
                m.clone()
            } else if meta.is_dir() {
                String::new()
            } else {
                Path::new(m)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            };
            if add && meta.is_file() {
                let mut head = vec![0u8; 512];
                let n = std::fs::File::open(&abs)
                    .and_then(|mut f| f.read(&mut head))
                    .map_err(|e| EngineError::io("reading", &abs, e))?;
                head.truncate(n);
                if let Some(comp) = archive_kind(&head) {
                    self.unpack_archive(&abs, comp, items)?;
                    continue;
                }
            }
            if meta.is_dir() && parents {
                collect(&abs, &base_name, exclude, items)?;
                items.push(item_of(&abs, base_name, &meta)?);
            } else {
                collect(&abs, &base_name, exclude, items)?;
            }
        }
        Ok(matched.len())
    }

    /// The entries of a local archive `ADD` unpacks into the destination.
    fn unpack_archive(
        &self,
        path: &Path,
        comp: crate::layers::Compression,
        items: &mut Vec<Item>,
    ) -> Result<()> {
        let f = std::fs::File::open(path).map_err(|e| EngineError::io("opening", path, e))?;
        let mut r = crate::layers::decompress(f, comp)?;
        let root = self.builder.engine.root();
        let mut spool = tempfile::tempfile_in(root)
            .map_err(|e| EngineError::io("creating a spool file in", root, e))?;
        std::io::copy(&mut r, &mut spool)
            .map_err(|e| failed(format!("ADD: unpacking {}: {e}", path.display())))?;
        read_tar(&std::sync::Arc::new(spool), "", items)
            .map_err(|e| failed(format!("ADD: unpacking {}: {e}", path.display())))
    }

    /// The items of path `src` in stage or image `from`.
    async fn image_items(
        &mut self,
        ins: &RawInstruction,
        from: &str,
        src: &str,
        items: &mut Vec<Item>,
    ) -> Result<()> {
        let image = match stage_ref(self.file, self.file.stages.len(), from) {
            Some(j) => self.done.get(&j).cloned().ok_or_else(|| {
                failed(format!(
                    "line {}: COPY --from={from}: that stage is not built",
                    ins.line
                ))
            })?,
            None => self.record_of_name(from).await?,
        };
        let helper = self.helper(&image).await?;
        let root = self.builder.engine.root();
        let spool = tempfile::tempfile_in(root)
            .map_err(|e| EngineError::io("creating a spool file in", root, e))?;
        let mut out = tokio::fs::File::from_std(
            spool
                .try_clone()
                .map_err(|e| EngineError::io("opening", "a spool file", e))?,
        );
        let got = self
            .builder
            .containers
            .get_archive(&helper, src, &mut out)
            .await;
        let _ = self.builder.containers.remove(&helper, true, false).await;
        got.map_err(|e| failed(format!("COPY --from={from} {src}: {e}")))?;
        tokio::io::AsyncWriteExt::flush(&mut out)
            .await
            .map_err(|e| EngineError::io("writing", "a spool file", e))?;
        drop(out);
        let spool = std::sync::Arc::new(spool);
        // The tar names the path by its last component: a directory's
        // contents go under the destination, a file by its name.
        let mut ar = tar::Archive::new(
            from_start(&spool).map_err(|e| EngineError::io("reading", "a spool file", e))?,
        );
        let first = ar
            .entries()
            .map_err(|e| failed(format!("COPY --from: {e}")))?
            .next()
            .transpose()
            .map_err(|e| failed(format!("COPY --from: {e}")))?;
        let first_dir = first
            .filter(|e| e.header().entry_type().is_dir())
            .and_then(|e| {
                e.path()
                    .ok()
                    .map(|p| p.to_string_lossy().trim_end_matches('/').to_owned())
            });
        let strip = first_dir.unwrap_or_default();
        let mut tmp = Vec::new();
        read_tar(&spool, &strip, &mut tmp).map_err(|e| failed(format!("COPY --from: {e}")))?;
        items.extend(tmp.into_iter().filter(|i| !i.rel.is_empty()));
        Ok(())
    }

    /// `--chown` as numbers: names looked up in the image's passwd/group.
    async fn owner(&mut self, st: &State, spec: &str) -> Result<(u64, u64)> {
        let (user, group) = spec.split_once(':').unwrap_or((spec, ""));
        let num = |s: &str| s.parse::<u64>().ok();
        if num(user).is_some() && (group.is_empty() || num(group).is_some()) {
            let uid = num(user).unwrap_or(0);
            return Ok((
                uid,
                if group.is_empty() {
                    uid
                } else {
                    num(group).unwrap_or(0)
                },
            ));
        }
        let image = st.image.clone().ok_or_else(|| {
            failed(format!(
                "--chown={spec}: a scratch image has no users to look up"
            ))
        })?;
        let helper = self.helper(&image).await?;
        let read = |path: &'static str| {
            let c = self.builder.containers.clone();
            let h = helper.clone();
            async move {
                let mut buf = Vec::new();
                c.get_archive(&h, path, &mut buf).await.ok()?;
                let mut ar = tar::Archive::new(&buf[..]);
                let mut e = ar.entries().ok()?.next()?.ok()?;
                let mut s = String::new();
                e.read_to_string(&mut s).ok()?;
                Some(s)
            }
        };
        let passwd = read("/etc/passwd").await.unwrap_or_default();
        let groups = read("/etc/group").await.unwrap_or_default();
        let _ = self.builder.containers.remove(&helper, true, false).await;
        let field = |text: &str, name: &str, i: usize| {
            text.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.first() == Some(&name))
                    .then(|| f.get(i)?.parse::<u64>().ok())
                    .flatten()
            })
        };
        let uid = match num(user) {
            Some(u) => u,
            None => field(&passwd, user, 2).ok_or_else(|| {
                failed(format!(
                    "unable to convert uid/gid chown string to host mapping: no such user: {user}"
                ))
            })?,
        };
        let gid = if group.is_empty() {
            match num(user) {
                Some(u) => u,
                None => field(&passwd, user, 3).unwrap_or(uid),
            }
        } else {
            match num(group) {
                Some(g) => g,
                None => field(&groups, group, 2)
                    .ok_or_else(|| failed(format!("unable to convert uid/gid chown string to host mapping: no such group: {group}")))?,
            }
        };
        Ok((uid, gid))
    }

    /// Writes `items` as a tar under `dest` and extracts it into `helper`.
    async fn copy_in(
        &self,
        helper: &str,
        items: &[Item],
        dest: &str,
        single_file: bool,
        chmod: Option<u32>,
        owner: Option<(u64, u64)>,
    ) -> Result<()> {
        // One file to a name: it goes inside if that name is a directory.
        let dest_is_dir = self.is_dir_in(helper, dest).await;
        let into_dir = !single_file || dest_is_dir;
        let mut spool = tempfile::tempfile_in(self.builder.engine.root()).map_err(|e| {
            EngineError::io("creating a spool file in", self.builder.engine.root(), e)
        })?;
        {
            let mut b = tar::Builder::new(&mut spool);
            let base = dest.trim_start_matches('/').trim_end_matches('/');
            if into_dir && !dest_is_dir && !base.is_empty() {
                // The directory the copy makes is the copy's owner's.
                let made = Item {
                    rel: String::new(),
                    kind: Kind::Dir,
                    mode: 0o755,
                    mtime: std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs()),
                    owner: None,
                };
                append(&mut b, base, &made, 0o755, owner.unwrap_or((0, 0)))
                    .map_err(|e| EngineError::io("writing the copy of", dest, e))?;
            }
            for it in items {
                let name = if into_dir {
                    if base.is_empty() {
                        it.rel.clone()
                    } else {
                        format!("{base}/{}", it.rel)
                    }
                } else {
                    base.to_owned()
                };
                if name.is_empty() {
                    continue;
                }
                let who = owner.or(it.owner).unwrap_or((0, 0));
                append(&mut b, &name, it, chmod.unwrap_or(it.mode), who)
                    .map_err(|e| EngineError::io("writing the copy of", &it.rel, e))?;
            }
            b.finish()
                .map_err(|e| EngineError::io("writing", "the copy", e))?;
        }
        use std::io::Seek as _;
        spool
            .rewind()
            .map_err(|e| EngineError::io("rewinding", "the copy", e))?;
        let file = tokio::fs::File::from_std(spool);
        self.builder.containers.put_archive(helper, "/", file).await
    }

    /// Whether `path` is a directory in container `helper`'s filesystem.
    async fn is_dir_in(&self, helper: &str, path: &str) -> bool {
        let Ok((_, root, ours)) = self.builder.containers.rootfs(helper).await else {
            return false;
        };
        let out = self
            .builder
            .containers
            .archive_cmd(&root)
            .arg("--stat")
            .arg(path)
            .output()
            .await;
        if ours {
            self.builder.containers.release_rootfs(helper).await;
        }
        out.ok()
            .filter(|o| o.status.success())
            .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
            .and_then(|v| v["mode"].as_u64())
            .is_some_and(|m| m & (1 << 31) != 0)
    }
}

/// Reads the entries of the tar in `spool` as items, their names with
/// `strip/` removed; regular files stay in the spool.
fn read_tar(
    spool: &std::sync::Arc<std::fs::File>,
    strip: &str,
    items: &mut Vec<Item>,
) -> std::io::Result<()> {
    let mut ar = tar::Archive::new(from_start(spool)?);
    for e in ar.entries()? {
        let e = e?;
        let path = e.path()?.to_string_lossy().trim_end_matches('/').to_owned();
        let path = path.trim_start_matches("./").to_owned();
        let rel = if strip.is_empty() {
            path
        } else if path == strip {
            String::new()
        } else {
            match path.strip_prefix(&format!("{strip}/")) {
                Some(r) => r.to_owned(),
                None => path,
            }
        };
        let h = e.header().clone();
        let link = e
            .link_name()?
            .map(|l| l.to_string_lossy().into_owned())
            .unwrap_or_default();
        let t = h.entry_type();
        let kind = if t.is_dir() {
            Kind::Dir
        } else if t.is_symlink() {
            Kind::Symlink(PathBuf::from(link))
        } else if t.is_file() {
            Kind::Span(spool.clone(), e.raw_file_position(), e.size())
        } else {
            Kind::Tar(
                t,
                h.device_major()?.unwrap_or(0) as u64,
                h.device_minor()?.unwrap_or(0) as u64,
                link,
            )
        };
        items.push(Item {
            rel,
            kind,
            mode: h.mode()? & 0o7777,
            mtime: h.mtime().unwrap_or(0),
            owner: Some((h.uid()?, h.gid()?)),
        });
    }
    Ok(())
}

/// Appends one item as `name`.
fn append<W: Write>(
    b: &mut tar::Builder<W>,
    name: &str,
    it: &Item,
    mode: u32,
    (uid, gid): (u64, u64),
) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_mode(mode);
    h.set_uid(uid);
    h.set_gid(gid);
    h.set_mtime(it.mtime);
    match &it.kind {
        Kind::Dir => {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            b.append_data(&mut h, format!("{name}/"), std::io::empty())
        }
        Kind::Symlink(t) => {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, name, t)
        }
        Kind::File(p) => {
            let f = std::fs::File::open(p)?;
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(f.metadata()?.len());
            b.append_data(&mut h, name, f)
        }
        Kind::Bytes(data) => {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(data.len() as u64);
            b.append_data(&mut h, name, &data[..])
        }
        Kind::Span(file, offset, len) => {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(*len);
            b.append_data(&mut h, name, span(file, *offset, *len))
        }
        Kind::Tar(t, major, minor, link) => {
            h.set_entry_type(*t);
            h.set_size(0);
            if t.is_hard_link() {
                return b.append_link(&mut h, name, link);
            }
            h.set_device_major(*major as u32)?;
            h.set_device_minor(*minor as u32)?;
            b.append_data(&mut h, name, std::io::empty())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_segment_by_segment() {
        assert!(glob_match("*.txt", "a.txt"));
        assert!(!glob_match("*.txt", "d/a.txt"));
        assert!(glob_match("d/*.txt", "d/a.txt"));
        assert!(glob_match("fil?", "file"));
        assert!(glob_match("[a-c]x", "bx"));
        assert!(!glob_match("[!a-c]x", "bx"));
        assert!(!glob_match("*", "a/b"));
    }

    #[test]
    fn sources_resolve_inside_the_context_only() {
        let d = tempfile::tempdir().unwrap();
        let ctx = d.path();
        std::fs::create_dir(ctx.join("dir")).unwrap();
        std::fs::write(ctx.join("dir/f"), "x").unwrap();
        std::os::unix::fs::symlink("dir/f", ctx.join("inside")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", ctx.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../etc/passwd", ctx.join("out")).unwrap();
        assert_eq!(
            resolve_in(ctx, Path::new("inside"), "inside").unwrap(),
            ctx.join("dir/f")
        );
        // An absolute target is read in the context's root, as docker does.
        assert_eq!(
            resolve_in(ctx, Path::new("abs"), "abs").unwrap(),
            ctx.join("etc/passwd")
        );
        let e = resolve_in(ctx, Path::new("out"), "out")
            .unwrap_err()
            .to_string();
        assert!(e.contains("outside the build context"), "{e}");
    }

    #[test]
    fn checksums_ignore_times_but_not_content_or_mode() {
        use std::os::unix::fs::PermissionsExt as _;
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("f");
        std::fs::write(&f, "one").unwrap();
        let a = checksum_of(d.path(), d.path()).unwrap();
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(100);
        std::fs::File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert_eq!(
            checksum_of(d.path(), d.path()).unwrap(),
            a,
            "touching changes nothing"
        );
        std::fs::write(&f, "two").unwrap();
        let b = checksum_of(d.path(), d.path()).unwrap();
        assert_ne!(a, b);
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_ne!(checksum_of(d.path(), d.path()).unwrap(), b);
    }
}
