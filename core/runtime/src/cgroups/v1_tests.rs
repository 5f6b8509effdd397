//! Tests of the v1 writers on fake cgroupfs trees: each setting lands in its file with the
//! kernel's format, unlimited values, write ordering and missing-file errors.

use super::*;
use crate::cgroups::testutil::{populate, read, resources, v1_files, v1_layout};
use crate::cgroups::{Cgroup, Layout};

/// A created v1 cgroup whose directories have their interface files.
fn cgroup(root: &Path) -> Cgroup {
    let layout = v1_layout(root);
    let cg = Cgroup::create(&layout, "/berth/c1", None).unwrap();
    for (controllers, mount) in layout.v1_hierarchies() {
        populate(&mount.join("berth/c1"), &v1_files(&controllers.join(",")));
    }
    cg
}

#[test]
fn every_resource_lands_in_its_v1_file() {
    let tmp = tempfile::tempdir().unwrap();
    let cg = cgroup(tmp.path());
    let r = resources(
        r#"{
        "memory": {"limit": 104857600, "reservation": 52428800, "swap": 209715200,
                   "swappiness": 10, "disableOOMKiller": true, "kernel": 1048576},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "burst": 1000,
                "realtimeRuntime": 950, "realtimePeriod": 1000, "idle": 0,
                "cpus": "0", "mems": "0"},
        "pids": {"limit": 64},
        "blockIO": {"weight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 200}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 100}]},
        "devices": [{"allow": false, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]
    }"#,
    );
    cg.apply(&r).unwrap();
    let m = tmp.path().join("memory/berth/c1");
    assert_eq!(read(m.join("memory.limit_in_bytes")), "104857600");
    assert_eq!(read(m.join("memory.memsw.limit_in_bytes")), "209715200");
    assert_eq!(read(m.join("memory.soft_limit_in_bytes")), "52428800");
    assert_eq!(read(m.join("memory.swappiness")), "10");
    assert_eq!(read(m.join("memory.oom_control")), "1");
    assert_eq!(read(m.join("memory.kmem.limit_in_bytes")), "1048576");
    let c = tmp.path().join("cpu,cpuacct/berth/c1");
    assert_eq!(read(c.join("cpu.shares")), "512");
    assert_eq!(read(c.join("cpu.cfs_quota_us")), "50000");
    assert_eq!(read(c.join("cpu.cfs_period_us")), "100000");
    assert_eq!(read(c.join("cpu.cfs_burst_us")), "1000");
    assert_eq!(read(c.join("cpu.rt_runtime_us")), "950");
    assert_eq!(read(c.join("cpu.rt_period_us")), "1000");
    assert_eq!(read(c.join("cpu.idle")), "0");
    assert_eq!(read(tmp.path().join("cpuset/berth/c1/cpuset.cpus")), "0");
    assert_eq!(read(tmp.path().join("pids/berth/c1/pids.max")), "64");
    let b = tmp.path().join("blkio/berth/c1");
    assert_eq!(read(b.join("blkio.bfq.weight")), "300");
    assert_eq!(read(b.join("blkio.bfq.weight_device")), "8:0 200");
    assert_eq!(
        read(b.join("blkio.throttle.read_bps_device")),
        "8:0 1048576"
    );
    assert_eq!(read(b.join("blkio.throttle.write_iops_device")), "8:16 100");
    let d = tmp.path().join("devices/berth/c1");
    // berth's own deny-all, then the spec's: one write each (a plain file
    // shows them one after another).
    assert_eq!(read(d.join("devices.deny")), "aa");
    assert_eq!(read(d.join("devices.allow")), "c 1:3 rwm");
}

#[test]
fn unlimited_values() {
    let tmp = tempfile::tempdir().unwrap();
    let cg = cgroup(tmp.path());
    cg.apply(&resources(
        r#"{"memory": {"limit": -1}, "cpu": {"quota": -1}, "pids": {"limit": 0}}"#,
    ))
    .unwrap();
    let m = tmp.path().join("memory/berth/c1");
    assert_eq!(read(m.join("memory.limit_in_bytes")), "-1");
    // memory+swap follows an unlimited memory limit when swap is not given.
    assert_eq!(read(m.join("memory.memsw.limit_in_bytes")), "-1");
    assert_eq!(
        read(tmp.path().join("cpu,cpuacct/berth/c1/cpu.cfs_quota_us")),
        "-1"
    );
    assert_eq!(read(tmp.path().join("pids/berth/c1/pids.max")), "max");
}

#[test]
fn memsw_goes_first_when_memory_plus_swap_grows() {
    // current limit 100M: raising to 300M/600M must write memsw first.
    assert!(swap_first(Some(100 << 20), 600 << 20));
    // lowering from 300M to 100M/200M: the limit first.
    assert!(!swap_first(Some(300 << 20), 200 << 20));
    // unlimited swap always first; unknown current limit: limit first.
    assert!(swap_first(Some(100), -1));
    assert!(!swap_first(None, 100));
}

#[test]
fn missing_files_name_the_setting_and_file() {
    let tmp = tempfile::tempdir().unwrap();
    let cg = cgroup(tmp.path());
    let m = tmp.path().join("memory/berth/c1");
    std::fs::remove_file(m.join("memory.memsw.limit_in_bytes")).unwrap();
    let err = cg
        .apply(&resources(r#"{"memory": {"limit": 100, "swap": 200}}"#))
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("memory.swap") && msg.contains("memory.memsw.limit_in_bytes"),
        "{msg}"
    );
    // Without swap accounting an unlimited limit does not invent a swap write.
    cg.apply(&resources(r#"{"memory": {"limit": -1}}"#))
        .unwrap();

    let err = cg
        .apply(&resources(r#"{"blockIO": {"leafWeight": 10}}"#))
        .unwrap_err();
    assert!(err.to_string().contains("blkio.leaf_weight"), "{err}");
    std::fs::remove_file(tmp.path().join("blkio/berth/c1/blkio.bfq.weight")).unwrap();
    let err = cg
        .apply(&resources(r#"{"blockIO": {"weight": 10}}"#))
        .unwrap_err();
    assert!(err.to_string().contains("blkio.weight"), "{err}");
    let err = cg.apply(&resources(
        r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 1}]}"#,
    ));
    assert!(err
        .unwrap_err()
        .to_string()
        .contains("hugetlb controller is not mounted"));
    let err = cg
        .apply(&resources(r#"{"unified": {"memory.high": "1"}}"#))
        .unwrap_err();
    assert!(matches!(err, CgroupError::Unsupported { .. }), "{err}");
    let err = cg
        .apply(&resources(r#"{"network": {"classID": 1}}"#))
        .unwrap_err();
    assert!(err.to_string().contains("net_cls"), "{err}");
}

#[test]
fn swappiness_over_100_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let cg = cgroup(tmp.path());
    let err = cg
        .apply(&resources(r#"{"memory": {"swappiness": 101}}"#))
        .unwrap_err();
    assert!(err.to_string().contains("swappiness"), "{err}");
}

#[test]
fn cpuset_is_copied_from_the_parent_into_new_dirs() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = v1_layout(tmp.path());
    for d in ["cpuset/berth", "cpuset/berth/c1"] {
        populate(&tmp.path().join(d), &["cpuset.cpus", "cpuset.mems"]);
    }
    Cgroup::create(&layout, "/berth/c1", None).unwrap();
    assert_eq!(read(tmp.path().join("cpuset/berth/cpuset.cpus")), "0-1");
    assert_eq!(read(tmp.path().join("cpuset/berth/c1/cpuset.cpus")), "0-1");
    assert_eq!(read(tmp.path().join("cpuset/berth/c1/cpuset.mems")), "0");
}

#[test]
fn v1_only_layout_has_no_unified_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let cg = cgroup(tmp.path());
    assert_eq!(cg.unified_path(), None);
    assert_eq!(cg.paths().len(), 7);
    assert!(matches!(v1_layout(tmp.path()), Layout::V1 { .. }));
}
