//! A container's process: its arguments (docker's Entrypoint and Cmd
//! rules), environment, user and working directory.

use std::path::{Path, PathBuf};

use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::{User, UserBuilder};

use super::{bad, built, Inputs};
use crate::containers::config::ContainerConfig;
use crate::error::{EngineError, Result};

/// The process's arguments: docker's Entrypoint/Cmd rules.
pub fn args(image: &ImageConfiguration, c: &ContainerConfig) -> Vec<String> {
    let cfg = image.config().clone().unwrap_or_default();
    let entrypoint: Vec<String> = match &c.entrypoint {
        // `--entrypoint ""` clears the image's entrypoint.
        Some(e) if e.len() == 1 && e[0].is_empty() => vec![],
        Some(e) => e.clone(),
        None => cfg.entrypoint().clone().unwrap_or_default(),
    };
    let cmd = match &c.cmd {
        Some(cmd) if !cmd.is_empty() => cmd.clone(),
        _ if c.entrypoint.is_some() => vec![],
        _ => cfg.cmd().clone().unwrap_or_default(),
    };
    entrypoint.into_iter().chain(cmd).collect()
}

fn lookup(file: &Path, name: &str) -> Option<(u32, Option<u32>)> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 3 && f[0] == name)
            .then(|| (f[2].parse().ok()?, f.get(3).and_then(|g| g.parse().ok())).into())
            .flatten()
    })
}

/// Resolves `user` against the container's /etc/passwd and /etc/group.
pub fn resolve_user(rootfs: &Path, user: &str) -> Result<(u32, u32)> {
    let passwd = berth_runtime::paths::secure_join(rootfs, Path::new("/etc/passwd"));
    let group = berth_runtime::paths::secure_join(rootfs, Path::new("/etc/group"));
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let (uid, primary) = match u.parse::<u32>() {
        Ok(n) => (n, None),
        Err(_) => lookup(&passwd, u).ok_or_else(|| EngineError::Image {
            name: String::new(),
            reason: format!("user {u:?} not found in the container's /etc/passwd"),
        })?,
    };
    let gid = match g {
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup(&group, g)
                .map(|(n, _)| n)
                .ok_or_else(|| EngineError::Image {
                    name: String::new(),
                    reason: format!("group {g:?} not found in the container's /etc/group"),
                })?,
        },
        None => primary.unwrap_or(0),
    };
    Ok((uid, gid))
}

/// The image's environment with a default PATH, `-e` on top, then
/// HOSTNAME and (with `-t`) TERM.
pub(super) fn env(i: &Inputs<'_>, hostname: &str) -> Vec<String> {
    let c = i.config;
    let cfg = i.image.config().clone().unwrap_or_default();
    let mut env: Vec<String> = cfg.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    for e in &c.env {
        let key = e.split('=').next().unwrap_or("");
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    env.push(format!("HOSTNAME={hostname}"));
    if c.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    env
}

/// The user of `--user`, else the image's, else root.
pub(super) fn user(i: &Inputs<'_>) -> Result<User> {
    let cfg = i.image.config().clone().unwrap_or_default();
    let user = Some(i.config.user.clone())
        .filter(|u| !u.is_empty())
        .or_else(|| cfg.user().clone())
        .filter(|u| !u.is_empty());
    let (uid, gid) = match &user {
        Some(u) => resolve_user(i.rootfs, u)?,
        None => (0, 0),
    };
    UserBuilder::default()
        .uid(uid)
        .gid(gid)
        .build()
        .map_err(built(i.image_name))
}

/// The working directory of `--workdir`, else the image's, else `/`; it
/// must be absolute.
pub(super) fn cwd(i: &Inputs<'_>) -> Result<PathBuf> {
    let cfg = i.image.config().clone().unwrap_or_default();
    let cwd = Some(i.config.working_dir.clone())
        .filter(|w| !w.is_empty())
        .or_else(|| cfg.working_dir().clone())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        return Err(bad(
            i.image_name,
            format!("working directory {cwd:?} is not absolute"),
        ));
    }
    Ok(cwd.into())
}
