//! `run` and `create` flags, as docker's, turned into the body of
//! `POST /containers/create` (docker's Config and HostConfig).

use std::collections::BTreeMap;

use anyhow::{anyhow, Context, Result};
use berth_engine::containers::config::{
    ContainerConfig, CreateRequest, HealthConfig, HostConfig, LogConfig, PortBinding,
};
use clap::Args;

use super::flags::{
    check_publish, env, exposed, key_values, mount, parse_duration, publish_bindings, restart,
    ulimit, ResourceArgs,
};

#[derive(Args, Debug, Clone, Default)]
pub struct ContainerArgs {
    /// Assign a name to the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Keep stdin open.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables (NAME=VALUE, or NAME to take it from here).
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Read environment variables from a file.
    #[arg(long = "env-file")]
    pub env_file: Vec<std::path::PathBuf>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: name|uid[:group|gid]).
    #[arg(short, long)]
    pub user: Option<String>,
    /// Overwrite the image's entrypoint.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Container host name.
    #[arg(long)]
    pub hostname: Option<String>,
    /// Bind mount a host path or a named volume (SRC:DST[:ro]).
    #[arg(short, long)]
    pub volume: Vec<String>,
    /// Attach a filesystem mount (type=bind|volume|tmpfs,source=…,target=…[,readonly]).
    #[arg(long)]
    pub mount: Vec<String>,
    /// Mount a tmpfs directory (DST[:OPTIONS]).
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Mount the root filesystem read-only.
    #[arg(long = "read-only")]
    pub read_only: bool,
    #[command(flatten)]
    pub resources: ResourceArgs,
    /// Ulimit options (nofile=1024:2048).
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Add Linux capabilities.
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities.
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container.
    #[arg(long)]
    pub privileged: bool,
    /// Security options (no-new-privileges).
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// User namespace: `host` runs the container unremapped under a daemon
    /// with userns-remap.
    #[arg(long)]
    pub userns: Option<String>,
    /// Restart policy (no, on-failure[:max-retries], always, unless-stopped).
    #[arg(long)]
    pub restart: Option<String>,
    /// Run an init inside the container that forwards signals and reaps processes.
    #[arg(long)]
    pub init: bool,
    /// Command to run to check health.
    #[arg(long = "health-cmd")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h).
    #[arg(long = "health-interval")]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run.
    #[arg(long = "health-timeout")]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy.
    #[arg(long = "health-retries")]
    pub health_retries: Option<i64>,
    /// Start period for the container to initialize before counting retries.
    #[arg(long = "health-start-period")]
    pub health_start_period: Option<String>,
    /// Disable any container-specified HEALTHCHECK.
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Connect a container to a network (bridge, none, host or a created network).
    #[arg(long = "network", alias = "net")]
    pub network: Option<String>,
    /// IPv4 address on the network (user-defined networks only).
    #[arg(long)]
    pub ip: Option<String>,
    /// Network-scoped alias for the container.
    #[arg(long = "network-alias", alias = "net-alias")]
    pub network_alias: Vec<String>,
    /// Custom DNS servers (the embedded DNS forwards to them).
    #[arg(long)]
    pub dns: Vec<String>,
    /// Custom DNS search domains.
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// DNS options.
    #[arg(long = "dns-option", alias = "dns-opt")]
    pub dns_option: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip).
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// Limit the container's network egress and ingress (berth's own; e.g. 10mbit, 1gbit, 500kbit).
    #[arg(long = "network-bandwidth")]
    pub network_bandwidth: Option<String>,
    /// Set metadata on a container.
    #[arg(short, long)]
    pub label: Vec<String>,
    /// Logging driver (json-file).
    #[arg(long = "log-driver")]
    pub log_driver: Option<String>,
    /// Log driver options (max-size=10m, max-file=3).
    #[arg(long = "log-opt")]
    pub log_opt: Vec<String>,
    /// Signal to stop the container.
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container.
    #[arg(long = "stop-timeout")]
    pub stop_timeout: Option<i64>,
    /// Set the platform if the server is multi-platform capable.
    #[arg(long)]
    pub platform: Option<String>,
    /// Publish a container's port(s) to the host ([IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp]).
    #[arg(short, long)]
    pub publish: Vec<String>,
    /// Expose a port or a range of ports.
    #[arg(long)]
    pub expose: Vec<String>,
    /// Publish all exposed ports to random ports.
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// The image, then the command and its arguments: everything after the
    /// image is the command's, flags too, as docker parses it (`run
    /// --entrypoint sh IMAGE -c 'echo hi'`).
    #[arg(
        value_name = "IMAGE [COMMAND] [ARG...]",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub image_and_command: Vec<String>,
}

impl ContainerArgs {
    /// The image named.
    pub fn image(&self) -> &str {
        self.image_and_command.first().map_or("", String::as_str)
    }

    /// The command given after the image (none: the image's).
    pub fn command(&self) -> &[String] {
        self.image_and_command.get(1..).unwrap_or(&[])
    }
}

/// `--security-opt` as the daemon takes it: `seccomp=FILE` becomes
/// `seccomp=<the file's JSON>`, as docker's client sends it.
fn security_opts(opts: &[String]) -> Result<Vec<String>> {
    opts.iter()
        .map(|o| match o.split_once(['=', ':']) {
            Some(("seccomp", v)) if v != "unconfined" && !v.trim_start().starts_with('{') => {
                let text = std::fs::read_to_string(v)
                    .with_context(|| format!("opening seccomp profile ({v}) failed"))?;
                Ok(format!("seccomp={text}"))
            }
            _ => Ok(o.clone()),
        })
        .collect()
}

/// Builds the create request (the flags are checked here as docker's client does).
pub fn request(a: &ContainerArgs, auto_remove: bool, attach: bool) -> Result<CreateRequest> {
    let mut port_bindings: BTreeMap<String, Vec<PortBinding>> = BTreeMap::new();
    for p in &a.publish {
        check_publish(p)?;
        for (key, binding) in publish_bindings(p)? {
            port_bindings.entry(key).or_default().push(binding);
        }
    }
    let mut tmpfs = BTreeMap::new();
    for t in &a.tmpfs {
        let (d, o) = t.split_once(':').unwrap_or((t.as_str(), ""));
        tmpfs.insert(d.to_string(), o.to_string());
    }
    let r = a.resources.parse()?;
    let mut log_opts = BTreeMap::new();
    for o in &a.log_opt {
        let (k, v) = o
            .split_once('=')
            .ok_or_else(|| anyhow!("invalid --log-opt {o:?}: expected KEY=VALUE"))?;
        log_opts.insert(k.to_string(), v.to_string());
    }
    let healthcheck = if a.no_healthcheck {
        Some(HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        })
    } else if a.health_cmd.is_some()
        || a.health_interval.is_some()
        || a.health_timeout.is_some()
        || a.health_retries.is_some()
        || a.health_start_period.is_some()
    {
        let d = |v: &Option<String>, f: &str| -> Result<i64> {
            v.as_deref()
                .map(parse_duration)
                .transpose()
                .with_context(|| format!("--{f}"))
                .map(|x| x.unwrap_or(0))
        };
        Some(HealthConfig {
            test: a
                .health_cmd
                .as_ref()
                .map(|c| vec!["CMD-SHELL".to_string(), c.clone()])
                .unwrap_or_default(),
            interval: d(&a.health_interval, "health-interval")?,
            timeout: d(&a.health_timeout, "health-timeout")?,
            retries: a.health_retries.unwrap_or(0),
            start_period: d(&a.health_start_period, "health-start-period")?,
        })
    } else {
        None
    };
    let config = ContainerConfig {
        hostname: a.hostname.clone().unwrap_or_default(),
        user: a.user.clone().unwrap_or_default(),
        attach_stdin: attach && a.interactive,
        attach_stdout: attach,
        attach_stderr: attach,
        tty: a.tty,
        open_stdin: a.interactive,
        stdin_once: a.interactive && attach,
        env: env(a)?,
        cmd: (!a.command().is_empty()).then(|| a.command().to_vec()),
        healthcheck,
        image: a.image().to_owned(),
        working_dir: a.workdir.clone().unwrap_or_default(),
        entrypoint: a.entrypoint.clone().map(|e| vec![e]),
        labels: key_values("--label", &a.label)?,
        stop_signal: a.stop_signal.clone(),
        stop_timeout: a.stop_timeout,
        exposed_ports: exposed(&a.expose, &port_bindings)?,
        ..Default::default()
    };
    let (h, w) = if a.tty { terminal_size() } else { (0, 0) };
    let host = HostConfig {
        binds: a.volume.clone(),
        log_config: LogConfig {
            kind: a.log_driver.clone().unwrap_or_default(),
            config: log_opts,
        },
        network_mode: a.network.clone().unwrap_or_default(),
        restart_policy: restart(&a.restart)?,
        auto_remove,
        cap_add: a.cap_add.clone(),
        cap_drop: a.cap_drop.clone(),
        privileged: a.privileged,
        userns_mode: a.userns.clone().unwrap_or_default(),
        id_mappings: None,
        readonly_rootfs: a.read_only,
        security_opt: security_opts(&a.security_opt)?,
        tmpfs,
        mounts: a.mount.iter().map(|m| mount(m)).collect::<Result<_>>()?,
        init: a.init.then_some(true),
        memory: r.memory,
        memory_swap: r.memory_swap,
        memory_reservation: r.memory_reservation,
        nano_cpus: r.nano_cpus,
        cpu_shares: r.cpu_shares,
        cpu_period: r.cpu_period,
        cpu_quota: r.cpu_quota,
        cpuset_cpus: r.cpuset_cpus,
        pids_limit: r.pids_limit,
        ulimits: a.ulimit.iter().map(|u| ulimit(u)).collect::<Result<_>>()?,
        console_size: (h > 0).then_some([h, w]),
        dns: a.dns.clone(),
        dns_search: a.dns_search.clone(),
        dns_options: a.dns_option.clone(),
        extra_hosts: a.add_host.clone(),
        port_bindings: port_bindings.clone(),
        publish_all_ports: a.publish_all,
        network_bandwidth: match &a.network_bandwidth {
            Some(r) => berth_engine::containers::config::parse_rate(r).map_err(|e| {
                anyhow::anyhow!("invalid argument {r:?} for \"--network-bandwidth\": {e}")
            })? as i64,
            None => 0,
        },
    };
    let mut networking = berth_engine::containers::config::NetworkingConfig::default();
    if a.ip.is_some() || !a.network_alias.is_empty() {
        let net = a.network.clone().unwrap_or_else(|| "bridge".into());
        networking.endpoints_config.insert(
            net,
            berth_engine::containers::config::EndpointSettings {
                ipam_config: a
                    .ip
                    .clone()
                    .map(|ip| berth_engine::containers::config::IpamConfig { ipv4_address: ip }),
                aliases: a.network_alias.clone(),
            },
        );
    }
    Ok(CreateRequest {
        config,
        host_config: host,
        networking_config: networking,
    })
}

/// The size of our terminal (rows, columns), or (0, 0).
pub fn terminal_size() -> (u16, u16) {
    berth_runtime::tty::get_winsize(std::io::stdout())
        .or_else(|_| berth_runtime::tty::get_winsize(std::io::stdin()))
        .unwrap_or((0, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_follows_the_image_is_the_commands() {
        #[derive(clap::Parser)]
        struct Run {
            #[command(flatten)]
            a: ContainerArgs,
        }
        use clap::Parser as _;
        let r = Run::try_parse_from([
            "run",
            "-t",
            "--entrypoint",
            "sh",
            "busybox",
            "-c",
            "echo hi",
            "--rm",
        ])
        .unwrap();
        assert_eq!(r.a.image(), "busybox");
        assert_eq!(r.a.command(), ["-c", "echo hi", "--rm"]);
        assert_eq!(r.a.entrypoint.as_deref(), Some("sh"));
        let r = Run::try_parse_from(["run", "-e", "A=1", "busybox"]).unwrap();
        assert_eq!((r.a.image(), r.a.command().len()), ("busybox", 0));
        assert!(r.a.image_and_command.len() == 1 && !r.a.tty);
        assert!(Run::try_parse_from(["run", "-t"]).is_err());
    }

    #[test]
    fn flags_become_the_request() {
        let a = ContainerArgs {
            image_and_command: vec!["busybox".into()],
            resources: ResourceArgs {
                memory: Some("64m".into()),
                cpus: Some("0.5".into()),
                ..Default::default()
            },
            restart: Some("on-failure:3".into()),
            ulimit: vec!["nofile=100:200".into()],
            mount: vec!["type=bind,source=/tmp,target=/x,readonly".into()],
            ..Default::default()
        };
        let r = request(&a, false, true).unwrap();
        assert_eq!(r.host_config.memory, 64 << 20);
        assert_eq!(r.host_config.nano_cpus, 500_000_000);
        assert_eq!(r.host_config.restart_policy.maximum_retry_count, 3);
        assert_eq!(r.host_config.ulimits[0].hard, 200);
        assert!(r.host_config.mounts[0].read_only);
        let bad = ContainerArgs {
            image_and_command: vec!["busybox".into()],
            resources: ResourceArgs {
                memory: Some("12q".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(request(&bad, false, true)
            .unwrap_err()
            .to_string()
            .contains("12q"));
    }
}
