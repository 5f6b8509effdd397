//! A `berth daemon` for the Docker API tests: a private root in a temporary
//! directory with the busybox test image loaded as `busybox:latest`, the
//! daemon listening on a socket beside it, and real docker clients pointed at
//! it. Dropping a [`Daemon`] removes its containers, stops it with SIGTERM and
//! fails the test if anything of its root is left on the host: mounts,
//! cgroups, monitor (`berth shim`) or container processes, container state.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::binary;
use crate::cmd::{self, Output, Spawned};
use crate::poll::poll;

/// docker 28 (API 1.50), as installed on the CI machine.
pub const DOCKER_CURRENT: &str = "/usr/local/bin/docker";
/// Debian 12's docker 20.10 client (API 1.41), unpacked by `.ci/run`.
pub const DOCKER_20_10: &str = "/opt/docker-20.10/docker";

/// The image every daemon has.
pub const IMAGE: &str = "busybox:latest";

/// How long a daemon test waits for something to happen
/// ([`crate::poll::until`]): a restart, a health status, a log line.
pub const WAIT: Duration = Duration::from_secs(90);

/// Deadline for one client command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// Deadline for the daemon to answer `/_ping`, or to exit on SIGTERM.
const DAEMON_TIMEOUT: Duration = Duration::from_secs(60);

/// The docker clients every test runs with: (name, path). Panics naming
/// the path when one is missing: a test must not pass without its client.
pub fn clients() -> [(&'static str, &'static str); 2] {
    let all = [
        ("docker-28", DOCKER_CURRENT),
        ("docker-20.10", DOCKER_20_10),
    ];
    for (name, path) in all {
        if !Path::new(path).exists() {
            panic!(
                "{path} is missing: the daemon tests need the {name} client there \
                 (.ci/run unpacks Debian's docker.io client to {DOCKER_20_10}; \
                 {DOCKER_CURRENT} is docker 28's static client)"
            );
        }
    }
    all
}

/// The busybox OCI layout, built once per test process and removed at exit.
pub fn layout() -> &'static Path {
    static LAYOUT: OnceLock<PathBuf> = OnceLock::new();
    LAYOUT
        .get_or_init(|| {
            let dir = tempfile::Builder::new()
                .prefix("berth-daemon-layout-")
                .tempdir()
                .expect("temp dir for the image layout")
                .keep();
            crate::images::busybox_layout(&dir.join("oci"), "latest", false);
            // SAFETY: `remove_layout` is an `extern "C" fn()` that touches only
            // the already-initialised `LAYOUT`; registering it has no other effect.
            unsafe { libc::atexit(remove_layout) };
            extern "C" fn remove_layout() {
                if let Some(dir) = LAYOUT.get() {
                    let _ = std::fs::remove_dir_all(dir);
                }
            }
            dir
        })
        .as_path()
}

/// Builds the plugin crate in `dir` (a workspace of its own) for
/// wasm32-wasip2 into `target/<into>` and returns the component's path.
fn build_plugin(dir: &Path, into: &str, release: bool, file: &str) -> PathBuf {
    let out = binary::target_dir().join(into);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut c = Command::new(cargo);
    c.args([
        "build",
        "--quiet",
        "--target",
        "wasm32-wasip2",
        "--target-dir",
    ])
    .arg(&out)
    .current_dir(dir)
    .env_remove("RUSTFLAGS")
    .env_remove("CARGO_ENCODED_RUSTFLAGS")
    .env_remove("CARGO_BUILD_TARGET");
    if release {
        c.arg("--release");
    }
    let status = c.status().expect("running cargo for a plugin");
    assert!(status.success(), "building {} failed", dir.display());
    let profile = if release { "release" } else { "debug" };
    out.join("wasm32-wasip2").join(profile).join(file)
}

/// Builds `examples/network-macvlan` for wasm32-wasip2 (its own workspace)
/// and returns the component's path.
pub fn macvlan_example() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/network-macvlan");
    build_plugin(&dir, "wasm-examples", true, "network_macvlan.wasm")
}

/// Builds berth-host's test fixture plugin `name` (core/host/tests/fixtures)
/// and returns the component's path.
pub fn host_fixture(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../core/host/tests/fixtures")
        .join(name);
    let file = format!("{}_fixture.wasm", name.replace('-', "_"));
    build_plugin(&dir, "wasm-fixtures", false, &file)
}

/// A running `berth daemon` with its own root.
#[derive(Debug)]
pub struct Daemon {
    bin: PathBuf,
    dir: tempfile::TempDir,
    root: PathBuf,
    socket: PathBuf,
    child: Option<Child>,
    /// Every container id seen: in client output, or under `<root>/containers`.
    ids: Arc<Mutex<BTreeSet<String>>>,
    stop_watch: Arc<AtomicBool>,
    watcher: Option<JoinHandle<()>>,
    /// The daemon's own network namespace (never the machine's): its
    /// bridges, rules and published ports live there.
    netns: crate::netns::NetNs,
    /// Its compile cache: the one shared by the tests' roots, or `None` for
    /// the root's own `plugin-cache`, as a user has it.
    plugin_cache: Option<PathBuf>,
    /// Flags of `berth daemon` beyond the root, config and socket.
    extra: Vec<String>,
}

fn is_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Daemon {
    /// A fresh root with `busybox:latest`, and a daemon serving it.
    pub fn start() -> Daemon {
        Daemon::start_with_config("")
    }

    /// As [`Daemon::start`], with `berth.toml` holding `config`.
    pub fn start_with_config(config: &str) -> Daemon {
        Daemon::start_with_args(config, &[])
    }

    /// As [`Daemon::start_with_config`], with more flags for `berth daemon`
    /// (`-H tcp://…`: the listener is in the daemon's network namespace).
    pub fn start_with_args(config: &str, args: &[&str]) -> Daemon {
        let mut d = Daemon::prepare(config, Some(binary::plugin_cache()));
        d.extra = args.iter().map(|a| a.to_string()).collect();
        d.load_image();
        d.watcher = Some(d.watch_ids());
        d.spawn();
        d
    }

    /// As [`Daemon::start_with_config`], without loading an image first
    /// (for storage plugins that cannot unpack one).
    pub fn start_empty(config: &str) -> Daemon {
        let mut d = Daemon::prepare(config, Some(binary::plugin_cache()));
        d.watcher = Some(d.watch_ids());
        d.spawn();
        d
    }

    /// A daemon as a new user starts it: on a fresh root with the root's own
    /// compile cache (`<root>/plugin-cache`, empty), before any other berth
    /// command touched the root — no image is loaded.
    pub fn start_fresh(config: &str) -> Daemon {
        let mut d = Daemon::prepare(config, None);
        d.watcher = Some(d.watch_ids());
        d.spawn();
        d
    }

    fn prepare(config: &str, plugin_cache: Option<PathBuf>) -> Daemon {
        crate::require_root();
        let bin = binary::berth();
        // Short: the socket path must fit in 107 bytes.
        let dir = tempfile::Builder::new()
            .prefix("berth-d-")
            .tempdir()
            .expect("temp dir for the daemon");
        let root = dir.path().join("root");
        let socket = dir.path().join("d.sock");
        std::fs::create_dir_all(dir.path().join("docker")).expect("DOCKER_CONFIG dir");
        let netns = crate::netns::NetNs::new();
        netns.ip(&["link", "set", "lo", "up"]);
        std::fs::write(dir.path().join("berth.toml"), config).expect("writing berth.toml");
        Daemon {
            netns,
            bin,
            root,
            socket,
            child: None,
            ids: Arc::default(),
            stop_watch: Arc::default(),
            watcher: None,
            dir,
            plugin_cache,
            extra: Vec::new(),
        }
    }

    /// Where this daemon keeps its compiled plugins.
    pub fn plugin_cache(&self) -> PathBuf {
        self.plugin_cache
            .clone()
            .unwrap_or_else(|| self.root.join("plugin-cache"))
    }

    /// `berth --root ROOT ARGS`: berth on this root itself, not through
    /// the daemon (for loading the image before it starts).
    fn on_root(&self, args: &[&str]) -> Command {
        binary::on_root(&self.root, &self.config_path(), args)
    }

    fn load_image(&self) {
        let l = layout().join("oci");
        let out = cmd::run(
            self.on_root(&["load", "-i", &l.to_string_lossy(), "-q"]),
            None,
            COMMAND_TIMEOUT,
        );
        out.assert_ok();
        // `Loaded image: NAME` (the name berth gave the layout's one image).
        let name = out
            .stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix("Loaded image: "))
            .unwrap_or_else(|| panic!("no `Loaded image:` line: {out}"))
            .trim()
            .to_string();
        cmd::run(self.on_root(&["tag", &name, IMAGE]), None, COMMAND_TIMEOUT).assert_ok();
    }

    /// Notes the id of every container directory that appears under the
    /// root, so that the leak check knows containers already removed
    /// (`--rm`) too.
    fn watch_ids(&self) -> JoinHandle<()> {
        let (ids, stop) = (self.ids.clone(), self.stop_watch.clone());
        let dir = self.root.join("containers");
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                scan_ids(&dir, &ids);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    }

    #[track_caller]
    fn spawn(&mut self) {
        if let Err(e) = self.try_spawn() {
            panic!("{e}");
        }
    }

    fn try_spawn(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| format!("opening the daemon log: {e}"))?;
        let mut c = self.netns.command(&self.bin);
        match &self.plugin_cache {
            Some(p) => c.env("BERTH_PLUGIN_CACHE", p),
            None => c.env_remove("BERTH_PLUGIN_CACHE"),
        };
        c.env("BERTH_LOG", "debug")
            .arg("daemon")
            .arg("--root")
            .arg(&self.root)
            .arg("--config")
            .arg(self.config_path())
            .arg("-H")
            .arg(self.host())
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(
                log.try_clone()
                    .map_err(|e| format!("dup of the log: {e}"))?,
            )
            .stderr(log);
        let child = c
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.bin.display()))?;
        self.child = Some(child);
        // Done when it answers, or when it has exited (with its status).
        let answered = poll(DAEMON_TIMEOUT, || {
            if self.ping() {
                return Some(Ok(()));
            }
            let exited = self.child.as_mut()?.try_wait().ok().flatten();
            exited.map(Err)
        });
        match answered {
            Ok(Ok(())) => Ok(()),
            Ok(Err(st)) => {
                self.child = None;
                Err(format!(
                    "berth daemon exited ({st}) before answering /_ping; log:\n{}",
                    self.log()
                ))
            }
            Err(_) => {
                if let Some(mut c) = self.child.take() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                Err(format!(
                    "berth daemon did not answer /_ping within {DAEMON_TIMEOUT:?}; log:\n{}",
                    self.log()
                ))
            }
        }
    }

    /// The daemon's `berth.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("berth.toml")
    }

    /// The daemon's network namespace.
    pub fn netns(&self) -> &crate::netns::NetNs {
        &self.netns
    }

    /// Runs `program args…` inside the daemon's network namespace (the
    /// "host" the containers see).
    pub fn in_netns(&self, program: &str, args: &[&str]) -> Output {
        let mut c = self.netns.command(program);
        c.args(args);
        cmd::run(c, None, COMMAND_TIMEOUT)
    }

    /// Whether the daemon answers `GET /_ping` with 200 OK.
    pub fn ping(&self) -> bool {
        self.http("GET", "/_ping", None)
            .is_some_and(|(status, body)| status == 200 && body == "OK")
    }

    /// One HTTP/1.0 request on the socket: (status, body), or `None` when
    /// nothing answered.
    pub fn http(&self, method: &str, path: &str, body: Option<&str>) -> Option<(u16, String)> {
        let mut s = UnixStream::connect(&self.socket).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        let mut req = format!("{method} {path} HTTP/1.0\r\nHost: berth\r\n");
        if let Some(b) = body {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                b.len()
            ));
        }
        req.push_str("\r\n");
        req.push_str(body.unwrap_or(""));
        s.write_all(req.as_bytes()).ok()?;
        let mut resp = String::new();
        s.read_to_string(&mut resp).ok()?;
        let (head, body) = resp.split_once("\r\n\r\n")?;
        let status = head.split(' ').nth(1)?.parse().ok()?;
        Some((status, body.to_string()))
    }

    /// The daemon's root (`--root`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The socket the daemon listens on.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `unix://…` for `DOCKER_HOST`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("daemon.log")
    }

    /// What the daemon (every process started on this root) logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// Sets the environment `client` needs to talk to this daemon only.
    pub fn client_env(&self, c: &mut Command) {
        for v in [
            "DOCKER_CONTEXT",
            "DOCKER_API_VERSION",
            "DOCKER_TLS_VERIFY",
            "DOCKER_CERT_PATH",
            "DOCKER_DEFAULT_PLATFORM",
        ] {
            c.env_remove(v);
        }
        // berth's own client finds the daemon the same way (and must not
        // fall back to its daemonless mode).
        c.env_remove("BERTH_ROOT");
        c.env("BERTH_HOST", self.host());
        c.env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.docker_config_dir())
            .env("DOCKER_CLI_HINTS", "false");
    }

    /// The `DOCKER_CONFIG` directory the clients of this daemon use.
    pub fn docker_config_dir(&self) -> PathBuf {
        self.dir.path().join("docker")
    }

    /// `client ARGS` against this daemon, not yet run.
    pub fn docker_cmd(&self, client: impl AsRef<OsStr>, args: &[&str]) -> Command {
        let mut c = Command::new(client);
        self.client_env(&mut c);
        c.args(args);
        c
    }

    /// Runs `client ARGS` against this daemon.
    #[track_caller]
    pub fn docker(&self, client: impl AsRef<OsStr>, args: &[&str]) -> Output {
        self.docker_in(client, args, None)
    }

    /// Runs `client ARGS` with `stdin` as its input (else /dev/null).
    #[track_caller]
    pub fn docker_in(
        &self,
        client: impl AsRef<OsStr>,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> Output {
        let out = cmd::run(self.docker_cmd(client, args), stdin, COMMAND_TIMEOUT);
        self.note_ids(&out.stdout);
        out
    }

    /// Runs the `berth` command line under test as a client of this daemon
    /// (`BERTH_HOST`), as [`Daemon::docker`] runs a docker client.
    #[track_caller]
    pub fn berth(&self, args: &[&str]) -> Output {
        self.docker(binary::berth(), args)
    }

    /// Starts `client ARGS` in the background.
    pub fn spawn_docker(&self, client: impl AsRef<OsStr>, args: &[&str]) -> Spawned {
        Spawned::start(self.docker_cmd(client, args), None, COMMAND_TIMEOUT)
    }

    /// Runs `script -qec SHELL_CMD /dev/null` (the command gets a pty; the
    /// environment points docker at this daemon), `stdin` fed to the pty.
    #[track_caller]
    pub fn script(&self, shell_cmd: &str, stdin: &[u8]) -> Output {
        let mut c = Command::new("script");
        self.client_env(&mut c);
        c.args(["-qec", shell_cmd, "/dev/null"]);
        let out = cmd::run(c, Some(stdin), COMMAND_TIMEOUT);
        self.note_ids(&out.stdout);
        out
    }

    /// `curl -sS --unix-socket SOCKET ARGS` (for requests no client makes).
    #[track_caller]
    pub fn curl(&self, args: &[&str]) -> Output {
        if !Path::new("/usr/bin/curl").exists() {
            panic!("/usr/bin/curl is missing: install Debian's curl (.ci/run does)");
        }
        let mut c = Command::new("/usr/bin/curl");
        c.arg("-sS")
            .arg("--unix-socket")
            .arg(&self.socket)
            .args(args);
        cmd::run(c, None, COMMAND_TIMEOUT)
    }

    fn note_ids(&self, text: &str) {
        let mut ids = self.ids.lock().expect("ids lock");
        for w in text.split(|c: char| !c.is_ascii_hexdigit()) {
            if is_id(w) {
                ids.insert(w.to_string());
            }
        }
    }

    /// Every container id this daemon is known to have had.
    pub fn known_ids(&self) -> Vec<String> {
        scan_ids(&self.root.join("containers"), &self.ids);
        self.ids.lock().expect("ids lock").iter().cloned().collect()
    }

    /// Kills the daemon with SIGKILL (its containers keep running).
    pub fn kill9(&mut self) {
        let mut c = self.child.take().expect("the daemon is not running");
        let _ = c.kill();
        let _ = c.wait();
    }

    /// Stops the daemon with SIGTERM and waits for it; panics (after a
    /// SIGKILL) if it does not exit in time, or exits with an error.
    #[track_caller]
    pub fn terminate(&mut self) {
        let c = self.child.take().expect("the daemon is not running");
        if let Err(e) = stop(c) {
            panic!("{e}; log:\n{}", self.log());
        }
    }

    /// Starts a new daemon on the same root and socket (after stopping the
    /// running one with SIGTERM, if any).
    #[track_caller]
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.terminate();
        }
        self.spawn();
    }

    /// Whether the daemon process is running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Process ids of the monitors (`berth shim`) of this root's containers.
    pub fn shim_pids(&self) -> Vec<i32> {
        processes(&self.root, &[])
            .iter()
            .filter(|p| p.contains("(berth shim:"))
            .filter_map(|p| p.split(' ').next()?.parse().ok())
            .collect()
    }

    /// What this root left on the host, one line each: mounts under the
    /// temp dir, cgroups and processes of its containers, monitors naming
    /// the root, container and runtime state.
    pub fn leaks(&self) -> Vec<String> {
        let mut found = Vec::new();
        for m in crate::leak::mounts_under(self.dir.path()) {
            found.push(format!("mount {m}"));
        }
        let ids = self.known_ids();
        for id in &ids {
            for dir in crate::cgroup::dirs(&format!("/berth/{id}")) {
                if dir.exists() {
                    found.push(format!("cgroup directory {}", dir.display()));
                }
            }
        }
        for p in processes(&self.root, &ids) {
            found.push(format!("process {p}"));
        }
        for link in self.netns.links() {
            if link.starts_with("veth") {
                found.push(format!("link {link} in the daemon's network namespace"));
            }
        }
        if let Ok(rd) = std::fs::read_dir(self.root.join("net/journal")) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with("att-") {
                    found.push(format!("network attachment journal {}", e.path().display()));
                }
            }
        }
        for sub in ["containers", "runtime"] {
            if let Ok(rd) = std::fs::read_dir(self.root.join(sub)) {
                for e in rd.flatten() {
                    found.push(format!("{sub} entry {}", e.path().display()));
                }
            }
        }
        found
    }

    /// Kills what `leaks` found (best effort): processes, mounts, cgroups.
    fn force_clean(&self) {
        let ids = self.known_ids();
        for p in processes(&self.root, &ids) {
            let pid = p.split(' ').next().and_then(|n| n.parse().ok());
            if let Some(pid) = pid {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        // Never panics: this runs in `Drop`, maybe while unwinding.
        let _ = poll(Duration::from_secs(10), || {
            processes(&self.root, &ids).is_empty()
        });
        crate::leak::unmount_under(self.dir.path());
        for id in &ids {
            for dir in crate::cgroup::dirs(&format!("/berth/{id}")) {
                crate::cgroup::remove_tree(&dir);
            }
        }
    }

    /// `docker rm -f` of every container, with the current client.
    fn remove_all(&self) -> Result<(), String> {
        let ps = self.docker(DOCKER_CURRENT, &["ps", "-aq", "--no-trunc"]);
        if ps.code != 0 {
            return Err(format!("listing the containers: {ps}"));
        }
        let ids: Vec<&str> = ps.stdout.split_whitespace().collect();
        if ids.is_empty() {
            return Ok(());
        }
        let mut args = vec!["rm", "-f"];
        args.extend(ids);
        let rm = self.docker(DOCKER_CURRENT, &args);
        if rm.code != 0 {
            return Err(format!("removing the containers: {rm}"));
        }
        Ok(())
    }
}

/// SIGTERM, then wait; SIGKILL when it does not exit in time.
fn stop(mut c: Child) -> Result<(), String> {
    let pid = nix::unistd::Pid::from_raw(c.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    // Done when it exited (`Some(status)`) or cannot be waited for (`None`).
    let exited = poll(DAEMON_TIMEOUT, || match c.try_wait() {
        Ok(None) => None,
        Ok(Some(st)) => Some(Some(st)),
        Err(_) => Some(None),
    });
    match exited {
        Ok(Some(st)) if st.success() => Ok(()),
        Ok(Some(st)) => Err(format!("berth daemon exited with {st} on SIGTERM")),
        _ => {
            let _ = c.kill();
            let _ = c.wait();
            Err(format!(
                "berth daemon did not exit within {DAEMON_TIMEOUT:?} of SIGTERM (killed)"
            ))
        }
    }
}

fn scan_ids(dir: &Path, ids: &Mutex<BTreeSet<String>>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let names: Vec<String> = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| is_id(n))
        .collect();
    ids.lock().expect("ids lock").extend(names);
}

/// Processes of this root, as `PID what`: monitors whose command line names
/// the root, and anything in the cgroup of one of its containers.
fn processes(root: &Path, ids: &[String]) -> Vec<String> {
    let root = root.to_string_lossy();
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let argv: Vec<String> = std::fs::read(e.path().join("cmdline"))
            .unwrap_or_default()
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if argv.iter().any(|a| a == "shim") && argv.iter().any(|a| a.contains(root.as_ref())) {
            out.push(format!("{pid} (berth shim: {})", argv.join(" ").trim()));
            continue;
        }
        let groups = std::fs::read_to_string(e.path().join("cgroup")).unwrap_or_default();
        if let Some(id) = ids.iter().find(|id| {
            groups.lines().any(|l| {
                let path = l.splitn(3, ':').nth(2).unwrap_or_default();
                path == format!("/berth/{id}") || path.starts_with(&format!("/berth/{id}/"))
            })
        }) {
            out.push(format!(
                "{pid} (in the cgroup of container {id}: {})",
                argv.join(" ").trim()
            ));
        }
    }
    out
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        if panicking {
            // A failing test shows what the daemon said last.
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(80).collect();
            eprintln!("--- the daemon's log, last {} lines ---", tail.len());
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
        let mut problems = Vec::new();
        // A daemon the test killed comes back to remove its containers (a
        // failing test's leftovers are killed and unmounted below instead).
        if !self.running() && !panicking {
            self.child = None;
            if let Err(e) = self.try_spawn() {
                problems.push(format!("restarting the daemon for cleanup: {e}"));
            }
        }
        if self.child.is_some() {
            // A client that cannot start or times out panics: caught, as
            // this may run while unwinding.
            let removed =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.remove_all()));
            match removed {
                Ok(Ok(())) => {}
                Ok(Err(e)) => problems.push(e),
                Err(_) => problems.push("removing the containers panicked".into()),
            }
            if let Some(c) = self.child.take() {
                if let Err(e) = stop(c) {
                    problems.push(e);
                }
            }
        }
        self.stop_watch.store(true, Ordering::SeqCst);
        if let Some(w) = self.watcher.take() {
            let _ = w.join();
        }
        let leaks = self.leaks();
        if !leaks.is_empty() {
            self.force_clean();
        }
        problems.extend(leaks);
        if !problems.is_empty() && !panicking {
            panic!(
                "the daemon on {} did not clean up:\n  {}\n--- daemon log ---\n{}",
                self.root.display(),
                problems.join("\n  "),
                self.log()
            );
        }
    }
}
