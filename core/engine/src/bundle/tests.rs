//! Unit tests of the spec: image configs (made from JSON) and docker's
//! options in, typed OCI values out.

use std::path::Path;

use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::{Capability, LinuxNamespaceType, PosixRlimitType, Spec};
use serde_json::json;

use super::{spec, Inputs};
use crate::containers::config::{ContainerConfig, HostConfig, Ulimit};
use crate::error::Result;

fn image(cfg: serde_json::Value) -> ImageConfiguration {
    serde_json::from_value(json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}, "config": cfg})).unwrap()
}

fn make(
    img: &ImageConfiguration,
    c: &ContainerConfig,
    h: &HostConfig,
    root: &Path,
) -> Result<Spec> {
    spec(&Inputs {
        remap: None,
        id: "abc",
        image_name: "img",
        image: img,
        config: c,
        host: h,
        rootfs: root,
        volumes: &root.join("volumes"),
        etc: None,
    })
}

#[test]
fn image_config_and_options_make_the_process() {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("etc")).unwrap();
    std::fs::write(
        t.path().join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(t.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
    let img = image(
        json!({"Entrypoint": ["/bin/ep"], "Cmd": ["a"], "Env": ["A=1", "B=2"], "WorkingDir": "/w", "User": "app"}),
    );
    let h = HostConfig::default();
    let c = ContainerConfig {
        env: vec!["B=3".into()],
        ..Default::default()
    };
    let s = make(&img, &c, &h, t.path()).unwrap();
    let p = s.process().as_ref().unwrap();
    assert_eq!(
        p.args().as_ref().unwrap(),
        &vec!["/bin/ep".to_string(), "a".into()]
    );
    assert_eq!((p.user().uid(), p.user().gid()), (1000, 1001));
    assert_eq!(p.cwd(), Path::new("/w"));
    let env = p.env().as_ref().unwrap();
    assert!(
        env.contains(&"A=1".to_string())
            && env.contains(&"B=3".to_string())
            && !env.contains(&"B=2".to_string())
    );
    assert_eq!(s.hostname().as_deref(), Some("abc"));
    assert!(env.contains(&"HOSTNAME=abc".to_string()));
    assert_eq!(s.root().as_ref().unwrap().path(), t.path());

    let c = ContainerConfig {
        cmd: Some(vec!["echo".into(), "hi".into()]),
        entrypoint: Some(vec![String::new()]),
        user: "app:staff".into(),
        ..Default::default()
    };
    let s = make(&img, &c, &h, t.path()).unwrap();
    let p = s.process().as_ref().unwrap();
    assert_eq!(
        p.args().as_ref().unwrap(),
        &vec!["echo".to_string(), "hi".into()]
    );
    assert_eq!(p.user().gid(), 50);

    let c = ContainerConfig {
        user: "nobody".into(),
        ..Default::default()
    };
    assert!(make(&img, &c, &h, t.path())
        .unwrap_err()
        .to_string()
        .contains("nobody"));
    let empty = image(json!({}));
    assert!(make(&empty, &ContainerConfig::default(), &h, t.path()).is_err());
}

#[test]
fn defaults_are_dockers() {
    let t = tempfile::tempdir().unwrap();
    let img = image(json!({"Cmd": ["sh"]}));
    let s = make(
        &img,
        &ContainerConfig::default(),
        &HostConfig::default(),
        t.path(),
    )
    .unwrap();
    assert_eq!(s.version(), "1.0.2");
    assert_eq!(s.annotations(), &None);
    let p = s.process().as_ref().unwrap();
    let caps = p.capabilities().as_ref().unwrap();
    let default: oci_spec::runtime::Capabilities = super::DEFAULT_CAPS.iter().copied().collect();
    assert_eq!(caps.bounding().as_ref(), Some(&default));
    assert_eq!(caps.permitted().as_ref(), Some(&default));
    assert!(caps.inheritable().is_none() && caps.ambient().is_none());
    assert_eq!(p.no_new_privileges(), Some(false));
    let linux = s.linux().as_ref().unwrap();
    let ns: Vec<_> = linux
        .namespaces()
        .as_ref()
        .unwrap()
        .iter()
        .map(|n| n.typ())
        .collect();
    assert_eq!(
        ns,
        [
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::Cgroup,
            LinuxNamespaceType::Network
        ]
    );
    assert_eq!(
        linux.cgroups_path().as_deref(),
        Some(Path::new("/berth/abc"))
    );
    let r = linux.resources().as_ref().unwrap();
    let dev = &r.devices().as_ref().unwrap()[0];
    assert!(!dev.allow() && dev.access().as_deref() == Some("rwm"));
    assert!(r.memory().is_none() && r.cpu().is_none() && r.pids().is_none());
    assert!(linux
        .masked_paths()
        .as_ref()
        .unwrap()
        .contains(&"/proc/kcore".to_string()));
    let mounts = s.mounts().as_ref().unwrap();
    let dests: Vec<_> = mounts
        .iter()
        .map(|m| m.destination().to_str().unwrap())
        .collect();
    assert_eq!(
        dests,
        [
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/sys",
            "/sys/fs/cgroup"
        ]
    );
    assert!(mounts[5]
        .options()
        .as_ref()
        .unwrap()
        .contains(&"ro".to_string()));

    let privileged = HostConfig {
        privileged: true,
        ..Default::default()
    };
    let s = make(&img, &ContainerConfig::default(), &privileged, t.path()).unwrap();
    let caps = s
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .clone()
        .unwrap();
    // Every capability berth's own bounding set holds (one it lacks cannot
    // be handed on).
    let held = caps::read(None, caps::CapSet::Bounding).unwrap();
    assert_eq!(caps.bounding().as_ref().unwrap().len(), held.len());
    let linux = s.linux().as_ref().unwrap();
    assert_eq!(linux.masked_paths().as_deref(), Some(&[][..]));
    assert!(linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .as_ref()
        .unwrap()[0]
        .allow());
    let sys = &s.mounts().as_ref().unwrap()[5];
    assert!(sys.options().as_ref().unwrap().contains(&"rw".to_string()));
}

#[test]
fn host_config_becomes_limits_caps_and_mounts() {
    let t = tempfile::tempdir().unwrap();
    let img = image(json!({"Cmd": ["sh"]}));
    let h = HostConfig {
        memory: 64 << 20,
        nano_cpus: 500_000_000,
        pids_limit: Some(10),
        cap_add: vec!["net_admin".into()],
        cap_drop: vec!["CHOWN".into()],
        binds: vec![format!("{}:/data:ro", t.path().display()), "vol1:/v".into()],
        tmpfs: [("/run".to_string(), "size=1m".to_string())].into(),
        network_mode: "host".into(),
        security_opt: vec!["no-new-privileges".into()],
        ulimits: vec![Ulimit {
            name: "nofile".into(),
            soft: 100,
            hard: 200,
        }],
        ..Default::default()
    };
    let s = make(&img, &ContainerConfig::default(), &h, t.path()).unwrap();
    let linux = s.linux().as_ref().unwrap();
    let r = linux.resources().as_ref().unwrap();
    let mem = r.memory().unwrap();
    assert_eq!((mem.limit(), mem.swap()), (Some(64 << 20), Some(128 << 20)));
    let cpu = r.cpu().as_ref().unwrap();
    assert_eq!((cpu.quota(), cpu.period()), (Some(50_000), Some(100_000)));
    assert_eq!(r.pids().unwrap().limit(), 10);
    let p = s.process().as_ref().unwrap();
    let caps = p
        .capabilities()
        .as_ref()
        .unwrap()
        .bounding()
        .clone()
        .unwrap();
    assert!(caps.contains(&Capability::NetAdmin) && !caps.contains(&Capability::Chown));
    assert_eq!(p.no_new_privileges(), Some(true));
    let rl = p.rlimits().as_ref().unwrap();
    assert_eq!(rl.len(), 1);
    assert_eq!(
        (rl[0].typ(), rl[0].soft(), rl[0].hard()),
        (PosixRlimitType::RlimitNofile, 100, 200)
    );
    let ns = linux.namespaces().as_ref().unwrap();
    assert!(!ns.iter().any(|n| n.typ() == LinuxNamespaceType::Network));
    let m = s.mounts().as_ref().unwrap();
    assert!(m.iter().any(|m| m.destination() == Path::new("/data")
        && m.options().as_ref().unwrap().contains(&"ro".to_string())));
    assert!(m.iter().any(|m| m.destination() == Path::new("/v")
        && m.source().as_ref().unwrap().ends_with("volumes/vol1/_data")));
    let run = m
        .iter()
        .find(|m| m.destination() == Path::new("/run"))
        .unwrap();
    assert_eq!(run.typ().as_deref(), Some("tmpfs"));
    assert_eq!(
        run.options().as_deref().unwrap(),
        ["nosuid", "nodev", "noexec", "size=1m"]
    );

    let bad_cap = HostConfig {
        cap_add: vec!["FLY".into()],
        ..Default::default()
    };
    assert!(make(&img, &ContainerConfig::default(), &bad_cap, t.path())
        .unwrap_err()
        .to_string()
        .contains("FLY"));
    let tiny = HostConfig {
        memory: 1000,
        ..Default::default()
    };
    assert!(make(&img, &ContainerConfig::default(), &tiny, t.path())
        .unwrap_err()
        .to_string()
        .contains("6MB"));
    let missing = HostConfig {
        binds: vec!["/no/such/dir:/x".into()],
        ..Default::default()
    };
    assert!(make(&img, &ContainerConfig::default(), &missing, t.path())
        .unwrap_err()
        .to_string()
        .contains("/no/such/dir"));
}

#[test]
fn every_capability_and_ulimit_name_is_known() {
    // What `--privileged` gives: every capability berth's bounding set
    // holds; and every capability of the caps crate has a typed OCI name,
    // spelt the same.
    let h = HostConfig {
        privileged: true,
        ..Default::default()
    };
    let all = super::security::capabilities(&h, "img").unwrap();
    let mut names: Vec<String> = all
        .iter()
        .map(|c| {
            serde_json::to_value(c)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let held = caps::read(None, caps::CapSet::Bounding).unwrap();
    let mut expected: Vec<String> = held.iter().map(|c| c.to_string()).collect();
    names.sort();
    expected.sort();
    assert_eq!(names, expected);
    for c in caps::all() {
        let name = c.to_string();
        assert!(
            super::security::cap_name(&name, "img").unwrap().is_some(),
            "{name} has no OCI name"
        );
    }

    for name in [
        "as",
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
    ] {
        let h = HostConfig {
            ulimits: vec![Ulimit {
                name: name.into(),
                soft: 1,
                hard: 2,
            }],
            ..Default::default()
        };
        let rl = super::resources::rlimits(&h, "img").unwrap();
        let v = serde_json::to_value(rl.last().unwrap()).unwrap();
        assert_eq!(v["type"], format!("RLIMIT_{}", name.to_ascii_uppercase()));
    }
    // docker's -1 is unlimited (RLIM_INFINITY).
    let h = HostConfig {
        ulimits: vec![Ulimit {
            name: "memlock".into(),
            soft: -1,
            hard: -1,
        }],
        ..Default::default()
    };
    let rl = super::resources::rlimits(&h, "img").unwrap();
    let memlock = rl.last().unwrap();
    assert_eq!((memlock.soft(), memlock.hard()), (u64::MAX, u64::MAX));
    for (name, soft, hard) in [
        ("bogus", 1, 2),
        ("nofile", 3, 2),
        ("nofile", -2, -2),
        ("nofile", -1, 10),
    ] {
        let h = HostConfig {
            ulimits: vec![Ulimit {
                name: name.into(),
                soft,
                hard,
            }],
            ..Default::default()
        };
        assert!(super::check_host(&h).is_err(), "{name}={soft}:{hard}");
    }
}
