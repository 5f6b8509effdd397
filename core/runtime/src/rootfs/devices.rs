//! /dev on a tmpfs: the default device nodes and the spec's
//! `linux.devices` (bound from the host in a user namespace), the standard
//! links, and the console's mount point.

use std::path::PathBuf;

use oci_spec::runtime::{LinuxDeviceType, Spec};

use super::builder::Builder;
use crate::error::{Result, RuntimeError};
use crate::paths::{cpath, cstr, secure_join};
use crate::process::plan::Step;

impl Builder<'_> {
    pub(super) fn devices(&mut self, spec: &Spec) -> Result<()> {
        let dev = self.ctx.rootfs.join("dev");
        let defaults: [(&str, u64, u64); 6] = [
            ("null", 1, 3),
            ("zero", 1, 5),
            ("full", 1, 7),
            ("random", 1, 8),
            ("urandom", 1, 9),
            ("tty", 5, 0),
        ];
        let mut list: Vec<(PathBuf, u32, u64, u64, u32, u32)> = defaults
            .iter()
            .map(|(n, ma, mi)| {
                (
                    PathBuf::from("/dev").join(n),
                    libc::S_IFCHR | 0o666,
                    *ma,
                    *mi,
                    0,
                    0,
                )
            })
            .collect();
        for d in spec
            .linux()
            .as_ref()
            .and_then(|l| l.devices().clone())
            .unwrap_or_default()
        {
            let kind = match d.typ() {
                LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
                LinuxDeviceType::B => libc::S_IFBLK,
                LinuxDeviceType::P => libc::S_IFIFO,
                LinuxDeviceType::A => {
                    return Err(RuntimeError::InvalidDevice {
                        path: d.path().clone(),
                        reason: "type \"a\" is not a device node",
                    })
                }
            };
            let mode = kind | d.file_mode().unwrap_or(0o666);
            list.retain(|x| x.0 != *d.path());
            list.push((
                d.path().clone(),
                mode,
                d.major() as u64,
                d.minor() as u64,
                d.uid().unwrap_or(0),
                d.gid().unwrap_or(0),
            ));
        }
        for (path, mode, major, minor, uid, gid) in list {
            let host = secure_join(self.ctx.rootfs, &path);
            if !host.starts_with(&dev) {
                return Err(RuntimeError::InvalidDevice {
                    path,
                    reason: "devices must live under /dev",
                });
            }
            if let Some(parent) = host.parent() {
                self.mkdirs(parent)?;
            }
            if self.ctx.new_userns {
                // mknod is not allowed in a user namespace: bind the host's node.
                self.steps.push(
                    Step::Touch {
                        path: cpath(&host)?,
                    },
                    format!("creating {}", path.display()),
                );
                self.bind(&path, &host, false, 0, &path.display().to_string())?;
            } else {
                self.steps.push(
                    Step::Mknod {
                        path: cpath(&host)?,
                        mode,
                        dev: libc::makedev(major as u32, minor as u32),
                        uid,
                        gid,
                    },
                    format!("creating device {} ({major}:{minor})", path.display()),
                );
            }
        }
        for (target, link) in [
            ("/proc/self/fd", "fd"),
            ("/proc/self/fd/0", "stdin"),
            ("/proc/self/fd/1", "stdout"),
            ("/proc/self/fd/2", "stderr"),
            ("pts/ptmx", "ptmx"),
            ("/proc/kcore", "core"),
        ] {
            self.steps.push(
                Step::Symlink {
                    target: cstr(target.as_bytes())?,
                    link: cpath(&dev.join(link))?,
                },
                format!("linking /dev/{link} to {target}"),
            );
        }
        if self.ctx.terminal {
            self.steps.push(
                Step::Touch {
                    path: cpath(&dev.join("console"))?,
                },
                "creating /dev/console",
            );
        }
        Ok(())
    }
}
