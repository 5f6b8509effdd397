//! Containers as the daemon keeps them: a record per container under
//! `<root>/containers/<id>/` (written atomically, so `kill -9` of the daemon
//! at any instant leaves records the next start reconciles), the lifecycle
//! (create, start through a monitor, stop, kill, restart policies, remove),
//! and what the API reads (list, inspect, logs, top, stats, events).

pub mod config;
pub mod exec;
pub mod health;
pub mod logs;
mod netops;
pub mod shim;
pub mod stream;
pub mod volumes;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::Signal;
use oci_spec::image::ImageConfiguration;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::networks::{files, Attachee, Endpoint, EndpointConfig, Networks};
use config::{ContainerConfig, CreateRequest, HostConfig, Restart};

/// Now, as RFC 3339 with nanoseconds.
pub fn now() -> String {
    logs::now_nanos()
}

/// Writes JSON to `path` so that a crash leaves the old or the new file,
/// never half of one: a temporary file, fsync, rename, fsync of the directory.
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension("tmp");
    let data = serde_json::to_vec_pretty(value).expect("serializable");
    let r = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(d) = path.parent() {
            std::fs::File::open(d)?.sync_all()?;
        }
        Ok(())
    })();
    r.map_err(|e| EngineError::io("writing", path, e))
}

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
    rec: Mutex<Record>,
    /// Serializes lifecycle operations (start, exit handling, remove).
    op: tokio::sync::Mutex<()>,
    changed: watch::Sender<u64>,
    exits: AtomicU64,
    removed: std::sync::atomic::AtomicBool,
    /// Attach requests made before the container started.
    pending: Mutex<Vec<stream::Pending>>,
    /// Starts so far (health checks belong to one start).
    starts: AtomicU64,
    health: health::Slot,
}

impl Entry {
    fn new(rec: Record) -> Arc<Entry> {
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
    fn named(&self, name: &str) -> bool {
        self.rec.lock().expect("record lock").name == name
    }

    fn notify(&self) {
        self.changed.send_modify(|n| *n += 1);
    }
}

/// All containers of one engine.
pub struct Containers {
    pub(crate) engine: Arc<Engine>,
    pub(crate) dir: PathBuf,
    /// The `berth` executable (the monitor is `berth shim`, the exec helper `berth runtime exec`).
    pub(crate) exe: PathBuf,
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

fn conflict(reason: String) -> EngineError {
    EngineError::Conflict { reason }
}

fn invalid(reason: String) -> EngineError {
    EngineError::Invalid { reason }
}

fn random_bytes(b: &mut [u8]) {
    use std::io::Read as _;
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(b);
    }
}

pub(crate) fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    random_bytes(&mut b);
    hex::encode(b)
}

/// Registers an owned descriptor with the async reactor.
pub(crate) fn async_fd(
    fd: std::os::fd::OwnedFd,
    interest: tokio::io::Interest,
) -> std::io::Result<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>> {
    // SAFETY: the OwnedFd is moved into the AsyncFd, so the descriptor stays
    // open and refers to the same file description for the AsyncFd's life.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, interest) }.map_err(|e| e.into())
}

/// The hostname a container sees: `--hostname` or its short ID.
fn hostname(rec: &Record) -> String {
    if rec.config.hostname.is_empty() {
        rec.id[..12.min(rec.id.len())].to_string()
    } else {
        rec.config.hostname.clone()
    }
}

/// docker's rule for container names.
fn check_name(name: &str) -> Result<()> {
    let mut c = name.chars();
    let ok = c.next().is_some_and(|f| f.is_ascii_alphanumeric())
        && c.all(|ch| ch.is_ascii_alphanumeric() || "_.-".contains(ch));
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

fn random_name() -> String {
    const LEFT: &[&str] = &[
        "brave", "calm", "eager", "fond", "keen", "lucid", "merry", "nimble", "proud", "quiet",
        "steady", "swift", "tender", "vivid", "witty", "zen",
    ];
    const RIGHT: &[&str] = &[
        "anchor", "bay", "buoy", "cove", "dock", "harbor", "jetty", "keel", "mast", "pier", "quay",
        "reef", "sail", "tide", "wharf", "wake",
    ];
    let mut b = [0u8; 3];
    random_bytes(&mut b);
    format!(
        "{}_{}{}",
        LEFT[b[0] as usize % LEFT.len()],
        RIGHT[b[1] as usize % RIGHT.len()],
        b[2] % 100
    )
}

/// Parses a signal given as a name (`SIGTERM`, `TERM`, `term`) or a number.
pub fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| invalid(format!("Invalid signal: {s}")));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<Signal>()
        .map_err(|_| invalid(format!("Invalid signal: {s}")))
}

impl Containers {
    /// Opens the containers under the engine's root and reconciles their
    /// records with the machine: monitors still running are adopted, exits
    /// that happened while no daemon ran are recorded, half-made containers
    /// are removed, and restart policies are applied.
    pub async fn open(engine: Arc<Engine>, exe: PathBuf) -> Result<Arc<Containers>> {
        let dir = engine.root().join("containers");
        std::fs::create_dir_all(&dir).map_err(|e| EngineError::io("creating", &dir, e))?;
        let volumes = volumes::Volumes::new(engine.root());
        let networks = Networks::open(engine.clone()).await?;
        let c = Arc::new(Containers {
            engine,
            networks,
            dir,
            exe,
            table: Mutex::new(HashMap::new()),
            events: broadcast::channel(1024).0,
            execs: Mutex::new(HashMap::new()),
            volumes,
        });
        c.reconcile().await?;
        Ok(c)
    }

    fn cdir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// A unix socket for container `id` (`tag` tells its use apart): under
    /// `<root>/sock` with short names, as a socket path has at most 107 bytes.
    pub(crate) fn socket_named(&self, id: &str, tag: &str) -> PathBuf {
        self.engine
            .root()
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
            (Some(_), Some(_)) => Err(invalid(format!(
                "multiple IDs found with provided prefix: {key}"
            ))),
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
        shim::log_path(&self.cdir(id), id)
    }

    /// A container's log options over berth.toml's `[logs]` defaults.
    fn log_opts(&self, rec: &Record) -> std::collections::BTreeMap<String, String> {
        let mut o = self.engine.config().logs.clone();
        o.extend(rec.host_config.log_config.config.clone());
        o
    }

    /// Checks a create request without making anything.
    fn validate(&self, req: &CreateRequest) -> Result<Restart> {
        let h = &req.host_config;
        let policy = h.restart_policy.parse().map_err(invalid)?;
        if h.auto_remove && policy != Restart::No {
            return Err(invalid(
                "conflicting options: cannot specify both --restart and --rm".into(),
            ));
        }
        let mut opts = self.engine.config().logs.clone();
        opts.extend(h.log_config.config.clone());
        logs::Rotation::from_opts(&h.log_config.kind, &opts).map_err(invalid)?;
        crate::bundle::check_host(h).map_err(|e| invalid(e.to_string()))?;
        files::check_extra_hosts(&h.extra_hosts).map_err(invalid)?;
        for d in &h.dns {
            d.parse::<std::net::IpAddr>()
                .map_err(|_| invalid(format!("{d} is not an ip address (--dns)")))?;
        }
        if h.network_bandwidth < 0 {
            return Err(invalid(format!(
                "invalid network bandwidth {}: it must not be negative",
                h.network_bandwidth
            )));
        }
        netops::port_requests(h, req.config.exposed_ports.keys().cloned())?;
        let mode = h.network_mode.as_str();
        if (mode == "host" || mode == "none") && !h.port_bindings.is_empty() {
            return Err(invalid(format!(
                "published ports are discarded when using the {mode} network: remove -p"
            )));
        }
        Ok(policy)
    }

    /// The networks a create request attaches to, with the endpoint
    /// settings asked for; checks that they exist.
    fn plan_networks(&self, req: &CreateRequest) -> Result<BTreeMap<String, EndpointConfig>> {
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
                return Err(invalid(format!(
                    "container cannot be connected to network {name} together with others"
                )));
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
                return Err(invalid(
                    "user specified IP address is supported on user defined networks only".into(),
                ));
            }
            if net.name == "bridge" && !cfg.aliases.is_empty() {
                return Err(invalid(
                    "network-scoped alias is supported only for containers in user defined networks"
                        .into(),
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
            return Err(invalid(
                "config cannot be empty in order to create a container: no image given".into(),
            ));
        }
        self.validate(&req)?;
        let networks = self.plan_networks(&req)?;
        let (_, image) = self.engine.image(&req.config.image)?;
        let image_config = self.engine.image_config(&image)?;
        if crate::bundle::args(&image_config, &req.config).is_empty() {
            return Err(invalid("no command specified".into()));
        }
        let id = random_hex(32);
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
                        return Err(conflict(format!(
                            "Conflict. The container name \"/{name}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
                        )));
                    }
                    name
                }
                // A generated name may be taken (a few hundred containers
                // make that likely): draw again, as docker does.
                None => (0..10)
                    .map(|_| random_name())
                    .find(|n| in_use(n).is_none())
                    .unwrap_or_else(|| id[..12].to_string()),
            };
            let rec = Record {
                id: id.clone(),
                name,
                created: now(),
                image: req.config.image.clone(),
                image_id: image.config.clone(),
                config: req.config,
                host_config: req.host_config,
                driver: self.engine.storage_driver().to_string(),
                networks,
                ..Default::default()
            };
            let entry = Entry::new(rec.clone());
            t.insert(id.clone(), entry.clone());
            (rec, entry)
        };
        let made = self.make(&rec, &image_config).await;
        if let Err(e) = made {
            self.table.lock().expect("table lock").remove(&id);
            let _ = self.engine.storage().remove(&id).await;
            let _ = std::fs::remove_dir_all(self.cdir(&id));
            return Err(e);
        }
        self.update(&entry, |r| r.prepared = true)?;
        self.emit(&rec, "create", &[]);
        Ok(id)
    }

    async fn make(&self, rec: &Record, image_config: &ImageConfiguration) -> Result<()> {
        let cdir = self.cdir(&rec.id);
        let rootfs = cdir.join("rootfs");
        std::fs::create_dir_all(&rootfs).map_err(|e| EngineError::io("creating", &rootfs, e))?;
        self.save(rec)?;
        std::fs::write(cdir.join("image"), &rec.image_id)
            .map_err(|e| EngineError::io("writing", cdir.join("image"), e))?;
        let (_, image) = self.engine.image(&rec.image_id)?;
        // The raw config: it also holds what oci-spec does not model (Healthcheck).
        match self.engine.content().read(&image.config) {
            Ok(raw) => std::fs::write(cdir.join("image-config.json"), raw)
                .map_err(|e| EngineError::io("writing", cdir.join("image-config.json"), e))?,
            Err(_) => write_json(&cdir.join("image-config.json"), image_config)?,
        }
        self.engine
            .storage()
            .prepare(&rec.id, image.chain.last().map(String::as_str))
            .await?;
        Ok(())
    }

    /// Starts a container. `Ok(false)`: it was already running (docker's 304).
    pub async fn start(self: &Arc<Self>, key: &str) -> Result<bool> {
        let e = self.entry(key)?;
        let _op = e.op.lock().await;
        let rec = e.get();
        match rec.status {
            Status::Running | Status::Paused => return Ok(false),
            Status::Removing | Status::Dead => {
                return Err(conflict(format!(
                    "cannot start container {}: it is being removed",
                    rec.id
                )))
            }
            _ => {}
        }
        self.update(&e, |r| r.manually_stopped = false)?;
        let r = self.start_locked(&e).await;
        drop(_op);
        if r.is_err() && rec.host_config.auto_remove {
            // docker removes a `--rm` container whose start failed.
            let _ = self.remove(&rec.id, true, true).await;
        }
        r.map(|_| true)
    }

    /// Starts the monitor and the container; the entry's op lock is held.
    async fn start_locked(self: &Arc<Self>, e: &Arc<Entry>) -> Result<()> {
        match self.spawn(e).await {
            Ok((pid, shim_pid, endpoints)) => {
                let shim_start = berth_runtime::state::start_time(shim_pid).unwrap_or(0);
                let rec = self.update(e, |r| {
                    r.endpoints = endpoints;
                    r.status = Status::Running;
                    r.pid = pid;
                    r.shim_pid = shim_pid;
                    r.shim_start = shim_start;
                    r.started_at = now();
                    r.exit_code = 0;
                    r.error.clear();
                    r.oom_killed = false;
                })?;
                self.emit(&rec, "start", &[]);
                self.watch(e.clone(), shim_pid, shim_start);
                let n = e.starts.fetch_add(1, Ordering::SeqCst) + 1;
                self.start_health(e, n);
                Ok(())
            }
            Err(err) => {
                let msg = err.to_string();
                let code = if msg.contains("executable file not found")
                    || msg.contains("no such file or directory")
                {
                    127
                } else if msg.contains("permission denied") {
                    126
                } else {
                    128
                };
                let _ = self.update(e, |r| {
                    r.error = msg.clone();
                    r.exit_code = code;
                    if r.status == Status::Restarting {
                        r.status = Status::Exited;
                        r.finished_at = now();
                    }
                });
                // The waiters of `docker run` learn of the failed start.
                e.exits.fetch_add(1, Ordering::SeqCst);
                e.notify();
                for p in e.pending.lock().expect("pending lock").drain(..) {
                    let _ = p.reply.send(Err(msg.clone()));
                }
                Err(err)
            }
        }
    }

    /// Mounts the root filesystem, writes the bundle and starts `berth shim`,
    /// connects pending attaches, then starts the container. Returns (init
    /// pid, monitor pid).
    async fn spawn(&self, e: &Arc<Entry>) -> Result<(i32, i32, BTreeMap<String, Endpoint>)> {
        let rec = e.get();
        let cdir = self.cdir(&rec.id);
        let rootfs = cdir.join("rootfs");
        let _ = std::fs::remove_file(cdir.join(shim::EXIT));
        let image = self
            .image_config(&rec.id)
            .ok_or_else(|| EngineError::Image {
                name: rec.image.clone(),
                reason: format!("the image config of container {} is missing", rec.id),
            })?;
        let _ = crate::mount::unmount_all(&rootfs);
        let mounts = self.engine.storage().mounts(&rec.id).await?;
        crate::mount::mount_all(&rec.id, &mounts, &rootfs)?;
        let undo = |err: EngineError| {
            let _ = crate::mount::unmount_all(&rootfs);
            err
        };
        self.write_etc(&rec, &BTreeMap::new()).map_err(undo)?;
        let spec = crate::bundle::spec(&crate::bundle::Inputs {
            id: &rec.id,
            image_name: &rec.image,
            image: &image,
            config: &rec.config,
            host: &rec.host_config,
            rootfs: &rootfs,
            volumes: self.volumes.dir(),
            etc: Some(&cdir),
        })
        .map_err(undo)?;
        write_json(&cdir.join("config.json"), &spec).map_err(undo)?;
        let rotation =
            logs::Rotation::from_opts(&rec.host_config.log_config.kind, &self.log_opts(&rec))
                .map_err(|r| undo(invalid(r)))?;
        let mut cmd = tokio::process::Command::new(&self.exe);
        cmd.arg("shim")
            .arg("--runtime-root")
            .arg(self.engine.runtime().root)
            .arg("--dir")
            .arg(&cdir)
            .arg("--id")
            .arg(&rec.id)
            .arg("--socket")
            .arg(self.socket(&rec.id))
            .arg("--log-max-size")
            .arg(rotation.max_size.to_string())
            .arg("--log-max-files")
            .arg(rotation.max_files.to_string());
        if rec.config.open_stdin {
            cmd.arg("--stdin");
        }
        if rec.config.stdin_once {
            cmd.arg("--stdin-once");
        }
        if let Some([h, w]) = rec
            .host_config
            .console_size
            .filter(|s| s[0] > 0 && s[1] > 0)
        {
            cmd.arg("--size").arg(format!("{h}x{w}"));
        }
        // The monitor's own complaints (it has no terminal) go to shim.log.
        let shim_log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(cdir.join("shim.log"))
            .map(std::process::Stdio::from)
            .unwrap_or_else(|_| std::process::Stdio::null());
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(shim_log)
            .kill_on_drop(false);
        let mut child = cmd
            .spawn()
            .map_err(|err| undo(EngineError::io("starting the monitor", &self.exe, err)))?;
        // One line: the container's init still holds the pipe until it execs.
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            use tokio::io::AsyncBufReadExt as _;
            let mut r = tokio::io::BufReader::new(out);
            let _ = tokio::time::timeout(Duration::from_secs(60), r.read_line(&mut line)).await;
        }
        let _ = child.wait().await;
        let text = line.trim().to_string();
        let (pid, shim_pid) = match text.strip_prefix("ok ").map(|s| {
            let mut it = s.split_whitespace().map(|n| n.parse::<i32>().unwrap_or(0));
            (it.next().unwrap_or(0), it.next().unwrap_or(0))
        }) {
            Some((p, s)) if p > 0 && s > 0 => (p, s),
            _ => {
                let msg = text.strip_prefix("error: ").unwrap_or(&text).to_string();
                return Err(undo(EngineError::Start {
                    id: rec.id.clone(),
                    reason: if msg.is_empty() {
                        "the monitor exited without a word".into()
                    } else {
                        msg
                    },
                }));
            }
        };
        let sock = self.socket(&rec.id);
        let endpoints = match self.attach_networks(&rec, pid).await {
            Ok(eps) => eps,
            Err(err) => {
                let _ = self.engine.runtime().kill(&rec.id, Signal::SIGKILL, true);
                wait_gone(shim_pid, Duration::from_secs(10)).await;
                let _ = crate::mount::unmount_all(&rootfs);
                return Err(err);
            }
        };
        // Output from the first instruction on reaches the early attachers.
        let pending: Vec<stream::Pending> =
            e.pending.lock().expect("pending lock").drain(..).collect();
        for p in pending {
            let r = stream::connect_attach(&sock, &p.req).await;
            let _ = p.reply.send(r.map_err(|err| err.to_string()));
        }
        if let Err(err) = stream::request(&sock, &shim::Request::Start).await {
            // The monitor cleans up after the container it made.
            let _ = self.engine.runtime().kill(&rec.id, Signal::SIGKILL, true);
            wait_gone(shim_pid, Duration::from_secs(10)).await;
            self.detach_networks(&rec.id, &endpoints).await;
            let _ = crate::mount::unmount_all(&rootfs);
            return Err(EngineError::Start {
                id: rec.id.clone(),
                reason: err,
            });
        }
        Ok((pid, shim_pid, endpoints))
    }

    /// Attaches a created (not yet started) container, whose init is `pid`,
    /// to its networks, and writes its /etc files. On failure nothing stays
    /// attached.
    async fn attach_networks(&self, rec: &Record, pid: i32) -> Result<BTreeMap<String, Endpoint>> {
        use std::os::fd::AsFd as _;
        let mut eps = BTreeMap::new();
        if !rec.networks.is_empty() {
            let path = format!("/proc/{pid}/ns/net");
            let ns =
                std::fs::File::open(&path).map_err(|e| EngineError::io("opening", &path, e))?;
            let hostname = hostname(rec);
            let exposed = self
                .image_config(&rec.id)
                .and_then(|i| i.config().clone())
                .and_then(|c| c.exposed_ports().clone())
                .unwrap_or_default();
            let ports = netops::port_requests(
                &rec.host_config,
                rec.config.exposed_ports.keys().cloned().chain(exposed),
            )?;
            for (i, (name, cfg)) in rec.networks.iter().enumerate() {
                let ifname = format!("eth{i}");
                let who = Attachee {
                    id: &rec.id,
                    name: &rec.name,
                    hostname: &hostname,
                    config: cfg,
                    ifname: &ifname,
                    bandwidth: rec.host_config.network_bandwidth.max(0) as u64,
                    dns: &rec.host_config.dns,
                    default_route: i == 0,
                    ports: if i == 0 { &ports } else { &[] },
                };
                let r = match self.networks.get(name) {
                    Ok(net) => self.networks.attach(&net, &who, ns.as_fd()).await,
                    Err(e) => Err(e),
                };
                match r {
                    Ok(ep) => {
                        eps.insert(name.clone(), ep);
                    }
                    Err(e) => {
                        self.detach_networks(&rec.id, &eps).await;
                        return Err(e);
                    }
                }
            }
        }
        if let Err(e) = self.write_etc(rec, &eps) {
            self.detach_networks(&rec.id, &eps).await;
            return Err(e);
        }
        Ok(eps)
    }

    /// Detaches a container from every network of `eps` (its namespace may
    /// be gone already).
    async fn detach_networks(&self, id: &str, eps: &BTreeMap<String, Endpoint>) {
        for (name, ep) in eps {
            if let Err(e) = self.networks.detach(&ep.network_id, id, None).await {
                tracing::warn!("detaching container {id} from network {name}: {e}");
            }
        }
    }

    /// Writes the container's /etc/hosts, /etc/hostname and /etc/resolv.conf.
    fn write_etc(&self, rec: &Record, eps: &BTreeMap<String, Endpoint>) -> Result<()> {
        if rec.host_config.network_mode == "host" {
            return Ok(());
        }
        let cdir = self.cdir(&rec.id);
        let hostname = hostname(rec);
        let primary = eps
            .values()
            .find(|e| e.ifname == "eth0")
            .or_else(|| eps.values().next());
        let gateway = primary.map(|e| e.gateway.clone()).filter(|g| !g.is_empty());
        let resolver = primary
            .filter(|e| self.networks.resolves(&e.network_id))
            .map(|e| e.gateway.clone())
            .filter(|g| !g.is_empty());
        let nameservers = match &resolver {
            // The embedded DNS answers on the gateway and forwards the rest.
            Some(gw) => vec![gw.clone()],
            None if !rec.host_config.dns.is_empty() => rec.host_config.dns.clone(),
            None => crate::networks::dns::Dns::host_upstreams(
                &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
            )
            .iter()
            .map(|a| a.ip().to_string())
            .collect(),
        };
        files::write(
            &cdir,
            &files::EtcFiles {
                hostname: &hostname,
                addresses: eps.values().map(|e| e.ip_address.clone()).collect(),
                extra_hosts: &rec.host_config.extra_hosts,
                nameservers,
                search: &rec.host_config.dns_search,
                options: &rec.host_config.dns_options,
                gateway,
            },
        )
        .map_err(|reason| EngineError::Start {
            id: rec.id.clone(),
            reason,
        })
    }

    /// Watches a monitor until it exits, then records the container's end.
    fn watch(self: &Arc<Self>, e: Arc<Entry>, shim_pid: i32, shim_start: u64) {
        let me = self.clone();
        tokio::spawn(async move {
            wait_exit(shim_pid, shim_start).await;
            me.on_exit(&e).await;
        });
    }

    /// Records a container's exit and applies its restart policy.
    async fn on_exit(self: &Arc<Self>, e: &Arc<Entry>) {
        let op = e.op.lock().await;
        let rec = e.get();
        if !rec.status.is_live() {
            return;
        }
        let cdir = self.cdir(&rec.id);
        let exit: shim::Exit = std::fs::read(cdir.join(shim::EXIT))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| {
                // The monitor died without a word (killed): clean up for it.
                let _ = self.engine.runtime().delete(&rec.id, true);
                shim::Exit {
                    exit_code: 255,
                    finished_at: now(),
                    error: "the container's monitor ended unexpectedly".into(),
                    ..Default::default()
                }
            });
        let _ = crate::mount::unmount_all(&cdir.join("rootfs"));
        for (name, ep) in &rec.endpoints {
            if let Err(e) = self.networks.detach_exited(&ep.network_id, &rec.id).await {
                tracing::warn!("detaching container {} from network {name}: {e}", rec.id);
            }
        }
        let rec = match self.update(e, |r| {
            r.endpoints.clear();
            r.status = Status::Exited;
            r.exit_code = exit.exit_code;
            r.finished_at = exit.finished_at.clone();
            r.oom_killed = exit.oom_killed;
            r.error = exit.error.clone();
            r.pid = 0;
            r.shim_pid = 0;
        }) {
            Ok(r) => r,
            Err(err) => {
                tracing::warn!("{err}");
                e.get()
            }
        };
        e.exits.fetch_add(1, Ordering::SeqCst);
        e.notify();
        self.emit(&rec, "die", &[("exitCode", rec.exit_code.to_string())]);
        if rec.host_config.auto_remove {
            drop(op);
            if let Err(err) = self.remove(&rec.id, true, true).await {
                tracing::warn!("removing container {} (--rm): {err}", rec.id);
            }
            return;
        }
        if self.should_restart(&rec) {
            let _ = self.update(e, |r| r.status = Status::Restarting);
            drop(op);
            self.schedule_restart(e.clone(), &rec);
        }
    }

    fn should_restart(&self, rec: &Record) -> bool {
        if rec.manually_stopped {
            return false;
        }
        match rec.host_config.restart_policy.parse() {
            Ok(Restart::Always) | Ok(Restart::UnlessStopped) => true,
            Ok(Restart::OnFailure(max)) => {
                rec.exit_code != 0 && max.is_none_or(|m| rec.restart_count < m)
            }
            _ => false,
        }
    }

    /// Restarts after docker's back-off: 100 ms doubling per restart, at
    /// most a minute; a container that ran 10 s starts over at 100 ms.
    fn schedule_restart(self: &Arc<Self>, e: Arc<Entry>, rec: &Record) {
        let ran_long = secs_between(&rec.started_at, &rec.finished_at).unwrap_or(0) >= 10;
        let n = if ran_long {
            0
        } else {
            rec.restart_count.min(10)
        };
        let delay = Duration::from_millis((100u64 << n).min(60_000));
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _op = e.op.lock().await;
            let rec = e.get();
            if rec.status != Status::Restarting
                || rec.manually_stopped
                || e.removed.load(Ordering::SeqCst)
            {
                return;
            }
            let _ = me.update(&e, |r| r.restart_count += 1);
            if let Err(err) = me.start_locked(&e).await {
                tracing::warn!("restarting container {}: {err}", e.id);
                let rec = e.get();
                if me.should_restart(&rec) {
                    let _ = me.update(&e, |r| r.status = Status::Restarting);
                    me.schedule_restart(e.clone(), &rec);
                } else {
                    let _ = me.update(&e, |r| r.status = Status::Exited);
                }
            }
        });
    }

    /// Waits for a condition; returns the exit code (and the error, if the
    /// container failed to start).
    pub async fn wait(&self, key: &str, cond: WaitCondition) -> Result<(i32, Option<String>)> {
        let e = self.entry(key)?;
        let mut rx = e.changed.subscribe();
        let exits0 = e.exits.load(Ordering::SeqCst);
        loop {
            let rec = e.get();
            let done = match cond {
                WaitCondition::NotRunning => {
                    !rec.status.is_live() && rec.status != Status::Restarting
                        || e.removed.load(Ordering::SeqCst)
                }
                WaitCondition::NextExit => {
                    e.exits.load(Ordering::SeqCst) > exits0 || e.removed.load(Ordering::SeqCst)
                }
                WaitCondition::Removed => e.removed.load(Ordering::SeqCst),
            };
            if done {
                let err = Some(rec.error.clone()).filter(|s| !s.is_empty());
                return Ok((rec.exit_code, err));
            }
            if rx.changed().await.is_err() {
                let rec = e.get();
                return Ok((rec.exit_code, None));
            }
        }
    }

    /// Stops a container: its stop signal, then SIGKILL after `timeout`
    /// seconds. `Ok(false)`: it was not running (docker's 304).
    pub async fn stop(
        &self,
        key: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<bool> {
        let e = self.entry(key)?;
        let rec = e.get();
        if rec.status == Status::Restarting {
            self.update(&e, |r| {
                r.manually_stopped = true;
                r.status = Status::Exited;
            })?;
            return Ok(true);
        }
        if !rec.status.is_live() {
            return Ok(false);
        }
        self.update(&e, |r| r.manually_stopped = true)?;
        let sig = parse_signal(
            signal
                .or(rec.config.stop_signal.as_deref())
                .unwrap_or("SIGTERM"),
        )?;
        let t = timeout.or(rec.config.stop_timeout).unwrap_or(10);
        let rt = self.engine.runtime();
        if rec.status == Status::Paused {
            let _ = rt.resume(&rec.id);
        }
        let _ = rt.kill(&rec.id, sig, false);
        let stopped = if t < 0 {
            self.wait(&rec.id, WaitCondition::NotRunning).await.is_ok()
        } else {
            tokio::time::timeout(
                Duration::from_secs(t as u64),
                self.wait(&rec.id, WaitCondition::NotRunning),
            )
            .await
            .is_ok()
        };
        if !stopped {
            let _ = rt.kill(&rec.id, Signal::SIGKILL, true);
            self.wait(&rec.id, WaitCondition::NotRunning).await?;
        }
        self.emit(&e.get(), "stop", &[]);
        Ok(true)
    }

    /// Stops (if running) and starts a container again.
    pub async fn restart(
        self: &Arc<Self>,
        key: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        self.stop(key, timeout, signal).await?;
        self.start(key).await?;
        let e = self.entry(key)?;
        self.emit(&e.get(), "restart", &[]);
        Ok(())
    }

    /// Sends a signal to the container's init.
    pub fn kill(&self, key: &str, signal: Option<&str>) -> Result<()> {
        let e = self.entry(key)?;
        let rec = e.get();
        let sig = parse_signal(signal.filter(|s| !s.is_empty()).unwrap_or("SIGKILL"))?;
        if !rec.status.is_live() {
            return Err(conflict(format!(
                "Cannot kill container: {}: container {} is not running",
                key, rec.id
            )));
        }
        if sig == Signal::SIGKILL {
            // docker: a killed container is not restarted by `unless-stopped`/`always` until started again.
            self.update(&e, |r| r.manually_stopped = true)?;
        }
        self.engine.runtime().kill(&rec.id, sig, false)?;
        self.emit(&rec, "kill", &[("signal", (sig as i32).to_string())]);
        Ok(())
    }

    /// Removes a container (a running one only with `force`).
    pub async fn remove(&self, key: &str, force: bool, _volumes: bool) -> Result<()> {
        let e = self.entry(key)?;
        let rec = e.get();
        if rec.status.is_live() || rec.status == Status::Restarting {
            if !force {
                let what = if rec.status == Status::Paused {
                    "You cannot remove a paused container"
                } else {
                    "You cannot remove a running container"
                };
                return Err(conflict(format!(
                    "{what} {}. Stop the container before attempting removal or force remove",
                    rec.id
                )));
            }
            self.update(&e, |r| r.manually_stopped = true)?;
            if rec.status.is_live() {
                let rt = self.engine.runtime();
                let _ = rt.kill(&rec.id, Signal::SIGKILL, true);
                if rec.status == Status::Paused {
                    let _ = rt.resume(&rec.id);
                }
                self.wait(&rec.id, WaitCondition::NotRunning).await?;
            }
        }
        let _op = e.op.lock().await;
        if e.removed.load(Ordering::SeqCst) {
            return Ok(());
        }
        let rec = self.update(&e, |r| r.status = Status::Removing)?;
        let cdir = self.cdir(&rec.id);
        let chain = self
            .image_config(&rec.id)
            .map(|c| crate::layers::chain_ids(c.rootfs().diff_ids()))
            .unwrap_or_default();
        let _ = crate::mount::unmount_all(&cdir.join("rootfs"));
        // A container that never started has no runtime state; one whose
        // monitor was killed may.
        let _ = self.engine.runtime().delete(&rec.id, true);
        self.engine.storage().remove(&rec.id).await?;
        std::fs::remove_dir_all(&cdir).map_err(|err| EngineError::io("removing", &cdir, err))?;
        self.table.lock().expect("table lock").remove(&rec.id);
        self.execs
            .lock()
            .expect("execs lock")
            .retain(|_, x| x.container != rec.id);
        e.removed.store(true, Ordering::SeqCst);
        e.notify();
        self.emit(&rec, "destroy", &[]);
        // `rmi -f` while the container existed left its image's layers.
        let _ = self
            .engine
            .remove_orphan_layers(&rec.image_id, &chain)
            .await;
        Ok(())
    }

    pub fn rename(&self, key: &str, new: &str) -> Result<()> {
        let new = new.strip_prefix('/').unwrap_or(new);
        check_name(new)?;
        let e = self.entry(key)?;
        {
            let t = self.table.lock().expect("table lock");
            if let Some(o) = t.values().find(|x| x.named(new)) {
                return Err(conflict(format!(
                    "Conflict. The container name \"/{new}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                    o.id
                )));
            }
        }
        let old = e.get().name;
        let rec = self.update(&e, |r| r.name = new.to_string())?;
        self.emit(&rec, "rename", &[("oldName", format!("/{old}"))]);
        Ok(())
    }

    pub fn pause(&self, key: &str) -> Result<()> {
        let e = self.entry(key)?;
        let rec = e.get();
        match rec.status {
            Status::Running => {}
            Status::Paused => {
                return Err(conflict(format!("Container {} is already paused", rec.id)))
            }
            _ => return Err(conflict(format!("Container {} is not running", rec.id))),
        }
        self.engine.runtime().pause(&rec.id)?;
        let rec = self.update(&e, |r| r.status = Status::Paused)?;
        self.emit(&rec, "pause", &[]);
        Ok(())
    }

    pub fn unpause(&self, key: &str) -> Result<()> {
        let e = self.entry(key)?;
        let rec = e.get();
        if rec.status != Status::Paused {
            return Err(conflict(format!("Container {} is not paused", rec.id)));
        }
        self.engine.runtime().resume(&rec.id)?;
        let rec = self.update(&e, |r| r.status = Status::Running)?;
        self.emit(&rec, "unpause", &[]);
        Ok(())
    }

    /// Resizes the container's terminal.
    pub async fn resize(&self, key: &str, h: u16, w: u16) -> Result<()> {
        let e = self.entry(key)?;
        let rec = e.get();
        if !rec.status.is_live() {
            return Err(conflict(format!("Container {} is not running", rec.id)));
        }
        stream::request(&self.socket(&rec.id), &shim::Request::Resize { h, w })
            .await
            .map_err(|reason| EngineError::Start { id: rec.id, reason })
    }

    /// The processes of a running container: `ps` run on the host with
    /// `ps_args` (docker's default `-ef`), rows limited to the container.
    pub async fn top(&self, key: &str, ps_args: &str) -> Result<(Vec<String>, Vec<Vec<String>>)> {
        let rec = self.get(key)?;
        if !rec.status.is_live() {
            return Err(conflict(format!("Container {} is not running", rec.id)));
        }
        let pids = self.engine.runtime().ps(&rec.id)?;
        let args: Vec<&str> = if ps_args.is_empty() {
            vec!["-ef"]
        } else {
            ps_args.split_whitespace().collect()
        };
        let out = tokio::process::Command::new("ps")
            .args(&args)
            .output()
            .await
            .map_err(|e| EngineError::io("running", "ps", e))?;
        if !out.status.success() {
            return Err(EngineError::Invalid {
                reason: format!(
                    "ps {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let header = lines.next().unwrap_or_default();
        let titles: Vec<String> = header.split_whitespace().map(String::from).collect();
        let pid_col =
            titles
                .iter()
                .position(|t| t == "PID")
                .ok_or_else(|| EngineError::Invalid {
                    reason: format!("Couldn't find PID field in ps output ({})", args.join(" ")),
                })?;
        let mut rows = Vec::new();
        for l in lines {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < titles.len() {
                continue;
            }
            let Ok(p) = f[pid_col].parse::<i32>() else {
                continue;
            };
            if pids.contains(&p) {
                let mut row: Vec<String> = f[..titles.len() - 1]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                row.push(f[titles.len() - 1..].join(" "));
                rows.push(row);
            }
        }
        Ok((titles, rows))
    }

    /// Cgroup statistics of a running container.
    pub fn stats(&self, key: &str) -> Result<Option<berth_runtime::cgroups::Stats>> {
        let rec = self.get(key)?;
        if !rec.status.is_live() {
            return Ok(None);
        }
        Ok(self.engine.runtime().stats(&rec.id).ok())
    }

    /// A container's root filesystem for `cp`: a running container's own
    /// mount, or one made for the call (`true`: release it with
    /// [`Containers::release_rootfs`]).
    pub async fn rootfs(&self, key: &str) -> Result<(String, PathBuf, bool)> {
        let e = self.entry(key)?;
        let rec = e.get();
        let root = self.cdir(&rec.id).join("rootfs");
        if rec.status.is_live() {
            return Ok((rec.id, root, false));
        }
        let _op = e.op.lock().await;
        let mounts = self.engine.storage().mounts(&rec.id).await?;
        crate::mount::mount_all(&rec.id, &mounts, &root)?;
        Ok((rec.id, root, true))
    }

    /// Unmounts a root filesystem that [`Containers::rootfs`] mounted.
    pub async fn release_rootfs(&self, id: &str) {
        if let Ok(e) = self.entry(id) {
            let _op = e.op.lock().await;
            if !e.get().status.is_live() {
                let _ = crate::mount::unmount_all(&self.cdir(id).join("rootfs"));
            }
        }
    }

    /// Containers that name `volume` in a bind (`NAME:/dst`) or `--mount`.
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

    /// Brings the records in line with the machine after a (re)start.
    async fn reconcile(self: &Arc<Self>) -> Result<()> {
        let sock = self.engine.root().join("sock");
        std::fs::create_dir_all(&sock).map_err(|e| EngineError::io("creating", &sock, e))?;
        let entries =
            std::fs::read_dir(&self.dir).map_err(|e| EngineError::io("listing", &self.dir, e))?;
        let mut restart = Vec::new();
        let mut keep = Vec::new();
        for d in entries.flatten() {
            let cdir = d.path();
            let Some(rec) = std::fs::read(cdir.join("container.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<Record>(&b).ok())
            else {
                // A directory with no record: a create that never finished
                // its first write, or `berth run --rm`'s own (in flight or crashed).
                if !cdir.join("image").exists()
                    || std::fs::metadata(&cdir)
                        .and_then(|m| m.modified())
                        .is_ok_and(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(60))
                {
                    let id = d.file_name().to_string_lossy().into_owned();
                    if self.engine.runtime().state(&id).is_err() {
                        let _ = crate::mount::unmount_all(&cdir.join("rootfs"));
                        let _ = self.engine.storage().remove(&id).await;
                        let _ = std::fs::remove_dir_all(&cdir);
                    }
                }
                continue;
            };
            if !rec.prepared || rec.status == Status::Removing {
                let _ = crate::mount::unmount_all(&cdir.join("rootfs"));
                let _ = self.engine.runtime().delete(&rec.id, true);
                let _ = self.engine.storage().remove(&rec.id).await;
                let _ = std::fs::remove_dir_all(&cdir);
                continue;
            }
            let e = Entry::new(rec.clone());
            self.table
                .lock()
                .expect("table lock")
                .insert(rec.id.clone(), e.clone());
            let alive = rec.status.is_live()
                && berth_runtime::state::process_alive(rec.shim_pid, rec.shim_start);
            if alive {
                // Adopt the running container: its monitor carries on.
                for ep in rec.endpoints.values() {
                    let names = [rec.name.clone(), rec.id[..12].to_string(), hostname(&rec)];
                    self.networks
                        .readopt(&rec.id, &names, ep, &rec.host_config.dns);
                }
                keep.push(rec.id.clone());
                self.watch(e.clone(), rec.shim_pid, rec.shim_start);
                let n = e.starts.fetch_add(1, Ordering::SeqCst) + 1;
                self.start_health(&e, n);
                continue;
            }
            if rec.status.is_live() {
                // It ended while no daemon ran.
                self.on_exit(&e).await;
                continue;
            }
            let _ = crate::mount::unmount_all(&cdir.join("rootfs"));
            let _ = self.engine.runtime().delete(&rec.id, true);
            let policy = rec.host_config.restart_policy.parse();
            // docker on daemon start: `always` comes back even if it was
            // stopped by hand; `unless-stopped` and `on-failure` only if they
            // were running (or restarting) when the daemon went away.
            let again = match policy {
                Ok(Restart::Always) => rec.status != Status::Created,
                Ok(Restart::UnlessStopped) | Ok(Restart::OnFailure(_)) => {
                    rec.status == Status::Restarting && !rec.manually_stopped
                }
                _ => false,
            };
            if rec.status == Status::Restarting && !again {
                let _ = self.update(&e, |r| r.status = Status::Exited);
            }
            if again {
                restart.push(e);
            }
        }
        // What no running container owns (a crash mid-attach, exits while
        // no daemon ran): links, rules and leases.
        let gone = self.networks.gc(&keep).await;
        if !gone.is_empty() {
            tracing::info!(
                "released the network attachments of {} gone containers",
                gone.len()
            );
        }
        for e in restart {
            let _op = e.op.lock().await;
            let _ = self.update(&e, |r| r.manually_stopped = false);
            if let Err(err) = self.start_locked(&e).await {
                tracing::warn!("restarting container {} on daemon start: {err}", e.id);
            }
        }
        // Writable layers no record owns (a crash between prepare and the record).
        Ok(())
    }
}

fn secs_between(a: &str, b: &str) -> Option<i64> {
    Some(parse_time(b)? - parse_time(a)?)
}

/// Seconds since the epoch of an RFC 3339 UTC time (`…Z`).
pub fn parse_time(s: &str) -> Option<i64> {
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, dd) = (d.next()??, d.next()??, d.next()??);
    let t = time.trim_end_matches('Z');
    let t = t.split('.').next()?;
    let mut tt = t.split(':').map(|x| x.parse::<i64>().ok());
    let (h, mi, sec) = (tt.next()??, tt.next()??, tt.next()??);
    let (y2, m2) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + dd - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + h * 3600 + mi * 60 + sec)
}

/// Waits until process `pid` (started at `start`) is gone: a pidfd that
/// becomes readable when it exits, as the monitor is not our child.
async fn wait_exit(pid: i32, start: u64) {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open with a pid and no flags; the result is a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    if fd < 0 {
        return;
    }
    // SAFETY: fd was just returned by pidfd_open and is ours alone.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    // The pid may have been reused between the record and pidfd_open.
    if !berth_runtime::state::process_alive(pid, start) {
        return;
    }
    if let Ok(afd) = async_fd(fd, tokio::io::Interest::READABLE) {
        let _ = afd.readable().await;
    }
}

async fn wait_gone(pid: i32, timeout: Duration) {
    let start = berth_runtime::state::start_time(pid).unwrap_or(0);
    let _ = tokio::time::timeout(timeout, wait_exit(pid, start)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        let s = logs::format_time(1_795_000_000, 123);
        assert_eq!(parse_time(&s), Some(1_795_000_000));
        assert_eq!(
            secs_between("2026-11-27T10:00:00Z", "2026-11-27T10:00:12.5Z"),
            Some(12)
        );
    }

    #[test]
    fn signals_and_names() {
        assert_eq!(parse_signal("TERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("sigkill").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert!(parse_signal("SIGNOPE")
            .unwrap_err()
            .to_string()
            .contains("SIGNOPE"));
        assert!(check_name("web-1.a_b").is_ok());
        assert!(check_name("-x").is_err() && check_name("a b").is_err());
    }
}
