//! Mounting a container's root filesystem from the mounts a storage driver
//! described (the core acts; the plugin only said what to mount), and
//! unmounting it again.

use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::error::{EngineError, Result};

fn err(id: &str, reason: String) -> EngineError {
    EngineError::Mount {
        id: id.into(),
        reason,
    }
}

/// Mounts `mounts` (in order) on `target`.
pub fn mount_all(id: &str, mounts: &[berth_host::Mount], target: &Path) -> Result<()> {
    for (i, m) in mounts.iter().enumerate() {
        if let Err(e) = mount_one(id, m, target) {
            // Undo what this call mounted.
            for _ in 0..i {
                let _ = umount2(target, MntFlags::MNT_DETACH);
            }
            return Err(e);
        }
    }
    Ok(())
}

/// A mount's options split into mount(2) flags and the filesystem's own
/// options (`data`); `bind` for `bind`/`rbind`. The host's pinned forms:
/// the directories it checked, by open descriptor.
fn split_options(m: &berth_host::Mount) -> (MsFlags, Vec<String>, bool) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    let mut bind = false;
    for o in m.mount_options() {
        match o.as_str() {
            "ro" => flags |= MsFlags::MS_RDONLY,
            "rw" => {}
            "bind" => bind = true,
            "rbind" => {
                bind = true;
                flags |= MsFlags::MS_REC;
            }
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            other => data.push(other.to_string()),
        }
    }
    (flags, data, bind)
}

fn mount_one(id: &str, m: &berth_host::Mount, target: &Path) -> Result<()> {
    let (flags, data, bind) = split_options(m);
    let data = data.join(",");
    match m.kind.as_str() {
        "bind" => {
            let _ = bind;
            mount(
                Some(m.mount_source()),
                target,
                None::<&str>,
                MsFlags::MS_BIND | (flags & MsFlags::MS_REC),
                None::<&str>,
            )
            .map_err(|e| {
                err(
                    id,
                    format!(
                        "bind-mounting {} on {}: {e}",
                        m.source.display(),
                        target.display()
                    ),
                )
            })?;
            let rest = flags & !MsFlags::MS_REC;
            if !rest.is_empty() {
                mount(
                    None::<&str>,
                    target,
                    None::<&str>,
                    MsFlags::MS_REMOUNT | MsFlags::MS_BIND | rest,
                    None::<&str>,
                )
                .map_err(|e| {
                    err(
                        id,
                        format!("re-mounting {} with {:?}: {e}", target.display(), m.options),
                    )
                })?;
            }
        }
        "overlay" | "tmpfs" => {
            if data.len() >= 4096 {
                return Err(err(
                    id,
                    format!(
                        "{} mount options are longer than a page ({} bytes): too many layers",
                        m.kind,
                        data.len()
                    ),
                ));
            }
            mount(
                Some(m.kind.as_str()),
                target,
                Some(m.kind.as_str()),
                flags,
                Some(data.as_str()),
            )
            .map_err(|e| {
                err(
                    id,
                    format!(
                        "mounting {} on {} ({}): {e}",
                        m.kind,
                        target.display(),
                        m.options.join(",")
                    ),
                )
            })?;
        }
        other => {
            return Err(err(
                id,
                format!("storage driver returned an unknown mount type {other:?}"),
            ))
        }
    }
    Ok(())
}

/// Unmounts the root filesystem (everything stacked on `target`).
pub fn unmount_all(target: &Path) -> Result<()> {
    loop {
        match umount2(target, MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => return Ok(()),
            Err(e) => {
                return Err(EngineError::io(
                    "unmounting",
                    target,
                    std::io::Error::from(e),
                ));
            }
        }
    }
}

/// [`mount_all`] for a container in a remapped user namespace (`userns`):
/// a bind becomes an idmapped bind; an overlay gets idmapped views of its
/// lower layers and of the directory holding its upper and work dirs (they
/// must share it), attached under `scratch` while the overlay is mounted and
/// detached right after (the overlay keeps its own references). Files stay
/// on disk with the image's ids.
pub fn mount_all_idmapped(
    id: &str,
    mounts: &[berth_host::Mount],
    target: &Path,
    userns: std::os::fd::BorrowedFd<'_>,
    remapped_root: (u32, u32),
    scratch: &Path,
) -> Result<()> {
    let [m] = mounts else {
        return Err(err(
            id,
            format!(
                "userns-remap needs the storage driver's root filesystem in one mount, not {}",
                mounts.len()
            ),
        ));
    };
    let idmap_err = |what: &Path, e: std::io::Error| {
        err(
            id,
            format!(
                "an idmapped mount of {} for userns-remap: {e} (it needs Linux 5.19 or later \
                 and a filesystem with idmapped mounts: ext4, xfs, btrfs, tmpfs)",
                what.display()
            ),
        )
    };
    match m.kind.as_str() {
        "bind" => crate::userns::idmapped_bind(m.mount_source(), target, userns)
            .map_err(|e| idmap_err(m.mount_source(), e)),
        "overlay" => {
            let _ = std::fs::remove_dir_all(scratch);
            std::fs::create_dir_all(scratch)
                .map_err(|e| EngineError::io("creating", scratch, e))?;
            let mut attached = Vec::new();
            let r = overlay_idmapped(id, m, target, userns, remapped_root, scratch, &mut attached);
            for p in attached.iter().rev() {
                let _ = umount2(p, MntFlags::MNT_DETACH);
            }
            let _ = std::fs::remove_dir_all(scratch);
            r.map_err(|e| match e {
                Idmapped::Io(p, e) => idmap_err(&p, e),
                Idmapped::Engine(e) => e,
            })
        }
        other => Err(err(
            id,
            format!("userns-remap cannot remap a {other} mount from the storage driver"),
        )),
    }
}

enum Idmapped {
    Io(std::path::PathBuf, std::io::Error),
    Engine(EngineError),
}

/// The (dev, inode) of a path.
fn ident(p: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).map(|m| (m.dev(), m.ino()))
}

#[allow(clippy::too_many_arguments)]
fn overlay_idmapped(
    id: &str,
    m: &berth_host::Mount,
    target: &Path,
    userns: std::os::fd::BorrowedFd<'_>,
    remapped_root: (u32, u32),
    scratch: &Path,
    attached: &mut Vec<std::path::PathBuf>,
) -> std::result::Result<(), Idmapped> {
    let mut view =
        |source: &Path, name: String| -> std::result::Result<std::path::PathBuf, Idmapped> {
            let at = scratch.join(name);
            std::fs::create_dir(&at).map_err(|e| Idmapped::Io(at.clone(), e))?;
            crate::userns::idmapped_bind(source, &at, userns)
                .map_err(|e| Idmapped::Io(source.to_path_buf(), e))?;
            attached.push(at.clone());
            Ok(at)
        };
    let mut options = Vec::new();
    let (flags, data, _) = split_options(m);
    let (mut upper, mut work) = (None, None);
    for o in &data {
        if let Some(l) = o.strip_prefix("lowerdir=") {
            let mut lowers = Vec::new();
            for (i, p) in l.split(':').enumerate() {
                let v = view(Path::new(p), format!("l{i}"))?;
                lowers.push(v.to_string_lossy().into_owned());
            }
            options.push(format!("lowerdir={}", lowers.join(":")));
        } else if let Some(u) = o.strip_prefix("upperdir=") {
            upper = Some(u.to_string());
        } else if let Some(w) = o.strip_prefix("workdir=") {
            work = Some(w.to_string());
        } else {
            options.push(o.clone());
        }
    }
    // The upper and work dirs through one idmapped view of their parent
    // (overlay wants them on one mount): the (pinned) dirs' parent, and the
    // names the driver gave them, checked to be the same directories.
    if let (Some(u), Some(w)) = (&upper, &work) {
        let parent = Path::new(u).join("..");
        let same_parent = ident(&parent).ok() == ident(&Path::new(w).join("..")).ok();
        let name = |key: &str| {
            m.options.iter().find_map(|o| {
                o.strip_prefix(key)
                    .and_then(|p| Path::new(p).file_name().map(|n| n.to_owned()))
            })
        };
        let names: Vec<_> = [name("upperdir="), name("workdir=")]
            .into_iter()
            .flatten()
            .collect();
        if !same_parent || names.len() != 2 {
            return Err(Idmapped::Engine(err(
                id,
                "userns-remap needs the overlay's upper and work dirs in one directory".into(),
            )));
        }
        let v = view(&parent, "u".into())?;
        let (vu, vw) = (v.join(&names[0]), v.join(&names[1]));
        if ident(&vu).ok() != ident(Path::new(u)).ok()
            || ident(&vw).ok() != ident(Path::new(w)).ok()
        {
            return Err(Idmapped::Engine(err(
                id,
                "the overlay's upper or work dir changed while it was being mounted".into(),
            )));
        }
        options.push(format!("upperdir={}", vu.display()));
        options.push(format!("workdir={}", vw.display()));
    }
    let data = options.join(",");
    mount_as(remapped_root, target, flags, &data).map_err(|e| {
        Idmapped::Engine(err(
            id,
            format!("mounting the idmapped overlay on {}: {e}", target.display()),
        ))
    })
}

/// Mounts an overlay as `ids` (the remapped root's host uid and gid):
/// overlay does its work in the upper dir with its mounter's credentials,
/// and through the idmapped upper only a mapped id may create files (the
/// remapped root's are stored as root's). The credentials are changed on a
/// thread of its own (file-system ids and capabilities are per thread),
/// keeping every capability.
fn mount_as(ids: (u32, u32), target: &Path, flags: MsFlags, data: &str) -> std::io::Result<()> {
    let (target, data) = (target.to_path_buf(), data.to_string());
    std::thread::spawn(move || -> std::io::Result<()> {
        // SAFETY: setfsgid/setfsuid change this thread's ids only (raw
        // system calls, not glibc's process-wide setxid broadcast).
        unsafe {
            libc::syscall(libc::SYS_setfsgid, ids.1);
            libc::syscall(libc::SYS_setfsuid, ids.0);
        }
        // Leaving fsuid 0 dropped the file capabilities from the effective
        // set: take them back from the permitted one.
        let permitted = caps::read(None, caps::CapSet::Permitted)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        caps::set(None, caps::CapSet::Effective, &permitted)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        mount(
            Some("overlay"),
            &target,
            Some("overlay"),
            flags,
            Some(data.as_str()),
        )
        .map_err(std::io::Error::from)
    })
    .join()
    .map_err(|_| std::io::Error::other("the mounting thread panicked"))?
}
