//! What a container is made of, in the Docker Engine API's own shapes
//! (`Config`, `HostConfig`), so the daemon stores what docker clients send
//! and `inspect` shows what they expect. Only the fields berth acts on are
//! kept; unknown fields are ignored on input.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// docker's `strslice`: a JSON string or an array of strings.
fn str_slice<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum S {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<S>::deserialize(d)? {
        None => None,
        Some(S::One(s)) => Some(vec![s]),
        Some(S::Many(v)) => Some(v),
    })
}

/// `null` as the type's default (docker clients send `null` for empty maps and lists).
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// docker's container `Config`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerConfig {
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    #[serde(deserialize_with = "nullable")]
    pub exposed_ports: BTreeMap<String, serde_json::Value>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    #[serde(deserialize_with = "nullable")]
    pub env: Vec<String>,
    #[serde(deserialize_with = "str_slice")]
    pub cmd: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    pub image: String,
    #[serde(deserialize_with = "nullable")]
    pub volumes: BTreeMap<String, serde_json::Value>,
    pub working_dir: String,
    #[serde(deserialize_with = "str_slice")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
}

/// docker's `HealthConfig` (durations in nanoseconds).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthConfig {
    #[serde(deserialize_with = "nullable")]
    pub test: Vec<String>,
    pub interval: i64,
    pub timeout: i64,
    pub retries: i64,
    pub start_period: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    pub name: String,
    pub maximum_retry_count: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(deserialize_with = "nullable")]
    pub config: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// One entry of `HostConfig.Mounts` (`--mount`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct MountSpec {
    #[serde(rename = "Type")]
    pub kind: String,
    pub source: String,
    pub target: String,
    pub read_only: bool,
}

/// A remapped container's id maps, as `CONTAINER:HOST:SIZE` (podman's
/// `HostConfig.IDMappings`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct IdMappings {
    #[serde(rename = "UidMap")]
    pub uid_map: Vec<String>,
    #[serde(rename = "GidMap")]
    pub gid_map: Vec<String>,
}

/// docker's `HostConfig`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    #[serde(deserialize_with = "nullable")]
    pub binds: Vec<String>,
    pub log_config: LogConfig,
    pub network_mode: String,
    /// `host` runs the container in the host's user namespace under a
    /// daemon with `userns-remap`; empty: the daemon's default.
    pub userns_mode: String,
    /// The ids the container runs with under `userns-remap` (podman's
    /// field): shown by inspect, never taken from a client.
    #[serde(
        rename = "IDMappings",
        skip_deserializing,
        skip_serializing_if = "Option::is_none"
    )]
    pub id_mappings: Option<IdMappings>,
    pub restart_policy: RestartPolicy,
    pub auto_remove: bool,
    #[serde(deserialize_with = "nullable")]
    pub cap_add: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub readonly_rootfs: bool,
    #[serde(deserialize_with = "nullable")]
    pub security_opt: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub tmpfs: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable")]
    pub mounts: Vec<MountSpec>,
    pub init: Option<bool>,
    pub memory: i64,
    pub memory_swap: i64,
    pub memory_reservation: i64,
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub cpuset_cpus: String,
    pub pids_limit: Option<i64>,
    #[serde(deserialize_with = "nullable")]
    pub ulimits: Vec<Ulimit>,
    #[serde(deserialize_with = "nullable")]
    pub extra_hosts: Vec<String>,
    /// The client's terminal size `[height, width]` for a container with a tty.
    pub console_size: Option<[u16; 2]>,
    #[serde(deserialize_with = "nullable")]
    pub dns: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub dns_search: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub dns_options: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub port_bindings: BTreeMap<String, Vec<PortBinding>>,
    pub publish_all_ports: bool,
    /// berth's own: egress and ingress limit in bits per second (`--network-bandwidth`).
    pub network_bandwidth: i64,
}

/// A host side of a published port (`-p [IP:]HOSTPORT:…`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortBinding {
    pub host_ip: String,
    pub host_port: String,
}

/// `NetworkingConfig` of a create request: per network, the endpoint wanted.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkingConfig {
    #[serde(deserialize_with = "nullable")]
    pub endpoints_config: BTreeMap<String, EndpointSettings>,
}

/// One network's endpoint settings in a create or connect request.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointSettings {
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<IpamConfig>,
    #[serde(deserialize_with = "nullable")]
    pub aliases: Vec<String>,
}

/// The addresses asked for (`--ip`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct IpamConfig {
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
}

/// The body of `POST /containers/create`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CreateRequest {
    #[serde(flatten)]
    pub config: ContainerConfig,
    #[serde(rename = "HostConfig")]
    pub host_config: HostConfig,
    #[serde(rename = "NetworkingConfig")]
    pub networking_config: NetworkingConfig,
}

/// A restart policy as the engine applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    No,
    OnFailure(Option<u32>),
    Always,
    UnlessStopped,
}

impl RestartPolicy {
    /// Parses and checks the policy; the error says what is wrong.
    pub fn parse(&self) -> Result<Restart, String> {
        let n = self.maximum_retry_count;
        match self.name.as_str() {
            "" | "no" if n == 0 => Ok(Restart::No),
            "always" if n == 0 => Ok(Restart::Always),
            "unless-stopped" if n == 0 => Ok(Restart::UnlessStopped),
            "on-failure" if n >= 0 => Ok(Restart::OnFailure((n > 0).then_some(n as u32))),
            "" | "no" | "always" | "unless-stopped" => Err(format!(
                "maximum retry count cannot be used with restart policy '{}'",
                self.name
            )),
            "on-failure" => Err("maximum retry count cannot be negative".into()),
            other => Err(format!("invalid restart policy '{other}'")),
        }
    }
}

/// Parses docker's sizes: `12`, `64k`, `64m`, `1.5g` (binary units).
pub fn parse_size(s: &str) -> Result<i64, String> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let v: f64 = num.parse().map_err(|_| format!("invalid size: '{s}'"))?;
    if v.is_nan() || v < 0.0 || !v.is_finite() {
        return Err(format!("invalid size: '{s}'"));
    }
    Ok((v * mult as f64) as i64)
}

/// A bandwidth in bits per second: `10mbit`, `1gbit`, `500kbit`, `10m`
/// (bits, as tc), `1mbps` (bytes), or a plain number of bits.
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num.parse().map_err(|_| format!("invalid rate {s:?}"))?;
    let mult: f64 = match unit {
        "" | "bit" => 1.0,
        "k" | "kbit" => 1e3,
        "m" | "mbit" => 1e6,
        "g" | "gbit" => 1e9,
        "bps" => 8.0,
        "kbps" => 8e3,
        "mbps" => 8e6,
        "gbps" => 8e9,
        other => {
            return Err(format!(
                "unknown unit {other:?} in rate {s:?} (use kbit, mbit, gbit or kbps, mbps, gbps)"
            ))
        }
    };
    let bits = v * mult;
    if !bits.is_finite() || bits < 8000.0 {
        return Err(format!("rate {s:?} is below the smallest limit, 8kbit"));
    }
    Ok(bits as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn rates() {
        assert_eq!(super::parse_rate("10mbit"), Ok(10_000_000));
        assert_eq!(super::parse_rate("10M"), Ok(10_000_000));
        assert_eq!(super::parse_rate("1gbit"), Ok(1_000_000_000));
        assert_eq!(super::parse_rate("1mbps"), Ok(8_000_000));
        assert_eq!(super::parse_rate("20000"), Ok(20_000));
        assert!(super::parse_rate("10xb").unwrap_err().contains("xb"));
        assert!(super::parse_rate("1bit").is_err());
    }

    use super::*;

    #[test]
    fn strslice_accepts_string_and_array() {
        let r: CreateRequest =
            serde_json::from_str(r#"{"Image":"x","Cmd":"echo","Entrypoint":["a","b"],"Env":null}"#)
                .unwrap();
        assert_eq!(r.config.cmd, Some(vec!["echo".to_string()]));
        assert_eq!(r.config.entrypoint, Some(vec!["a".into(), "b".into()]));
        assert!(r.config.env.is_empty());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64m"), Ok(64 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("512"), Ok(512));
        assert!(parse_size("12q").unwrap_err().contains("12q"));
    }

    #[test]
    fn restart_policies() {
        let p = |n: &str, c| RestartPolicy {
            name: n.into(),
            maximum_retry_count: c,
        };
        assert_eq!(p("on-failure", 3).parse(), Ok(Restart::OnFailure(Some(3))));
        assert_eq!(p("always", 0).parse(), Ok(Restart::Always));
        assert!(p("always", 2).parse().is_err());
        assert!(p("sometimes", 0).parse().unwrap_err().contains("sometimes"));
    }
}

/// The body of `POST /containers/{id}/update`: the limits to change (a
/// field left out, or 0, keeps its value) and the restart policy.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpdateConfig {
    pub memory: i64,
    pub memory_swap: i64,
    pub memory_reservation: i64,
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub cpuset_cpus: String,
    /// -1 (or 0 from old clients) for no limit.
    pub pids_limit: Option<i64>,
    pub restart_policy: Option<RestartPolicy>,
}

impl UpdateConfig {
    /// Sets what this update changes in `h`; refuses a policy that does not parse.
    pub fn apply_to(&self, h: &mut HostConfig) -> crate::error::Result<()> {
        let set = |field: &mut i64, v: i64| {
            if v != 0 {
                *field = v;
            }
        };
        set(&mut h.memory, self.memory);
        set(&mut h.memory_swap, self.memory_swap);
        set(&mut h.memory_reservation, self.memory_reservation);
        set(&mut h.cpu_shares, self.cpu_shares);
        set(&mut h.cpu_period, self.cpu_period);
        set(&mut h.cpu_quota, self.cpu_quota);
        if self.nano_cpus != 0 {
            h.nano_cpus = self.nano_cpus;
            // --cpus replaces a quota set before (docker refuses both at once).
            h.cpu_quota = 0;
            h.cpu_period = 0;
        }
        if !self.cpuset_cpus.is_empty() {
            h.cpuset_cpus = self.cpuset_cpus.clone();
        }
        if let Some(p) = self.pids_limit {
            h.pids_limit = (p > 0).then_some(p);
        }
        if let Some(r) = self.restart_policy.as_ref().filter(|r| !r.name.is_empty()) {
            r.parse().map_err(|reason| {
                crate::error::EngineError::invalid("restart policy", r.name.clone(), reason)
            })?;
            h.restart_policy = r.clone();
        }
        Ok(())
    }
}
