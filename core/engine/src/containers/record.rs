//! A container's record (`container.json`: what the engine keeps about
//! it), its status as docker names it, the events it emits, and the live
//! entry the engine holds per container (the record behind a lock, the
//! lifecycle lock, change notifications).

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use oci_spec::image::ImageConfiguration;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::config::{ContainerConfig, HostConfig};
use super::{health, stream};
use crate::networks::{Endpoint, EndpointConfig};

/// A container's lifecycle state, as docker names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// Whether a monitor (and so a container process) exists.
    pub fn is_live(self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }
}

/// What the engine keeps about a container (`container.json`).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Record {
    pub id: String,
    pub name: String,
    pub created: String,
    /// The image as the user named it.
    pub image: String,
    /// The image's config digest (`sha256:…`).
    pub image_id: String,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    pub status: Status,
    /// False until the storage driver made the writable layer: a record
    /// left so by a crash is removed on the next start.
    pub prepared: bool,
    pub pid: i32,
    pub shim_pid: i32,
    pub shim_start: u64,
    pub exit_code: i32,
    pub error: String,
    pub oom_killed: bool,
    pub started_at: String,
    pub finished_at: String,
    pub restart_count: u32,
    /// Stopped by the user: restart policies do not bring it back.
    pub manually_stopped: bool,
    pub driver: String,
    /// The networks it is attached to while running, by name, with what
    /// was asked for (`--ip`, `--network-alias`).
    #[serde(default)]
    pub networks: BTreeMap<String, EndpointConfig>,
    /// The live attachments, by network name (empty while not running).
    #[serde(default)]
    pub endpoints: BTreeMap<String, Endpoint>,
}

impl Record {
    /// The process's path and arguments, as docker shows them.
    pub fn path_args(&self, image: Option<&ImageConfiguration>) -> (String, Vec<String>) {
        let args = image
            .map(|i| crate::bundle::args(i, &self.config))
            .unwrap_or_default();
        let mut it = args.into_iter();
        (it.next().unwrap_or_default(), it.collect())
    }
}

/// A container event (`GET /events`).
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub kind: &'static str,
    pub action: String,
    pub id: String,
    pub attributes: std::collections::BTreeMap<String, String>,
    pub time_nano: i64,
}

/// What `wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

pub(crate) struct Entry {
    pub(crate) id: String,
    pub(super) rec: Mutex<Record>,
    /// Serializes lifecycle operations (start, exit handling, remove).
    pub(super) op: tokio::sync::Mutex<()>,
    pub(super) changed: watch::Sender<u64>,
    pub(super) exits: AtomicU64,
    pub(super) removed: std::sync::atomic::AtomicBool,
    /// Attach requests made before the container started.
    pub(super) pending: Mutex<Vec<stream::Pending>>,
    /// Starts so far (health checks belong to one start).
    pub(super) starts: AtomicU64,
    pub(super) health: health::Slot,
}

impl Entry {
    pub(super) fn new(rec: Record) -> Arc<Entry> {
        Arc::new(Entry {
            id: rec.id.clone(),
            rec: Mutex::new(rec),
            op: tokio::sync::Mutex::new(()),
            changed: watch::channel(0).0,
            exits: AtomicU64::new(0),
            removed: std::sync::atomic::AtomicBool::new(false),
            pending: Mutex::new(Vec::new()),
            starts: AtomicU64::new(0),
            health: Mutex::new(None),
        })
    }

    pub(crate) fn get(&self) -> Record {
        self.rec.lock().expect("record lock").clone()
    }

    /// Whether the container is named `name` (without copying its record:
    /// name lookups scan every container).
    pub(super) fn named(&self, name: &str) -> bool {
        self.rec.lock().expect("record lock").name == name
    }

    pub(super) fn notify(&self) {
        self.changed.send_modify(|n| *n += 1);
    }
}
