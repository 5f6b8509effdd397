//! Tests of the cgroup lifecycle on fake trees: paths, creation and cleanup on failure, pids,
//! freezing, statistics and destruction.

use std::fs;

use super::testutil::{hybrid_layout, populate, read, resources, v1_files, v1_layout, V2_FILES};
use super::*;

/// Every `berth` directory left under `root`.
fn leftovers(root: &Path) -> Vec<PathBuf> {
    super::fs::tree(root)
        .unwrap()
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("berth"))
        .collect()
}

#[test]
fn cgroups_paths() {
    assert_eq!(default_path("web"), "/web");
    assert_eq!(relative_path("/berth/web").unwrap(), Path::new("berth/web"));
    assert_eq!(
        relative_path("berth/./web/").unwrap(),
        Path::new("berth/web")
    );
    for bad in ["/", "", "/berth/../../etc", "../x"] {
        assert!(
            matches!(relative_path(bad), Err(CgroupError::InvalidPath { .. })),
            "{bad}"
        );
    }
    let err = relative_path("system.slice:berth:web").unwrap_err();
    assert!(matches!(err, CgroupError::SystemdPath { .. }));
    assert!(err.to_string().contains("cgroupfs"), "{err}");
}

#[test]
fn a_failed_create_removes_every_directory_it_made() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = v1_layout(tmp.path());
    // New directories have no interface files, so the first write fails.
    let err = Cgroup::create(
        &layout,
        "/berth/c1",
        Some(&resources(r#"{"pids": {"limit": 5}}"#)),
    )
    .unwrap_err();
    assert!(matches!(err, CgroupError::MissingFile { .. }), "{err}");
    assert_eq!(leftovers(tmp.path()), Vec::<PathBuf>::new());
}

#[test]
fn a_refused_write_removes_new_dirs_and_keeps_existing_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = hybrid_layout(tmp.path());
    let mem = tmp.path().join("memory/berth/c1");
    populate(&mem, &[]);
    fs::create_dir(mem.join("memory.limit_in_bytes")).unwrap();
    let r = resources(r#"{"memory": {"limit": 1048576}}"#);
    let err = Cgroup::create(&layout, "/berth/c1", Some(&r)).unwrap_err();
    match &err {
        CgroupError::Write { path, value, .. } => {
            assert_eq!(path, &mem.join("memory.limit_in_bytes"));
            assert_eq!(value, "1048576");
        }
        e => panic!("{e}"),
    }
    let mut left = leftovers(tmp.path());
    left.retain(|p| !p.starts_with(&mem));
    assert_eq!(left, vec![tmp.path().join("memory/berth")]);
}

#[test]
fn a_cgroup_with_processes_is_a_duplicate() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = v1_layout(tmp.path());
    let pids = tmp.path().join("pids/berth/c1");
    populate(&pids, &[]);
    fs::write(pids.join("cgroup.procs"), "42\n43\n").unwrap();
    let err = Cgroup::create(&layout, "/berth/c1", None).unwrap_err();
    assert!(
        matches!(&err, CgroupError::InUse { pids, .. } if pids == &[42, 43]),
        "{err}"
    );
    let mut left = leftovers(tmp.path());
    left.retain(|p| !p.starts_with(tmp.path().join("pids")));
    assert_eq!(left, Vec::<PathBuf>::new());
}

#[test]
fn add_pid_pids_freeze_and_destroy_on_v1() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = v1_layout(tmp.path());
    let cg = Cgroup::create(&layout, "/berth/c1", None).unwrap();
    for (c, mount) in layout.v1_hierarchies() {
        populate(&mount.join("berth/c1"), &v1_files(&c.join(",")));
    }
    cg.add_pid(4242).unwrap();
    for p in cg.paths() {
        assert_eq!(read(p.join("cgroup.procs")), "4242");
    }
    // A sub-cgroup made by the container counts too.
    let sub = tmp.path().join("pids/berth/c1/inner");
    populate(&sub, &[]);
    fs::write(sub.join("cgroup.procs"), "4343\n").unwrap();
    let mut pids = cg.pids().unwrap();
    pids.sort();
    assert_eq!(pids, vec![4242, 4343]);

    cg.freeze().unwrap();
    assert_eq!(
        read(tmp.path().join("freezer/berth/c1/freezer.state")),
        "FROZEN"
    );
    assert!(cg.is_frozen().unwrap());
    cg.thaw().unwrap();
    assert!(!cg.is_frozen().unwrap());

    // Fake trees cannot run the kill path; clear the processes, then the files, and destroy.
    for dir in cg.paths() {
        for d in super::fs::tree(&dir).unwrap() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                if e.file_type().unwrap().is_file() {
                    std::fs::remove_file(e.path()).unwrap();
                }
            }
        }
    }
    cg.destroy().unwrap();
    assert!(
        tmp.path().join("pids/berth").is_dir(),
        "the shared parent stays"
    );
    for p in cg.paths() {
        assert!(!p.exists(), "{}", p.display());
    }
    cg.destroy().unwrap();
}

#[test]
fn freeze_on_v2_waits_for_the_event_and_the_state_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let cg = Cgroup::create(&Layout::v2_at(tmp.path()), "c1", None).unwrap();
    let d = tmp.path().join("c1");
    populate(&d, V2_FILES);
    fs::write(d.join("cgroup.events"), "populated 0\nfrozen 1\n").unwrap();
    cg.freeze().unwrap();
    assert_eq!(read(d.join("cgroup.freeze")), "1");
    assert!(cg.is_frozen().unwrap());
    cg.thaw().unwrap();
    assert_eq!(read(d.join("cgroup.freeze")), "0");

    let json = serde_json::to_string(&cg).unwrap();
    let back: Cgroup = serde_json::from_str(&json).unwrap();
    assert_eq!(back, cg);
}

#[test]
fn stats_from_v1_and_v2_files() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = hybrid_layout(tmp.path());
    let cg = Cgroup::create(&layout, "/c1", None).unwrap();
    for (c, mount) in layout.v1_hierarchies() {
        populate(&mount.join("c1"), &v1_files(&c.join(",")));
    }
    let w = |p: &str, v: &str| fs::write(tmp.path().join(p), v).unwrap();
    w("memory/c1/memory.usage_in_bytes", "1000\n");
    w("memory/c1/memory.memsw.usage_in_bytes", "1500\n");
    w("memory/c1/memory.limit_in_bytes", "9223372036854771712\n");
    w("memory/c1/memory.max_usage_in_bytes", "2000\n");
    w("memory/c1/memory.failcnt", "3\n");
    w(
        "memory/c1/memory.oom_control",
        "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
    );
    w("cpu,cpuacct/c1/cpuacct.usage", "5000\n");
    w("cpu,cpuacct/c1/cpuacct.usage_user", "3000\n");
    w("cpu,cpuacct/c1/cpuacct.usage_sys", "2000\n");
    w(
        "cpu,cpuacct/c1/cpu.stat",
        "nr_periods 10\nnr_throttled 4\nthrottled_time 777\n",
    );
    w("pids/c1/pids.current", "2\n");
    w("pids/c1/pids.max", "max\n");
    w(
        "blkio/c1/blkio.throttle.io_service_bytes_recursive",
        "8:0 Read 4096\n8:0 Write 512\nTotal 4608\n",
    );
    w(
        "blkio/c1/blkio.throttle.io_serviced_recursive",
        "8:0 Read 2\n8:0 Write 1\nTotal 3\n",
    );
    populate(&tmp.path().join("unified/c1"), &[]);
    w("unified/c1/hugetlb.2MB.current", "2097152\n");
    w("unified/c1/hugetlb.2MB.events", "max 1\n");
    let s = cg.stats().unwrap();
    let m = s.memory.unwrap();
    assert_eq!(
        (m.usage, m.limit, m.max_usage, m.failcnt),
        (1000, None, Some(2000), Some(3))
    );
    assert_eq!((m.oom_kills, m.swap_usage), (Some(2), Some(500)));
    let c = s.cpu.unwrap();
    assert_eq!(
        (c.usage_ns, c.user_ns, c.system_ns),
        (5000, Some(3000), Some(2000))
    );
    assert_eq!(
        (c.periods, c.throttled_periods, c.throttled_ns),
        (Some(10), Some(4), Some(777))
    );
    assert_eq!(
        s.pids.unwrap(),
        PidsStats {
            current: 2,
            limit: None
        }
    );
    assert_eq!(
        s.io,
        vec![IoDeviceStats {
            major: 8,
            minor: 0,
            read_bytes: 4096,
            write_bytes: 512,
            read_ios: 2,
            write_ios: 1
        }]
    );
    assert_eq!(
        s.hugetlb["2MB"],
        HugetlbStats {
            usage: 2097152,
            max_usage: None,
            failcnt: Some(1)
        }
    );

    let tmp = tempfile::tempdir().unwrap();
    let cg = Cgroup::create(&Layout::v2_at(tmp.path()), "/c1", None).unwrap();
    let d = tmp.path().join("c1");
    populate(&d, V2_FILES);
    let w = |p: &str, v: &str| fs::write(d.join(p), v).unwrap();
    w("memory.current", "100\n");
    w("memory.max", "1048576\n");
    w("memory.events", "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\n");
    w("cpu.stat", "usage_usec 10\nuser_usec 6\nsystem_usec 4\nnr_periods 1\nnr_throttled 0\nthrottled_usec 0\n");
    w("pids.current", "1\n");
    w("pids.max", "64\n");
    w(
        "io.stat",
        "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0\n",
    );
    w("hugetlb.2MB.current", "0\n");
    let s = cg.stats().unwrap();
    let m = s.memory.unwrap();
    assert_eq!(
        (m.usage, m.limit, m.failcnt, m.oom_kills),
        (100, Some(1048576), Some(7), Some(1))
    );
    assert_eq!(s.cpu.unwrap().usage_ns, 10_000);
    assert_eq!(s.pids.unwrap().limit, Some(64));
    assert_eq!((s.io[0].read_bytes, s.io[0].write_ios), (1, 4));
    assert_eq!(s.hugetlb["2MB"].usage, 0);
    let json = serde_json::to_value(cg.stats().unwrap()).unwrap();
    assert_eq!(json["memory"]["limit"], 1048576);
}
