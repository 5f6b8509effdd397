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

fn mount_one(id: &str, m: &berth_host::Mount, target: &Path) -> Result<()> {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    let mut bind = false;
    // The host's pinned forms: the directories it checked, by open descriptor.
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
