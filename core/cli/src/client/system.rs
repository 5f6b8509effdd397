//! Pruning as docker's CLI does it: `container prune`, `image prune [-a]`
//! and `system prune [-a] [--volumes]`, each asking first unless `-f`, then
//! listing what went and the space it took.

use anyhow::Result;
use clap::Subcommand;
use hyper::Method;

use super::http::{enc, Client};
use crate::api::containers::ContainerPruneResponse;
use crate::api::images::{BuildPruneResponse, ImagePruneResponse};
use crate::api::networks::NetworkPruneResponse;
use crate::api::units::human_size;
use crate::api::volumes::VolumePruneResponse;

/// `berth container …` beyond the top-level container commands.
#[derive(Subcommand, Debug)]
pub enum ContainerGroup {
    /// Remove all stopped containers.
    Prune {
        /// Do not prompt for confirmation.
        #[arg(short, long)]
        force: bool,
    },
}

/// `berth system …`.
#[derive(Subcommand, Debug)]
pub enum SystemCmd {
    /// Remove unused data: stopped containers, unused networks, dangling
    /// images (with -a: every unused image), with --volumes unused volumes.
    Prune {
        /// Remove all unused images, not just dangling ones.
        #[arg(short, long)]
        all: bool,
        /// Prune anonymous and named volumes no container uses.
        #[arg(long)]
        volumes: bool,
        /// Do not prompt for confirmation.
        #[arg(short, long)]
        force: bool,
    },
}

/// Asks `warning` + "Are you sure…" on the terminal unless `force`.
pub fn confirm(warning: &str, force: bool) -> Result<bool> {
    if force {
        return Ok(true);
    }
    use std::io::Write as _;
    print!("{warning}\nAre you sure you want to continue? [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

pub async fn container_group(c: &Client, cmd: &ContainerGroup) -> Result<i32> {
    match cmd {
        ContainerGroup::Prune { force } => {
            if !confirm("WARNING! This will remove all stopped containers.", *force)? {
                return Ok(0);
            }
            let space = prune_containers(c).await?;
            say!("Total reclaimed space: {}", human_size(space));
            Ok(0)
        }
    }
}

/// `image prune [-a] [-f]`.
pub async fn image_prune(c: &Client, all: bool, force: bool) -> Result<i32> {
    let warning = if all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !confirm(warning, force)? {
        return Ok(0);
    }
    let space = prune_images(c, all).await?;
    say!("Total reclaimed space: {}", human_size(space));
    Ok(0)
}

pub async fn system(c: &Client, cmd: &SystemCmd) -> Result<i32> {
    match cmd {
        SystemCmd::Prune {
            all,
            volumes,
            force,
        } => {
            let mut warning = String::from(
                "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container",
            );
            if *volumes {
                warning.push_str("\n  - all volumes not used by at least one container");
            }
            warning.push_str(if *all {
                "\n  - all images without at least one container associated to them"
            } else {
                "\n  - all dangling images"
            });
            warning.push_str("\n  - unused build cache\n");
            if !confirm(&warning, *force)? {
                return Ok(0);
            }
            let mut space = prune_containers(c).await?;
            let n: NetworkPruneResponse = c.json(Method::POST, "/networks/prune", None).await?;
            list("Deleted Networks:", &n.networks_deleted);
            if *volumes {
                let v: VolumePruneResponse = c.json(Method::POST, "/volumes/prune", None).await?;
                list("Deleted Volumes:", &v.volumes_deleted);
                space += v.space_reclaimed;
            }
            space += prune_images(c, *all).await?;
            let b: BuildPruneResponse = c.json(Method::POST, "/build/prune", None).await?;
            space += b.space_reclaimed;
            say!("Total reclaimed space: {}", human_size(space));
            Ok(0)
        }
    }
}

async fn prune_containers(c: &Client) -> Result<u64> {
    let r: ContainerPruneResponse = c.json(Method::POST, "/containers/prune", None).await?;
    list("Deleted Containers:", &r.containers_deleted);
    Ok(r.space_reclaimed)
}

async fn prune_images(c: &Client, all: bool) -> Result<u64> {
    let mut path = String::from("/images/prune");
    if all {
        path.push_str(&format!("?filters={}", enc(r#"{"dangling":["false"]}"#)));
    }
    let r: ImagePruneResponse = c.json(Method::POST, &path, None).await?;
    let lines: Vec<String> = r
        .images_deleted
        .iter()
        .flat_map(|i| {
            i.untagged
                .iter()
                .map(|u| format!("untagged: {u}"))
                .chain(i.deleted.iter().map(|d| format!("deleted: {d}")))
        })
        .collect();
    list("Deleted Images:", &lines);
    Ok(r.space_reclaimed)
}

/// A heading and its lines, then a blank line, when there are any.
pub(crate) fn list(heading: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    say!("{heading}");
    for i in items {
        say!("{i}");
    }
    say!("");
}
