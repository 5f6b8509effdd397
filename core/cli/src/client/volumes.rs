//! `berth volume …` as a client of the daemon.

use anyhow::Result;
use clap::Subcommand;
use hyper::Method;
use serde_json::json;

use super::format;
use super::http::{enc, Client};

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
            let labels: serde_json::Map<String, serde_json::Value> = label
                .iter()
                .map(|l| {
                    let (k, v) = l.split_once('=').unwrap_or((l, ""));
                    (k.to_string(), json!(v))
                })
                .collect();
            let v = c
                .json(
                    Method::POST,
                    "/volumes/create",
                    Some(&json!({"Name": name.clone().unwrap_or_default(), "Labels": labels})),
                )
                .await?;
            say!("{}", v["Name"].as_str().unwrap_or(""));
            Ok(0)
        }
        VolumeCmd::Ls { quiet } => {
            let v = c.json(Method::GET, "/volumes", None).await?;
            let vols = v["Volumes"].as_array().cloned().unwrap_or_default();
            if *quiet {
                for x in &vols {
                    say!("{}", x["Name"].as_str().unwrap_or(""));
                }
            } else {
                let rows: Vec<Vec<String>> = vols
                    .iter()
                    .map(|x| {
                        vec![
                            x["Driver"].as_str().unwrap_or("local").to_string(),
                            x["Name"].as_str().unwrap_or("").to_string(),
                        ]
                    })
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
                    .json(Method::GET, &format!("/volumes/{}", enc(n)), None)
                    .await
                {
                    Ok(v) => out.push(v),
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
            let v = c.json(Method::POST, "/volumes/prune", None).await?;
            say!("Deleted Volumes:");
            for n in v["VolumesDeleted"].as_array().cloned().unwrap_or_default() {
                say!("{}", n.as_str().unwrap_or(""));
            }
            Ok(0)
        }
    }
}
