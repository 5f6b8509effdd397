//! Debian's dockerd (20.10, unpacked by `.ci/run` into /opt/docker-20.10
//! with its containerd) as a reference to compare berth with: started in a
//! network namespace of its own, with its data, exec root and socket in a
//! temp dir, no bridge and no iptables rules; stopped, and what it made
//! outside the temp dir removed, on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::cmd::{self, Output};
use crate::daemon::DOCKER_20_10;
use crate::netns::NetNs;

/// Where `.ci/run` puts dockerd, containerd and the shim.
pub const DOCKERD_DIR: &str = "/opt/docker-20.10";

/// Paths dockerd and containerd make outside their roots; removed on drop
/// unless they were there before.
const OUTSIDE: &[&str] = &[
    "/etc/docker",
    "/run/docker",
    "/run/containerd",
    "/var/lib/containerd",
];

#[derive(Debug)]
pub struct Dockerd {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Held so the namespace outlives dockerd (deleted on drop, after it).
    _netns: NetNs,
    made: Vec<PathBuf>,
    /// One dockerd at a time on this machine, across test processes: they
    /// share /etc/docker, /run/containerd and the cgroup parent. Released
    /// last (fields drop after `drop`).
    _one: std::fs::File,
}

impl Dockerd {
    /// Starts dockerd and waits for its socket to answer; panics naming
    /// what is missing if it is not installed.
    pub fn start() -> Dockerd {
        crate::require_root();
        let bin = Path::new(DOCKERD_DIR).join("dockerd");
        for needed in [bin.clone(), Path::new(DOCKERD_DIR).join("containerd")] {
            if !needed.exists() {
                panic!(
                    "{} is missing: the comparison tests need Debian's dockerd and containerd \
                     there (.ci/run unpacks them from the docker.io and containerd packages)",
                    needed.display()
                );
            }
        }
        let one = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open("/run/berth-test-dockerd.lock")
            .expect("the dockerd lock file");
        // SAFETY: flock on a descriptor this File owns; released on close.
        let locked = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&one), libc::LOCK_EX) };
        assert_eq!(locked, 0, "locking /run/berth-test-dockerd.lock");
        let made = OUTSIDE
            .iter()
            .map(PathBuf::from)
            .filter(|p| !p.exists())
            .collect();
        let dir = tempfile::Builder::new()
            .prefix("berth-dockerd-")
            .tempdir()
            .expect("temp dir for dockerd");
        let netns = NetNs::new();
        netns.ip(&["link", "set", "lo", "up"]);
        let log = std::fs::File::create(dir.path().join("dockerd.log")).expect("dockerd log");
        let path = format!(
            "{DOCKERD_DIR}:{}",
            std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into())
        );
        let child = netns
            .command(&bin)
            .args(["--data-root", &dir.path().join("data").to_string_lossy()])
            .args(["--exec-root", &dir.path().join("exec").to_string_lossy()])
            .args([
                "--pidfile",
                &dir.path().join("dockerd.pid").to_string_lossy(),
            ])
            .args([
                "-H",
                &format!("unix://{}", dir.path().join("d.sock").display()),
            ])
            .args(["--bridge=none", "--iptables=false", "--ip-forward=false"])
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("starting dockerd");
        let d = Dockerd {
            dir,
            child: Some(child),
            _netns: netns,
            made,
            _one: one,
        };
        let answered = crate::poll::poll(Duration::from_secs(60), || {
            d.docker(&["version", "--format", "{{.Server.Version}}"])
                .code
                == 0
        });
        if answered.is_err() {
            let log = std::fs::read_to_string(d.dir.path().join("dockerd.log")).unwrap_or_default();
            panic!("dockerd did not answer within 60 s; its log:\n{log}");
        }
        d
    }

    /// The 20.10 client against this dockerd, not yet run.
    pub fn docker_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(DOCKER_20_10);
        c.env(
            "DOCKER_HOST",
            format!("unix://{}", self.dir.path().join("d.sock").display()),
        )
        .env("DOCKER_CONFIG", self.dir.path().join("config"))
        .env("DOCKER_BUILDKIT", "0")
        .args(args);
        c
    }

    /// Loads `image` from berth's daemon `d` (saved with the 20.10 client).
    pub fn load_from(&self, d: &crate::daemon::Daemon, image: &str) {
        let saved = tempfile::tempdir().expect("temp dir for the saved image");
        let tar = saved.path().join("image.tar");
        d.docker(DOCKER_20_10, &["save", "-o", &tar.to_string_lossy(), image])
            .assert_ok();
        self.docker(&["load", "-i", &tar.to_string_lossy()])
            .assert_ok();
    }

    /// The OCI spec dockerd gave running container `id` (its bundle's
    /// config.json, wherever its containerd keeps the bundle).
    pub fn bundle_config(&self, id: &str) -> serde_json::Value {
        // (find fails on a dir that is not there; what it finds is enough.)
        let mut find = Command::new("find");
        find.arg(self.dir.path())
            .arg("/run/containerd")
            .args(["-path", &format!("*/moby/{id}/config.json")]);
        let found = cmd::run(find, None, Duration::from_secs(60)).stdout;
        let path = found
            .lines()
            .next()
            .unwrap_or_else(|| panic!("no bundle of container {id} under dockerd's dirs"));
        serde_json::from_slice(&std::fs::read(path).expect("reading the bundle's config.json"))
            .expect("the bundle's config.json is JSON")
    }

    /// Runs the 20.10 client against this dockerd.
    #[track_caller]
    pub fn docker(&self, args: &[&str]) -> Output {
        cmd::run(self.docker_cmd(args), None, Duration::from_secs(300))
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // Containers first, so nothing holds the data root's mounts.
        let ids = self.docker(&["ps", "-aq"]).stdout;
        for id in ids.split_whitespace() {
            let _ = self.docker(&["rm", "-f", id]);
        }
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let exited = crate::poll::poll(Duration::from_secs(30), || {
                c.try_wait().ok().flatten().is_some()
            });
            if exited.is_err() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        for m in crate::leak::mounts_under(self.dir.path()) {
            let _ = Command::new("umount").arg("-l").arg(&m).status();
        }
        for p in &self.made {
            let _ = std::fs::remove_dir_all(p);
        }
        // The cgroupfs parent docker makes in each hierarchy (empty by now;
        // one in use by another docker stays, as rmdir refuses it).
        let _ = std::fs::remove_dir("/sys/fs/cgroup/docker");
        if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
            for h in rd.flatten() {
                let _ = std::fs::remove_dir(h.path().join("docker"));
            }
        }
    }
}
