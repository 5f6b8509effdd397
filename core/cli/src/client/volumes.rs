//! `berth volume …` as a client of the daemon.

use anyhow::Result;
use clap::Subcommand;
use hyper::Method;

use super::format;
use super::http::{enc, Client, Json};
use crate::api::volumes::{Volume, VolumeCreateRequest, VolumeListResponse, VolumePruneResponse};

#[derive(Subcommand, Debug)]
pub enum VolumeCmd {
    /// Create a volume.
    Create {
        /// Set metadata for a volume.
        #[arg(short, long)]
        label: Vec<String>,
        name: Option<String>,
    },
    /// List volumes.
    #[command(alias = "list")]
    Ls {
        #[arg(short, long)]
        quiet: bool,
    },
    /// Display detailed information on volumes.
    Inspect { names: Vec<String> },
    /// Remove volumes.
    #[command(alias = "remove")]
    Rm {
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove unused volumes.
    Prune {
        #[arg(short, long)]
        force: bool,
    },
}

pub async fn main(c: &Client, cmd: &VolumeCmd) -> Result<i32> {
    match cmd {
        VolumeCmd::Create { label, name } => {
            let labels = label
                .iter()
                .map(|l| {
                    let (k, v) = l.split_once('=').unwrap_or((l, ""));
                    (k.to_string(), v.to_string())
                })
                .collect();
            let body = Json::of(&VolumeCreateRequest {
                name: name.clone().unwrap_or_default(),
                labels,
                ..Default::default()
            })?;
            let v: Volume = c.json(Method::POST, "/volumes/create", Some(&body)).await?;
            say!("{}", v.name);
            Ok(0)
        }
        VolumeCmd::Ls { quiet } => {
            let v: VolumeListResponse = c.json(Method::GET, "/volumes", None).await?;
            let vols = v.volumes;
            if *quiet {
                for x in &vols {
                    say!("{}", x.name);
                }
            } else {
                let rows: Vec<Vec<String>> = vols
                    .iter()
                    .map(|x| vec![x.driver.clone(), x.name.clone()])
                    .collect();
                format::table(&["DRIVER", "VOLUME NAME"], &rows);
            }
            Ok(0)
        }
        VolumeCmd::Inspect { names } => {
            let mut out = Vec::new();
            let mut code = 0;
            for n in names {
                match c
                    .json::<Volume>(Method::GET, &format!("/volumes/{}", enc(n)), None)
                    .await
                {
                    Ok(v) => out.push(serde_json::to_value(v)?),
                    Err(e) => {
                        eprintln!("{e}");
                        code = 1;
                    }
                }
            }
            say!("{}", serde_json::to_string_pretty(&out)?);
            Ok(code)
        }
        VolumeCmd::Rm { force, names } => {
            let mut code = 0;
            for n in names {
                match c
                    .call(
                        Method::DELETE,
                        &format!("/volumes/{}?force={}", enc(n), *force as u8),
                        None,
                    )
                    .await
                {
                    Ok(_) => say!("{n}"),
                    Err(e) => {
                        eprintln!("{e}");
                        code = 1;
                    }
                }
            }
            Ok(code)
        }
        VolumeCmd::Prune { force: _ } => {
            let v: VolumePruneResponse = c.json(Method::POST, "/volumes/prune", None).await?;
            say!("Deleted Volumes:");
            for n in v.volumes_deleted {
                say!("{n}");
            }
            Ok(0)
        }
    }
}
