//! Creating a container (docker's `create`): the request checked, its
//! networks planned, a name chosen, the record written and the writable
//! layer prepared by the storage plugin; undone whole on failure.

use std::collections::BTreeMap;

use super::config::{CreateRequest, Restart};
use super::machine::ImageInfo;
use super::record::{Entry, Record};
use super::{logs, netops, Containers};
use crate::error::{EngineError, Result};
use crate::networks::{files, EndpointConfig};
use crate::store::{now, write_json};

impl Containers {
    /// Checks a create request without making anything.
    pub(super) fn validate(&self, req: &CreateRequest) -> Result<Restart> {
        let h = &req.host_config;
        let policy = h
            .restart_policy
            .parse()
            .map_err(|r| EngineError::invalid("restart policy", &h.restart_policy.name, r))?;
        if h.auto_remove && policy != Restart::No {
            return Err(EngineError::invalid(
                "--restart",
                &h.restart_policy.name,
                "conflicting options: cannot specify both --restart and --rm",
            ));
        }
        let mut opts = self.log_defaults.clone();
        opts.extend(h.log_config.config.clone());
        logs::Rotation::from_opts(&h.log_config.kind, &opts)
            .map_err(|r| EngineError::invalid("log options", &h.log_config.kind, r))?;
        // Its errors are `Image` errors on "container", already 400s.
        crate::bundle::check_host(h)?;
        match h.userns_mode.as_str() {
            "" | "host" => {}
            other => {
                return Err(EngineError::invalid(
                    "--userns",
                    other,
                    format!("invalid user namespace mode {other:?}: the only one is host"),
                ))
            }
        }
        if self.remap_of(h).is_some() {
            // What docker refuses under userns-remap without --userns=host.
            if h.privileged {
                return Err(EngineError::invalid(
                    "--privileged",
                    "true",
                    "privileged mode is incompatible with user namespaces (userns-remap): \
                     run the container with --userns=host",
                ));
            }
            if h.network_mode == "host" {
                return Err(EngineError::invalid(
                    "network mode",
                    "host",
                    "cannot share the host's network namespace when user namespaces are \
                     enabled (userns-remap): add --userns=host",
                ));
            }
        }
        files::check_extra_hosts(&h.extra_hosts)
            .map_err(|r| EngineError::invalid("--add-host", h.extra_hosts.join(" "), r))?;
        for d in &h.dns {
            d.parse::<std::net::IpAddr>().map_err(|_| {
                EngineError::invalid("--dns", d, format!("{d} is not an ip address (--dns)"))
            })?;
        }
        if h.network_bandwidth < 0 {
            return Err(EngineError::invalid(
                "network bandwidth",
                h.network_bandwidth.to_string(),
                format!(
                    "invalid network bandwidth {}: it must not be negative",
                    h.network_bandwidth
                ),
            ));
        }
        netops::port_requests(h, req.config.exposed_ports.keys().cloned())?;
        let mode = h.network_mode.as_str();
        if (mode == "host" || mode == "none") && !h.port_bindings.is_empty() {
            return Err(EngineError::invalid(
                "network mode",
                mode,
                format!("published ports are discarded when using the {mode} network: remove -p"),
            ));
        }
        Ok(policy)
    }

    /// The networks a create request attaches to, with the endpoint
    /// settings asked for; checks that they exist.
    pub(super) fn plan_networks(
        &self,
        req: &CreateRequest,
    ) -> Result<BTreeMap<String, EndpointConfig>> {
        let mode = req.host_config.network_mode.as_str();
        let mut out = BTreeMap::new();
        if mode == "host" || mode == "none" || mode.starts_with("container:") {
            return Ok(out);
        }
        let first = if mode.is_empty() || mode == "default" {
            "bridge"
        } else {
            mode
        };
        let eps = &req.networking_config.endpoints_config;
        // docker's client keys the first network's endpoint by the mode it
        // sent (`default` for the default network).
        let is_first = |n: &str| n == first || n == mode || (mode.is_empty() && n == "default");
        let mut names: Vec<&str> = vec![first];
        names.extend(eps.keys().map(String::as_str).filter(|n| !is_first(n)));
        for name in names {
            let net = self.networks.get(name).map_err(|_| EngineError::NotFound {
                what: "network",
                name: name.to_string(),
            })?;
            if !net.is_plugin() {
                if name == first {
                    return Ok(out);
                }
                return Err(EngineError::invalid(
                    "network",
                    name,
                    format!("container cannot be connected to network {name} together with others"),
                ));
            }
            let ep = eps.get(name).or_else(|| eps.get(&net.id)).or_else(|| {
                if name == first {
                    eps.iter().find(|(k, _)| is_first(k)).map(|(_, v)| v)
                } else {
                    None
                }
            });
            let cfg = EndpointConfig {
                aliases: ep.map(|e| e.aliases.clone()).unwrap_or_default(),
                ipv4_address: ep
                    .and_then(|e| e.ipam_config.as_ref())
                    .map(|i| i.ipv4_address.clone())
                    .unwrap_or_default(),
            };
            if net.name == "bridge" && !cfg.ipv4_address.is_empty() {
                return Err(EngineError::invalid(
                    "--ip",
                    &cfg.ipv4_address,
                    "user specified IP address is supported on user defined networks only",
                ));
            }
            if net.name == "bridge" && !cfg.aliases.is_empty() {
                return Err(EngineError::invalid(
                    "--network-alias",
                    cfg.aliases.join(" "),
                    "network-scoped alias is supported only for containers in user defined networks",
                ));
            }
            out.insert(net.name.clone(), cfg);
        }
        Ok(out)
    }

    /// Creates a container (docker's `create`): the record and the
    /// writable layer. Returns the id.
    pub async fn create(&self, name: Option<&str>, req: CreateRequest) -> Result<String> {
        if req.config.image.is_empty() {
            return Err(EngineError::invalid(
                "image",
                "",
                "config cannot be empty in order to create a container: no image given",
            ));
        }
        self.validate(&req)?;
        let networks = self.plan_networks(&req)?;
        let image = self.machine.image(&req.config.image)?;
        if crate::bundle::args(&image.config, &req.config).is_empty() {
            return Err(EngineError::invalid("command", "", "no command specified"));
        }
        let id = crate::store::new_id()?;
        let given = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                let n = n.strip_prefix('/').unwrap_or(n);
                check_name(n)?;
                Some(n.to_string())
            }
            None => None,
        };
        let (rec, entry) = {
            let mut t = self.table.lock().expect("table lock");
            let in_use = |n: &str| t.values().find(|e| e.named(n)).map(|e| e.id.clone());
            let name = match given {
                Some(name) => {
                    if let Some(other) = in_use(&name) {
                        return Err(EngineError::ContainerNameInUse {
                            name,
                            holder: other,
                        });
                    }
                    name
                }
                // A generated name may be taken (a few hundred containers
                // make that likely): draw again, as docker does.
                None => {
                    let mut drawn = None;
                    for _ in 0..10 {
                        let n = random_name()?;
                        if in_use(&n).is_none() {
                            drawn = Some(n);
                            break;
                        }
                    }
                    drawn.unwrap_or_else(|| id[..12].to_string())
                }
            };
            let rec = Record {
                id: id.clone(),
                name,
                created: now(),
                image: req.config.image.clone(),
                image_id: image.id.clone(),
                config: req.config,
                host_config: req.host_config,
                driver: self.machine.storage_driver(),
                networks,
                ..Default::default()
            };
            let entry = Entry::new(rec.clone());
            t.insert(id.clone(), entry.clone());
            (rec, entry)
        };
        let made = self.make(&rec, &image).await;
        if let Err(e) = made {
            self.table.lock().expect("table lock").remove(&id);
            let _ = self.machine.remove_layer(&id).await;
            let _ = std::fs::remove_dir_all(self.cdir(&id));
            return Err(e);
        }
        self.update(&entry, |r| r.prepared = true)?;
        self.emit(&rec, "create", &[]);
        Ok(id)
    }

    /// The container's directory, record, image config and writable layer.
    pub(super) async fn make(&self, rec: &Record, image: &ImageInfo) -> Result<()> {
        let cdir = self.cdir(&rec.id);
        let rootfs = cdir.join("rootfs");
        std::fs::create_dir_all(&rootfs).map_err(|e| EngineError::io("creating", &rootfs, e))?;
        self.save(rec)?;
        std::fs::write(cdir.join("image"), &rec.image_id)
            .map_err(|e| EngineError::io("writing", cdir.join("image"), e))?;
        match &image.raw_config {
            Some(raw) => std::fs::write(cdir.join("image-config.json"), raw)
                .map_err(|e| EngineError::io("writing", cdir.join("image-config.json"), e))?,
            None => write_json(&cdir.join("image-config.json"), &image.config)?,
        }
        self.machine
            .prepare_layer(&rec.id, image.chain.last().map(String::as_str))
            .await
    }
}

/// The hostname a container sees: `--hostname` or its short ID.
pub(super) fn hostname(rec: &Record) -> String {
    if rec.config.hostname.is_empty() {
        rec.id[..12.min(rec.id.len())].to_string()
    } else {
        rec.config.hostname.clone()
    }
}

/// docker's rule for container names.
pub(super) fn check_name(name: &str) -> Result<()> {
    if crate::store::valid_name(name, 1) {
        Ok(())
    } else {
        Err(EngineError::invalid(
            "container name",
            name,
            format!("Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"),
        ))
    }
}

/// A name like docker's `brave_harbor42` for a container created without one.
fn random_name() -> Result<String> {
    const LEFT: &[&str] = &[
        "brave", "calm", "eager", "fond", "keen", "lucid", "merry", "nimble", "proud", "quiet",
        "steady", "swift", "tender", "vivid", "witty", "zen",
    ];
    const RIGHT: &[&str] = &[
        "anchor", "bay", "buoy", "cove", "dock", "harbor", "jetty", "keel", "mast", "pier", "quay",
        "reef", "sail", "tide", "wharf", "wake",
    ];
    let mut b = [0u8; 3];
    crate::store::random_bytes(&mut b)?;
    Ok(format!(
        "{}_{}{}",
        LEFT[b[0] as usize % LEFT.len()],
        RIGHT[b[1] as usize % RIGHT.len()],
        b[2] % 100
    ))
}
