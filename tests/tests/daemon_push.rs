//! `push`, `login` and `logout` through the daemon with both docker clients
//! and berth's own, against Debian's registry in the daemon's network
//! namespace: a committed image pushed by berth is copied by skopeo,
//! unpacked by umoci and run by runc with its files, owners, modes, links,
//! xattrs and deletions; a second push uploads nothing; a push to another
//! repository mounts; a registry with htpasswd auth takes a login and
//! refuses a wrong password, storing nothing.

use std::path::Path;

use berth_tests::daemon::{clients, Daemon, IMAGE};
use berth_tests::registry::Registry;
use berth_tests::{cmd, ok};

const DOCKER28: &str = "/usr/local/bin/docker";

/// Registry requests that carry blob bytes (uploads and their chunks).
fn uploads(reg: &Registry) -> usize {
    reg.log()
        .lines()
        .filter(|l| {
            (l.contains("\"PATCH /v2/") || l.contains("\"PUT /v2/"))
                && l.contains("/blobs/uploads/")
        })
        .count()
}

fn setxattr(path: &Path, name: &str, value: &[u8]) {
    use std::os::unix::ffi::OsStrExt as _;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    // SAFETY: both strings are NUL-terminated and outlive the call; the
    // value pointer and length describe a live slice.
    let r = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(
        r,
        0,
        "setxattr {name} on {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

fn getxattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt as _;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = [0u8; 256];
    // SAFETY: as above; the buffer is writable for its whole length.
    let r = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (r >= 0).then(|| buf[..r as usize].to_vec())
}

#[test]
fn a_pushed_commit_is_copied_by_skopeo_unpacked_by_umoci_and_run_by_runc() {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let d = Daemon::start();
    let reg = Registry::start_in(d.netns());
    let name = format!("{}/team/app:v1", reg.addr);
    let script = "echo data > /data && chmod 4755 /data && ln /data /link \
                  && mkdir /dir && echo x > /dir/f && chown 1000:1000 /dir/f \
                  && rm /etc/group && rm -r /mnt && touch /ready && sleep 1000";
    ok(d.docker(
        DOCKER28,
        &["run", "-d", "--name", "src", IMAGE, "sh", "-c", script],
    ));
    berth_tests::poll::until(
        "the container's changes",
        std::time::Duration::from_secs(20),
        || {
            d.docker(DOCKER28, &["exec", "src", "test", "-e", "/ready"])
                .code
                == 0
        },
    );
    let pid = ok(d.docker(DOCKER28, &["inspect", "-f", "{{.State.Pid}}", "src"]));
    setxattr(
        &Path::new("/proc").join(pid.trim()).join("root/dir/f"),
        "user.berth",
        b"kept",
    );
    ok(d.docker(DOCKER28, &["commit", "src", &name]));
    ok(d.docker(DOCKER28, &["rm", "-f", "src"]));

    let out = ok(d.docker(DOCKER28, &["push", &name]));
    assert!(out.contains("The push refers to repository"), "{out}");
    assert!(out.contains(": Pushed"), "{out}");
    let digest_line = out
        .lines()
        .find(|l| l.starts_with("v1: digest: sha256:"))
        .unwrap_or_else(|| panic!("no digest line: {out}"));
    let manifest_digest = digest_line.split_whitespace().nth(2).unwrap().to_string();
    // What the registry serves is byte for byte what berth has.
    let local_id = ok(d.docker(DOCKER28, &["image", "inspect", "-f", "{{.Id}}", &name]));
    assert!(local_id.starts_with("sha256:"), "{local_id}");

    // skopeo copies it out of the registry (in the daemon's namespace).
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("oci");
    let copy = cmd::host(
        "nsenter",
        &[
            &format!("--net={}", d.netns().path().display()),
            "--",
            "skopeo",
            "copy",
            "--src-tls-verify=false",
            "--insecure-policy",
            &format!("docker://{name}"),
            &format!("oci:{}:v1", layout.display()),
        ],
    );
    copy.assert_ok();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"][0]["digest"],
        manifest_digest.as_str(),
        "{index}"
    );

    // umoci unpacks it as root: owners, modes, links and xattrs as committed.
    let bundle = work.path().join("bundle");
    cmd::host(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:v1", layout.display()),
            &bundle.to_string_lossy(),
        ],
    )
    .assert_ok();
    let rootfs = bundle.join("rootfs");
    let data = std::fs::symlink_metadata(rootfs.join("data")).unwrap();
    assert_eq!(data.permissions().mode() & 0o7777, 0o4755, "setuid kept");
    let link = std::fs::symlink_metadata(rootfs.join("link")).unwrap();
    assert_eq!(
        (data.ino(), data.nlink()),
        (link.ino(), 2),
        "/link is a hard link of /data"
    );
    let f = std::fs::symlink_metadata(rootfs.join("dir/f")).unwrap();
    assert_eq!((f.uid(), f.gid()), (1000, 1000));
    assert_eq!(
        getxattr(&rootfs.join("dir/f"), "user.berth").as_deref(),
        Some(&b"kept"[..])
    );
    assert!(
        !rootfs.join("etc/group").exists(),
        "the deleted file is whited out"
    );
    assert!(
        !rootfs.join("mnt").exists(),
        "the deleted directory is whited out"
    );
    assert!(
        rootfs.join("etc/passwd").exists(),
        "the base layer is there"
    );

    // runc runs the bundle.
    let cfg_path = bundle.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
    cfg["process"]["args"] = serde_json::json!(["sh", "-c", "cat /data /link && stat -c %a /data"]);
    cfg["process"]["terminal"] = serde_json::json!(false);
    std::fs::write(&cfg_path, serde_json::to_vec(&cfg).unwrap()).unwrap();
    let id = format!("berth-push-{}", std::process::id());
    let run = cmd::host("runc", &["run", "--bundle", &bundle.to_string_lossy(), &id]);
    let _ = cmd::host("runc", &["delete", "-f", &id]);
    run.assert_ok();
    assert_eq!(
        run.stdout.trim(),
        "data\ndata\n4755".replace("\\n", "\n"),
        "{run}"
    );

    // A second push sends no blob; one to another repository mounts.
    let before = uploads(&reg);
    let again = ok(d.docker(DOCKER28, &["push", &name]));
    assert!(
        again.contains("Layer already exists") && !again.contains(": Pushed"),
        "{again}"
    );
    assert_eq!(
        uploads(&reg),
        before,
        "the second push uploaded: {}",
        reg.log()
    );
    let other = format!("{}/elsewhere/app:v2", reg.addr);
    ok(d.docker(DOCKER28, &["tag", &name, &other]));
    let mounted = ok(d.berth(&["push", &other]));
    assert!(mounted.contains("Mounted from team/app"), "{mounted}");
    assert_eq!(
        uploads(&reg),
        before,
        "the push to another repository uploaded: {}",
        reg.log()
    );
    assert!(mounted.contains("v2: digest: sha256:"), "{mounted}");
}

#[test]
fn login_push_and_logout_with_both_docker_clients_and_berth() {
    let d = Daemon::start();
    let reg = Registry::start_with_auth_in("pusher", "s3cret", d.netns());
    let config = d.docker_config_dir();
    let berth = berth_tests::binary::berth();
    let all = clients()
        .into_iter()
        .map(|(label, path)| (label, std::path::PathBuf::from(path)))
        .chain([("berth", berth.clone())]);
    for (i, (label, client)) in all.enumerate() {
        let client = client.as_path();
        let name = format!("{}/auth/app:{i}", reg.addr);
        ok(d.docker(client, &["tag", IMAGE, &name]));
        // Without a login the registry refuses the push.
        let refused = d.docker(client, &["push", &name]);
        assert!(
            refused.code != 0
                || refused.stdout.contains("unauthorized")
                || refused.stderr.contains("unauthorized"),
            "{label}: an anonymous push to an htpasswd registry went through: {refused:?}"
        );
        let all = format!("{refused:?}").to_lowercase();
        assert!(
            all.contains("unauthorized") || all.contains("401"),
            "{label}: {all}"
        );

        // A wrong password: refused, named, nothing stored.
        let wrong = d.docker_in(
            client,
            &["login", "-u", "pusher", "--password-stdin", &reg.addr],
            Some(b"nope\n"),
        );
        assert!(wrong.code != 0, "{label}: a wrong password logged in");
        assert!(
            format!("{wrong:?}").contains("401 Unauthorized"),
            "{label}: {wrong:?}"
        );
        let stored = std::fs::read_to_string(config.join("config.json")).unwrap_or_default();
        assert!(
            !stored.contains(&reg.addr),
            "{label}: a failed login stored {stored}"
        );

        let good = d.docker_in(
            client,
            &["login", "-u", "pusher", "--password-stdin", &reg.addr],
            Some(b"s3cret\n"),
        );
        assert!(good.code == 0, "{label}: {good:?}");
        assert!(good.stdout.contains("Login Succeeded"), "{label}: {good:?}");
        let stored = std::fs::read_to_string(config.join("config.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&stored).unwrap();
        assert_eq!(
            v["auths"][&reg.addr]["auth"], "cHVzaGVyOnMzY3JldA==",
            "{label}: {stored}"
        );

        let out = ok(d.docker(client, &["push", &name]));
        assert!(
            out.contains(&format!("{i}: digest: sha256:")),
            "{label}: {out}"
        );

        let bye = ok(d.docker(client, &["logout", &reg.addr]));
        assert!(bye.contains("Removing login credentials"), "{label}: {bye}");
        let stored = std::fs::read_to_string(config.join("config.json")).unwrap();
        assert!(
            !stored.contains("cHVzaGVy"),
            "{label}: logout left {stored}"
        );
    }
    // What was pushed pulls back, with credentials from a helper this time.
    let helper_dir = tempfile::tempdir().unwrap();
    let store = helper_dir.path().join("store");
    let helper = helper_dir.path().join("docker-credential-berthtest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nset -e\ncase \"$1\" in\n  store) cat > {s} ;;\n  get) cat > /dev/null; cat {s} ;;\n  erase) cat > /dev/null; rm -f {s} ;;\nesac\n",
            s = store.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(config.join("config.json"), r#"{"credsStore":"berthtest"}"#).unwrap();
    let path = format!(
        "{}:{}",
        helper_dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut login = d.docker_cmd(
        &berth,
        &["login", "-u", "pusher", "--password-stdin", &reg.addr],
    );
    login.env("PATH", &path);
    let login = cmd::run(login, Some(b"s3cret\n"), std::time::Duration::from_secs(60));
    assert!(login.code == 0, "{login:?}");
    let kept = std::fs::read_to_string(&store).unwrap();
    assert!(
        kept.contains("\"Secret\":\"s3cret\""),
        "the helper got {kept}"
    );
    let stored = std::fs::read_to_string(config.join("config.json")).unwrap();
    assert!(
        !stored.contains("s3cret") && !stored.contains("cHVzaGVy"),
        "{stored}"
    );
    ok(d.docker(DOCKER28, &["rmi", &format!("{}/auth/app:0", reg.addr)]));
    let mut pull = d.docker_cmd(&berth, &["pull", &format!("{}/auth/app:0", reg.addr)]);
    pull.env("PATH", &path);
    let pull = cmd::run(pull, None, std::time::Duration::from_secs(60));
    assert!(pull.code == 0, "{pull:?}");
}
