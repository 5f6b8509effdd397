//! The mounts of a container, in the order the runtime makes them:
//! docker's defaults (/proc, /dev, /sys, …), the network files of /etc,
//! the user's `-v`, `--mount` and `--tmpfs`, then `--init`'s binary.

use std::path::PathBuf;

use oci_spec::runtime::{Mount, MountBuilder};

use super::{bad, built, Inputs, INIT_PATH};
use crate::error::{EngineError, Result};

fn mount<O: AsRef<str>>(
    destination: impl Into<PathBuf>,
    typ: &str,
    source: impl Into<PathBuf>,
    options: &[O],
    image: &str,
) -> Result<Mount> {
    MountBuilder::default()
        .destination(destination)
        .typ(typ)
        .source(source)
        .options(
            options
                .iter()
                .map(|o| o.as_ref().to_string())
                .collect::<Vec<_>>(),
        )
        .build()
        .map_err(built(image))
}

/// All the container's mounts; `init` is the host's init binary for
/// `--init`.
pub(super) fn mounts(i: &Inputs<'_>, init: Option<PathBuf>) -> Result<Vec<Mount>> {
    let (h, image) = (i.host, i.image_name);
    let mut out = defaults(h.privileged, image)?;
    if let Some(etc) = i.etc.filter(|_| h.network_mode != "host") {
        for name in crate::networks::files::FILES {
            let src = crate::networks::files::path(etc, name);
            out.push(mount(
                format!("/etc/{name}"),
                "bind",
                src,
                &["rbind", "rprivate"],
                image,
            )?);
        }
    }
    out.extend(user_mounts(i)?);
    if let Some(init) = init {
        out.push(mount(INIT_PATH, "bind", init, &["rbind", "ro"], image)?);
    }
    Ok(out)
}

/// docker's /proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys and
/// /sys/fs/cgroup; /sys is writable only with `--privileged`.
fn defaults(privileged: bool, image: &str) -> Result<Vec<Mount>> {
    let sys = if privileged { "rw" } else { "ro" };
    let table: [(&str, &str, &str, &[&str]); 7] = [
        ("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        (
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        (
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        (
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        (
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        (
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", sys],
        ),
        (
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", sys],
        ),
    ];
    table
        .into_iter()
        .map(|(dst, typ, src, options)| mount(dst, typ, src, options, image))
        .collect()
}

/// The mounts of `-v`, `--mount` and `--tmpfs`.
fn user_mounts(i: &Inputs<'_>) -> Result<Vec<Mount>> {
    let image = i.image_name;
    let mut out = Vec::new();
    let source = |src: &str| -> Result<PathBuf> {
        if src.starts_with('/') {
            let p = PathBuf::from(src);
            if !p.exists() {
                return Err(bad(
                    image,
                    format!("bind source path does not exist: {src}"),
                ));
            }
            Ok(p)
        } else {
            crate::containers::volumes::check_name(src).map_err(|r| bad(image, r))?;
            let d = i.volumes.join(src).join("_data");
            std::fs::create_dir_all(&d).map_err(|e| EngineError::io("creating", &d, e))?;
            Ok(d)
        }
    };
    let dest = |d: &str| -> Result<()> {
        if d.starts_with('/') && d != "/" {
            Ok(())
        } else {
            Err(bad(
                image,
                format!(
                    "invalid mount destination {d:?}: it must be an absolute path other than /"
                ),
            ))
        }
    };
    let bind_options = |ro: bool| {
        if ro {
            vec!["rbind", "ro"]
        } else {
            vec!["rbind"]
        }
    };
    for b in &i.host.binds {
        let parts: Vec<&str> = b.split(':').collect();
        let (src, dst, opts) = match parts.as_slice() {
            [s, d] => (*s, *d, ""),
            [s, d, o] => (*s, *d, *o),
            _ => return Err(bad(image, format!("invalid volume specification: '{b}'"))),
        };
        dest(dst)?;
        let ro = opts.split(',').any(|o| o == "ro");
        out.push(mount(dst, "bind", source(src)?, &bind_options(ro), image)?);
    }
    for m in &i.host.mounts {
        dest(&m.target)?;
        match m.kind.as_str() {
            "bind" | "volume" | "" => {
                if m.kind == "bind" && !m.source.starts_with('/') {
                    return Err(bad(
                        image,
                        format!(
                            "invalid mount source {:?}: a bind mount needs an absolute path",
                            m.source
                        ),
                    ));
                }
                let src = source(&m.source)?;
                out.push(mount(
                    &m.target,
                    "bind",
                    src,
                    &bind_options(m.read_only),
                    image,
                )?);
            }
            "tmpfs" => out.push(mount(
                &m.target,
                "tmpfs",
                "tmpfs",
                &["nosuid", "nodev"],
                image,
            )?),
            other => {
                return Err(bad(
                    image,
                    format!("mount type {other:?} is not supported (bind, volume, tmpfs)"),
                ))
            }
        }
    }
    for (dst, opts) in &i.host.tmpfs {
        dest(dst)?;
        let mut o = vec!["nosuid", "nodev", "noexec"];
        o.extend(opts.split(',').filter(|s| !s.is_empty()));
        out.push(mount(dst, "tmpfs", "tmpfs", &o, image)?);
    }
    Ok(out)
}
