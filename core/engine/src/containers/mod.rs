//! Containers as the daemon keeps them, one file per stage of their life:
//! `record` (what is kept in `<root>/containers/<id>/container.json`,
//! written atomically so `kill -9` of the daemon at any instant leaves
//! records the next start reconciles), `create`, `start` (through a
//! monitor), `exit` (exit handling and restart policies), `verbs` (stop,
//! kill, remove, …), `reconcile` (at daemon start), `netops` (network glue),
//! and what the API reads (list, inspect, logs, top, stats, events) here.
//! Everything they do to the machine goes through `machine::Machine`, so the
//! lifecycle is unit-tested (`lifecycle_tests`) against a fake.

pub use commit::CommitOptions;
mod archive;
mod commit;
pub mod config;
mod create;
pub mod exec;
mod exec_io;
mod exit;
pub mod health;
#[cfg(test)]
mod lifecycle_tests;
pub mod logs;
pub mod machine;
mod netops;
mod reconcile;
pub mod record;
mod start;
pub mod stream;
mod verbs;
pub mod volumes;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use nix::sys::signal::Signal;
use oci_spec::image::ImageConfiguration;
use tokio::sync::broadcast;

use crate::engine::Engine;
use crate::error::{ContainerOp, EngineError, Result};
use crate::networks::Networks;
use crate::store::write_json;
use machine::{EngineMachine, Machine};
pub(crate) use record::Entry;
pub use record::{Event, Record, Status, WaitCondition};

/// Who owns the containers a [`Containers`] opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The daemon: records are reconciled with the machine at open.
    Daemon,
    /// The daemonless mode: records are read and left as they are.
    Local,
}

/// All containers of one engine.
pub struct Containers {
    pub(crate) machine: Arc<dyn Machine>,
    /// berth's state root: `containers/` and `sock/` are under it.
    root: PathBuf,
    pub(crate) dir: PathBuf,
    /// The `berth` executable (the exec helper is `berth runtime exec`).
    pub(crate) exe: PathBuf,
    /// berth.toml's `[logs]`: the log options of containers that set none.
    log_defaults: BTreeMap<String, String>,
    table: Mutex<HashMap<String, Arc<Entry>>>,
    events: broadcast::Sender<Event>,
    pub(crate) execs: Mutex<HashMap<String, Arc<exec::ExecEntry>>>,
    pub volumes: volumes::Volumes,
    pub networks: Arc<Networks>,
}

impl std::fmt::Debug for Containers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Containers")
            .field("dir", &self.dir)
            .finish()
    }
}

impl Containers {
    /// The `userns-remap` a container with `h` runs under: the daemon's,
    /// unless it asked for the host's user namespace.
    pub fn remap_of(&self, h: &config::HostConfig) -> Option<Arc<crate::userns::Remap>> {
        self.machine.remap().filter(|_| h.userns_mode != "host")
    }
}

/// `op` refused by the state `rec` is in.
fn refused(rec: &Record, op: ContainerOp) -> EngineError {
    EngineError::ContainerState {
        id: rec.id.clone(),
        op,
        status: rec.status,
    }
}

/// Registers an owned descriptor with the async reactor.
pub fn async_fd(
    fd: std::os::fd::OwnedFd,
    interest: tokio::io::Interest,
) -> std::io::Result<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>> {
    // SAFETY: the OwnedFd is moved into the AsyncFd, so the descriptor stays
    // open and refers to the same file description for the AsyncFd's life.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, interest) }.map_err(|e| e.into())
}

/// Parses a signal (the runtime's one signal table), worded as docker
/// refuses a bad one.
pub fn parse_signal(s: &str) -> Result<Signal> {
    berth_runtime::signal::parse(s)
        .map_err(|_| EngineError::invalid("signal", s, format!("Invalid signal: {s}")))
}

impl Containers {
    /// Opens the containers under the engine's root and reconciles their
    /// records with the machine: monitors still running are adopted, exits
    /// that happened while no daemon ran are recorded, half-made containers
    /// are removed, and restart policies are applied.
    pub async fn open(engine: Arc<Engine>, exe: PathBuf) -> Result<Arc<Containers>> {
        let networks = Networks::open(engine.clone()).await?;
        let (root, log_defaults) = (engine.root().to_path_buf(), engine.config().logs.clone());
        let machine = Arc::new(EngineMachine {
            engine,
            exe: exe.clone(),
        });
        Containers::open_with(root, machine, networks, exe, log_defaults, Mode::Daemon).await
    }

    /// The containers as the daemonless mode sees them (`berth run --rm`
    /// without a daemon): the same lifecycle, but the records on disk are
    /// only read (their names stay taken), not reconciled — a container
    /// whose monitor runs belongs to whoever started it, and a daemon
    /// adopts it at its next start — and no network is brought up, so
    /// containers have `--network none` or `host`.
    pub async fn open_local(engine: Arc<Engine>, exe: PathBuf) -> Result<Arc<Containers>> {
        let (root, log_defaults) = (engine.root().to_path_buf(), engine.config().logs.clone());
        let settings = engine.config().network.clone();
        let loader = engine.clone();
        let load: crate::networks::PluginLoader =
            Box::new(move |driver, net| loader.load_network(driver, net));
        let networks = Networks::open_with(&root, settings, load, false).await?;
        let machine = Arc::new(EngineMachine {
            engine,
            exe: exe.clone(),
        });
        Containers::open_with(root, machine, networks, exe, log_defaults, Mode::Local).await
    }

    /// Opens the containers under `root` on `machine` (what
    /// [`Containers::open`] and [`Containers::open_local`] do with the
    /// engine's machine; the lifecycle's unit tests pass a fake).
    pub async fn open_with(
        root: PathBuf,
        machine: Arc<dyn Machine>,
        networks: Arc<Networks>,
        exe: PathBuf,
        log_defaults: BTreeMap<String, String>,
        mode: Mode,
    ) -> Result<Arc<Containers>> {
        let dir = root.join("containers");
        std::fs::create_dir_all(&dir).map_err(|e| EngineError::io("creating", &dir, e))?;
        let volumes = volumes::Volumes::new(&root);
        let c = Arc::new(Containers {
            machine,
            root,
            networks,
            dir,
            exe,
            log_defaults,
            table: Mutex::new(HashMap::new()),
            events: broadcast::channel(1024).0,
            execs: Mutex::new(HashMap::new()),
            volumes,
        });
        match mode {
            Mode::Daemon => c.reconcile().await?,
            Mode::Local => c.read_records()?,
        }
        Ok(c)
    }

    fn cdir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// A unix socket for container `id` (`tag` tells its use apart): under
    /// `<root>/sock` with short names, as a socket path has at most 107 bytes.
    pub(crate) fn socket_named(&self, id: &str, tag: &str) -> PathBuf {
        self.root
            .join("sock")
            .join(format!("{}{tag}", &id[..16.min(id.len())]))
    }

    fn socket(&self, id: &str) -> PathBuf {
        self.socket_named(id, "")
    }

    fn save(&self, rec: &Record) -> Result<()> {
        write_json(&self.cdir(&rec.id).join("container.json"), rec)
    }

    fn update(&self, e: &Entry, f: impl FnOnce(&mut Record)) -> Result<Record> {
        let rec = {
            let mut r = e.rec.lock().expect("record lock");
            f(&mut r);
            r.clone()
        };
        let saved = self.save(&rec);
        e.notify();
        saved.map(|_| rec)
    }

    fn emit(&self, rec: &Record, action: &str, extra: &[(&str, String)]) {
        let mut attributes = std::collections::BTreeMap::new();
        attributes.insert("name".to_string(), rec.name.clone());
        attributes.insert("image".to_string(), rec.image.clone());
        for (k, v) in extra {
            attributes.insert(k.to_string(), v.clone());
        }
        for (k, v) in &rec.config.labels {
            attributes.insert(k.clone(), v.clone());
        }
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let _ = self.events.send(Event {
            kind: "container",
            action: action.to_string(),
            id: rec.id.clone(),
            attributes,
            time_nano: t.as_nanos() as i64,
        });
    }

    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Emits an event for a non-container object (image, volume).
    pub fn emit_other(&self, kind: &'static str, action: &str, id: &str) {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let _ = self.events.send(Event {
            kind,
            action: action.into(),
            id: id.into(),
            attributes: Default::default(),
            time_nano: t.as_nanos() as i64,
        });
    }

    /// Finds a container by full id, name (with or without `/`), or a unique id prefix.
    pub(crate) fn entry(&self, key: &str) -> Result<Arc<Entry>> {
        let t = self.table.lock().expect("table lock");
        let not_found = || EngineError::NotFound {
            what: "container",
            name: key.to_string(),
        };
        if key.is_empty() {
            return Err(not_found());
        }
        if let Some(e) = t.get(key) {
            return Ok(e.clone());
        }
        let name = key.strip_prefix('/').unwrap_or(key);
        if let Some(e) = t.values().find(|e| e.named(name)) {
            return Ok(e.clone());
        }
        let mut hits = t.values().filter(|e| e.id.starts_with(key));
        match (hits.next(), hits.next()) {
            (Some(e), None) => Ok(e.clone()),
            (Some(_), Some(_)) => Err(EngineError::AmbiguousPrefix {
                what: "container",
                prefix: key.to_string(),
            }),
            _ => Err(not_found()),
        }
    }

    /// A container's record.
    pub fn get(&self, key: &str) -> Result<Record> {
        self.entry(key).map(|e| e.get())
    }

    /// Every container, newest first.
    pub fn list(&self) -> Vec<Record> {
        let mut v: Vec<Record> = self
            .table
            .lock()
            .expect("table lock")
            .values()
            .map(|e| e.get())
            .collect();
        v.sort_by(|a, b| b.created.cmp(&a.created));
        v
    }

    /// The image config a container was made from.
    pub fn image_config(&self, id: &str) -> Option<ImageConfiguration> {
        std::fs::read(self.cdir(id).join("image-config.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    }

    /// The container's json-file log.
    pub fn log_path(&self, id: &str) -> PathBuf {
        crate::monitor::log_path(&self.cdir(id), id)
    }

    /// A container's log options over berth.toml's `[logs]` defaults.
    fn log_opts(&self, rec: &Record) -> std::collections::BTreeMap<String, String> {
        let mut o = self.log_defaults.clone();
        o.extend(rec.host_config.log_config.config.clone());
        o
    }

    /// Containers that name `volume` in a bind (`NAME:/dst`) or `--mount`.
    /// The bytes container `id`'s writable layer takes (0 when unknown).
    pub async fn size_rw(&self, id: &str) -> u64 {
        self.machine.layer_usage(id).await.unwrap_or(0)
    }

    pub fn volume_users(&self, volume: &str) -> Vec<String> {
        self.list()
            .into_iter()
            .filter(|r| {
                r.host_config
                    .binds
                    .iter()
                    .any(|b| b.split(':').next() == Some(volume))
                    || r.host_config
                        .mounts
                        .iter()
                        .any(|m| m.source == volume && m.kind == "volume")
            })
            .map(|r| r.id)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_and_names() {
        assert_eq!(parse_signal("TERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("sigkill").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert!(parse_signal("SIGNOPE")
            .unwrap_err()
            .to_string()
            .contains("SIGNOPE"));
        assert!(create::check_name("web-1.a_b").is_ok());
        assert!(create::check_name("-x").is_err() && create::check_name("a b").is_err());
    }
}
