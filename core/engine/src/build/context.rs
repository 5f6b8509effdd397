//! A build's context: the tar the client sent, unpacked (streamed, never
//! held in memory) into a private directory under the engine's root, its
//! Dockerfile read, then pruned by its `.dockerignore` — the Dockerfile and
//! `.dockerignore` too when it names them, as docker does, so `COPY .`
//! leaves them out. Owners in the tar are dropped (what `COPY` makes is
//! root's unless `--chown`); modes, symlinks and hard links stay. Removed
//! with the context.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use crate::dockerfile::ignore::Ignore;
use crate::error::{EngineError, Result};
use crate::layers::{decompress, Compression};

use super::failed;

/// An unpacked build context.
#[derive(Debug)]
pub struct Context {
    dir: tempfile::TempDir,
    /// The Dockerfile named at unpacking, read before the context was
    /// pruned (`None`: it was not there).
    dockerfile: Option<(PathBuf, String)>,
}

impl Context {
    /// Unpacks the tar `input` (plain, gzip or zstd, told by its first
    /// bytes as docker does) into a new directory under `under`, reads
    /// `dockerfile` (`Dockerfile` when empty), then applies `.dockerignore`.
    pub fn unpack(
        input: impl Read + Send + 'static,
        under: &Path,
        dockerfile: &str,
    ) -> Result<Context> {
        let mut input = std::io::BufReader::with_capacity(256 << 10, input);
        let head = input
            .fill_buf()
            .map_err(|e| failed(format!("reading the build context: {e}")))?;
        let compression = match head {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            [b'B', b'Z', b'h', ..] | [0xfd, b'7', b'z', b'X', b'Z', ..] => return Err(failed(
                "the build context is bzip2 or xz compressed; send it as a plain, gzip or zstd tar",
            )),
            _ => Compression::None,
        };
        let input = decompress(input, compression)?;
        std::fs::create_dir_all(under).map_err(|e| EngineError::io("creating", under, e))?;
        let dir = tempfile::Builder::new()
            .prefix("context-")
            .tempdir_in(under)
            .map_err(|e| EngineError::io("creating a context directory in", under, e))?;
        unpack(input, dir.path())
            .map_err(|e| failed(format!("reading the build context: {}", chain(&e))))?;
        let name = if dockerfile.is_empty() {
            "Dockerfile"
        } else {
            dockerfile
        };
        let dockerfile = match clean_relative(name) {
            Some(rel) => {
                let path = dir.path().join(&rel);
                match std::fs::symlink_metadata(&path) {
                    Ok(m) if m.is_file() => Some((
                        rel,
                        std::fs::read_to_string(&path)
                            .map_err(|e| EngineError::io("reading", &path, e))?,
                    )),
                    _ => None,
                }
            }
            None => None,
        };
        let ctx = Context { dir, dockerfile };
        ctx.apply_ignore()?;
        Ok(ctx)
    }

    /// The context's directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The Dockerfile `name` (a path in the context) as text.
    pub fn dockerfile(&self, name: &str) -> Result<String> {
        let clean = clean_relative(name).ok_or_else(|| {
            failed(format!(
                "the Dockerfile ({name}) must be within the build context"
            ))
        })?;
        if let Some((rel, text)) = &self.dockerfile {
            if *rel == clean {
                return Ok(text.clone());
            }
        }
        let path = self.path().join(&clean);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => {}
            _ => {
                return Err(failed(format!(
                    "Cannot locate specified Dockerfile: {name}"
                )))
            }
        }
        std::fs::read_to_string(&path).map_err(|e| EngineError::io("reading", &path, e))
    }

    /// Removes what `.dockerignore` excludes.
    fn apply_ignore(&self) -> Result<()> {
        let path = self.path().join(".dockerignore");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(EngineError::io("reading", &path, e)),
        };
        let ignore = Ignore::parse(&text).map_err(|e| failed(format!(".dockerignore: {e}")))?;
        prune(self.path(), self.path(), &ignore)
    }
}

/// Removes the excluded entries under `dir` (relative to `base`); a
/// directory an exception may reach into is descended rather than removed.
fn prune(base: &Path, dir: &Path, ignore: &Ignore) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| EngineError::io("listing", dir, e))?;
    for e in entries {
        let e = e.map_err(|e| EngineError::io("listing", dir, e))?;
        let p = e.path();
        let rel = super::rel(base, &p);
        let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if is_dir && ignore.has_exceptions() {
            prune(base, &p, ignore)?;
            let empty = std::fs::read_dir(&p)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
            if empty && ignore.excluded(&rel) {
                std::fs::remove_dir(&p).map_err(|e| EngineError::io("removing", &p, e))?;
            }
            continue;
        }
        if !ignore.excluded(&rel) {
            if is_dir {
                prune(base, &p, ignore)?;
            }
            continue;
        }
        let removed = if is_dir {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        removed.map_err(|e| EngineError::io("removing", &p, e))?;
    }
    Ok(())
}

/// Unpacks the tar `input` into `dst` as the tar crate's `unpack` does
/// (directories last, deepest first, so their modes do not stop what goes
/// in them), but taking a stream that ends right after the last entry's
/// data as complete: the docker CLI sends one when `-f` names a Dockerfile
/// outside the context (its tar wrapper closes the stream before the tar
/// writer pads the entry), and dockerd reads it.
fn unpack(input: impl Read, dst: &Path) -> std::io::Result<()> {
    let read = std::rc::Rc::new(std::cell::Cell::new(0u64));
    let mut ar = tar::Archive::new(Counted {
        inner: input,
        read: read.clone(),
    });
    ar.set_preserve_permissions(true);
    ar.set_preserve_ownerships(false);
    ar.set_overwrite(true);
    ar.set_unpack_xattrs(false);
    let mut dirs = Vec::new();
    let mut data_end = 0u64;
    for entry in ar.entries()? {
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let n = read.get();
                let padded_end = data_end.div_ceil(512) * 512;
                if data_end > 0 && n >= data_end && n < padded_end {
                    break;
                }
                return Err(e);
            }
        };
        data_end = entry.raw_file_position() + entry.size();
        // `unpack_in` refuses entries that would land outside the
        // directory (absolute names, `..`, through a symlink it unpacked).
        if entry.header().entry_type() == tar::EntryType::Directory {
            dirs.push(entry);
        } else {
            entry.unpack_in(dst)?;
        }
    }
    dirs.sort_by(|a, b| b.path_bytes().cmp(&a.path_bytes()));
    for mut d in dirs {
        d.unpack_in(dst)?;
    }
    Ok(())
}

/// A reader that counts what was read through it.
struct Counted<R> {
    inner: R,
    read: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

/// An error with its causes (the tar crate names the entry's problem in
/// the cause of its error).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

/// `name` as a path inside a directory: `.` and empty parts dropped, and
/// `None` if it is absolute or climbs out with `..`.
pub(crate) fn clean_relative(name: &str) -> Option<PathBuf> {
    let mut out: Vec<&str> = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            p => out.push(p),
        }
    }
    // A leading slash names the context's root, as docker reads it.
    Some(out.iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, body) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, body.as_bytes()).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn dockerignore_prunes_and_the_dockerfile_is_read_first() {
        let under = tempfile::tempdir().unwrap();
        let tar = tar_of(&[
            ("Dockerfile", "FROM scratch\n"),
            (
                ".dockerignore",
                "*.md\n!KEEP.md\nsecret\nDockerfile\nbuild/**\n!build/keep/x\n",
            ),
            ("README.md", "r"),
            ("KEEP.md", "k"),
            ("secret/key", "s"),
            ("src/a.rs", "a"),
            ("build/out/o", "o"),
            ("build/keep/x", "x"),
        ]);
        let ctx = Context::unpack(std::io::Cursor::new(tar), under.path(), "Dockerfile").unwrap();
        let p = ctx.path();
        // Excluded, as docker's builder removes it, yet read.
        assert!(!p.join("Dockerfile").exists());
        assert!(p.join(".dockerignore").exists());
        assert!(p.join("KEEP.md").exists());
        assert!(p.join("src/a.rs").exists());
        assert!(p.join("build/keep/x").exists());
        assert!(!p.join("README.md").exists());
        assert!(!p.join("secret").exists());
        assert!(!p.join("build/out").exists());
        assert_eq!(ctx.dockerfile("Dockerfile").unwrap(), "FROM scratch\n");
        let e = ctx.dockerfile("nope").unwrap_err().to_string();
        assert!(
            e.contains("Cannot locate specified Dockerfile: nope"),
            "{e}"
        );
        let e = ctx.dockerfile("../../etc/passwd").unwrap_err().to_string();
        assert!(e.contains("within the build context"), "{e}");
        let dir = ctx.path().to_path_buf();
        drop(ctx);
        assert!(!dir.exists(), "the context goes with it");
    }

    #[test]
    fn a_stream_ending_after_the_last_entrys_data_is_complete() {
        let under = tempfile::tempdir().unwrap();
        let mut tar = tar_of(&[("Dockerfile", "FROM scratch\n"), ("a", "abc")]);
        // The last entry's data ends 3 bytes into its block: no padding,
        // no end-of-archive blocks.
        let end = 3 * 512 + 3;
        tar.truncate(end);
        let ctx = Context::unpack(std::io::Cursor::new(tar.clone()), under.path(), "").unwrap();
        assert_eq!(std::fs::read(ctx.path().join("a")).unwrap(), b"abc");
        // Data cut short is still an error.
        tar.truncate(end - 1);
        let e = Context::unpack(std::io::Cursor::new(tar), under.path(), "").unwrap_err();
        assert!(e.to_string().contains("reading the build context"), "{e}");
    }

    #[test]
    fn paths_are_cleaned_or_refused() {
        assert_eq!(clean_relative("a/./b//c"), Some(PathBuf::from("a/b/c")));
        assert_eq!(clean_relative("a/../b"), Some(PathBuf::from("b")));
        assert_eq!(clean_relative("/x/y"), Some(PathBuf::from("x/y")));
        assert_eq!(clean_relative("../x"), None);
    }
}
