//! A real registry for the tests: Debian's `docker-registry` (CNCF
//! distribution) on a free loopback port with its own config and storage,
//! stopped when dropped. Images are pushed to it with Debian's `skopeo`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::cmd;

/// A running registry.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    dir: tempfile::TempDir,
    pub addr: String,
    /// The network namespace it listens in (`None`: the test's own).
    netns: Option<PathBuf>,
}

fn require(bin: &str, pkg: &str) {
    if !Path::new(bin).exists() {
        panic!("{bin} is missing: install Debian's {pkg} (.ci/run does)");
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

impl Registry {
    /// Starts a registry without authentication.
    pub fn start() -> Registry {
        Registry::start_with(None, None)
    }

    /// Starts a registry without authentication inside the network
    /// namespace `netns` (a daemon's: its loopback is not the test's).
    pub fn start_in(netns: &crate::netns::NetNs) -> Registry {
        Registry::start_with(None, Some(netns.path()))
    }

    /// Starts a registry with htpasswd basic auth for `user`/`password`.
    pub fn start_with_auth(user: &str, password: &str) -> Registry {
        Registry::start_with(Some((user, password)), None)
    }

    /// The same inside the network namespace `netns`.
    pub fn start_with_auth_in(user: &str, password: &str, netns: &crate::netns::NetNs) -> Registry {
        Registry::start_with(Some((user, password)), Some(netns.path()))
    }

    fn start_with(auth: Option<(&str, &str)>, netns: Option<PathBuf>) -> Registry {
        require("/usr/bin/docker-registry", "docker-registry");
        let dir = tempfile::Builder::new()
            .prefix("berth-registry-")
            .tempdir()
            .expect("temp dir");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        );
        if let Some((user, password)) = auth {
            require("/usr/bin/htpasswd", "apache2-utils");
            let file = dir.path().join("htpasswd");
            cmd::host(
                "htpasswd",
                &["-Bbc", &file.to_string_lossy(), user, password],
            );
            cfg.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                file.display()
            ));
        }
        let cfg_path = dir.path().join("config.yml");
        std::fs::write(&cfg_path, cfg).expect("write registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("registry log");
        let mut c = Command::new("nsenter");
        match &netns {
            Some(ns) => c.arg(format!("--net={}", ns.display())),
            // nsenter without a namespace just runs the program.
            None => c.arg("--preserve-credentials"),
        };
        let child = c
            .arg("--")
            .arg("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&cfg_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let r = Registry {
            child,
            dir,
            addr,
            netns,
        };
        r.wait_ready();
        r
    }

    /// Connects to the registry from its namespace (on a thread that
    /// joined it: a socket belongs to the namespace it was made in).
    fn connect(&self) -> std::io::Result<TcpStream> {
        let Some(ns) = self.netns.clone() else {
            return TcpStream::connect(&self.addr);
        };
        let addr = self.addr.clone();
        std::thread::spawn(move || {
            let f = std::fs::File::open(&ns)?;
            nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(std::io::Error::from)?;
            TcpStream::connect(&addr)
        })
        .join()
        .expect("the connecting thread")
    }

    fn wait_ready(&self) {
        let answered = crate::poll::poll(Duration::from_secs(30), || {
            self.connect().is_ok_and(|mut s| {
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
                let mut buf = [0u8; 12];
                s.read(&mut buf).map(|n| n > 0).unwrap_or(false)
            })
        });
        if answered.is_ok() {
            return;
        }
        panic!(
            "docker-registry did not answer on {} within 30 s; log:\n{}",
            self.addr,
            self.log()
        );
    }

    /// What the registry logged (requests included).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// How many blob downloads (GET …/blobs/sha256:…) the registry served.
    pub fn blob_gets(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| {
                l.contains("\"GET /v2/") && l.contains("/blobs/sha256:") && l.contains("\" 200 ")
            })
            .count()
    }

    /// The registry's storage directory (to tamper with blobs).
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Pushes an OCI layout's image `tag` to `repo:tag` here with skopeo.
    pub fn push_layout(&self, layout: &Path, tag: &str, repo: &str, creds: Option<(&str, &str)>) {
        require("/usr/bin/skopeo", "skopeo");
        let src = format!("oci:{}:{tag}", layout.display());
        let dst = format!("docker://{}/{repo}:{tag}", self.addr);
        let mut args = vec!["copy", "--dest-tls-verify=false", "--insecure-policy"];
        let c;
        if let Some((u, p)) = creds {
            c = format!("{u}:{p}");
            args.push("--dest-creds");
            args.push(&c);
        }
        args.push(&src);
        args.push(&dst);
        match &self.netns {
            Some(ns) => {
                let net = format!("--net={}", ns.display());
                let mut all = vec![net.as_str(), "--", "skopeo"];
                all.extend(args);
                cmd::host("nsenter", &all)
            }
            None => cmd::host("skopeo", &args),
        };
    }
}

impl Registry {
    /// curl against this registry (in its network namespace), failing the
    /// test on an HTTP error.
    fn curl(&self, args: &[&str]) -> crate::cmd::Output {
        let mut all: Vec<&str> = Vec::new();
        let net;
        if let Some(ns) = &self.netns {
            net = format!("--net={}", ns.display());
            all.extend([net.as_str(), "--", "curl"]);
        }
        all.extend(["-sS", "--fail-with-body"]);
        all.extend_from_slice(args);
        match &self.netns {
            Some(_) => cmd::host("nsenter", &all),
            None => cmd::host("curl", &all),
        }
    }

    /// Uploads `data` as a blob of `repo` (one monolithic POST); returns
    /// its digest.
    pub fn put_blob(&self, repo: &str, data: &[u8]) -> String {
        use sha2::Digest as _;
        let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)));
        let f = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(f.path(), data).expect("writing the blob");
        // An upload session (POST), then the whole blob in one PUT.
        let url = format!("http://{}/v2/{repo}/blobs/uploads/", self.addr);
        let started = self.curl(&[
            "-X",
            "POST",
            "-o",
            "/dev/null",
            "-w",
            "%header{location}",
            &url,
        ]);
        let mut location = started.stdout.trim().to_string();
        if location.starts_with('/') {
            location = format!("http://{}{location}", self.addr);
        }
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{sep}digest={digest}");
        let body = format!("@{}", f.path().display());
        self.curl(&[
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &body,
            &put,
        ]);
        digest
    }

    /// PUTs a manifest (or index) of `media_type` as `repo:reference`;
    /// returns its digest.
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> String {
        use sha2::Digest as _;
        let f = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(f.path(), body).expect("writing the manifest");
        let url = format!("http://{}/v2/{repo}/manifests/{reference}", self.addr);
        let data = format!("@{}", f.path().display());
        let ct = format!("Content-Type: {media_type}");
        self.curl(&["-X", "PUT", "-H", &ct, "--data-binary", &data, &url]);
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(body)))
    }

    /// The manifest (or index) `repo:reference` as the registry serves it.
    pub fn get_manifest(&self, repo: &str, reference: &str) -> Vec<u8> {
        let url = format!("http://{}/v2/{repo}/manifests/{reference}", self.addr);
        let accept = "Accept: application/vnd.oci.image.manifest.v1+json, \
                      application/vnd.oci.image.index.v1+json, \
                      application/vnd.docker.distribution.manifest.v2+json";
        self.curl(&["-H", accept, &url]).stdout.into_bytes()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
