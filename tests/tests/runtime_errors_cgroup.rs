//! A limit the kernel refuses: the run fails naming the cgroup file and
//! value, exits 1 as runc does, and leaves no cgroup directory behind.

use berth_tests::{Bundle, Container, Runtime};
use serde_json::json;

#[test]
fn a_cpuset_the_kernel_refuses_fails_cleanly() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    // CPU 4095 does not exist on any machine this runs on: the kernel says EINVAL.
    b.sh("true").resources(json!({"cpu": {"cpus": "4095"}}));
    let c = Container::new(&rt, b);
    let out = c.run();
    out.assert_code(1);
    rt.expect_message(&out, &["cpuset.cpus", "4095"]);
    c.assert_no_leaks();
    assert!(
        rt.list_ids().is_empty(),
        "list is not empty after a failed run"
    );
}

#[test]
fn a_memory_limit_below_what_the_kernel_allows_fails_cleanly() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    // A swap limit below the memory limit is refused by the kernel (EINVAL).
    b.sh("true")
        .resources(json!({"memory": {"limit": 67108864, "swap": 33554432}}));
    let c = Container::new(&rt, b);
    let out = c.run();
    out.assert_code(1);
    rt.expect_message(&out, &["memory"]);
    c.assert_no_leaks();
}
