//! Creating a container: the state directory, the cgroup with its device
//! rules, the exec fifo, the init plan, the spawned init and its record.
//! What was made is undone when a later step fails.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::sys::signal::Signal;
use oci_spec::runtime::Spec;

use super::{write_pid_file, CreateOptions, Runtime};
use crate::cgroups::{self, Cgroup, Layout};
use crate::error::{Result, RuntimeError};
use crate::process::prepare::{self, InitInputs};
use crate::process::spawn::{self, IdMaps, Spawned};
use crate::spec::{self, Bundle};
use crate::state::{self, Record, Status, EXEC_FIFO};

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

impl Runtime {
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
    pub(super) fn make(
        &self,
        opts: &CreateOptions,
        fifo: bool,
        keep_pty: bool,
    ) -> Result<(Record, Spawned)> {
        spec::validate_id(&opts.id)?;
        let Bundle { dir, rootfs, spec } = spec::load_bundle(&opts.bundle)?;
        let process = spec.process().clone().unwrap_or_default();
        if process.terminal().unwrap_or(false) && fifo && !keep_pty && opts.console_socket.is_none()
        {
            return Err(RuntimeError::NoConsoleSocket {
                id: opts.id.clone(),
                detached: "container",
            });
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
        let layout = Layout::detect().map_err(RuntimeError::cgroup(&opts.id))?;
        let cg_path = linux
            .cgroups_path()
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|| cgroups::default_path(&opts.id));
        let resources = with_default_devices(linux.resources().clone(), &spec);
        let cgroup = Cgroup::create(&layout, &cg_path, Some(&resources))
            .map_err(RuntimeError::cgroup(&opts.id))?;
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
}

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
