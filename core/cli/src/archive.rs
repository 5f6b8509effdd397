//! `berth archive` (hidden): the helper behind `cp`, run by the daemon with
//! a container's root filesystem. It chroots into that root first, so paths
//! and symlinks resolve inside the container, as they would for a process
//! in it, and never reach the host's files. It writes a tar of a path to
//! stdout (`--get`), extracts a tar from stdin into a directory (`--put`),
//! or prints a path's stat as docker's JSON (`--stat`).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::api::containers::PathStat;

#[derive(clap::Args, Debug)]
pub struct ArchiveArgs {
    /// The container's root filesystem (mounted).
    #[arg(long)]
    pub rootfs: PathBuf,
    /// Write a tar of this path (in the container) to stdout.
    #[arg(long, conflicts_with_all = ["put", "stat"])]
    pub get: Option<String>,
    /// Extract a tar from stdin into this directory (in the container).
    #[arg(long, conflicts_with = "stat")]
    pub put: Option<String>,
    /// Print the stat of this path (in the container) as JSON.
    #[arg(long)]
    pub stat: Option<String>,
}

/// docker's `PathStat` (the `X-Docker-Container-Path-Stat` header).
pub fn stat_json(path: &Path, shown: &str) -> Result<PathStat> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(path)
        .with_context(|| format!("Could not find the file {shown} in container"))?;
    let link = if m.file_type().is_symlink() {
        std::fs::read_link(path)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        String::new()
    };
    // Go's os.FileMode: permission bits plus a type bit on top.
    let mut mode = m.mode() & 0o7777;
    if m.is_dir() {
        mode |= 1 << 31;
    } else if m.file_type().is_symlink() {
        mode |= 1 << 27;
    }
    Ok(PathStat {
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "/".into()),
        size: m.size(),
        mode,
        mtime: crate::api::units::rfc3339(m.mtime()),
        link_target: link,
    })
}

pub fn main(a: ArchiveArgs) -> Result<i32> {
    nix::unistd::chroot(&a.rootfs).with_context(|| format!("entering {}", a.rootfs.display()))?;
    nix::unistd::chdir("/").context("entering the container's root")?;
    if let Some(p) = a.stat {
        let v = stat_json(Path::new(&p), &p)?;
        crate::say!("{}", serde_json::to_string(&v)?);
        return Ok(0);
    }
    if let Some(p) = a.get {
        let path = Path::new(&p);
        let meta = std::fs::symlink_metadata(path)
            .with_context(|| format!("Could not find the file {p} in container"))?;
        let name = path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| ".".into());
        let out = std::io::stdout().lock();
        let mut t = tar::Builder::new(out);
        t.follow_symlinks(false);
        if meta.is_dir() {
            t.append_dir_all(&name, path)
                .with_context(|| format!("archiving {p}"))?;
        } else {
            t.append_path_with_name(path, &name)
                .with_context(|| format!("archiving {p}"))?;
        }
        t.into_inner().context("writing the archive")?.flush()?;
        return Ok(0);
    }
    if let Some(dir) = a.put {
        let d = Path::new(&dir);
        if !d.is_dir() {
            bail!("Could not find the file {dir} in container: not a directory");
        }
        let mut t = tar::Archive::new(std::io::stdin().lock());
        t.set_preserve_permissions(true);
        t.set_preserve_ownerships(true);
        t.set_overwrite(true);
        t.unpack(d)
            .with_context(|| format!("extracting into {dir}"))?;
        return Ok(0);
    }
    bail!("berth archive: give --get, --put or --stat")
}
