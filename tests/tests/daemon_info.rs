//! berth's `version`, `info`, `port` and `events` against its daemon, next
//! to what docker's client says about the same daemon.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_tests::daemon::{clients, Daemon, IMAGE};
use berth_tests::ok;

#[test]
fn version_and_info_describe_the_daemon() {
    let d = Daemon::start();
    let v = ok(d.berth(&["version"]));
    assert!(v.contains("Client:") && v.contains("Server: "), "{v}");
    assert!(v.contains("API version:       1.50"), "{v}");
    let docker_v = ok(d.docker(
        clients()[0].1,
        &["version", "--format", "{{.Server.Version}}"],
    ));
    assert!(
        v.contains(&format!("  Version:          {}", docker_v.trim())),
        "{v}"
    );
    ok(d.docker(clients()[0].1, &["create", IMAGE, "true"]));
    let i = ok(d.berth(&["info"]));
    for want in [
        "Containers: 1",
        "Stopped: 1",
        "Images: 1",
        "Storage Driver: ",
        "Kernel Version: ",
    ] {
        assert!(i.contains(want), "no {want:?} in {i}");
    }
}

#[test]
fn port_lists_what_is_published() {
    let d = Daemon::start();
    let (_, c) = clients()[0];
    let id = ok(d.docker(
        c,
        &[
            "run",
            "-d",
            "-p",
            "18080:80",
            "-p",
            "18053:53/udp",
            IMAGE,
            "sleep",
            "1000",
        ],
    ));
    let id = id.trim();
    let all = ok(d.berth(&["port", id]));
    assert!(all.lines().any(|l| l == "80/tcp -> 0.0.0.0:18080"), "{all}");
    assert!(all.lines().any(|l| l == "53/udp -> 0.0.0.0:18053"), "{all}");
    let docker = ok(d.docker(c, &["port", id]));
    for l in all.lines() {
        assert!(
            docker.lines().any(|dl| dl == l),
            "docker says {docker}, berth {l}"
        );
    }
    assert_eq!(ok(d.berth(&["port", id, "80"])).trim(), "0.0.0.0:18080");
    let none = d.berth(&["port", id, "81"]);
    none.assert_failed();
    assert!(none.stderr.contains("no public port '81/tcp'"), "{none}");
    ok(d.docker(c, &["rm", "-f", id]));
}

#[test]
fn events_stream_until_their_deadline_filtered() {
    let d = Daemon::start();
    let (_, c) = clients()[0];
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let until = (now + 4).to_string();
    let watch = d.spawn_docker(
        berth_tests::binary::berth(),
        &[
            "events",
            "--until",
            &until,
            "--filter",
            "event=create",
            "--filter",
            "type=container",
        ],
    );
    std::thread::sleep(Duration::from_millis(500));
    let id = ok(d.docker(c, &["create", "--name", "watched", IMAGE, "true"]));
    ok(d.docker(c, &["rm", id.trim()]));
    let out = watch.wait();
    out.assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "only the create: {out}");
    assert!(
        lines[0].contains(&format!(" container create {}", id.trim()))
            && lines[0].contains("name=watched"),
        "{out}"
    );
    let bad = d.berth(&["events", "--filter", "colour=red"]);
    bad.assert_failed();
    assert!(bad.stderr.contains("colour"), "{bad}");
}

/// The `system df` row of `kind` (TYPE TOTAL ACTIVE SIZE RECLAIMABLE) as words.
fn df_row(out: &str, kind: &str) -> Vec<String> {
    let line = out
        .lines()
        .find(|l| l.starts_with(kind))
        .unwrap_or_else(|| panic!("no {kind} row in {out}"));
    line[kind.len()..]
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[test]
fn system_df_counts_images_containers_and_volumes() {
    let d = Daemon::start();
    ok(d.docker(clients()[0].1, &["volume", "create", "data"]));
    ok(d.docker(
        clients()[0].1,
        &[
            "run", "--name", "writer", "-v", "data:/data", IMAGE, "sh", "-c",
            "dd if=/dev/zero of=/data/v bs=1024 count=2048 2>/dev/null && dd if=/dev/zero of=/big bs=1024 count=1024 2>/dev/null",
        ],
    ));
    ok(d.docker(clients()[0].1, &["volume", "create", "idle"]));
    for (name, c) in clients() {
        let out = ok(d.docker(c, &["system", "df"]));
        let images = df_row(&out, "Images");
        assert_eq!(&images[..2], ["1", "1"], "{name}: {out}");
        let containers = df_row(&out, "Containers");
        assert_eq!(&containers[..2], ["1", "0"], "{name}: {out}");
        assert!(
            containers[2].starts_with("1.0") && containers[2].ends_with("MB"),
            "{name}: the 1 MiB written: {out}"
        );
        let volumes = df_row(&out, "Local Volumes");
        assert_eq!(&volumes[..2], ["2", "1"], "{name}: {out}");
        assert!(
            volumes[2].starts_with("2.0") && volumes[2].ends_with("MB"),
            "{name}: {out}"
        );
        let verbose = ok(d.docker(c, &["system", "df", "-v"]));
        assert!(
            verbose.contains("writer") && verbose.contains("idle"),
            "{name}: {verbose}"
        );
    }
    let mine = ok(d.berth(&["system", "df"]));
    assert_eq!(&df_row(&mine, "Local Volumes")[..2], ["2", "1"], "{mine}");
    assert_eq!(&df_row(&mine, "Containers")[..2], ["1", "0"], "{mine}");
    let verbose = ok(d.berth(&["system", "df", "-v"]));
    assert!(
        verbose.contains("writer") && verbose.contains("VOLUME NAME"),
        "{verbose}"
    );
}
