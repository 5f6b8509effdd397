//! Tests of the v2 writers on fake cgroup2 trees: conversions from OCI's v1-shaped values,
//! unlimited values, settings v2 lacks, and the hybrid side mount.

use std::path::PathBuf;

use super::*;
use crate::cgroups::testutil::{hybrid_layout, populate, read, resources, V2_FILES};
use crate::cgroups::{Cgroup, Layout};

fn v2_cgroup(root: &Path) -> (Cgroup, PathBuf) {
    populate(root, &["cgroup.controllers", "cgroup.subtree_control"]);
    std::fs::write(
        root.join("cgroup.controllers"),
        "cpuset cpu io memory hugetlb pids",
    )
    .unwrap();
    let cg = Cgroup::create(&Layout::v2_at(root), "/berth/c1", None).unwrap();
    let dir = root.join("berth/c1");
    populate(&dir, V2_FILES);
    (cg, dir)
}

#[test]
fn conversions() {
    assert_eq!(shares_to_weight(2), 1);
    assert_eq!(shares_to_weight(1024), 39);
    assert_eq!(shares_to_weight(262_144), 10_000);
    assert_eq!(shares_to_weight(1), 1);
    assert_eq!(blkio_to_io_weight(10), 1);
    assert_eq!(blkio_to_io_weight(500), 4950);
    assert_eq!(blkio_to_io_weight(1000), 10_000);
    assert_eq!(swap_value(200, Some(100)).unwrap().as_deref(), Some("100"));
    assert_eq!(swap_value(100, Some(100)).unwrap().as_deref(), Some("0"));
    assert_eq!(swap_value(-1, Some(100)).unwrap().as_deref(), Some("max"));
    assert_eq!(swap_value(0, Some(100)).unwrap(), None);
    assert!(swap_value(50, Some(100)).is_err());
    assert!(swap_value(50, None).is_err());
    assert!(swap_value(50, Some(-1)).is_err());
}

#[test]
fn create_enables_the_available_controllers_in_every_ancestor() {
    let tmp = tempfile::tempdir().unwrap();
    let (cg, dir) = v2_cgroup(tmp.path());
    assert_eq!(cg.paths(), vec![dir]);
    // Each controller is enabled by its own write; a plain file keeps the last one.
    assert_eq!(read(tmp.path().join("cgroup.subtree_control")), "+pids");
}

#[test]
fn every_resource_lands_in_its_v2_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (cg, d) = v2_cgroup(tmp.path());
    let r = resources(
        r#"{
        "memory": {"limit": 104857600, "reservation": 1048576, "swap": 209715200},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 10, "idle": 1,
                "cpus": "0-1", "mems": "0"},
        "pids": {"limit": -1},
        "blockIO": {"weight": 500,
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
        "unified": {"memory.high": "90000000"}
    }"#,
    );
    std::fs::write(d.join("memory.high"), "").unwrap();
    cg.apply(&r).unwrap();
    assert_eq!(read(d.join("memory.max")), "104857600");
    assert_eq!(read(d.join("memory.swap.max")), "104857600");
    assert_eq!(read(d.join("memory.low")), "1048576");
    assert_eq!(read(d.join("cpu.weight")), "39");
    assert_eq!(read(d.join("cpu.max")), "50000 100000");
    assert_eq!(read(d.join("cpu.max.burst")), "10");
    assert_eq!(read(d.join("cpu.idle")), "1");
    assert_eq!(read(d.join("cpuset.cpus")), "0-1");
    assert_eq!(read(d.join("pids.max")), "max");
    assert_eq!(read(d.join("io.weight")), "4950");
    assert_eq!(read(d.join("io.max")), "8:0 rbps=1048576");
    assert_eq!(read(d.join("hugetlb.2MB.max")), "4194304");
    assert_eq!(read(d.join("memory.high")), "90000000");
}

#[test]
fn cpu_max_keeps_the_other_half_and_unlimited_is_max() {
    let tmp = tempfile::tempdir().unwrap();
    let (cg, d) = v2_cgroup(tmp.path());
    std::fs::write(d.join("cpu.max"), "max 100000\n").unwrap();
    cg.apply(&resources(r#"{"cpu": {"quota": 20000}}"#))
        .unwrap();
    assert_eq!(read(d.join("cpu.max")), "20000 100000");
    cg.apply(&resources(r#"{"cpu": {"period": 50000}}"#))
        .unwrap();
    assert_eq!(read(d.join("cpu.max")), "20000 50000");
    cg.apply(&resources(
        r#"{"cpu": {"quota": -1}, "memory": {"limit": -1}}"#,
    ))
    .unwrap();
    assert_eq!(read(d.join("cpu.max")), "max 50000");
    assert_eq!(read(d.join("memory.max")), "max");
    assert_eq!(read(d.join("memory.swap.max")), "max");
}

#[test]
fn v1_only_settings_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let (cg, d) = v2_cgroup(tmp.path());
    for (json, name) in [
        (r#"{"memory": {"swappiness": 10}}"#, "memory.swappiness"),
        (
            r#"{"memory": {"disableOOMKiller": true}}"#,
            "memory.disableOOMKiller",
        ),
        (r#"{"memory": {"kernel": 100}}"#, "memory.kernel"),
        (
            r#"{"cpu": {"realtimeRuntime": 100}}"#,
            "cpu.realtimeRuntime",
        ),
        (r#"{"blockIO": {"leafWeight": 100}}"#, "blockIO.leafWeight"),
        (r#"{"network": {"classID": 1}}"#, "network"),
    ] {
        let err = cg.apply(&resources(json)).unwrap_err();
        assert!(
            matches!(err, CgroupError::Unsupported { .. }),
            "{json}: {err}"
        );
        assert!(err.to_string().contains(name), "{json}: {err}");
    }
    let err = cg
        .apply(&resources(r#"{"unified": {"memory.nope": "1"}}"#))
        .unwrap_err();
    assert!(matches!(err, CgroupError::MissingFile { .. }), "{err}");
    assert!(err.to_string().contains("memory.nope"), "{err}");
    let err = cg
        .apply(&resources(r#"{"unified": {"../x": "1"}}"#))
        .unwrap_err();
    assert!(matches!(err, CgroupError::InvalidValue { .. }), "{err}");
    let err = cg.apply(&resources(
        r#"{"hugepageLimits": [{"pageSize": "../2MB", "limit": 1}]}"#,
    ));
    assert!(matches!(err, Err(CgroupError::InvalidValue { .. })));
    std::fs::remove_file(d.join("io.weight")).unwrap();
    let err = cg
        .apply(&resources(r#"{"blockIO": {"weight": 100}}"#))
        .unwrap_err();
    assert!(err.to_string().contains("io.weight"), "{err}");
}

#[test]
fn hybrid_puts_hugetlb_and_unified_keys_on_the_side_mount() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = hybrid_layout(tmp.path());
    let cg = Cgroup::create(&layout, "/berth/c1", None).unwrap();
    let u = tmp.path().join("unified/berth/c1");
    assert_eq!(cg.unified_path(), Some(u.as_path()));
    assert_eq!(cg.paths().len(), 8);
    assert_eq!(
        read(tmp.path().join("unified/cgroup.subtree_control")),
        "+hugetlb"
    );
    populate(
        &u,
        &[
            "hugetlb.2MB.max",
            "hugetlb.1GB.max",
            "hugetlb.2MB.rsvd.max",
            "memory.pressure",
        ],
    );
    cg.apply(&resources(
        r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}, {"pageSize": "1GB", "limit": -1}],
            "unified": {"memory.pressure": "some 1000 1000000"}}"#,
    ))
    .unwrap();
    assert_eq!(read(u.join("hugetlb.2MB.max")), "2097152");
    assert_eq!(read(u.join("hugetlb.2MB.rsvd.max")), "2097152");
    assert_eq!(read(u.join("hugetlb.1GB.max")), "max");
    assert_eq!(read(u.join("memory.pressure")), "some 1000 1000000");
    let err = cg.apply(&resources(
        r#"{"hugepageLimits": [{"pageSize": "16GB", "limit": 1}]}"#,
    ));
    assert!(err.unwrap_err().to_string().contains("hugetlb.16GB.max"));
}
