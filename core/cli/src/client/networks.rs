//! `berth network …` as a client of the daemon.

use std::collections::BTreeMap;

use anyhow::Result;
use clap::Subcommand;
use hyper::Method;

use super::format;
use super::http::{enc, Client, Json};
use crate::api::containers::IpamConfig;
use crate::api::networks::{
    EndpointSettings, IpamPool, IpamRequest, NetworkConnectRequest, NetworkCreateRequest,
    NetworkCreateResponse, NetworkPruneResponse, NetworkResource,
};
use crate::api::{FilterValues, Filters};

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

fn map(kv: &[String]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_string(), v.to_string())
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
            if (gateway.is_some() || ip_range.is_some()) && subnet.is_none() {
                anyhow::bail!("--gateway and --ip-range need --subnet");
            }
            let config = match subnet {
                Some(s) => vec![IpamPool {
                    subnet: s.clone(),
                    ip_range: ip_range.clone().unwrap_or_default(),
                    gateway: gateway.clone().unwrap_or_default(),
                }],
                None => Vec::new(),
            };
            let body = Json::of(&NetworkCreateRequest {
                name: name.clone(),
                driver: driver.clone().unwrap_or_default(),
                internal: *internal,
                enable_ipv6: None,
                ipam: Some(IpamRequest {
                    driver: "default".into(),
                    config,
                }),
                options: map(opt),
                labels: map(label),
            })?;
            let v: NetworkCreateResponse = c
                .json(Method::POST, "/networks/create", Some(&body))
                .await?;
            say!("{}", v.id);
            Ok(0)
        }
        NetworkCmd::Ls {
            quiet,
            filter,
            no_trunc,
        } => {
            let mut filters = Filters::default();
            for f in filter {
                let (k, v) = f.split_once('=').ok_or_else(|| {
                    anyhow::anyhow!("bad format of filter (expected name=value): {f}")
                })?;
                let vals = filters
                    .0
                    .entry(k.to_string())
                    .or_insert_with(|| FilterValues::Set(BTreeMap::new()));
                if let FilterValues::Set(m) = vals {
                    m.insert(v.to_string(), true);
                }
            }
            let path = if filters.0.is_empty() {
                "/networks".to_string()
            } else {
                format!(
                    "/networks?filters={}",
                    enc(&serde_json::to_string(&filters)?)
                )
            };
            let nets: Vec<NetworkResource> = c.json(Method::GET, &path, None).await?;
            let id = |x: &NetworkResource| {
                let id = x.id.as_str();
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
                    .map(|x| vec![id(x), x.name.clone(), x.driver.clone(), x.scope.clone()])
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
                    .json::<NetworkResource>(Method::GET, &format!("/networks/{}", enc(n)), None)
                    .await
                {
                    Ok(v) => out.push(serde_json::to_value(v)?),
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
            let ep = EndpointSettings {
                ipam_config: ip.clone().map(|ip| IpamConfig { ipv4_address: ip }),
                aliases: alias.clone(),
            };
            let body = Json::of(&NetworkConnectRequest {
                container: container.clone(),
                endpoint_config: Some(ep),
                force: false,
            })?;
            c.call(
                Method::POST,
                &format!("/networks/{}/connect", enc(network)),
                Some(&body),
            )
            .await?;
            Ok(0)
        }
        NetworkCmd::Disconnect {
            force,
            network,
            container,
        } => {
            let body = Json::of(&NetworkConnectRequest {
                container: container.clone(),
                endpoint_config: None,
                force: *force,
            })?;
            c.call(
                Method::POST,
                &format!("/networks/{}/disconnect", enc(network)),
                Some(&body),
            )
            .await?;
            Ok(0)
        }
        NetworkCmd::Prune { force } => {
            if !force {
                eprintln!("WARNING! This will remove all custom networks not used by at least one container.");
            }
            let v: NetworkPruneResponse = c.json(Method::POST, "/networks/prune", None).await?;
            if !v.networks_deleted.is_empty() {
                say!("Deleted Networks:");
                for n in v.networks_deleted {
                    say!("{n}");
                }
            }
            Ok(0)
        }
    }
}
