//! The steps of one mount: its mount point (made by the init where an
//! earlier mount hides the host's view), bind mounts with their remount,
//! propagation, and cgroup mounts for v1 and v2.

use std::path::{Path, PathBuf};

use libc::c_ulong;
use oci_spec::runtime::Mount;

use super::options::{parse_options, MountOptions};
use super::RootfsContext;
use crate::error::{Result, RuntimeError};
use crate::paths::{cpath, cstr, secure_join};
use crate::process::plan::{Step, Steps};

/// Tracks mount points made so far, to know which directories must be
/// created by the child (they live on a filesystem mounted by an earlier step).
pub(super) struct Builder<'a> {
    pub(super) ctx: &'a RootfsContext<'a>,
    pub(super) steps: Steps,
    pub(super) mounted: Vec<PathBuf>,
}

impl Builder<'_> {
    fn under_mount(&self, p: &Path) -> bool {
        self.mounted.iter().any(|m| p.starts_with(m) && p != m)
    }

    /// Emits mkdir steps for each missing component of `dir` (host path under the rootfs).
    pub(super) fn mkdirs(&mut self, dir: &Path) -> Result<()> {
        let rel = dir.strip_prefix(self.ctx.rootfs).unwrap_or(dir);
        let mut cur = self.ctx.rootfs.to_path_buf();
        for c in rel.components() {
            cur.push(c);
            if self.under_mount(&cur) || !cur.exists() {
                self.steps.push(
                    Step::Mkdir {
                        path: cpath(&cur)?,
                        mode: 0o755,
                    },
                    format!("creating directory {}", self.show(&cur)),
                );
            }
        }
        Ok(())
    }

    fn show(&self, p: &Path) -> String {
        match p.strip_prefix(self.ctx.rootfs) {
            Ok(r) => format!("/{}", r.display()),
            Err(_) => p.display().to_string(),
        }
    }

    fn target(&mut self, dst: &Path, file: bool) -> Result<PathBuf> {
        let host = secure_join(self.ctx.rootfs, dst);
        if file {
            if let Some(parent) = host.parent() {
                self.mkdirs(parent)?;
            }
            if self.under_mount(&host) || !host.exists() {
                self.steps.push(
                    Step::Touch {
                        path: cpath(&host)?,
                    },
                    format!("creating mount point {}", self.show(&host)),
                );
            }
        } else {
            self.mkdirs(&host)?;
        }
        Ok(host)
    }

    pub(super) fn mount(&mut self, m: &Mount) -> Result<()> {
        let typ = m.typ().clone().unwrap_or_default();
        let opts = parse_options(m.options().as_deref().unwrap_or(&[])).map_err(|option| {
            RuntimeError::UnsupportedMountOption {
                destination: m.destination().clone(),
                option,
            }
        })?;
        let dst_show = m.destination().display().to_string();
        if typ == "cgroup" || typ == "cgroup2" {
            return self.cgroup_mount(m, &opts);
        }
        let is_bind = opts.bind || typ == "bind";
        if typ == "sysfs" && !self.ctx.new_netns && self.ctx.new_userns {
            // sysfs of a netns we do not own cannot be mounted: bind the host's.
            let host = self.target(m.destination(), false)?;
            self.bind(
                Path::new("/sys"),
                &host,
                true,
                opts.flags | libc::MS_RDONLY,
                &dst_show,
            )?;
            self.mounted.push(host);
            return Ok(());
        }
        if is_bind {
            let src = m.source().clone().unwrap_or_default();
            let md = std::fs::metadata(&src)
                .map_err(|e| RuntimeError::io("bind mount source", &src, e))?;
            let host = self.target(m.destination(), !md.is_dir())?;
            self.bind(&src, &host, opts.recursive, opts.flags, &dst_show)?;
            self.propagation(&host, opts.propagation, &dst_show)?;
            self.mounted.push(host);
            return Ok(());
        }
        let host = self.target(m.destination(), false)?;
        let src = m.source().clone().unwrap_or_else(|| PathBuf::from(&typ));
        let data = if opts.data.is_empty() {
            None
        } else {
            Some(cstr(opts.data.join(",").as_bytes())?)
        };
        self.steps.push(
            Step::Mount {
                src: Some(cpath(&src)?),
                dst: cpath(&host)?,
                fstype: Some(cstr(typ.as_bytes())?),
                flags: opts.flags,
                data,
            },
            format!("mounting {typ} on {dst_show}"),
        );
        self.propagation(&host, opts.propagation, &dst_show)?;
        self.mounted.push(host);
        Ok(())
    }

    /// The mount's own propagation (`rprivate`, `shared`, …), if it asks for one.
    fn propagation(&mut self, host: &Path, flags: c_ulong, show: &str) -> Result<()> {
        if flags != 0 {
            self.steps.push(
                Step::Propagation {
                    dst: cpath(host)?,
                    flags,
                },
                format!("setting propagation of {show}"),
            );
        }
        Ok(())
    }

    pub(super) fn bind(
        &mut self,
        src: &Path,
        host: &Path,
        recursive: bool,
        flags: c_ulong,
        show: &str,
    ) -> Result<()> {
        let rec = if recursive { libc::MS_REC } else { 0 };
        self.steps.push(
            Step::Mount {
                src: Some(cpath(src)?),
                dst: cpath(host)?,
                fstype: None,
                flags: libc::MS_BIND | rec,
                data: None,
            },
            format!("bind-mounting {} on {show}", src.display()),
        );
        let extra = flags & !(libc::MS_REMOUNT | libc::MS_BIND | libc::MS_REC);
        if extra != 0 {
            self.steps.push(
                Step::RemountBind {
                    dst: cpath(host)?,
                    flags: extra,
                },
                format!("re-mounting {show} with its options (ro, nosuid, ...)"),
            );
        }
        Ok(())
    }

    fn cgroup_mount(&mut self, m: &Mount, opts: &MountOptions) -> Result<()> {
        let host = self.target(m.destination(), false)?;
        let show = m.destination().display().to_string();
        if self.ctx.cgroup_v2 {
            self.steps.push(
                Step::Mount {
                    src: Some(cstr(b"cgroup2")?),
                    dst: cpath(&host)?,
                    fstype: Some(cstr(b"cgroup2")?),
                    flags: opts.flags,
                    data: None,
                },
                format!("mounting cgroup2 on {show}"),
            );
        } else {
            // v1: a tmpfs with each hierarchy's container cgroup bound in.
            self.steps.push(
                Step::Mount {
                    src: Some(cstr(b"tmpfs")?),
                    dst: cpath(&host)?,
                    fstype: Some(cstr(b"tmpfs")?),
                    flags: libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    data: Some(cstr(b"mode=755")?),
                },
                format!("mounting a tmpfs for cgroups on {show}"),
            );
            self.mounted.push(host.clone());
            for (name, dir) in self.ctx.cgroup_dirs.clone() {
                let sub = host.join(&name);
                self.steps.push(
                    Step::Mkdir {
                        path: cpath(&sub)?,
                        mode: 0o755,
                    },
                    format!("creating {show}/{name}"),
                );
                self.bind(&dir, &sub, false, opts.flags, &format!("{show}/{name}"))?;
            }
            if opts.flags & libc::MS_RDONLY != 0 {
                self.steps.push(
                    Step::RemountBind {
                        dst: cpath(&host)?,
                        flags: libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    },
                    format!("making {show} read-only"),
                );
            }
            return Ok(());
        }
        self.mounted.push(host);
        Ok(())
    }
}
