//! Turns the spec's root, mounts, devices, masked and read-only paths into
//! init-plan steps: what the container's filesystem looks like after
//! pivot_root. Mount options, the per-mount builder and /dev have their own
//! modules; this one orders the whole and refuses what a config without a
//! mount namespace cannot have.

mod builder;
mod devices;
mod options;

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use crate::error::{Result, RuntimeError};
use crate::paths::{cpath, cstr};
use crate::process::plan::{Step, Steps};
use builder::Builder;
use options::propagation_flags;
pub use options::{parse_options, MountOptions};

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

/// Whether a list of the config is given and not empty.
fn nonempty<T>(list: &Option<Vec<T>>) -> bool {
    list.as_ref().is_some_and(|l| !l.is_empty())
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
            return Err(RuntimeError::InvalidSysctl { name: k });
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
    let root_readonly = spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false);
    for (field, given) in [
        ("linux.maskedPaths", nonempty(linux.masked_paths())),
        ("linux.readonlyPaths", nonempty(linux.readonly_paths())),
        ("root.readonly", root_readonly),
        ("linux.devices", nonempty(linux.devices())),
        (
            "linux.rootfsPropagation",
            linux
                .rootfs_propagation()
                .as_ref()
                .is_some_and(|p| !p.is_empty()),
        ),
    ] {
        if given {
            asked.push(field.to_string());
        }
    }
    if !asked.is_empty() {
        return Err(RuntimeError::MountsWithoutMountNamespace { asked });
    }
    let mut post = Steps::default();
    sysctl_steps(&linux, &mut post)?;
    Ok(post)
}

#[cfg(test)]
mod tests {
    use super::*;

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
