//! How the runtime is invoked: berth's binary called `berth-runtime` is
//! `berth runtime`, the name containerd and podman are configured with.

use berth_tests::{cmd, Bundle, Container, Runtime};
use serde_json::Value;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

#[test]
fn berth_runtime_name_behaves_as_berth_runtime() {
    let rt = Runtime::new();
    if !rt.is_berth() {
        // The name only means something to berth's binary; check the one
        // thing every runtime has, so this test still proves the runtime runs.
        let out = cmd::run(rt.command(&["--version"]), None, rt.timeout());
        out.assert_ok();
        let program = Path::new(&rt.argv()[0]).file_name().unwrap();
        assert!(
            out.stdout.contains(&*program.to_string_lossy()),
            "--version does not name the runtime: {out}"
        );
        eprintln!(
            "runtime under test is {:?}, not berth: only `--version` checked, \
             the `berth-runtime` name applies to berth's binary alone",
            rt.argv()
        );
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let link = dir.path().join("berth-runtime");
    symlink(&rt.argv()[0], &link).expect("symlink berth-runtime");
    let alias = |args: &[&str]| {
        let mut c = Command::new(&link);
        c.arg("--root").arg(rt.root()).args(args);
        cmd::run(c, None, rt.timeout())
    };

    let version = alias(&["--version"]);
    version.assert_ok();
    assert!(
        version.stdout.starts_with("berth-runtime "),
        "unexpected version line: {version}"
    );
    let features = alias(&["features"]);
    features.assert_ok();
    let f: Value = serde_json::from_str(&features.stdout)
        .unwrap_or_else(|e| panic!("features printed invalid JSON ({e}): {features}"));
    assert!(f["ociVersionMax"].is_string(), "{features}");

    let mut b = Bundle::new();
    b.sh("echo via-alias; echo $$; exit 5");
    let c = Container::new(&rt, b);
    let bundle = c.bundle().path().to_string_lossy().into_owned();
    let out = alias(&["run", "-b", &bundle, c.id()]);
    out.assert_code(5);
    assert_eq!(out.lines(), ["via-alias", "1"], "{out}");
    c.assert_no_leaks();
}
