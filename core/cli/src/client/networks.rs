//! `berth network …` as a client of the daemon.

use anyhow::Result;
use clap::Subcommand;
use hyper::Method;
use serde_json::json;

use super::format;
use super::http::{enc, Client};

#[derive(Subcommand, Debug)]
pub enum NetworkCmd {
    /// Create a network.
    Create {
        /// The network plugin (default: berth.toml's [network] default-driver, or bridge).
        #[arg(short, long)]
        driver: Option<String>,
        /// Subnet in CIDR format.
        #[arg(long)]
        subnet: Option<String>,
        /// Gateway for the subnet.
        #[arg(long)]
        gateway: Option<String>,
        /// Allocate container addresses from a sub-range.
        #[arg(long = "ip-range")]
        ip_range: Option<String>,
        /// Restrict external access to the network.
        #[arg(long)]
        internal: bool,
        /// Driver options (KEY=VALUE).
        #[arg(short = 'o', long = "opt")]
        opt: Vec<String>,
        /// Set metadata on a network.
        #[arg(long)]
        label: Vec<String>,
        name: String,
    },
    /// List networks.
    #[command(alias = "list")]
    Ls {
        #[arg(short, long)]
        quiet: bool,
        /// Provide filter values (e.g. 'driver=bridge').
        #[arg(short, long)]
        filter: Vec<String>,
        /// Do not truncate the output.
        #[arg(long = "no-trunc")]
        no_trunc: bool,
    },
    /// Display detailed information on networks.
    Inspect {
        /// Format the output using a Go template.
        #[arg(short, long)]
        format: Option<String>,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove networks.
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Connect a container to a network.
    Connect {
        /// IPv4 address.
        #[arg(long)]
        ip: Option<String>,
        /// Network-scoped alias for the container.
        #[arg(long)]
        alias: Vec<String>,
        network: String,
        container: String,
    },
    /// Disconnect a container from a network.
    Disconnect {
        #[arg(short, long)]
        force: bool,
        network: String,
        container: String,
    },
    /// Remove all unused networks.
    Prune {
        #[arg(short, long)]
        force: bool,
    },
}

fn map(kv: &[String]) -> serde_json::Map<String, serde_json::Value> {
    kv.iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_string(), json!(v))
        })
        .collect()
}

pub async fn main(c: &Client, cmd: &NetworkCmd) -> Result<i32> {
    match cmd {
        NetworkCmd::Create {
            driver,
            subnet,
            gateway,
            ip_range,
            internal,
            opt,
            label,
            name,
        } => {
            let mut pool = serde_json::Map::new();
            for (k, v) in [
                ("Subnet", subnet),
                ("Gateway", gateway),
                ("IPRange", ip_range),
            ] {
                if let Some(v) = v {
                    pool.insert(k.into(), json!(v));
                }
            }
            if !pool.is_empty() && subnet.is_none() {
                anyhow::bail!("--gateway and --ip-range need --subnet");
            }
            let config = if pool.is_empty() {
                json!([])
            } else {
                json!([pool])
            };
            let body = json!({
                "Name": name, "Driver": driver.clone().unwrap_or_default(), "Internal": internal,
                "IPAM": {"Driver": "default", "Config": config},
                "Options": map(opt), "Labels": map(label),
            });
            let v = c
                .json(Method::POST, "/networks/create", Some(&body))
                .await?;
            say!("{}", v["Id"].as_str().unwrap_or(""));
            Ok(0)
        }
        NetworkCmd::Ls {
            quiet,
            filter,
            no_trunc,
        } => {
            let mut filters = serde_json::Map::new();
            for f in filter {
                let (k, v) = f.split_once('=').ok_or_else(|| {
                    anyhow::anyhow!("bad format of filter (expected name=value): {f}")
                })?;
                filters
                    .entry(k.to_string())
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                    .expect("an object")
                    .insert(v.to_string(), json!(true));
            }
            let path = if filters.is_empty() {
                "/networks".to_string()
            } else {
                format!(
                    "/networks?filters={}",
                    enc(&serde_json::Value::Object(filters).to_string())
                )
            };
            let v = c.json(Method::GET, &path, None).await?;
            let nets = v.as_array().cloned().unwrap_or_default();
            let id = |x: &serde_json::Value| {
                let id = x["Id"].as_str().unwrap_or("");
                if *no_trunc {
                    id.to_string()
                } else {
                    id.chars().take(12).collect()
                }
            };
            if *quiet {
                for x in &nets {
                    say!("{}", id(x));
                }
            } else {
                let rows: Vec<Vec<String>> = nets
                    .iter()
                    .map(|x| {
                        vec![
                            id(x),
                            x["Name"].as_str().unwrap_or("").to_string(),
                            x["Driver"].as_str().unwrap_or("").to_string(),
                            x["Scope"].as_str().unwrap_or("local").to_string(),
                        ]
                    })
                    .collect();
                format::table(&["NETWORK ID", "NAME", "DRIVER", "SCOPE"], &rows);
            }
            Ok(0)
        }
        NetworkCmd::Inspect {
            format: tmpl,
            names,
        } => {
            let mut out = Vec::new();
            let mut code = 0;
            for n in names {
                match c
                    .json(Method::GET, &format!("/networks/{}", enc(n)), None)
                    .await
                {
                    Ok(v) => out.push(v),
                    Err(e) => {
                        eprintln!("{e}");
                        code = 1;
                    }
                }
            }
            match tmpl {
                Some(t) => {
                    for v in &out {
                        say!("{}", format::render(t, v)?);
                    }
                }
                None => say!("{}", serde_json::to_string_pretty(&out)?),
            }
            Ok(code)
        }
        NetworkCmd::Rm { names } => {
            let mut code = 0;
            for n in names {
                match c
                    .call(Method::DELETE, &format!("/networks/{}", enc(n)), None)
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
        NetworkCmd::Connect {
            ip,
            alias,
            network,
            container,
        } => {
            let mut ep = json!({"Aliases": alias});
            if let Some(ip) = ip {
                ep["IPAMConfig"] = json!({"IPv4Address": ip});
            }
            c.json(
                Method::POST,
                &format!("/networks/{}/connect", enc(network)),
                Some(&json!({"Container": container, "EndpointConfig": ep})),
            )
            .await?;
            Ok(0)
        }
        NetworkCmd::Disconnect {
            force,
            network,
            container,
        } => {
            c.json(
                Method::POST,
                &format!("/networks/{}/disconnect", enc(network)),
                Some(&json!({"Container": container, "Force": force})),
            )
            .await?;
            Ok(0)
        }
        NetworkCmd::Prune { force } => {
            if !force {
                eprintln!("WARNING! This will remove all custom networks not used by at least one container.");
            }
            let v = c.json(Method::POST, "/networks/prune", None).await?;
            let del = v["NetworksDeleted"].as_array().cloned().unwrap_or_default();
            if !del.is_empty() {
                say!("Deleted Networks:");
                for n in del {
                    say!("{}", n.as_str().unwrap_or(""));
                }
            }
            Ok(0)
        }
    }
}
