//! The OCI runtime spec of a container made from an image: the image config
//! (Entrypoint, Cmd, Env, WorkingDir, User) and docker's defaults
//! (capabilities, masked paths, mounts), with what the user asked for
//! (docker's `Config` and `HostConfig`) on top.
//!
//! The spec is built from oci-spec's typed structs, so a misspelt field or a
//! value of the wrong type is a compile error rather than a failed start:
//! `process.rs` makes the process, `mounts.rs` the mounts, `resources.rs`
//! the cgroup limits and rlimits, `security.rs` the capabilities,
//! namespaces and masked paths.

mod mounts;
mod process;
mod resources;
pub mod seccomp;
mod security;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::{LinuxBuilder, ProcessBuilder, RootBuilder, Spec, SpecBuilder};
use oci_spec::OciSpecError;

use crate::containers::config::{ContainerConfig, HostConfig};
use crate::error::{EngineError, Result};

pub use process::{args, resolve_user};

/// The memory, CPU and pids limits of `h` alone (no device rules), for
/// changing them on a running container.
pub fn limits(h: &HostConfig, image: &str) -> Result<oci_spec::runtime::LinuxResources> {
    let mut r = resources::resources(h, image)?;
    r.set_devices(None);
    if r.pids().is_none() {
        // No limit is a limit too when it replaces one: pids.max = max.
        let unlimited = oci_spec::runtime::LinuxPidsBuilder::default()
            .limit(-1)
            .build()
            .map_err(|e| EngineError::Image {
                name: image.into(),
                reason: format!("building the pids limit: {e}"),
            })?;
        r.set_pids(Some(unlimited));
    }
    Ok(r)
}
pub use security::DEFAULT_CAPS;

/// Where a container's named volumes and bind mounts come from.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    pub id: &'a str,
    /// The image name, for errors.
    pub image_name: &'a str,
    pub image: &'a ImageConfiguration,
    pub config: &'a ContainerConfig,
    pub host: &'a HostConfig,
    /// The mounted root filesystem (user names are looked up in it).
    pub rootfs: &'a Path,
    /// `<root>/volumes`: a named volume `NAME` is `<volumes>/NAME/_data`.
    pub volumes: &'a Path,
    /// The container's directory holding its /etc/hosts, /etc/hostname and
    /// /etc/resolv.conf (see `networks::files`); `None` keeps the image's.
    pub etc: Option<&'a Path>,
    /// The daemon's `userns-remap`, when this container runs remapped.
    pub remap: Option<&'a crate::userns::Remap>,
}

fn bad(name: &str, reason: String) -> EngineError {
    EngineError::Image {
        name: name.into(),
        reason,
    }
}

/// The error of an oci-spec builder. The builders refuse only fields that
/// contradict each other (a mount's uid mappings without gid mappings),
/// which berth never sets.
fn built(image: &str) -> impl Fn(OciSpecError) -> EngineError + '_ {
    move |e| bad(image, format!("building the container spec: {e}"))
}

/// Checks what a spec would refuse in `h` without a root filesystem, so
/// that `create` fails rather than a later `start`.
pub fn check_host(h: &HostConfig) -> Result<()> {
    let caps = security::capabilities(h, "container")?;
    seccomp::for_container(h, &cap_names(&caps), "container")?;
    resources::resources(h, "container")?;
    resources::rlimits(h, "container")?;
    security::no_new_privileges(h, "container")?;
    security::namespaces(h, "container")?;
    Ok(())
}

/// The `CAP_…` names of a capability set.
fn cap_names(caps: &oci_spec::runtime::Capabilities) -> std::collections::BTreeSet<String> {
    caps.iter()
        .filter_map(|c| serde_json::to_value(c).ok())
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// The init that `--init` runs as PID 1 (docker's `docker-init` is tini):
/// a statically linked binary, as it runs inside any image.
fn init_binary() -> Result<PathBuf> {
    [
        "/usr/bin/tini-static",
        "/usr/libexec/docker/docker-init",
        "/usr/local/bin/docker-init",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
    .ok_or(EngineError::NoInit)
}

/// Where `--init` puts its init in the container (as docker does).
pub const INIT_PATH: &str = "/sbin/docker-init";

/// Builds the spec.
pub fn spec(i: &Inputs<'_>) -> Result<Spec> {
    let (c, h, image) = (i.config, i.host, i.image_name);
    let mut args = args(i.image, c);
    if args.is_empty() {
        return Err(bad(
            image,
            "no command given and the image has neither Entrypoint nor Cmd".into(),
        ));
    }
    let init = if h.init == Some(true) {
        args.splice(0..0, [INIT_PATH.to_string(), "--".to_string()]);
        Some(init_binary()?)
    } else {
        None
    };
    let hostname = if c.hostname.is_empty() {
        i.id.chars().take(12).collect()
    } else {
        c.hostname.clone()
    };
    let env = process::env(i, &hostname);
    let user = process::user(i)?;
    let cwd = process::cwd(i)?;
    let caps = security::capabilities(h, image)?;
    let seccomp = seccomp::for_container(h, &cap_names(&caps), image)?;
    let no_new_privs = security::no_new_privileges(h, image)?;
    let namespaces = security::namespaces(h, image)?;
    let mounts = mounts::mounts(i, init)?;
    let process = ProcessBuilder::default()
        .terminal(c.tty)
        .user(user)
        .args(args)
        .env(env)
        .cwd(cwd)
        .capabilities(security::process_capabilities(caps))
        .rlimits(resources::rlimits(h, image)?)
        .no_new_privileges(no_new_privs)
        .build()
        .map_err(built(image))?;
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .cgroups_path(format!("/berth/{}", i.id))
        .resources(resources::resources(h, image)?)
        .masked_paths(security::masked_paths(h))
        .readonly_paths(security::readonly_paths(h))
        .build()
        .map_err(built(image))?;
    linux.set_seccomp(seccomp);
    if let Some(r) = i.remap {
        use oci_spec::runtime::{LinuxIdMappingBuilder, LinuxNamespace, LinuxNamespaceType};
        let mut ns = linux.namespaces().clone().unwrap_or_default();
        let mut user = LinuxNamespace::default();
        user.set_typ(LinuxNamespaceType::User);
        ns.push(user);
        linux.set_namespaces(Some(ns));
        let map = |range: &crate::userns::IdRange| {
            LinuxIdMappingBuilder::default()
                .container_id(0u32)
                .host_id(range.start)
                .size(range.size)
                .build()
                .map_err(built(image))
        };
        linux.set_uid_mappings(Some(vec![map(&r.uid)?]));
        linux.set_gid_mappings(Some(vec![map(&r.gid)?]));
    }
    let root = RootBuilder::default()
        .path(i.rootfs)
        .readonly(h.readonly_rootfs)
        .build()
        .map_err(built(image))?;
    let mut spec = SpecBuilder::default()
        .version("1.0.2")
        .root(root)
        .hostname(hostname)
        .process(process)
        .mounts(mounts)
        .linux(linux)
        .build()
        .map_err(built(image))?;
    // The builder starts from `Spec::default()`, whose annotations are an
    // empty map; berth writes none.
    spec.set_annotations(None);
    Ok(spec)
}
