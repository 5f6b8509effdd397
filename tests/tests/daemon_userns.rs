//! `userns-remap` as dockerd's: with `[daemon] userns-remap = "default"`
//! the daemon adds `berth` ranges to /etc/subuid and /etc/subgid (restored
//! by the test) and every container runs in a user namespace mapping its
//! root to the first id of the range; image files, named volumes and `cp`
//! show the ids they have inside, as seen from inside and from the host;
//! `--userns=host` opts out; what docker refuses under remapping is refused;
//! inspect and info show the mapping.

use std::path::Path;

use berth_tests::daemon::{clients, Daemon, IMAGE};
use berth_tests::ok;

/// Puts /etc/subuid and /etc/subgid back as they were on drop.
struct Restore(Vec<(&'static str, Option<Vec<u8>>)>);

/// The tests of this file change the same files: one at a time, across
/// processes too (nextest runs each test in its own), by a lock file.
struct OneAtATime(#[allow(dead_code)] std::fs::File);

impl OneAtATime {
    fn take() -> OneAtATime {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open("/run/berth-test-subid.lock")
            .expect("the lock file");
        // SAFETY: flock on a descriptor this File owns; released on close.
        let r = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&f), libc::LOCK_EX) };
        assert_eq!(r, 0, "locking /run/berth-test-subid.lock");
        OneAtATime(f)
    }
}

impl Restore {
    fn save() -> Restore {
        Restore(
            ["/etc/subuid", "/etc/subgid"]
                .into_iter()
                .map(|f| (f, std::fs::read(f).ok()))
                .collect(),
        )
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        for (f, old) in &self.0 {
            match old {
                Some(b) => {
                    let _ = std::fs::write(f, b);
                }
                None => {
                    let _ = std::fs::remove_file(f);
                }
            }
        }
    }
}

/// The `berth` range of a subordinate-id file.
fn berth_range(file: &str) -> (u32, u32) {
    let text = std::fs::read_to_string(file).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("berth:"))
        .unwrap_or_else(|| panic!("no berth range in {file}:\n{text}"));
    let f: Vec<&str> = line.split(':').collect();
    (f[1].parse().unwrap(), f[2].parse().unwrap())
}

fn owner(p: &Path) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(p).unwrap();
    (m.uid(), m.gid())
}

#[test]
fn containers_run_remapped_with_their_files_owned_as_inside() {
    let _one = OneAtATime::take();
    let _restore = Restore::save();
    // Another range is there already: berth's comes after it.
    std::fs::write("/etc/subuid", "someone:100000:65536\n").unwrap();
    std::fs::write("/etc/subgid", "someone:100000:65536\n").unwrap();
    let d = Daemon::start_with_config("[daemon]\nuserns-remap = \"default\"\n");
    let (uid, size) = berth_range("/etc/subuid");
    let (gid, _) = berth_range("/etc/subgid");
    assert_eq!((uid, size, gid), (165536, 65536, 165536));
    for (name, c) in clients() {
        let run = |extra: &[&str], script: &str| {
            let mut args = vec!["run", "--rm", "--network", "none"];
            args.extend_from_slice(extra);
            args.extend_from_slice(&[IMAGE, "sh", "-c", script]);
            d.docker(c, &args)
        };
        // Inside: root, the image's files owned by root, new files too.
        let out = ok(run(
            &[],
            "id -u; cat /proc/self/uid_map; stat -c %u:%g /bin/busybox /etc/passwd; \
             touch /new && stat -c %u:%g /new; echo x > /etc/hosts && echo hosts-ok",
        ));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "0", "{name}: {out}");
        let map: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(map, ["0", &uid.to_string(), "65536"], "{name}: {out}");
        assert_eq!(
            &lines[2..],
            ["0:0", "0:0", "0:0", "hosts-ok"],
            "{name}: {out}"
        );
        // From the host: the process runs as the range's first id.
        let id = ok(d.docker(
            c,
            &["run", "-d", "--network", "none", IMAGE, "sleep", "300"],
        ));
        let pid = ok(d.docker(c, &["inspect", "-f", "{{.State.Pid}}", &id]));
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let uids = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        assert!(
            uids.split_whitespace()
                .skip(1)
                .all(|u| u == uid.to_string()),
            "{name}: {uids}"
        );
        // Inspect shows the mapping; cp in and out keeps inside ids.
        let maps = ok(d.docker(
            c,
            &["inspect", "-f", "{{json .HostConfig.IDMappings}}", &id],
        ));
        assert!(
            maps.contains(&format!("0:{uid}:65536")) && maps.contains(&format!("0:{gid}:65536")),
            "{name}: {maps}"
        );
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("in.txt");
        std::fs::write(&f, "copied\n").unwrap();
        d.docker(
            c,
            &["cp", &f.to_string_lossy(), &format!("{id}:/tmp/in.txt")],
        )
        .assert_ok();
        let seen = ok(d.docker(c, &["exec", &id, "stat", "-c", "%u:%g %s", "/tmp/in.txt"]));
        assert_eq!(seen, "0:0 7", "{name}");
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        d.docker(
            c,
            &["cp", &format!("{id}:/etc/passwd"), &out.to_string_lossy()],
        )
        .assert_ok();
        assert!(std::fs::read_to_string(out.join("passwd"))
            .unwrap()
            .contains("root"));
        d.docker(c, &["rm", "-f", &id]).assert_ok();
        // A named volume: written inside as root, root's on disk too, and
        // the same for an unremapped container.
        let vol = format!("remapped-{name}");
        ok(run(
            &["-v", &format!("{vol}:/data")],
            "echo v > /data/f && stat -c %u /data/f",
        ));
        let data = d.root().join("volumes").join(&vol).join("_data");
        assert_eq!(owner(&data.join("f")), (0, 0), "{name}");
        let out = ok(run(
            &["--userns", "host", "-v", &format!("{vol}:/data")],
            "cat /proc/self/uid_map | tr -s ' '; stat -c %u /data/f",
        ));
        assert_eq!(out, "0 0 4294967295\n0", "{name}");
        // What docker refuses under remapping, unless --userns=host.
        let out = run(&["--privileged"], "true");
        assert!(
            out.code != 0 && out.stderr.contains("--userns=host"),
            "{name}: {out}"
        );
        ok(run(&["--privileged", "--userns", "host"], "true"));
    }
    // docker's clients check the mode themselves; the daemon does too.
    let out = d.berth(&["run", "--rm", "--userns", "private", IMAGE, "true"]);
    assert!(
        out.code != 0
            && out
                .stderr
                .contains("invalid user namespace mode \"private\""),
        "{out}"
    );
    let info = ok(d.docker(clients()[0].1, &["info", "-f", "{{json .SecurityOptions}}"]));
    assert!(info.contains("name=userns"), "{info}");
    // A commit of a remapped container stores root's files as root's.
    let c = clients()[1].1;
    let id = ok(d.docker(
        c,
        &[
            "create",
            "--network",
            "none",
            IMAGE,
            "sh",
            "-c",
            "mkdir /made",
        ],
    ));
    d.docker(c, &["start", "-a", &id]).assert_ok();
    d.docker(c, &["commit", &id, "remapped:made"]).assert_ok();
    let out = ok(d.docker(
        c,
        &[
            "run",
            "--rm",
            "--userns",
            "host",
            "--network",
            "none",
            "remapped:made",
            "stat",
            "-c",
            "%u:%g",
            "/made",
        ],
    ));
    assert_eq!(out, "0:0");
}

#[test]
fn the_vfs_driver_runs_remapped_too() {
    let _one = OneAtATime::take();
    let _restore = Restore::save();
    let d = Daemon::start_with_config(
        "storage-driver = \"vfs\"\n[daemon]\nuserns-remap = \"default\"\n",
    );
    let (uid, _) = berth_range("/etc/subuid");
    let out = ok(d.docker(
        clients()[1].1,
        &[
            "run", "--rm", "--network", "none", IMAGE, "sh", "-c",
            "awk '{print $2}' /proc/self/uid_map; stat -c %u:%g /bin/busybox; touch /new && stat -c %u /new",
        ],
    ));
    assert_eq!(out, format!("{uid}\n0:0\n0"));
}

#[test]
fn a_missing_range_is_named() {
    let _one = OneAtATime::take();
    let _restore = Restore::save();
    std::fs::write("/etc/subuid", "").unwrap();
    std::fs::write("/etc/subgid", "").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("berth.toml");
    std::fs::write(&config, "[daemon]\nuserns-remap = \"nobody:nogroup\"\n").unwrap();
    let ns = berth_tests::netns::NetNs::new();
    let out = ns
        .command(berth_tests::binary::berth())
        .args(["daemon", "--root"])
        .arg(dir.path().join("root"))
        .arg("--config")
        .arg(&config)
        .args([
            "-H",
            &format!("unix://{}", dir.path().join("d.sock").display()),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("/etc/subuid has no range for nobody") && err.contains("userns-remap"),
        "{err}"
    );
}
