//! Test harness for berth's integration tests: runs real containers as root
//! through an OCI runtime command line (berth's `berth runtime`, or runc).
//!
//! The runtime under test is chosen by `BERTH_TEST_RUNTIME` (a command line,
//! e.g. `runc` or `/path/to/berth runtime`); by default it is
//! `<workspace>/target/debug/berth runtime`. `BERTH_TEST_PROFILE=release`
//! tests `target/release/berth` instead, there and in the daemon and image
//! tests ([`binary`]).
//!
//! ```no_run
//! use berth_tests::{Bundle, Container, Runtime};
//! let rt = Runtime::new();
//! let mut b = Bundle::new();
//! b.sh("hostname").hostname("box");
//! let c = Container::new(&rt, b);
//! assert_eq!(c.run().assert_ok().stdout.trim(), "box");
//! c.assert_no_leaks();
//! ```

pub mod berth;
pub mod binary;
pub mod bundle;
pub mod caps;
pub mod cgroup;
pub mod cmd;
pub mod config;
pub mod console;
pub mod container;
pub mod crafted;
pub mod daemon;
pub mod dockerd;
pub mod images;
pub mod layouts;
pub mod leak;
pub mod netns;
pub mod poll;
pub mod proxy;
pub mod registry;
pub mod rootfs;
pub mod runtime;

pub use berth::Berth;
pub use bundle::Bundle;
pub use cmd::{ok, Output, Spawned};
pub use console::{ConsoleSocket, Pty};
pub use container::Container;
pub use daemon::Daemon;
pub use netns::NetNs;
pub use poll::until;
pub use proxy::Proxy;
pub use registry::Registry;
pub use runtime::Runtime;

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

/// Fails the test unless it runs as root: these tests need namespaces,
/// cgroups and mounts, and a test that cannot run must not pass quietly.
pub fn require_root() {
    if !nix::unistd::geteuid().is_root() {
        panic!("berth integration tests must run as root (they create namespaces, cgroups and mounts); run them with sudo or as root in CI");
    }
}

/// Fails the test with a message naming `feature` when `path` is missing.
pub fn require_path(path: &str, feature: &str) {
    if !Path::new(path).exists() {
        panic!("kernel feature missing: {feature} ({path} does not exist)");
    }
}

/// A name unique to this test process and call: `<prefix>-<pid>-<counter>`.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// Every non-directory path below `dir` (recursively); a missing dir is empty.
pub fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            // Never through a symlink: layers hold links to anywhere (`/tmp`).
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
