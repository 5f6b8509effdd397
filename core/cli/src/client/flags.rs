//! docker's flag values for `run` and `create`, parsed into the request's
//! fields: durations, sizes, `KEY=VALUE` lists and env files, `--mount`,
//! `--restart`, `--ulimit`, `-p` and `--expose`.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context, Result};
use berth_engine::containers::config::{parse_size, MountSpec, PortBinding, RestartPolicy, Ulimit};

use super::create::ContainerArgs;

/// docker's durations: `30s`, `1m30s`, `500ms`, `2h` → nanoseconds.
pub fn parse_duration(s: &str) -> Result<i64> {
    let mut total: f64 = 0.0;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    if s.is_empty() {
        bail!("invalid duration \"\"");
    }
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        while let Some(&n) = chars.peek() {
            if n.is_ascii_alphabetic() {
                unit.push(n);
                chars.next();
            } else {
                break;
            }
        }
        let v: f64 = num.parse().map_err(|_| anyhow!("invalid duration {s:?}"))?;
        let mult = match unit.as_str() {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => bail!("invalid duration {s:?}: unknown unit {unit:?}"),
        };
        total += v * mult;
        num.clear();
    }
    if !num.is_empty() {
        bail!("invalid duration {s:?}: missing unit");
    }
    Ok(total as i64)
}

pub(crate) fn size(flag: &str, v: &Option<String>) -> Result<i64> {
    match v {
        None => Ok(0),
        Some(s) if flag == "--memory-swap" && s == "-1" => Ok(-1),
        Some(s) => {
            parse_size(s).map_err(|e| anyhow!("invalid argument {s:?} for \"{flag}\" flag: {e}"))
        }
    }
}

pub(super) fn key_values(flag: &str, items: &[String]) -> Result<BTreeMap<String, String>> {
    let mut m = BTreeMap::new();
    for i in items {
        match i.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                m.insert(k.to_string(), v.to_string());
            }
            None if !i.is_empty() && flag == "--label" => {
                m.insert(i.clone(), String::new());
            }
            _ => bail!("invalid argument {i:?} for \"{flag}\" flag: expected KEY=VALUE"),
        }
    }
    Ok(m)
}

pub(super) fn env(a: &ContainerArgs) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut add = |e: &str| {
        if e.contains('=') {
            out.push(e.to_string());
        } else if let Ok(v) = std::env::var(e) {
            out.push(format!("{e}={v}"));
        }
    };
    for f in &a.env_file {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("reading the env file {}", f.display()))?;
        for l in text.lines() {
            let l = l.trim();
            if !l.is_empty() && !l.starts_with('#') {
                add(l);
            }
        }
    }
    for e in &a.env {
        add(e);
    }
    Ok(out)
}

pub(super) fn mount(spec: &str) -> Result<MountSpec> {
    let mut m = MountSpec {
        kind: "volume".into(),
        ..Default::default()
    };
    for field in spec.split(',') {
        let (k, v) = field.split_once('=').unwrap_or((field, "true"));
        match k {
            "type" => m.kind = v.to_string(),
            "source" | "src" => m.source = v.to_string(),
            "target" | "destination" | "dst" => m.target = v.to_string(),
            "readonly" | "ro" => m.read_only = v != "false" && v != "0",
            other => bail!("invalid field {other:?} in --mount {spec:?}"),
        }
    }
    if m.target.is_empty() {
        bail!("invalid --mount {spec:?}: target is required");
    }
    Ok(m)
}

pub(crate) fn restart(s: &Option<String>) -> Result<RestartPolicy> {
    let Some(s) = s else {
        return Ok(RestartPolicy::default());
    };
    let (name, n) = match s.split_once(':') {
        Some((name, n)) => (
            name,
            n.parse::<i64>().map_err(|_| {
                anyhow!("invalid restart policy {s:?}: maximum retry count must be an integer")
            })?,
        ),
        None => (s.as_str(), 0),
    };
    let p = RestartPolicy {
        name: name.to_string(),
        maximum_retry_count: n,
    };
    p.parse()
        .map_err(|e| anyhow!("invalid restart policy {s:?}: {e}"))?;
    Ok(p)
}

pub(super) fn ulimit(s: &str) -> Result<Ulimit> {
    let (name, vals) = s
        .split_once('=')
        .ok_or_else(|| anyhow!("invalid ulimit {s:?}: expected NAME=SOFT[:HARD]"))?;
    let (soft, hard) = vals.split_once(':').unwrap_or((vals, vals));
    let p = |v: &str| {
        v.parse::<i64>()
            .map_err(|_| anyhow!("invalid ulimit {s:?}: {v:?} is not a number"))
    };
    Ok(Ulimit {
        name: name.to_string(),
        soft: p(soft)?,
        hard: p(hard)?,
    })
}

pub(super) fn port(p: &str, what: &str, spec: &str) -> Result<u16> {
    match p.parse::<u32>() {
        Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
        _ => bail!("invalid {what} {p:?} in --publish {spec:?}: ports are 1-65535"),
    }
}

/// Checks `-p` as docker's client does: `[IP:][HOSTPORT:]CONTAINERPORT[/PROTO]`.
pub fn check_publish(spec: &str) -> Result<()> {
    let (ports, proto) = spec.rsplit_once('/').unwrap_or((spec, "tcp"));
    if !matches!(proto, "tcp" | "udp" | "sctp") {
        bail!("invalid protocol {proto:?} in --publish {spec:?}: tcp, udp or sctp");
    }
    let parts: Vec<&str> = ports.rsplitn(3, ':').collect();
    let range = |r: &str, what: &str| -> Result<()> {
        match r.split_once('-') {
            Some((a, b)) => {
                if port(a, what, spec)? > port(b, what, spec)? {
                    bail!("invalid {what} range {r:?} in --publish {spec:?}");
                }
                Ok(())
            }
            None => port(r, what, spec).map(|_| ()),
        }
    };
    match parts.as_slice() {
        [c] => range(c, "container port"),
        [c, h] | [c, h, _] => {
            range(c, "container port")?;
            if h.is_empty() {
                Ok(())
            } else {
                range(h, "host port")
            }
        }
        _ => bail!("invalid --publish {spec:?}"),
    }
}

/// `-p [IP:][HOSTPORT:]CONTAINERPORT[/PROTO]` (already checked) as docker's
/// client sends it: one binding per container port; ranges pair up, and a
/// host range for one container port lets the daemon pick from it.
pub(super) fn publish_bindings(spec: &str) -> Result<Vec<(String, PortBinding)>> {
    let (ports, proto) = spec.rsplit_once('/').unwrap_or((spec, "tcp"));
    let parts: Vec<&str> = ports.rsplitn(3, ':').collect();
    let (container, host, ip) = match parts.as_slice() {
        [c] => (*c, "", ""),
        [c, h] => (*c, *h, ""),
        [c, h, ip] => (*c, *h, *ip),
        _ => bail!("invalid --publish {spec:?}"),
    };
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    let span = |r: &str| -> Result<(u16, u16)> {
        Ok(match r.split_once('-') {
            Some((x, y)) => (x.parse()?, y.parse()?),
            None => {
                let p = r.parse()?;
                (p, p)
            }
        })
    };
    let (c0, c1) = span(container)?;
    let host_span = if host.is_empty() {
        None
    } else {
        Some(span(host)?)
    };
    let mut out = Vec::new();
    for (i, c) in (c0..=c1).enumerate() {
        let host_port = match host_span {
            None => String::new(),
            Some((h0, h1)) if c0 == c1 && h0 != h1 => format!("{h0}-{h1}"),
            Some((h0, h1)) => {
                if h1 - h0 != c1 - c0 {
                    bail!("invalid --publish {spec:?}: the host and container port ranges differ in size");
                }
                (h0 + i as u16).to_string()
            }
        };
        out.push((
            format!("{c}/{proto}"),
            PortBinding {
                host_ip: ip.to_string(),
                host_port,
            },
        ));
    }
    Ok(out)
}

/// `--expose` and every published port, as docker's `ExposedPorts`.
pub(super) fn exposed(
    expose: &[String],
    bindings: &BTreeMap<String, Vec<PortBinding>>,
) -> Result<BTreeMap<String, serde_json::Value>> {
    let mut out: BTreeMap<String, serde_json::Value> = bindings
        .keys()
        .map(|k| (k.clone(), serde_json::json!({})))
        .collect();
    for e in expose {
        let (ports, proto) = e.rsplit_once('/').unwrap_or((e, "tcp"));
        let (a, b) = ports.split_once('-').unwrap_or((ports, ports));
        let (a, b): (u16, u16) = (
            a.parse()
                .map_err(|_| anyhow!("invalid range format for --expose: {e}"))?,
            b.parse()
                .map_err(|_| anyhow!("invalid range format for --expose: {e}"))?,
        );
        for p in a..=b {
            out.insert(format!("{p}/{proto}"), serde_json::json!({}));
        }
    }
    Ok(out)
}

/// `--cpus 0.5` as docker's `NanoCpus` (0 when not given).
pub(crate) fn nano_cpus(v: &Option<String>) -> Result<i64> {
    match v {
        None => Ok(0),
        Some(c) => {
            let n: f64 = c.parse().map_err(|_| {
                anyhow::anyhow!("invalid argument {c:?} for \"--cpus\" flag: not a number")
            })?;
            Ok((n * 1e9) as i64)
        }
    }
}

/// `REPO[:TAG]` as docker's `&repo=…&tag=…` query parameters (the registry
/// kept in the repository unless it is Docker Hub's).
pub(crate) fn repo_tag_query(reference: &str) -> Result<String> {
    let parsed = berth_engine::reference::Reference::parse(reference)?;
    let repo = match parsed.registry.as_str() {
        "docker.io" => parsed.short_repository(),
        reg => format!("{reg}/{}", parsed.repository),
    };
    let mut q = format!("&repo={}", super::http::enc(&repo));
    if let Some(t) = &parsed.tag {
        q.push_str(&format!("&tag={}", super::http::enc(t)));
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_specs() {
        assert!(check_publish("8080:80").is_ok());
        assert!(check_publish("127.0.0.1:8080:80/udp").is_ok());
        assert!(check_publish("80").is_ok());
        assert!(check_publish("8000-8010:80").is_ok());
        assert!(check_publish("70000:80")
            .unwrap_err()
            .to_string()
            .contains("70000"));
        assert!(check_publish("80/icmp")
            .unwrap_err()
            .to_string()
            .contains("icmp"));
        assert!(check_publish("0:80").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(parse_duration("500ms").unwrap(), 500_000_000);
        assert!(parse_duration("5").is_err());
    }
}

/// The resource flags `run`/`create` and `update` share, as docker's.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ResourceArgs {
    /// Memory limit (e.g. 64m).
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Memory plus swap limit; -1 for unlimited swap.
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit.
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Number of CPUs (e.g. 0.5).
    #[arg(long)]
    pub cpus: Option<String>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<i64>,
    /// Limit the CPU CFS period (microseconds).
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<i64>,
    /// Limit the CPU CFS quota (microseconds).
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Tune the container's pids limit (-1 for unlimited).
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
}

/// [`ResourceArgs`] parsed: sizes in bytes, CPUs in nano-CPUs, 0 for unset.
#[derive(Debug, Clone, Default)]
pub struct Resources {
    pub memory: i64,
    pub memory_swap: i64,
    pub memory_reservation: i64,
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub cpuset_cpus: String,
    pub pids_limit: Option<i64>,
}

impl ResourceArgs {
    /// Parses the sizes and CPUs, naming the flag whose value is bad.
    pub fn parse(&self) -> Result<Resources> {
        Ok(Resources {
            memory: size("--memory", &self.memory)?,
            memory_swap: size("--memory-swap", &self.memory_swap)?,
            memory_reservation: size("--memory-reservation", &self.memory_reservation)?,
            nano_cpus: nano_cpus(&self.cpus)?,
            cpu_shares: self.cpu_shares.unwrap_or(0),
            cpu_period: self.cpu_period.unwrap_or(0),
            cpu_quota: self.cpu_quota.unwrap_or(0),
            cpuset_cpus: self.cpuset_cpus.clone().unwrap_or_default(),
            pids_limit: self.pids_limit,
        })
    }
}
