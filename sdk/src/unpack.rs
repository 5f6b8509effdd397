//! Applying a layer tar onto a directory through a [`LayerFs`], with OCI
//! whiteouts mapped for either an overlay driver or a full-copy driver.
//!
//! Paths given to [`LayerFs`] are relative to the plugin root. Parents that a
//! tar does not list are created; symlinks met on the way to an entry are
//! resolved inside the layer (an absolute target starts at the layer root, `..`
//! stops there), so nothing is written through a link out of the layer.

use std::collections::HashSet;

pub use crate::layerfs::{LayerFs, Meta, NodeKind, PathKind};
use crate::path;
use crate::tar_read::{Entry, EntryKind, TarReader};
use crate::whiteout::{self, Whiteout};

/// How OCI whiteouts are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Layers stay separate (overlayfs): whiteouts become overlay whiteouts
    /// and opaque markers set the overlay opaque xattr.
    Overlay,
    /// The target already holds a copy of the lower layers: whiteouts delete.
    Copy,
}

/// Counts of what an apply wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Entries written.
    pub entries: u64,
    /// File bytes written.
    pub bytes: u64,
}

/// Unpacks one layer into `target` (a directory relative to the plugin root).
#[derive(Debug)]
pub struct Unpacker {
    target: String,
    lowers: Vec<String>,
    mode: Mode,
    dirs: HashSet<String>,
    this_layer: HashSet<String>,
}

/// How many symlinks one path may pass through.
const MAX_LINKS: usize = 40;

impl Unpacker {
    /// An unpacker writing into `target`; `lowers` are the lower layers' dirs
    /// (top first) that an overlay target sits on (empty for [`Mode::Copy`]).
    pub fn new(target: &str, lowers: Vec<String>, mode: Mode) -> Self {
        Unpacker {
            target: target.to_string(),
            lowers,
            mode,
            dirs: HashSet::new(),
            this_layer: HashSet::new(),
        }
    }

    /// Applies every entry of `tar`.
    pub fn apply<F: LayerFs>(
        &mut self,
        fs: &mut F,
        tar: &mut TarReader<F::Source>,
    ) -> Result<Stats, F::Error> {
        let mut stats = Stats::default();
        if fs.kind(&self.target).is_none() {
            fs.mkdir(&self.target, Meta::IMPLIED_DIR)?;
        }
        while let Some(entry) = tar.next_entry()? {
            let size = entry.size;
            self.entry(fs, tar, entry)?;
            stats.entries += 1;
            stats.bytes += size;
        }
        Ok(stats)
    }

    fn at(&self, rel: &str) -> String {
        path::join(&self.target, rel)
    }

    fn entry<F: LayerFs>(
        &mut self,
        fs: &mut F,
        tar: &mut TarReader<F::Source>,
        e: Entry,
    ) -> Result<(), F::Error> {
        if e.path.is_empty() {
            if e.kind == EntryKind::Directory {
                fs.mkdir(&self.target, Meta::of(&e))?;
            }
            return Ok(());
        }
        match whiteout::classify(&e.path) {
            Whiteout::Remove(gone) => {
                let gone = self.resolve(fs, &gone)?;
                return match self.mode {
                    Mode::Overlay => fs.whiteout(&self.at(&gone)),
                    Mode::Copy => fs.remove(&self.at(&gone)),
                };
            }
            Whiteout::Opaque(dir) => return self.opaque(fs, dir),
            Whiteout::None => {}
        }
        let rel = self.resolve(fs, &e.path)?;
        let full = self.at(&rel);
        let existing = fs.kind(&full);
        let replace = match (e.kind, existing) {
            (_, None) => false,
            (EntryKind::Directory, Some(k)) => k != PathKind::Directory,
            (EntryKind::File | EntryKind::Symlink, Some(k)) => k == PathKind::Directory,
            _ => true,
        };
        if replace {
            fs.remove(&full)?;
        }
        let meta = Meta::of(&e);
        match e.kind {
            EntryKind::Directory => {
                fs.mkdir(&full, meta)?;
                self.dirs.insert(rel.clone());
            }
            EntryKind::File => {
                fs.write_file(&full, meta, tar.source_mut(), e.size)?;
                tar.consumed_externally(e.size);
            }
            EntryKind::Symlink => fs.symlink(&full, &e.link, e.uid, e.gid)?,
            EntryKind::HardLink => {
                let target = self.resolve(fs, &e.link)?;
                self.bring_up(fs, &target)?;
                fs.hardlink(&full, &self.at(&target))?;
            }
            EntryKind::CharDevice => fs.mknod(&full, NodeKind::Char, e.major, e.minor, meta)?,
            EntryKind::BlockDevice => fs.mknod(&full, NodeKind::Block, e.major, e.minor, meta)?,
            EntryKind::Fifo => fs.mknod(&full, NodeKind::Fifo, 0, 0, meta)?,
        }
        for (name, value) in &e.xattrs {
            if xattr_allowed(name) {
                fs.set_xattr(&full, name, value)?;
            } else {
                crate::log::debug(&format!("skipping xattr {name} of {}", e.path));
            }
        }
        self.this_layer.insert(rel);
        Ok(())
    }

    fn opaque<F: LayerFs>(&mut self, fs: &mut F, dir: &str) -> Result<(), F::Error> {
        let dir = if dir.is_empty() {
            String::new()
        } else {
            self.resolve(fs, dir)?
        };
        let full = self.at(&dir);
        if fs.kind(&full).is_none() {
            fs.mkdir(&full, Meta::IMPLIED_DIR)?;
        }
        match self.mode {
            Mode::Overlay => fs.set_opaque(&full),
            Mode::Copy => {
                let names = std::fs::read_dir(fs.local(&full))
                    .map(|rd| {
                        rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                            .collect()
                    })
                    .unwrap_or_else(|_| Vec::<String>::new());
                for name in names {
                    let child = path::join(&dir, &name);
                    if !self.this_layer.contains(&child) {
                        fs.remove(&self.at(&child))?;
                    }
                }
                Ok(())
            }
        }
    }

    /// For an overlay layer, copies a hard link's target up from a lower layer.
    fn bring_up<F: LayerFs>(&mut self, fs: &mut F, target: &str) -> Result<(), F::Error> {
        if fs.kind(&self.at(target)).is_some() {
            return Ok(());
        }
        for lower in &self.lowers {
            let src = path::join(lower, target);
            if fs.kind(&src).is_some() {
                return fs.copy_tree(&src, &self.at(target));
            }
        }
        Err(crate::SdkError::TarHeader {
            offset: 0,
            reason: format!("hard link target {target:?} does not exist"),
        }
        .into())
    }

    /// Resolves the parent directories of `rel` inside the layer: missing ones
    /// are created, symlinks followed within the layer. The last component is
    /// kept as is (an entry replaces a symlink, it does not follow it).
    fn resolve<F: LayerFs>(&mut self, fs: &mut F, rel: &str) -> Result<String, F::Error> {
        let mut todo: Vec<String> = rel.split('/').rev().map(str::to_string).collect();
        let mut cur = String::new();
        let mut links = 0;
        while todo.len() > 1 {
            let part = todo.pop().expect("len > 1");
            let next = path::join(&cur, &part);
            if self.dirs.contains(&next) {
                cur = next;
                continue;
            }
            match self.lookup(fs, &next) {
                Some((PathKind::Directory, layer)) if layer == self.target => {}
                // Only a lower layer has it: the upper needs its own copy.
                Some((PathKind::Directory, _)) => fs.mkdir(&self.at(&next), Meta::IMPLIED_DIR)?,
                None => fs.mkdir(&self.at(&next), Meta::IMPLIED_DIR)?,
                Some((PathKind::Symlink, found_in)) => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(not_dir(rel, &next).into());
                    }
                    // Through the host: WASI refuses to read absolute targets.
                    let target = fs.read_link(&path::join(&found_in, &next))?;
                    let base = if target.starts_with('/') {
                        String::new()
                    } else {
                        cur.clone()
                    };
                    let joined = clamp_join(&base, &target);
                    todo.extend(
                        joined
                            .split('/')
                            .filter(|s| !s.is_empty())
                            .rev()
                            .map(str::to_string),
                    );
                    cur = String::new();
                    continue;
                }
                Some(_) => return Err(not_dir(rel, &next).into()),
            }
            self.dirs.insert(next.clone());
            cur = next;
        }
        Ok(path::join(&cur, todo.pop().as_deref().unwrap_or("")))
    }

    /// What is at `rel` in this layer or else the topmost lower layer, and where.
    fn lookup<F: LayerFs>(&self, fs: &mut F, rel: &str) -> Option<(PathKind, String)> {
        std::iter::once(&self.target)
            .chain(&self.lowers)
            .find_map(|layer| fs.kind(&path::join(layer, rel)).map(|k| (k, layer.clone())))
    }
}

/// Joins `target` onto `base` lexically, stopping `..` at the layer root.
fn clamp_join(base: &str, target: &str) -> String {
    let mut parts: Vec<&str> = base.split('/').filter(|s| !s.is_empty()).collect();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

fn not_dir(entry: &str, at: &str) -> crate::SdkError {
    crate::SdkError::TarHeader {
        offset: 0,
        reason: format!("{entry:?}: {at:?} is not a directory"),
    }
}

/// Extended attributes the host accepts; overlay's own are never taken from a tar.
pub fn xattr_allowed(name: &str) -> bool {
    (name.starts_with("user.") || name.starts_with("trusted.") || name == "security.capability")
        && !name.starts_with("trusted.overlay.")
}

#[cfg(all(test, unix))]
#[path = "unpack_tests.rs"]
mod tests;
