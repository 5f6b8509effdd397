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
    /// Show docker disk usage: images, containers, local volumes, build cache.
    Df {
        /// Show one line per image, container and volume.
        #[arg(short, long)]
        verbose: bool,
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

/// `size (percent%)` as docker's `system df` shows a reclaimable part.
fn reclaimable(part: u64, total: u64) -> String {
    match (part * 100).checked_div(total) {
        Some(pct) => format!("{} ({pct}%)", human_size(part)),
        None => human_size(part),
    }
}

/// `system df [-v]`: docker's summary table (and with -v its three lists).
async fn df(c: &Client, verbose: bool) -> Result<i32> {
    let v: serde_json::Value = c.json(Method::GET, "/system/df", None).await?;
    let arr = |k: &str| v[k].as_array().cloned().unwrap_or_default();
    let n = |x: &serde_json::Value, k: &str| x[k].as_u64().unwrap_or(0);
    let (images, containers, volumes) = (arr("Images"), arr("Containers"), arr("Volumes"));
    let layers = v["LayersSize"].as_u64().unwrap_or(0);
    let used: u64 = images
        .iter()
        .filter(|i| n(i, "Containers") > 0)
        .map(|i| n(i, "Size").saturating_sub(n(i, "SharedSize")))
        .sum();
    let running = |x: &serde_json::Value| x["State"] == "running";
    let c_size: u64 = containers.iter().map(|x| n(x, "SizeRw")).sum();
    let c_free: u64 = containers
        .iter()
        .filter(|x| !running(x))
        .map(|x| n(x, "SizeRw"))
        .sum();
    let v_size = |x: &serde_json::Value| x["UsageData"]["Size"].as_u64().unwrap_or(0);
    let v_used = |x: &serde_json::Value| x["UsageData"]["RefCount"].as_u64().unwrap_or(0) > 0;
    let v_total: u64 = volumes.iter().map(v_size).sum();
    let v_free: u64 = volumes.iter().filter(|x| !v_used(x)).map(v_size).sum();
    if !verbose {
        let rows = vec![
            vec![
                "Images".into(),
                images.len().to_string(),
                images
                    .iter()
                    .filter(|i| n(i, "Containers") > 0)
                    .count()
                    .to_string(),
                human_size(layers),
                reclaimable(layers.saturating_sub(used), layers),
            ],
            vec![
                "Containers".into(),
                containers.len().to_string(),
                containers.iter().filter(|x| running(x)).count().to_string(),
                human_size(c_size),
                reclaimable(c_free, c_size),
            ],
            vec![
                "Local Volumes".into(),
                volumes.len().to_string(),
                volumes.iter().filter(|x| v_used(x)).count().to_string(),
                human_size(v_total),
                reclaimable(v_free, v_total),
            ],
            vec![
                "Build Cache".into(),
                "0".into(),
                "0".into(),
                "0B".into(),
                "0B".into(),
            ],
        ];
        super::format::table(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], &rows);
        return Ok(0);
    }
    say!("Images space usage:\n");
    let rows: Vec<Vec<String>> = images
        .iter()
        .map(|i| {
            let id = i["Id"].as_str().unwrap_or("").trim_start_matches("sha256:");
            let name = i["RepoTags"][0].as_str().unwrap_or("<none>:<none>");
            let (repo, tag) = name.rsplit_once(':').unwrap_or((name, "<none>"));
            vec![
                repo.to_owned(),
                tag.to_owned(),
                id.chars().take(12).collect(),
                super::format::ago(i["Created"].as_i64().unwrap_or(0)),
                human_size(n(i, "Size")),
                human_size(n(i, "SharedSize")),
                human_size(n(i, "Size").saturating_sub(n(i, "SharedSize"))),
                n(i, "Containers").to_string(),
            ]
        })
        .collect();
    super::format::table(
        &[
            "REPOSITORY",
            "TAG",
            "IMAGE ID",
            "CREATED",
            "SIZE",
            "SHARED SIZE",
            "UNIQUE SIZE",
            "CONTAINERS",
        ],
        &rows,
    );
    say!("\nContainers space usage:\n");
    let rows: Vec<Vec<String>> = containers
        .iter()
        .map(|x| {
            vec![
                x["Id"].as_str().unwrap_or("").chars().take(12).collect(),
                x["Image"].as_str().unwrap_or("").to_owned(),
                format!("{:?}", x["Command"].as_str().unwrap_or("")),
                x["Mounts"].as_array().map_or(0, |m| m.len()).to_string(),
                human_size(n(x, "SizeRw")),
                super::format::ago(x["Created"].as_i64().unwrap_or(0)),
                x["Status"].as_str().unwrap_or("").to_owned(),
                x["Names"][0]
                    .as_str()
                    .unwrap_or("")
                    .trim_start_matches('/')
                    .to_owned(),
            ]
        })
        .collect();
    super::format::table(
        &[
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "LOCAL VOLUMES",
            "SIZE",
            "CREATED",
            "STATUS",
            "NAMES",
        ],
        &rows,
    );
    say!("\nLocal Volumes space usage:\n");
    let rows: Vec<Vec<String>> = volumes
        .iter()
        .map(|x| {
            vec![
                x["Name"].as_str().unwrap_or("").to_owned(),
                x["UsageData"]["RefCount"].as_u64().unwrap_or(0).to_string(),
                human_size(v_size(x)),
            ]
        })
        .collect();
    super::format::table(&["VOLUME NAME", "LINKS", "SIZE"], &rows);
    say!("\nBuild cache usage: 0B\n");
    Ok(0)
}

pub async fn system(c: &Client, cmd: &SystemCmd) -> Result<i32> {
    match cmd {
        SystemCmd::Df { verbose } => df(c, *verbose).await,
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
