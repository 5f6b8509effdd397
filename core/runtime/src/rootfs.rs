//! Turns the spec's root, mounts, devices, masked and read-only paths into
//! init-plan steps: what the container's filesystem looks like after
//! pivot_root.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use libc::c_ulong;
use oci_spec::runtime::{LinuxDeviceType, Mount, Spec};

use crate::error::{Result, RuntimeError};
use crate::paths::{bytes, secure_join};
use crate::process::plan::{Step, Steps};

/// What the rootfs builder needs to know besides the spec.
#[derive(Debug)]
pub struct RootfsContext<'a> {
    pub rootfs: &'a Path,
    pub new_netns: bool,
    pub new_userns: bool,
    pub terminal: bool,
    /// For `cgroup` mounts on v1/hybrid hosts: (name under /sys/fs/cgroup, host dir of the container's cgroup).
    pub cgroup_dirs: Vec<(String, PathBuf)>,
    /// For `cgroup` mounts on a pure v2 host.
    pub cgroup_v2: bool,
}

pub(crate) fn cstr(b: &[u8]) -> Result<CString> {
    CString::new(b).map_err(|_| {
        RuntimeError::Unsupported(format!(
            "path or string {:?} contains a NUL byte",
            String::from_utf8_lossy(b)
        ))
    })
}

pub(crate) fn cpath(p: &Path) -> Result<CString> {
    cstr(bytes(p))
}

/// Mount flags and the leftover data string from an OCI options list.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MountOptions {
    pub flags: c_ulong,
    pub clear: c_ulong,
    pub propagation: c_ulong,
    pub data: Vec<String>,
    pub bind: bool,
    pub recursive: bool,
}

/// Parses OCI mount options as mount(8) does.
pub fn parse_options(opts: &[String]) -> Result<MountOptions> {
    use libc::*;
    let mut o = MountOptions::default();
    for opt in opts {
        let (set, clr): (c_ulong, c_ulong) = match opt.as_str() {
            "defaults" => (0, 0),
            "ro" => (MS_RDONLY, 0),
            "rw" => (0, MS_RDONLY),
            "nosuid" => (MS_NOSUID, 0),
            "suid" => (0, MS_NOSUID),
            "nodev" => (MS_NODEV, 0),
            "dev" => (0, MS_NODEV),
            "noexec" => (MS_NOEXEC, 0),
            "exec" => (0, MS_NOEXEC),
            "sync" => (MS_SYNCHRONOUS, 0),
            "async" => (0, MS_SYNCHRONOUS),
            "dirsync" => (MS_DIRSYNC, 0),
            "remount" => (MS_REMOUNT, 0),
            "mand" => (MS_MANDLOCK, 0),
            "nomand" => (0, MS_MANDLOCK),
            "atime" => (0, MS_NOATIME),
            "noatime" => (MS_NOATIME, 0),
            "diratime" => (0, MS_NODIRATIME),
            "nodiratime" => (MS_NODIRATIME, 0),
            "relatime" => (MS_RELATIME, 0),
            "norelatime" => (0, MS_RELATIME),
            "strictatime" => (MS_STRICTATIME, 0),
            "nostrictatime" => (0, MS_STRICTATIME),
            "bind" => {
                o.bind = true;
                (0, 0)
            }
            "rbind" => {
                o.bind = true;
                o.recursive = true;
                (0, 0)
            }
            p if propagation_flags(p) != 0 => {
                o.propagation |= propagation_flags(p);
                (0, 0)
            }
            "tmpcopyup" | "idmap" | "ridmap" => {
                return Err(RuntimeError::Unsupported(format!(
                    "mount option {opt:?} is not supported by berth"
                )))
            }
            other => {
                o.data.push(other.to_string());
                (0, 0)
            }
        };
        o.flags = (o.flags | set) & !clr;
        o.clear |= clr;
    }
    Ok(o)
}

fn propagation_flags(name: &str) -> c_ulong {
    use libc::*;
    match name {
        "private" => MS_PRIVATE,
        "rprivate" => MS_PRIVATE | MS_REC,
        "shared" => MS_SHARED,
        "rshared" => MS_SHARED | MS_REC,
        "slave" => MS_SLAVE,
        "rslave" => MS_SLAVE | MS_REC,
        "unbindable" => MS_UNBINDABLE,
        "runbindable" => MS_UNBINDABLE | MS_REC,
        _ => 0,
    }
}

/// Tracks mount points made so far, to know which directories must be
/// created by the child (they live on a filesystem mounted by an earlier step).
struct Builder<'a> {
    ctx: &'a RootfsContext<'a>,
    steps: Steps,
    mounted: Vec<PathBuf>,
}

impl Builder<'_> {
    fn under_mount(&self, p: &Path) -> bool {
        self.mounted.iter().any(|m| p.starts_with(m) && p != m)
    }

    /// Emits mkdir steps for each missing component of `dir` (host path under the rootfs).
    fn mkdirs(&mut self, dir: &Path) -> Result<()> {
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

    fn mount(&mut self, m: &Mount) -> Result<()> {
        let typ = m.typ().clone().unwrap_or_default();
        let opts = parse_options(m.options().as_deref().unwrap_or(&[]))?;
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
            if opts.propagation != 0 {
                self.steps.push(
                    Step::Propagation {
                        dst: cpath(&host)?,
                        flags: opts.propagation,
                    },
                    format!("setting propagation of {dst_show}"),
                );
            }
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
        if opts.propagation != 0 {
            self.steps.push(
                Step::Propagation {
                    dst: cpath(&host)?,
                    flags: opts.propagation,
                },
                format!("setting propagation of {dst_show}"),
            );
        }
        self.mounted.push(host);
        Ok(())
    }

    fn bind(
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

    fn devices(&mut self, spec: &Spec) -> Result<()> {
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
                    return Err(RuntimeError::Unsupported(format!(
                        "linux.devices {}: type \"a\" is not a device node",
                        d.path().display()
                    )))
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
                return Err(RuntimeError::Unsupported(format!(
                    "linux.devices {}: devices must live under /dev",
                    path.display()
                )));
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

/// Builds the steps before pivot_root and after it. Returns (pre, post, console_bind).
pub fn build(spec: &Spec, ctx: &RootfsContext<'_>) -> Result<(Steps, Steps, bool)> {
    let mut b = Builder {
        ctx,
        steps: Steps::default(),
        mounted: Vec::new(),
    };
    let root = cpath(ctx.rootfs)?;
    b.steps.push(
        Step::Propagation {
            dst: cstr(b"/")?,
            flags: libc::MS_SLAVE | libc::MS_REC,
        },
        "making / a recursive slave mount",
    );
    b.steps.push(
        Step::Mount {
            src: Some(root.clone()),
            dst: root.clone(),
            fstype: None,
            flags: libc::MS_BIND | libc::MS_REC,
            data: None,
        },
        format!("bind-mounting the rootfs {}", ctx.rootfs.display()),
    );
    let mounts = spec.mounts().clone().unwrap_or_default();
    for m in &mounts {
        b.mount(m)?;
    }
    let dev_is_tmpfs = mounts
        .iter()
        .any(|m| m.destination() == Path::new("/dev") && m.typ().as_deref() != Some("bind"));
    if dev_is_tmpfs {
        b.devices(spec)?;
    }
    let pre = b.steps;

    let mut post = Steps::default();
    let linux = spec.linux().clone().unwrap_or_default();
    sysctl_steps(&linux, &mut post)?;
    for p in linux.masked_paths().clone().unwrap_or_default() {
        post.push(
            Step::Mask {
                path: cstr(p.as_bytes())?,
            },
            format!("masking {p}"),
        );
    }
    for p in linux.readonly_paths().clone().unwrap_or_default() {
        post.push(
            Step::ReadOnly {
                path: cstr(p.as_bytes())?,
            },
            format!("making {p} read-only"),
        );
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        post.push(
            Step::RemountBind {
                dst: cstr(b"/")?,
                flags: libc::MS_RDONLY,
            },
            "making the root filesystem read-only",
        );
    }
    if let Some(p) = linux
        .rootfs_propagation()
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        post.push(
            Step::Propagation {
                dst: cstr(b"/")?,
                flags: propagation_flags(p),
            },
            format!("setting rootfs propagation {p}"),
        );
    }
    Ok((pre, post, ctx.terminal && dev_is_tmpfs))
}

/// One write step per sysctl, in name order.
fn sysctl_steps(linux: &oci_spec::runtime::Linux, post: &mut Steps) -> Result<()> {
    let mut sysctls: Vec<_> = linux
        .sysctl()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    sysctls.sort();
    for (k, v) in sysctls {
        if k.contains('/') && k.contains("..") {
            return Err(RuntimeError::Unsupported(format!(
                "sysctl {k:?}: invalid name"
            )));
        }
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        post.push(
            Step::Write {
                path: cstr(path.as_bytes())?,
                value: cstr(v.as_bytes())?,
            },
            format!("setting sysctl {k}={v}"),
        );
    }
    Ok(())
}

/// The steps for a config without a mount namespace: the init chroots into
/// the rootfs and makes no mount (any would land in the host's mount table),
/// so a config that asks for mounts, masked or read-only paths, a read-only
/// root, devices or a rootfs propagation is refused, naming what it asked
/// for. Only sysctls remain, written before the chroot through the host's
/// /proc (its sysctl files act on the writer's own network, IPC and UTS
/// namespaces, which are the container's by then).
pub fn build_without_mount_ns(spec: &Spec) -> Result<Steps> {
    let linux = spec.linux().clone().unwrap_or_default();
    let mut asked = Vec::new();
    let mounts = spec.mounts().clone().unwrap_or_default();
    if !mounts.is_empty() {
        let dests: Vec<String> = mounts
            .iter()
            .map(|m| m.destination().display().to_string())
            .collect();
        asked.push(format!("mounts ({})", dests.join(", ")));
    }
    if linux.masked_paths().as_ref().is_some_and(|p| !p.is_empty()) {
        asked.push("linux.maskedPaths".to_string());
    }
    if linux
        .readonly_paths()
        .as_ref()
        .is_some_and(|p| !p.is_empty())
    {
        asked.push("linux.readonlyPaths".to_string());
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        asked.push("root.readonly".to_string());
    }
    if linux.devices().as_ref().is_some_and(|d| !d.is_empty()) {
        asked.push("linux.devices".to_string());
    }
    if linux
        .rootfs_propagation()
        .as_ref()
        .is_some_and(|p| !p.is_empty())
    {
        asked.push("linux.rootfsPropagation".to_string());
    }
    if !asked.is_empty() {
        return Err(RuntimeError::Unsupported(format!(
            "linux.namespaces has no mount namespace, so the container shares the host's mounts \
             and berth makes none (it would change the host's); the config asks for {}: \
             add a mount namespace or remove them",
            asked.join(", ")
        )));
    }
    let mut post = Steps::default();
    sysctl_steps(&linux, &mut post)?;
    Ok(post)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_become_flags_and_data() {
        let o = parse_options(&[
            "nosuid".into(),
            "ro".into(),
            "mode=755".into(),
            "size=65536k".into(),
            "rprivate".into(),
        ])
        .unwrap();
        assert_eq!(o.flags, libc::MS_NOSUID | libc::MS_RDONLY);
        assert_eq!(o.data, vec!["mode=755", "size=65536k"]);
        assert_eq!(o.propagation, libc::MS_PRIVATE | libc::MS_REC);
        let o = parse_options(&["ro".into(), "rw".into(), "rbind".into()]).unwrap();
        assert_eq!(o.flags, 0);
        assert!(o.bind && o.recursive);
        assert!(parse_options(&["idmap".into()]).is_err());
    }

    #[test]
    fn plans_mounts_devices_and_masks() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("dev")).unwrap();
        std::fs::create_dir_all(t.path().join("proc")).unwrap();
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs", "readonly": true},
            "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["newinstance", "ptmxmode=0666"]},
                {"destination": "/data", "type": "bind", "source": "/tmp", "options": ["rbind", "ro"]}
            ],
            "linux": {"maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"], "sysctl": {"net.ipv4.ip_forward": "1"}}
        }))
        .unwrap();
        let ctx = RootfsContext {
            rootfs: t.path(),
            new_netns: true,
            new_userns: false,
            terminal: true,
            cgroup_dirs: vec![],
            cgroup_v2: false,
        };
        let (pre, post, console) = build(&spec, &ctx).unwrap();
        assert!(console);
        let d = pre.descs.join("\n");
        assert!(d.contains("mounting proc on /proc"), "{d}");
        assert!(d.contains("creating directory /dev/pts"), "{d}");
        assert!(!d.contains("creating directory /proc\n"), "{d}");
        assert!(d.contains("creating directory /data"), "{d}");
        assert!(d.contains("re-mounting /data"), "{d}");
        assert!(d.contains("creating device /dev/null (1:3)"), "{d}");
        assert!(d.contains("linking /dev/ptmx"), "{d}");
        let p = post.descs.join("\n");
        assert!(p.contains("setting sysctl net.ipv4.ip_forward=1"));
        assert!(p.contains("masking /proc/kcore"));
        assert!(p.contains("making the root filesystem read-only"));
    }
}
