//! What a container's lifecycle asks of the machine, as one small trait:
//! images and writable layers (the storage plugin), the root filesystem's
//! mounts, the monitor (`berth shim`) and the OCI runtime. [`EngineMachine`]
//! is the real one; the lifecycle's unit tests drive a fake that needs no
//! root, no plugin and no process.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use oci_spec::image::ImageConfiguration;

use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::monitor::{MonitorArgs, Request, StartReport};

/// An image a container is made from.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    /// The config digest (the image id).
    pub id: String,
    /// The layers' chain ids, bottom first.
    pub chain: Vec<String>,
    pub config: ImageConfiguration,
    /// The config as stored: it also holds what oci-spec does not model
    /// (`Healthcheck`).
    pub raw_config: Option<Vec<u8>>,
}

/// The machine under a container's lifecycle.
#[async_trait::async_trait]
pub trait Machine: Send + Sync + 'static {
    /// The image named `name` (a reference, an id or an id prefix).
    fn image(&self, name: &str) -> Result<ImageInfo>;
    /// The storage driver's name (docker's `Driver`).
    fn storage_driver(&self) -> String;
    /// Makes container `id`'s writable layer over `parent` (a chain id).
    async fn prepare_layer(&self, id: &str, parent: Option<&str>) -> Result<()>;
    /// Removes container `id`'s writable layer (no error if there is none).
    async fn remove_layer(&self, id: &str) -> Result<()>;
    /// Releases the layers of an image `rmi -f` removed while a container used it.
    async fn release_image(&self, image_id: &str, chain: &[String]);
    /// Mounts container `id`'s root filesystem at `rootfs`; `idmapped`:
    /// through idmapped mounts of the daemon's `userns-remap`.
    async fn mount_rootfs(&self, id: &str, rootfs: &Path, idmapped: bool) -> Result<()>;
    /// The daemon's `userns-remap`, if any.
    fn remap(&self) -> Option<Arc<crate::userns::Remap>> {
        None
    }
    /// Unmounts whatever is mounted at or under `rootfs`.
    fn unmount_rootfs(&self, rootfs: &Path);

    /// Starts a monitor for the bundle in `args.dir` and returns its report
    /// (the container is created, its process not yet let go).
    async fn launch(&self, args: &MonitorArgs) -> Result<StartReport>;
    /// Sends a request to the monitor listening on `socket`.
    async fn request(&self, socket: &Path, req: &Request) -> std::result::Result<(), String>;
    /// Returns when process `pid` (started at `start`) is gone.
    async fn wait_gone(&self, pid: i32, start: u64);
    /// Whether process `pid` still runs and started at `start`.
    fn alive(&self, pid: i32, start: u64) -> bool;
    /// The start time of process `pid` (0 if it is gone).
    fn start_time(&self, pid: i32) -> u64;

    /// The OCI runtime's state directory.
    fn runtime_root(&self) -> PathBuf;
    /// Whether the runtime knows container `id`.
    fn exists(&self, id: &str) -> bool;
    fn kill(&self, id: &str, sig: Signal, all: bool) -> Result<()>;
    /// Deletes the runtime's state of container `id`, killing what is left.
    fn delete(&self, id: &str);
    fn pause(&self, id: &str) -> Result<()>;
    fn resume(&self, id: &str) -> Result<()>;
    fn ps(&self, id: &str) -> Result<Vec<i32>>;
    fn stats(&self, id: &str) -> Option<berth_runtime::cgroups::Stats>;

    /// Makes an image of container `id`'s writable layer on top of image
    /// `image_id` with `config` as its runtime config; names it `full_name`
    /// (or keeps it under its id). Returns the image id.
    async fn commit(
        &self,
        id: &str,
        image_id: &str,
        config: serde_json::Map<String, serde_json::Value>,
        meta: &crate::engine::CommitMeta,
        full_name: Option<&str>,
    ) -> Result<String>;

    /// What container `id` changed on top of image `image_id` (docker's `diff`).
    async fn changes(&self, id: &str, image_id: &str) -> Result<Vec<crate::engine::Change>>;

    /// Bytes container `id`'s writable layer takes (`None` if the driver cannot tell).
    async fn layer_usage(&self, id: &str) -> Option<u64>;

    /// Applies new cgroup limits to container `id` while it runs.
    fn update(&self, id: &str, limits: &oci_spec::runtime::LinuxResources) -> Result<()>;
}

/// The machine as the engine drives it.
pub struct EngineMachine {
    pub engine: Arc<Engine>,
    /// The `berth` executable (the monitor is `berth shim`).
    pub exe: PathBuf,
}

impl std::fmt::Debug for EngineMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineMachine")
            .field("exe", &self.exe)
            .finish()
    }
}

#[async_trait::async_trait]
impl Machine for EngineMachine {
    fn image(&self, name: &str) -> Result<ImageInfo> {
        let (_, rec) = self.engine.image(name)?;
        let config = self.engine.image_config(&rec)?;
        Ok(ImageInfo {
            raw_config: self.engine.content().read(&rec.config).ok(),
            id: rec.config,
            chain: rec.chain,
            config,
        })
    }

    fn storage_driver(&self) -> String {
        self.engine.storage_driver().to_string()
    }

    async fn prepare_layer(&self, id: &str, parent: Option<&str>) -> Result<()> {
        self.engine.storage().prepare(id, parent).await?;
        Ok(())
    }

    async fn remove_layer(&self, id: &str) -> Result<()> {
        Ok(self.engine.storage().remove(id).await?)
    }

    async fn release_image(&self, image_id: &str, chain: &[String]) {
        let _ = self.engine.remove_orphan_layers(image_id, chain).await;
    }

    async fn mount_rootfs(&self, id: &str, rootfs: &Path, idmapped: bool) -> Result<()> {
        let mounts = self.engine.storage().mounts(id).await?;
        match self.engine.remap().filter(|_| idmapped) {
            Some(r) => {
                let ns = r.userns()?;
                let scratch = rootfs.with_file_name("idmap");
                use std::os::fd::AsFd as _;
                let root = (r.uid.start, r.gid.start);
                crate::mount::mount_all_idmapped(id, &mounts, rootfs, ns.as_fd(), root, &scratch)
            }
            None => crate::mount::mount_all(id, &mounts, rootfs),
        }
    }

    fn remap(&self) -> Option<Arc<crate::userns::Remap>> {
        self.engine.remap().cloned()
    }

    fn unmount_rootfs(&self, rootfs: &Path) {
        let _ = crate::mount::unmount_all(rootfs);
    }

    async fn launch(&self, args: &MonitorArgs) -> Result<StartReport> {
        let mut cmd = tokio::process::Command::new(&self.exe);
        cmd.arg(crate::monitor::SUBCOMMAND).args(args.to_argv());
        // The monitor's own complaints (it has no terminal) go to shim.log.
        let shim_log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(args.dir.join("shim.log"))
            .map(std::process::Stdio::from)
            .unwrap_or_else(|_| std::process::Stdio::null());
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(shim_log)
            .kill_on_drop(false);
        let mut child = cmd
            .spawn()
            .map_err(|err| EngineError::io("starting the monitor", &self.exe, err))?;
        // One line: the container's init still holds the pipe until it execs.
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            use tokio::io::AsyncBufReadExt as _;
            let mut r = tokio::io::BufReader::new(out);
            let _ = tokio::time::timeout(Duration::from_secs(60), r.read_line(&mut line)).await;
        }
        let _ = child.wait().await;
        StartReport::parse(&line).map_err(|e| EngineError::Start {
            id: args.id.clone(),
            reason: e.to_string(),
        })
    }

    async fn request(&self, socket: &Path, req: &Request) -> std::result::Result<(), String> {
        crate::monitor::request(socket, req).await
    }

    async fn wait_gone(&self, pid: i32, start: u64) {
        wait_exit(pid, start).await
    }

    fn alive(&self, pid: i32, start: u64) -> bool {
        berth_runtime::state::process_alive(pid, start)
    }

    fn start_time(&self, pid: i32) -> u64 {
        berth_runtime::state::start_time(pid).unwrap_or(0)
    }

    fn runtime_root(&self) -> PathBuf {
        self.engine.runtime().root
    }

    fn exists(&self, id: &str) -> bool {
        self.engine.runtime().state(id).is_ok()
    }

    fn kill(&self, id: &str, sig: Signal, all: bool) -> Result<()> {
        Ok(self.engine.runtime().kill(id, sig, all)?)
    }

    fn delete(&self, id: &str) {
        let _ = self.engine.runtime().delete(id, true);
    }

    fn pause(&self, id: &str) -> Result<()> {
        Ok(self.engine.runtime().pause(id)?)
    }

    fn resume(&self, id: &str) -> Result<()> {
        Ok(self.engine.runtime().resume(id)?)
    }

    fn ps(&self, id: &str) -> Result<Vec<i32>> {
        Ok(self.engine.runtime().ps(id)?)
    }

    fn stats(&self, id: &str) -> Option<berth_runtime::cgroups::Stats> {
        self.engine.runtime().stats(id).ok()
    }

    async fn commit(
        &self,
        id: &str,
        image_id: &str,
        config: serde_json::Map<String, serde_json::Value>,
        meta: &crate::engine::CommitMeta,
        full_name: Option<&str>,
    ) -> Result<String> {
        let (_, base) = self.engine.image(image_id)?;
        self.engine
            .commit_image(&base, id, config, meta, full_name)
            .await
    }

    async fn changes(&self, id: &str, image_id: &str) -> Result<Vec<crate::engine::Change>> {
        let (_, base) = self.engine.image(image_id)?;
        self.engine.changes(id, &base).await
    }

    async fn layer_usage(&self, id: &str) -> Option<u64> {
        self.engine.storage().usage(id).await.ok().map(|u| u.size)
    }

    fn update(&self, id: &str, limits: &oci_spec::runtime::LinuxResources) -> Result<()> {
        Ok(self.engine.runtime().update(id, limits)?)
    }
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
    if let Ok(afd) = super::async_fd(fd, tokio::io::Interest::READABLE) {
        let _ = afd.readable().await;
    }
}
