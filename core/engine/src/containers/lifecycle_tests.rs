//! The container lifecycle (create, start, exit, restart policies,
//! remove, reconcile at daemon start) against a fake machine: no root, no
//! plugin, no process. The fake plays the monitor: it "launches" containers,
//! and the tests end them with an exit code (the monitor's `exit.json`) or
//! make their monitor vanish without a word.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::sync::watch;

use super::config::CreateRequest;
use super::machine::{ImageInfo, Machine};
use super::record::{Record, Status, WaitCondition};
use super::{Containers, Mode};
use crate::config::NetworkConfig;
use crate::error::{EngineError, ErrorKind, Result};
use crate::monitor::{Exit, MonitorArgs, Request, StartReport};
use crate::networks::{Networks, PluginLoader};

const IMAGE_ID: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

/// A monitor the fake launched: the container's directory and whether it ended.
struct Monitor {
    id: String,
    dir: PathBuf,
    ended: watch::Sender<bool>,
}

/// A commit's runtime config and name, as the fake was given them.
type Committed = (serde_json::Map<String, serde_json::Value>, Option<String>);

/// The fake machine: records every call, keeps its monitors in a table.
#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<String>>,
    monitors: Mutex<HashMap<i32, Monitor>>,
    next_pid: AtomicI32,
    /// The next launch reports this error (as a monitor whose runtime failed).
    launch_error: Mutex<Option<String>>,
    /// The next writable layer cannot be made.
    prepare_error: Mutex<Option<String>>,
    /// What the last commit was given: the runtime config and the name.
    committed: Mutex<Option<Committed>>,
}

impl Fake {
    fn new() -> Arc<Fake> {
        let f = Fake::default();
        f.next_pid.store(1000, Ordering::SeqCst);
        Arc::new(f)
    }

    fn log(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn called(&self, call: &str) -> usize {
        self.calls().iter().filter(|c| *c == call).count()
    }

    /// The monitor pid of container `id`'s live monitor.
    fn monitor_of(&self, id: &str) -> Option<i32> {
        self.monitors
            .lock()
            .unwrap()
            .iter()
            .find(|(_, m)| m.id == id && !*m.ended.borrow())
            .map(|(p, _)| *p)
    }

    /// Container `id` ends with `code`: the monitor writes `exit.json`, then exits.
    fn exit(&self, id: &str, code: i32) {
        let pid = self.monitor_of(id).expect("a live monitor");
        let m = self.monitors.lock().unwrap();
        let m = &m[&pid];
        let exit = Exit {
            exit_code: code,
            finished_at: crate::store::now(),
            ..Default::default()
        };
        std::fs::write(
            m.dir.join(crate::monitor::EXIT),
            serde_json::to_vec(&exit).unwrap(),
        )
        .unwrap();
        m.ended.send_replace(true);
    }

    /// Container `id`'s monitor is killed: it ends without `exit.json`.
    fn vanish(&self, id: &str) {
        let pid = self.monitor_of(id).expect("a live monitor");
        self.monitors.lock().unwrap()[&pid].ended.send_replace(true);
    }
}

#[async_trait::async_trait]
impl Machine for Fake {
    fn image(&self, name: &str) -> Result<ImageInfo> {
        if name != "busybox" && name != IMAGE_ID {
            return Err(EngineError::ImageNotFound { name: name.into() });
        }
        let config = serde_json::from_value(serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []},
            "config": {"Cmd": ["sh"]},
        }))
        .unwrap();
        Ok(ImageInfo {
            id: IMAGE_ID.into(),
            chain: vec!["sha256:c1".into()],
            config,
            raw_config: None,
        })
    }

    fn storage_driver(&self) -> String {
        "fake".into()
    }

    async fn prepare_layer(&self, id: &str, parent: Option<&str>) -> Result<()> {
        self.log(format!("prepare {id} {}", parent.unwrap_or("-")));
        match self.prepare_error.lock().unwrap().take() {
            Some(reason) => Err(EngineError::Mount {
                id: id.into(),
                reason,
            }),
            None => Ok(()),
        }
    }

    async fn remove_layer(&self, id: &str) -> Result<()> {
        self.log(format!("remove-layer {id}"));
        Ok(())
    }

    async fn release_image(&self, image_id: &str, _chain: &[String]) {
        self.log(format!("release-image {image_id}"));
    }

    async fn mount_rootfs(&self, id: &str, _rootfs: &Path, _idmapped: bool) -> Result<()> {
        self.log(format!("mount {id}"));
        Ok(())
    }

    fn unmount_rootfs(&self, rootfs: &Path) {
        let id = rootfs.parent().unwrap().file_name().unwrap();
        self.log(format!("unmount {}", id.to_string_lossy()));
    }

    async fn launch(&self, args: &MonitorArgs) -> Result<StartReport> {
        self.log(format!("launch {}", args.id));
        assert!(
            args.dir.join("config.json").exists(),
            "the bundle is written first"
        );
        if let Some(error) = self.launch_error.lock().unwrap().take() {
            return Ok(StartReport::Failed { error });
        }
        let pid = self.next_pid.fetch_add(2, Ordering::SeqCst);
        self.monitors.lock().unwrap().insert(
            pid + 1,
            Monitor {
                id: args.id.clone(),
                dir: args.dir.clone(),
                ended: watch::channel(false).0,
            },
        );
        Ok(StartReport::Created {
            pid,
            monitor_pid: pid + 1,
        })
    }

    async fn request(&self, _socket: &Path, req: &Request) -> std::result::Result<(), String> {
        self.log(format!("request {req:?}"));
        Ok(())
    }

    async fn wait_gone(&self, pid: i32, _start: u64) {
        let rx = match self.monitors.lock().unwrap().get(&pid) {
            Some(m) => m.ended.subscribe(),
            None => return,
        };
        let mut rx = rx;
        let _ = rx.wait_for(|ended| *ended).await;
    }

    fn alive(&self, pid: i32, _start: u64) -> bool {
        self.monitors
            .lock()
            .unwrap()
            .get(&pid)
            .is_some_and(|m| !*m.ended.borrow())
    }

    fn start_time(&self, _pid: i32) -> u64 {
        1
    }

    fn runtime_root(&self) -> PathBuf {
        PathBuf::from("/nonexistent/runtime")
    }

    fn exists(&self, _id: &str) -> bool {
        false
    }

    fn kill(&self, id: &str, sig: Signal, _all: bool) -> Result<()> {
        self.log(format!("kill {id} {sig}"));
        // The fake's containers end on any signal that ends sh.
        if matches!(sig, Signal::SIGKILL | Signal::SIGTERM) && self.monitor_of(id).is_some() {
            self.exit(id, 128 + sig as i32);
        }
        Ok(())
    }

    fn delete(&self, id: &str) {
        self.log(format!("delete {id}"));
    }

    fn pause(&self, id: &str) -> Result<()> {
        self.log(format!("pause {id}"));
        Ok(())
    }

    fn resume(&self, id: &str) -> Result<()> {
        self.log(format!("resume {id}"));
        Ok(())
    }

    fn ps(&self, _id: &str) -> Result<Vec<i32>> {
        Ok(Vec::new())
    }

    fn stats(&self, _id: &str) -> Option<berth_runtime::cgroups::Stats> {
        None
    }

    async fn commit(
        &self,
        id: &str,
        image_id: &str,
        config: serde_json::Map<String, serde_json::Value>,
        meta: &crate::engine::CommitMeta,
        full_name: Option<&str>,
    ) -> Result<String> {
        self.log(format!("commit {id} on {image_id} by {}", meta.author));
        *self.committed.lock().unwrap() = Some((config, full_name.map(String::from)));
        Ok("sha256:2222".into())
    }

    async fn layer_usage(&self, _id: &str) -> Option<u64> {
        Some(4096)
    }

    fn update(&self, id: &str, limits: &oci_spec::runtime::LinuxResources) -> Result<()> {
        let mem = limits.memory().as_ref().and_then(|m| m.limit());
        self.log(format!("update {id} memory {mem:?}"));
        Ok(())
    }

    async fn changes(&self, id: &str, _image_id: &str) -> Result<Vec<crate::engine::Change>> {
        self.log(format!("changes {id}"));
        Ok(Vec::new())
    }
}

/// The containers under `root` on `fake`, with no network plugin (only
/// `host` and `none` exist).
async fn open(root: &Path, fake: &Arc<Fake>) -> Arc<Containers> {
    let load: PluginLoader = Box::new(|driver, _| {
        Err(EngineError::invalid(
            "network driver",
            driver,
            format!("no network plugin {driver} in the lifecycle tests"),
        ))
    });
    let networks = Networks::open_with(root, NetworkConfig::default(), load, false)
        .await
        .unwrap();
    Containers::open_with(
        root.to_path_buf(),
        fake.clone(),
        networks,
        PathBuf::from("/nonexistent/berth"),
        BTreeMap::new(),
        Mode::Daemon,
    )
    .await
    .unwrap()
}

fn request(restart: &str, auto_remove: bool) -> CreateRequest {
    let retries = if restart == "on-failure" { 2 } else { 0 };
    serde_json::from_value(serde_json::json!({
        "Image": "busybox",
        "HostConfig": {
            "NetworkMode": "none",
            "AutoRemove": auto_remove,
            "RestartPolicy": {"Name": restart, "MaximumRetryCount": retries},
        },
    }))
    .unwrap()
}

fn on_disk(root: &Path, id: &str) -> Record {
    let b = std::fs::read(root.join("containers").join(id).join("container.json")).unwrap();
    serde_json::from_slice(&b).unwrap()
}

/// Polls `check` for up to two seconds (exits are handled on a task).
async fn until(what: &str, check: impl Fn() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn create_writes_the_record_and_the_layer_and_refuses_taken_names() {
    let root = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    let c = open(root.path(), &fake).await;
    let id = c.create(Some("web"), request("no", false)).await.unwrap();
    let rec = on_disk(root.path(), &id);
    assert_eq!((rec.name.as_str(), rec.status), ("web", Status::Created));
    assert!(rec.prepared, "the record says the layer was made");
    assert_eq!(rec.image_id, IMAGE_ID);
    assert_eq!(rec.driver, "fake");
    assert_eq!(fake.calls(), vec![format!("prepare {id} sha256:c1")]);
    assert!(root
        .path()
        .join("containers")
        .join(&id)
        .join("image-config.json")
        .exists());

    let taken = c
        .create(Some("/web"), request("no", false))
        .await
        .unwrap_err();
    assert_eq!(taken.kind(), ErrorKind::Conflict);
    assert!(
        matches!(&taken, EngineError::ContainerNameInUse { name, holder } if name == "web" && *holder == id),
        "{taken:?}"
    );
    let bad = c
        .create(Some("a b"), request("no", false))
        .await
        .unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::InvalidInput);
    let mut no_image = request("no", false);
    no_image.config.image = "nope".into();
    let missing = c.create(None, no_image).await.unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    let mut both = request("always", true);
    both.host_config.auto_remove = true;
    let refused = c.create(None, both).await.unwrap_err();
    assert!(
        refused.to_string().contains("--restart and --rm"),
        "{refused}"
    );
    // Nothing of the refused creates is left.
    assert_eq!(c.list().len(), 1);
    assert_eq!(
        std::fs::read_dir(root.path().join("containers"))
            .unwrap()
            .count(),
        1
    );
}

#[tokio::test]
async fn a_create_whose_layer_fails_leaves_nothing() {
    let root = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    let c = open(root.path(), &fake).await;
    *fake.prepare_error.lock().unwrap() = Some("disk full".into());
    let err = c
        .create(Some("web"), request("no", false))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("disk full"), "{err}");
    assert!(c.list().is_empty());
    assert_eq!(
        std::fs::read_dir(root.path().join("containers"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        fake.calls().last().unwrap().split(' ').next(),
        Some("remove-layer")
    );
    // The name is free again.
    c.create(Some("web"), request("no", false)).await.unwrap();
}

#[tokio::test]
async fn start_exit_and_remove() {
    let root = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    let c = open(root.path(), &fake).await;
    let id = c.create(Some("web"), request("no", false)).await.unwrap();
    assert!(c.start(&id).await.unwrap());
    let rec = c.get(&id).unwrap();
    assert_eq!(rec.status, Status::Running);
    assert!(rec.pid > 0 && rec.shim_pid > 0);
    assert_eq!(on_disk(root.path(), &id).status, Status::Running);
    assert_eq!(
        fake.calls()[1..],
        [
            format!("unmount {id}"),
            format!("mount {id}"),
            format!("launch {id}"),
            "request Start".to_string()
        ]
    );
    // Starting a running container is docker's 304.
    assert!(!c.start(&id).await.unwrap());
    // Removing it needs force.
    let busy = c.remove(&id, false, false).await.unwrap_err();
    assert_eq!(busy.kind(), ErrorKind::Conflict);
    assert!(
        matches!(
            &busy,
            EngineError::ContainerState {
                op: crate::error::ContainerOp::Remove,
                ..
            }
        ),
        "{busy:?}"
    );

    fake.exit(&id, 3);
    let (code, err) = c.wait(&id, WaitCondition::NotRunning).await.unwrap();
    assert_eq!((code, err), (3, None));
    let rec = on_disk(root.path(), &id);
    assert_eq!((rec.status, rec.exit_code, rec.pid), (Status::Exited, 3, 0));
    assert_eq!(fake.called(&format!("unmount {id}")), 2);
    assert_eq!(
        fake.called(&format!("delete {id}")),
        0,
        "the monitor cleaned up"
    );

    c.remove(&id, false, false).await.unwrap();
    assert!(c.get(&id).is_err());
    assert!(!root.path().join("containers").join(&id).exists());
    assert_eq!(fake.called(&format!("remove-layer {id}")), 1);
    assert_eq!(fake.called(&format!("release-image {IMAGE_ID}")), 1);
}

#[tokio::test]
async fn a_failed_start_is_recorded_with_dockers_exit_code() {
    let root = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    let c = open(root.path(), &fake).await;
    let id = c.create(None, request("no", false)).await.unwrap();
    *fake.launch_error.lock().unwrap() =
        Some("exec: \"nope\": executable file not found in $PATH".into());
    let err = c.start(&id).await.unwrap_err();
    assert!(
        err.to_string().contains("executable file not found"),
        "{err}"
    );
    let rec = on_disk(root.path(), &id);
    assert_eq!((rec.status, rec.exit_code), (Status::Created, 127));
    assert!(rec.error.contains("nope"));
    // The root filesystem mounted for the start is unmounted again.
    assert_eq!(fake.calls().last().unwrap(), &format!("unmount {id}"));
}

#[tokio::test]
async fn stop_kills_after_the_signal_and_is_not_restarted() {
    let root = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    let c = open(root.path(), &fake).await;
    let id = c.create(None, request("always", false)).await.unwrap();
    c.start(&id).await.unwrap();
    assert!(c.stop(&id, Some(5), None).await.unwrap());
    assert!(fake.calls().contains(&format!("kill {id} SIGTERM")));
    let rec = c.get(&id).unwrap();
    assert_eq!((rec.status, rec.exit_code), (Status::Exited, 128 + 15));
    assert!(rec.manually_stopped);
    // A restart would have been decided with the exit (status `restarting`).
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        c.get(&id).unwrap().status,
        Status::Exited,
        "always does not undo a stop"
    );
    assert_eq!(fake.called(&format!("launch {id}")), 1);
    assert!(!c.stop(&id, None, None).await.unwrap(), "not running: 304");
}

#[tokio::test]
async fn on_failure_restarts_up_to_its_count_with_back_off() {
    let root = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    let c = open(root.path(), &fake).await;
    let id = c.create(None, request("on-failure", false)).await.unwrap();
    c.start(&id).await.unwrap();
    for n in 1..=2 {
        fake.exit(&id, 1);
        until("the restart", || {
            fake.called(&format!("launch {id}")) == n + 1
        })
        .await;
        until("running again", || {
            c.get(&id).unwrap().status == Status::Running
        })
        .await;
        assert_eq!(c.get(&id).unwrap().restart_count, n as u32);
    }
    // The third failure is one more than on-failure:2 allows.
    fake.exit(&id, 1);
    until("the exit", || c.get(&id).unwrap().status == Status::Exited).await;
    // A restart is decided with the exit: the status would be `restarting`.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(c.get(&id).unwrap().status, Status::Exited);
    assert_eq!(fake.called(&format!("launch {id}")), 3);
    assert_eq!(on_disk(root.path(), &id).status, Status::Exited);

    // A clean exit is not a failure.
    let ok = c.create(None, request("on-failure", false)).await.unwrap();
    c.start(&ok).await.unwrap();
    fake.exit(&ok, 0);
    until("the exit", || c.get(&ok).unwrap().status == Status::Exited).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(c.get(&ok).unwrap().status, Status::Exited);
    assert_eq!(fake.called(&format!("launch {ok}")), 1);
}

#[tokio::test]
async fn auto_remove_removes_after_the_exit() {
    let root = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    let c = open(root.path(), &fake).await;
    let id = c.create(None, request("no", true)).await.unwrap();
    c.start(&id).await.unwrap();
    fake.exit(&id, 0);
    c.wait(&id, WaitCondition::Removed).await.unwrap();
    assert!(c.get(&id).is_err());
    assert!(!root.path().join("containers").join(&id).exists());
    assert_eq!(fake.called(&format!("remove-layer {id}")), 1);
}

#[tokio::test]
async fn a_vanished_monitor_is_cleaned_up_for() {
    let root = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    let c = open(root.path(), &fake).await;
    let id = c.create(None, request("no", false)).await.unwrap();
    c.start(&id).await.unwrap();
    fake.vanish(&id);
    c.wait(&id, WaitCondition::NotRunning).await.unwrap();
    let rec = c.get(&id).unwrap();
    assert_eq!((rec.status, rec.exit_code), (Status::Exited, 255));
    assert!(rec.error.contains("monitor ended unexpectedly"));
    assert_eq!(fake.called(&format!("delete {id}")), 1);
}

#[tokio::test]
async fn reconcile_adopts_records_exits_restarts_and_removes() {
    let root = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    // The first daemon runs on a runtime of its own that goes away with
    // it, and its tasks (the exit watchers) with it.
    let (live, ended, always, stopped, half) = {
        let (root, fake) = (root.path().to_path_buf(), fake.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let c = open(&root, &fake).await;
                let mut ids = Vec::new();
                for (name, policy) in [
                    ("live", "no"),
                    ("ended", "no"),
                    ("always", "always"),
                    ("stopped", "unless-stopped"),
                    ("half", "no"),
                ] {
                    ids.push(c.create(Some(name), request(policy, false)).await.unwrap());
                }
                for id in &ids[..4] {
                    c.start(id).await.unwrap();
                }
                c.stop(&ids[3], Some(1), None).await.unwrap();
                let mut ids = ids.into_iter();
                let mut next = || ids.next().unwrap();
                (next(), next(), next(), next(), next())
            })
        })
        .join()
        .unwrap()
    };
    // While no daemon ran: `ended` and `always` exited; `half` is a create
    // that crashed before its layer was made.
    fake.exit(&ended, 7);
    fake.exit(&always, 1);
    let half_dir = root.path().join("containers").join(&half);
    let mut rec = on_disk(root.path(), &half);
    rec.prepared = false;
    std::fs::write(
        half_dir.join("container.json"),
        serde_json::to_vec(&rec).unwrap(),
    )
    .unwrap();
    let launches = |id: &str| fake.called(&format!("launch {id}"));
    let before = (launches(&live), launches(&always), launches(&stopped));

    let c = open(root.path(), &fake).await;
    // Adopted: still running, its monitor watched.
    assert_eq!(c.get(&live).unwrap().status, Status::Running);
    fake.exit(&live, 0);
    until("the adopted exit", || {
        c.get(&live).unwrap().status == Status::Exited
    })
    .await;
    // The exit while no daemon ran is recorded.
    let rec = c.get(&ended).unwrap();
    assert_eq!((rec.status, rec.exit_code), (Status::Exited, 7));
    // `always` comes back; `unless-stopped` stopped by hand does not.
    until("always restarted", || {
        c.get(&always).unwrap().status == Status::Running
    })
    .await;
    assert_eq!(c.get(&stopped).unwrap().status, Status::Exited);
    assert_eq!(
        (launches(&live), launches(&always), launches(&stopped)),
        (before.0, before.1 + 1, before.2)
    );
    // The half-made one is gone, layer and all.
    assert!(c.get(&half).is_err());
    assert!(!half_dir.exists());
    assert!(fake.called(&format!("remove-layer {half}")) >= 1);
}

#[tokio::test]
async fn commit_pauses_a_running_container_and_applies_its_changes() {
    let root = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    let c = open(root.path(), &fake).await;
    let mut req = request("no", false);
    req.config.env = vec!["FROM_RUN=1".into()];
    req.config.cmd = Some(vec!["sleep".into(), "100".into()]);
    let id = c.create(Some("web"), req).await.unwrap();
    c.start(&id).await.unwrap();
    let opts = super::CommitOptions {
        reference: Some("team/app:v2".into()),
        author: "ann".into(),
        changes: vec!["ENV A=1".into(), "EXPOSE 80\nUSER nobody".into()],
        pause: true,
        ..Default::default()
    };
    assert_eq!(c.commit("web", opts.clone()).await.unwrap(), "sha256:2222");
    let calls = fake.calls();
    let at = calls.iter().position(|x| x.starts_with("commit ")).unwrap();
    assert_eq!(
        calls[at - 1..=at + 1],
        [
            format!("pause {id}"),
            format!("commit {id} on {IMAGE_ID} by ann"),
            format!("resume {id}")
        ]
    );
    let (config, name) = fake.committed.lock().unwrap().clone().unwrap();
    assert_eq!(name.as_deref(), Some("docker.io/team/app:v2"));
    assert_eq!(config["Cmd"], serde_json::json!(["sleep", "100"]));
    assert_eq!(config["Env"], serde_json::json!(["FROM_RUN=1", "A=1"]));
    assert_eq!(config["ExposedPorts"], serde_json::json!({"80/tcp": {}}));
    assert_eq!(config["User"], serde_json::json!("nobody"));

    // Without pausing; a bad change or reference is refused naming it.
    let quiet = super::CommitOptions {
        pause: false,
        ..opts.clone()
    };
    c.commit(&id, quiet).await.unwrap();
    assert_eq!(fake.called(&format!("pause {id}")), 1);
    let bad = super::CommitOptions {
        changes: vec!["RUN make".into()],
        ..opts.clone()
    };
    let err = c.commit(&id, bad).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.to_string()
            .contains("RUN is not a valid change command"),
        "{err}"
    );
    let bad = super::CommitOptions {
        reference: Some("UPPER/case".into()),
        ..opts
    };
    assert_eq!(
        c.commit(&id, bad).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}
