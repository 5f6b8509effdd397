//! The container lifecycle behind the OCI runtime verbs: create, start,
//! run, state, kill, delete, exec, ps, list, pause and resume. Every step
//! that can fail after something was made undoes what it made.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

use crate::cgroups::{self, Cgroup, Layout};
use crate::error::{Result, RuntimeError};
use crate::process::prepare::{self, InitInputs};
use crate::process::spawn::{self, IdMaps, Spawned};
use crate::process::sync::Msg;
use crate::spec::{self, Bundle};
use crate::state::{self, Record, Status, EXEC_FIFO};

/// Where containers live, as runc's `--root`.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub root: PathBuf,
}

/// Options of `create` and `run`.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
}

/// Options of `exec`.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub detach: bool,
}

/// Undoes a half-made container when dropped without `disarm`.
struct Cleanup {
    dir: Option<PathBuf>,
    cgroup: Option<Cgroup>,
}

impl Cleanup {
    fn disarm(&mut self) {
        self.dir = None;
        self.cgroup = None;
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(cg) = self.cgroup.take() {
            if let Err(e) = cg.destroy() {
                tracing::warn!("removing the cgroup of a failed container: {e}");
            }
            cg.prune_parents();
        }
        if let Some(d) = self.dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn id_maps(spec: &Spec) -> IdMaps {
    let fmt = |m: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
        m.iter()
            .flatten()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect::<String>()
    };
    let linux = spec.linux().clone().unwrap_or_default();
    IdMaps {
        uid: fmt(linux.uid_mappings()),
        gid: fmt(linux.gid_mappings()),
    }
}

fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp = path.with_extension("berth-tmp");
    std::fs::write(&tmp, pid.to_string())
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| RuntimeError::io("writing the pid file", path, e))
}

/// Waits until a process that is not our child is gone (or a zombie).
fn wait_gone(pid: i32, start: u64, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    while state::process_alive(pid, start) {
        // Reap it if it happens to be ours.
        let _ = nix::sys::wait::waitpid(
            nix::unistd::Pid::from_raw(pid),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        );
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

impl Runtime {
    pub fn new(root: impl Into<PathBuf>) -> Runtime {
        Runtime { root: root.into() }
    }

    fn ensure_root(&self) -> Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .map_err(|e| RuntimeError::io("creating the state root", &self.root, e))
    }

    /// Creates a container: its init waits for `start` on the exec fifo.
    pub fn create(&self, opts: &CreateOptions) -> Result<Record> {
        let (rec, spawned) = self.make(opts, true, false)?;
        drop(spawned);
        Ok(rec)
    }

    /// `create` for a monitor that holds the container's terminal itself
    /// (berth's shim): the pty master is returned instead of being sent to
    /// a console socket. The init inherits the caller's stdin/stdout/stderr
    /// when the process has no terminal.
    pub fn create_for_monitor(&self, opts: &CreateOptions) -> Result<(Record, Option<OwnedFd>)> {
        let (rec, spawned) = self.make(opts, true, true)?;
        Ok((rec, spawned.pty_master))
    }

    /// Everything of `create`; with `fifo == false` the init waits for a
    /// `Start` message on the returned channel instead (foreground `run`).
    fn make(&self, opts: &CreateOptions, fifo: bool, keep_pty: bool) -> Result<(Record, Spawned)> {
        spec::validate_id(&opts.id)?;
        let Bundle { dir, rootfs, spec } = spec::load_bundle(&opts.bundle)?;
        let process = spec.process().clone().unwrap_or_default();
        if process.terminal().unwrap_or(false) && fifo && !keep_pty && opts.console_socket.is_none()
        {
            return Err(RuntimeError::Unsupported(
                "process.terminal is true but no --console-socket was given: a detached container needs one to hand its terminal to".into(),
            ));
        }
        self.ensure_root()?;
        let cdir = Record::dir(&self.root, &opts.id);
        match std::fs::create_dir(&cdir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(RuntimeError::AlreadyExists {
                    id: opts.id.clone(),
                    path: cdir,
                })
            }
            Err(e) => {
                return Err(RuntimeError::io(
                    "creating the container's state directory",
                    &cdir,
                    e,
                ))
            }
        }
        let mut cleanup = Cleanup {
            dir: Some(cdir.clone()),
            cgroup: None,
        };
        let linux = spec.linux().clone().unwrap_or_default();
        let layout = Layout::detect().map_err(|e| RuntimeError::Cgroup {
            id: opts.id.clone(),
            source: e,
        })?;
        let cg_path = linux
            .cgroups_path()
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|| cgroups::default_path(&opts.id));
        let resources = with_default_devices(linux.resources().clone(), &spec);
        let cgroup = Cgroup::create(&layout, &cg_path, Some(&resources)).map_err(|e| {
            RuntimeError::Cgroup {
                id: opts.id.clone(),
                source: e,
            }
        })?;
        cleanup.cgroup = Some(cgroup.clone());

        let fifo_fd: Option<OwnedFd> = if fifo {
            let path = cdir.join(EXEC_FIFO);
            nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o622)).map_err(
                |e| RuntimeError::sys(format!("creating the exec fifo {}", path.display()), e),
            )?;
            let fd = nix::fcntl::open(
                &path,
                // Read-write: never blocks, and the init inherits it.
                nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|e| {
                RuntimeError::sys(format!("opening the exec fifo {}", path.display()), e)
            })?;
            Some(fd)
        } else {
            None
        };
        let (ns, pid_join) = prepare::ns_plan(&spec)?;
        let exec_fifo = fifo_fd.as_ref().map(|fd| fd.as_raw_fd());
        let mut plan = prepare::init_plan(InitInputs {
            spec: &spec,
            rootfs: &rootfs,
            ns,
            cgroup_dirs: cgroup.v1_mounts(),
            cgroup_v2: layout.is_v2(),
            exec_fifo,
        })?;
        let hooks = spec.hooks().clone().unwrap_or_default();
        let mut rec = Record {
            id: opts.id.clone(),
            pid: 0,
            pid_start: 0,
            bundle: dir,
            rootfs,
            created: state::now_rfc3339(),
            owner: nix::unistd::geteuid().as_raw(),
            cgroup,
            spec: spec.clone(),
            annotations: spec.annotations().clone().unwrap_or_default(),
        };
        let spawned = spawn::spawn_init(
            &opts.id,
            &mut plan,
            pid_join.as_ref(),
            &id_maps(&spec),
            &rec.cgroup,
            |pid| {
                let mut r = rec.clone();
                r.pid = pid;
                // prestart hooks see `created`, as the spec and crun give
                // them; createRuntime hooks run while the container is
                // still `creating`.
                let creating =
                    serde_json::to_vec(&r.oci_state(Status::Creating)).unwrap_or_default();
                let created = serde_json::to_vec(&r.oci_state(Status::Created)).unwrap_or_default();
                let prestart = hooks.prestart().as_deref().unwrap_or(&[]);
                crate::hooks::run("prestart", prestart, &created)?;
                crate::hooks::run(
                    "createRuntime",
                    hooks.create_runtime().as_deref().unwrap_or(&[]),
                    &creating,
                )?;
                Ok(created)
            },
        )?;
        drop(fifo_fd);
        rec.pid = spawned.pid;
        rec.pid_start = state::start_time(spawned.pid).unwrap_or(0);
        let finish = || -> Result<()> {
            if let (Some(sock), Some(m)) = (&opts.console_socket, &spawned.pty_master) {
                crate::tty::send_to_console_socket(sock, m)?;
            }
            rec.save(&self.root)?;
            if let Some(p) = &opts.pid_file {
                write_pid_file(p, rec.pid)?;
            }
            Ok(())
        };
        if let Err(e) = finish() {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(spawned.pid), Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(spawned.pid), None);
            return Err(e);
        }
        cleanup.disarm();
        Ok((rec, spawned))
    }

    /// Starts a created container (runs the poststart hooks after).
    pub fn start(&self, id: &str) -> Result<()> {
        let rec = Record::load(&self.root, id)?;
        let status = rec.status(&self.root);
        if status != Status::Created {
            return Err(RuntimeError::WrongState {
                id: id.into(),
                status: status.as_str(),
                action: "start (only a created container can be started)",
            });
        }
        let fifo = Record::dir(&self.root, id).join(EXEC_FIFO);
        // The init holds the fifo open read-write and waits for one byte. A
        // non-blocking open for writing fails with ENXIO when nobody reads:
        // the init is gone.
        let f = match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
        {
            Ok(f) => f,
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                let _ = std::fs::remove_file(&fifo);
                return Err(RuntimeError::Init {
                    id: id.into(),
                    message: "the container's init exited before it could be started".into(),
                });
            }
            Err(e) => return Err(RuntimeError::io("opening the exec fifo", &fifo, e)),
        };
        if let Err(e) = nix::unistd::write(&f, b"0") {
            return Err(RuntimeError::sys("writing the exec fifo", e));
        }
        drop(f);
        let _ = std::fs::remove_file(&fifo);
        self.poststart(&rec)
    }

    fn poststart(&self, rec: &Record) -> Result<()> {
        let hooks = rec.spec.hooks().clone().unwrap_or_default();
        if let Some(h) = hooks.poststart().as_deref().filter(|h| !h.is_empty()) {
            let st = serde_json::to_vec(&rec.oci_state(Status::Running)).unwrap_or_default();
            crate::hooks::run("poststart", h, &st)?;
        }
        Ok(())
    }

    /// `run` in the foreground: create, start, wait, delete. Returns the exit code.
    pub fn run(&self, opts: &CreateOptions) -> Result<i32> {
        crate::supervise::block_signals()?;
        let (rec, spawned) = self.make(opts, false, false)?;
        let started = spawned
            .chan
            .send(Msg::Start)
            .map_err(|e| RuntimeError::Init {
                id: rec.id.clone(),
                message: format!("starting: {}", nix::errno::Errno::from_raw(e).desc()),
            });
        let r = started.and_then(|_| self.poststart(&rec));
        let code = match r {
            Ok(()) => {
                let pty = if opts.console_socket.is_some() {
                    None
                } else {
                    spawned.pty_master.as_ref()
                };
                crate::supervise::wait(rec.pid, pty)
            }
            Err(e) => Err(e),
        };
        let del = self.delete(&rec.id, true);
        let code = code?;
        del?;
        Ok(code)
    }

    /// The OCI state of a container.
    pub fn state(&self, id: &str) -> Result<serde_json::Value> {
        let rec = Record::load(&self.root, id)?;
        Ok(rec.oci_state(rec.status(&self.root)))
    }

    /// Sends a signal to the container's init (or to all its processes).
    pub fn kill(&self, id: &str, sig: Signal, all: bool) -> Result<()> {
        let rec = Record::load(&self.root, id)?;
        let status = rec.status(&self.root);
        if status == Status::Stopped && !all {
            return Err(RuntimeError::WrongState {
                id: id.into(),
                status: "stopped",
                action: "send a signal (the container is not running)",
            });
        }
        if all {
            let pids = rec.cgroup.pids().map_err(|e| RuntimeError::Cgroup {
                id: id.into(),
                source: e,
            })?;
            for p in pids {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), sig);
            }
            if status == Status::Paused && sig == Signal::SIGKILL {
                let _ = rec.cgroup.thaw();
            }
            return Ok(());
        }
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(rec.pid), sig).map_err(|e| {
            RuntimeError::sys(
                format!("sending {sig} to container {id:?} (pid {})", rec.pid),
                e,
            )
        })
    }

    /// Deletes a container; a running one only with `force`.
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        let rec = Record::load(&self.root, id)?;
        let status = rec.status(&self.root);
        match status {
            Status::Stopped | Status::Created => {}
            _ if force => {}
            s => {
                return Err(RuntimeError::WrongState {
                    id: id.into(),
                    status: s.as_str(),
                    action: "delete (stop it first or use --force)",
                })
            }
        }
        if status != Status::Stopped {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(rec.pid), Signal::SIGKILL);
            if status == Status::Paused {
                let _ = rec.cgroup.thaw();
            }
            wait_gone(rec.pid, rec.pid_start, Duration::from_secs(10));
        }
        rec.cgroup.destroy().map_err(|e| RuntimeError::Cgroup {
            id: id.into(),
            source: e,
        })?;
        rec.cgroup.prune_parents();
        let dir = Record::dir(&self.root, id);
        std::fs::remove_dir_all(&dir)
            .map_err(|e| RuntimeError::io("removing the container's state", &dir, e))?;
        let hooks = rec.spec.hooks().clone().unwrap_or_default();
        if let Some(h) = hooks.poststop().as_deref().filter(|h| !h.is_empty()) {
            let st = serde_json::to_vec(&rec.oci_state(Status::Stopped)).unwrap_or_default();
            if let Err(e) = crate::hooks::run("poststop", h, &st) {
                tracing::warn!("{e}");
            }
        }
        Ok(())
    }

    /// Runs a process in a running container. Returns its exit code, or its
    /// pid when detached.
    pub fn exec(&self, id: &str, process: &Process, opts: &ExecOptions) -> Result<i32> {
        let rec = Record::load(&self.root, id)?;
        let status = rec.status(&self.root);
        if status != Status::Running {
            return Err(RuntimeError::WrongState {
                id: id.into(),
                status: status.as_str(),
                action: "exec (the container must be running)",
            });
        }
        spec::validate_process(process).map_err(|reason| RuntimeError::InvalidConfig {
            path: PathBuf::from("(exec process)"),
            reason,
        })?;
        if process.terminal().unwrap_or(false) && opts.detach && opts.console_socket.is_none() {
            return Err(RuntimeError::Unsupported(
                "a detached exec with a terminal needs --console-socket".into(),
            ));
        }
        let mut plan = prepare::process_plan(process, Some(&rec.rootfs))?;
        prepare::add_seccomp(&mut plan, &rec.spec)?;
        let (joins, pid_ns) = container_namespaces(&rec)?;
        if !opts.detach {
            crate::supervise::block_signals()?;
        }
        let spawned = spawn::spawn_exec(id, &plan, &joins, pid_ns.as_ref(), Some(&rec.cgroup))?;
        if let (Some(sock), Some(m)) = (&opts.console_socket, &spawned.pty_master) {
            crate::tty::send_to_console_socket(sock, m)?;
        }
        if let Some(p) = &opts.pid_file {
            write_pid_file(p, spawned.pid)?;
        }
        if opts.detach {
            return Ok(0);
        }
        let pty = if opts.console_socket.is_some() {
            None
        } else {
            spawned.pty_master.as_ref()
        };
        crate::supervise::wait(spawned.pid, pty)
    }

    /// The pids of all processes in the container (host pid namespace).
    pub fn ps(&self, id: &str) -> Result<Vec<i32>> {
        let rec = Record::load(&self.root, id)?;
        let mut p = rec.cgroup.pids().map_err(|e| RuntimeError::Cgroup {
            id: id.into(),
            source: e,
        })?;
        p.sort();
        Ok(p)
    }

    /// All containers under the root with their status.
    pub fn list(&self) -> Result<Vec<(Record, Status)>> {
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(RuntimeError::io("listing", &self.root, e)),
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Ok(rec) = Record::load(&self.root, &name) {
                let st = rec.status(&self.root);
                out.push((rec, st));
            }
        }
        out.sort_by(|a, b| a.0.created.cmp(&b.0.created));
        Ok(out)
    }

    pub fn pause(&self, id: &str) -> Result<()> {
        let rec = Record::load(&self.root, id)?;
        let st = rec.status(&self.root);
        if st != Status::Running {
            return Err(RuntimeError::WrongState {
                id: id.into(),
                status: st.as_str(),
                action: "pause",
            });
        }
        rec.cgroup.freeze().map_err(|e| RuntimeError::Cgroup {
            id: id.into(),
            source: e,
        })
    }

    pub fn resume(&self, id: &str) -> Result<()> {
        let rec = Record::load(&self.root, id)?;
        let st = rec.status(&self.root);
        if st != Status::Paused {
            return Err(RuntimeError::WrongState {
                id: id.into(),
                status: st.as_str(),
                action: "resume",
            });
        }
        rec.cgroup.thaw().map_err(|e| RuntimeError::Cgroup {
            id: id.into(),
            source: e,
        })
    }

    /// Cgroup statistics of a container.
    pub fn stats(&self, id: &str) -> Result<cgroups::Stats> {
        let rec = Record::load(&self.root, id)?;
        rec.cgroup.stats().map_err(|e| RuntimeError::Cgroup {
            id: id.into(),
            source: e,
        })
    }
}

use std::os::unix::fs::OpenOptionsExt;

/// The devices every container may use (as runc allows them): mknod of any
/// node, the standard character devices, the pty devices and tun, and the
/// spec's own `linux.devices`. They follow the spec's rules, so a deny-all
/// in the spec still lets these through.
fn with_default_devices(
    res: Option<oci_spec::runtime::LinuxResources>,
    spec: &Spec,
) -> oci_spec::runtime::LinuxResources {
    use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};
    let rule = |typ: LinuxDeviceType, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(true);
        r.set_typ(Some(typ));
        r.set_major(major);
        r.set_minor(minor);
        r.set_access(Some(access.to_string()));
        r
    };
    let mut res = res.unwrap_or_default();
    let mut rules = res.devices().clone().unwrap_or_default();
    if rules.is_empty() {
        // Without rules the container could use every device: deny by default.
        let mut deny = LinuxDeviceCgroup::default();
        deny.set_allow(false);
        deny.set_access(Some("rwm".into()));
        rules.push(deny);
    }
    use LinuxDeviceType::{B, C};
    rules.push(rule(C, None, None, "m"));
    rules.push(rule(B, None, None, "m"));
    for (ma, mi) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 1),
        (5, 2),
        (10, 200),
    ] {
        rules.push(rule(C, Some(ma), Some(mi), "rwm"));
    }
    rules.push(rule(C, Some(136), None, "rwm"));
    for d in spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().clone())
        .unwrap_or_default()
    {
        let t = match d.typ() {
            LinuxDeviceType::B => B,
            _ => C,
        };
        rules.push(rule(t, Some(d.major()), Some(d.minor()), "rwm"));
    }
    res.set_devices(Some(rules));
    res
}

/// Opens the namespaces of a container's init to join them (user first,
/// mount last); namespaces we already share are skipped.
/// Namespaces to join with setns (fd, CLONE_NEW* flag), and the pid namespace.
type Joins = (Vec<(OwnedFd, libc::c_int)>, Option<OwnedFd>);

fn container_namespaces(rec: &Record) -> Result<Joins> {
    let order = [
        (LinuxNamespaceType::User, "user"),
        (LinuxNamespaceType::Ipc, "ipc"),
        (LinuxNamespaceType::Uts, "uts"),
        (LinuxNamespaceType::Network, "net"),
        (LinuxNamespaceType::Cgroup, "cgroup"),
        (LinuxNamespaceType::Mount, "mnt"),
    ];
    let present: HashMap<LinuxNamespaceType, ()> = rec
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
        .iter()
        .map(|n| (n.typ(), ()))
        .collect();
    let same = |name: &str| -> bool {
        use std::os::unix::fs::MetadataExt;
        let a = std::fs::metadata(format!("/proc/self/ns/{name}"))
            .map(|m| m.ino())
            .ok();
        let b = std::fs::metadata(format!("/proc/{}/ns/{name}", rec.pid))
            .map(|m| m.ino())
            .ok();
        a.is_some() && a == b
    };
    let open = |name: &str| -> Result<OwnedFd> {
        let p = format!("/proc/{}/ns/{name}", rec.pid);
        Ok(std::fs::File::open(&p)
            .map_err(|e| RuntimeError::io("opening the container's namespace", p, e))?
            .into())
    };
    let mut joins = Vec::new();
    for (t, name) in order {
        if present.contains_key(&t) && !same(name) {
            joins.push((open(name)?, prepare::ns_flag(t)));
        }
    }
    let pid = if present.contains_key(&LinuxNamespaceType::Pid) && !same("pid") {
        Some(open("pid")?)
    } else {
        None
    };
    Ok((joins, pid))
}
