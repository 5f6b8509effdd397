//! A container's resource usage: `GET /containers/{id}/stats` (docker's
//! `StatsResponse`, in its lower-case field names). A stopped container's
//! sample has only the zero values; a running one's has every field, with
//! `null` where the kernel does not say (the `Option<Option<_>>` fields:
//! absent when stopped, `null` when unknown).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One sample, with the previous one's CPU figures for a percentage.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    pub read: String,
    pub preread: String,
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_procs: Option<u32>,
    pub pids_stats: PidsStats,
    pub blkio_stats: BlkioStats,
    pub cpu_stats: CpuStats,
    pub precpu_stats: CpuStats,
    pub memory_stats: MemoryStats,
}

/// `pids_stats`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PidsStats {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<Option<u64>>,
}

/// `blkio_stats`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BlkioStats {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub io_service_bytes_recursive: Option<Vec<BlkioEntry>>,
}

/// Bytes read or written on one device.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

/// `cpu_stats` and `precpu_stats`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuStats {
    pub cpu_usage: CpuUsage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_cpu_usage: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub online_cpus: Option<usize>,
    pub throttling_data: ThrottlingData,
}

/// CPU time in nanoseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuUsage {
    pub total_usage: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_in_usermode: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_in_kernelmode: Option<u64>,
}

/// CFS throttling.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ThrottlingData {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub periods: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttled_periods: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttled_time: Option<u64>,
}

/// `memory_stats`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryStats {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_usage: Option<Option<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failcnt: Option<Option<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<BTreeMap<String, u64>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ZERO: &str = "0001-01-01T00:00:00Z";

    #[test]
    fn a_stopped_sample_is_dockers_json() {
        let s = Stats {
            read: ZERO.into(),
            preread: ZERO.into(),
            id: "c1".into(),
            name: "/web".into(),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({"read": ZERO, "preread": ZERO, "id": "c1", "name": "/web",
            "pids_stats": {}, "blkio_stats": {}, "cpu_stats": {"cpu_usage": {"total_usage": 0}, "throttling_data": {}},
            "precpu_stats": {"cpu_usage": {"total_usage": 0}, "throttling_data": {}}, "memory_stats": {}})
        );
    }

    #[test]
    fn a_running_sample_keeps_its_nulls() {
        let s = Stats {
            num_procs: Some(0),
            pids_stats: PidsStats {
                current: Some(2),
                limit: Some(None),
            },
            blkio_stats: BlkioStats {
                io_service_bytes_recursive: Some(Vec::new()),
            },
            memory_stats: MemoryStats {
                usage: Some(10),
                max_usage: Some(None),
                limit: Some(100),
                failcnt: Some(Some(0)),
                stats: Some(BTreeMap::new()),
            },
            ..Default::default()
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["pids_stats"], json!({"current": 2, "limit": null}));
        assert_eq!(
            v["memory_stats"],
            json!({"usage": 10, "max_usage": null, "limit": 100, "failcnt": 0, "stats": {}})
        );
        assert_eq!(v["num_procs"], json!(0));
        let back: Stats = serde_json::from_value(v).unwrap();
        assert_eq!(back.memory_stats.limit, Some(100));
    }
}
