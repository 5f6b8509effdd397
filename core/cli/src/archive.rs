//! `berth archive` (hidden): the helper behind `cp`, run by the daemon with
//! a container's root filesystem. It chroots into that root first, so paths
//! and symlinks resolve inside the container, as they would for a process
//! in it, and never reach the host's files. It writes a tar of a path to
//! stdout (`--get`), extracts a tar from stdin into a directory (`--put`),
//! or prints a path's stat as docker's JSON (`--stat`). The tar keeps what
//! a filesystem holds beyond bytes and modes: a second name of a file is a
//! hard link, and extended attributes (`user.*`, `trusted.*`,
//! `security.capability`) are PAX `SCHILY.xattr.*` records (`export` is
//! this helper's `--get /`).

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
    /// Work as the root of this user namespace (a remapped container's).
    #[arg(long)]
    pub userns: Option<PathBuf>,
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

/// The extended attributes a tar carries (the ones layers keep too).
fn kept_xattr(name: &str) -> bool {
    name.starts_with("user.") || name.starts_with("trusted.") || name == "security.capability"
}

/// `path`'s kept extended attributes, as PAX records.
fn xattr_records(path: &Path) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut names = vec![0u8; 4096];
    let n = match rustix::fs::llistxattr(path, &mut names) {
        Ok(n) => n,
        // A filesystem without xattrs (proc, some fuse) has none to keep.
        Err(rustix::io::Errno::OPNOTSUPP) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for raw in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(raw).into_owned();
        if !kept_xattr(&name) {
            continue;
        }
        let mut value = vec![0u8; 64 * 1024];
        let len = rustix::fs::lgetxattr(path, name.as_str(), &mut value)?;
        value.truncate(len);
        out.push((format!("SCHILY.xattr.{name}"), value));
    }
    Ok(out)
}

/// Appends `src` as `name`, and everything beneath it when it is a
/// directory (each directory before its entries, entries sorted), never
/// following a symlink; a file already archived under another name becomes
/// a hard link to that name.
fn archive_tree<W: std::io::Write>(t: &mut tar::Builder<W>, src: &Path, name: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    let mut seen: std::collections::HashMap<(u64, u64), PathBuf> = Default::default();
    let mut stack = vec![(src.to_path_buf(), name.to_path_buf())];
    while let Some((src, dst)) = stack.pop() {
        let meta = std::fs::symlink_metadata(&src)
            .with_context(|| format!("reading {}", src.display()))?;
        let xattrs = xattr_records(&src)
            .with_context(|| format!("reading the xattrs of {}", src.display()))?;
        if !xattrs.is_empty() {
            t.append_pax_extensions(xattrs.iter().map(|(k, v)| (k.as_str(), v.as_slice())))?;
        }
        if meta.is_file() && meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = seen.get(&key) {
                let mut h = tar::Header::new_gnu();
                h.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                t.append_link(&mut h, &dst, first)
                    .with_context(|| format!("archiving {}", src.display()))?;
                continue;
            }
            seen.insert(key, dst.clone());
        }
        t.append_path_with_name(&src, &dst)
            .with_context(|| format!("archiving {}", src.display()))?;
        if meta.is_dir() {
            let mut children: Vec<_> = std::fs::read_dir(&src)
                .with_context(|| format!("listing {}", src.display()))?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<std::io::Result<_>>()
                .with_context(|| format!("listing {}", src.display()))?;
            children.sort();
            for c in children.into_iter().rev() {
                stack.push((src.join(&c), dst.join(&c)));
            }
        }
    }
    Ok(())
}

/// Becomes the root of user namespace `ns` (a remapped container's: owners
/// are then the container's, and files are made as its root) chrooted in
/// `rootfs`. The root is opened first: the remapped root may not pass the
/// daemon's directories on the way to it. (This process is single-threaded,
/// as joining a user namespace needs.)
fn enter_userns(rootfs: &Path, ns: &Path) -> Result<()> {
    use nix::unistd::{Gid, Uid};
    let root =
        std::fs::File::open(rootfs).with_context(|| format!("opening {}", rootfs.display()))?;
    let userns = std::fs::File::open(ns).with_context(|| format!("opening {}", ns.display()))?;
    nix::sched::setns(&userns, nix::sched::CloneFlags::CLONE_NEWUSER)
        .context("joining the container's user namespace")?;
    nix::unistd::setgroups(&[]).context("dropping supplementary groups")?;
    nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
        .context("becoming the container's root group")?;
    nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
        .context("becoming the container's root")?;
    nix::unistd::fchdir(&root).context("entering the container's root")?;
    nix::unistd::chroot(".").context("entering the container's root")?;
    Ok(())
}

pub fn main(a: ArchiveArgs) -> Result<i32> {
    match &a.userns {
        Some(ns) => enter_userns(&a.rootfs, ns)?,
        None => nix::unistd::chroot(&a.rootfs)
            .with_context(|| format!("entering {}", a.rootfs.display()))?,
    }
    nix::unistd::chdir("/").context("entering the container's root")?;
    if let Some(p) = a.stat {
        let v = stat_json(Path::new(&p), &p)?;
        crate::say!("{}", serde_json::to_string(&v)?);
        return Ok(0);
    }
    if let Some(p) = a.get {
        let path = Path::new(&p);
        std::fs::symlink_metadata(path)
            .with_context(|| format!("Could not find the file {p} in container"))?;
        let name = path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| ".".into());
        let out = std::io::stdout().lock();
        let mut t = tar::Builder::new(out);
        t.follow_symlinks(false);
        archive_tree(&mut t, path, Path::new(&name)).with_context(|| format!("archiving {p}"))?;
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
