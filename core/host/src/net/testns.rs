//! Test helpers: run a test on its own thread inside network namespaces it
//! creates, so tests never touch the machine's own network.

use std::fs::File;
use std::future::Future;
use std::os::fd::{AsFd, OwnedFd};

use super::enter_netns;

/// Runs `test` on a new thread that first moves into a new, empty network
/// namespace (the test's "host"). Only that thread, and the processes it
/// starts, are in the namespace; it goes away when the test ends.
pub(crate) fn in_new_netns<T: Send + 'static>(test: impl FnOnce() -> T + Send + 'static) -> T {
    let thread = std::thread::spawn(move || {
        unshare_netns();
        test()
    });
    match thread.join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Runs `future` to completion on a current-thread runtime of this thread.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("building a tokio runtime")
        .block_on(future)
}

/// A second network namespace (the test's "container"), created from the
/// calling thread, which stays where it was. The namespace lives as long as
/// the returned descriptor.
pub(crate) fn new_netns() -> OwnedFd {
    let here = File::open("/proc/thread-self/ns/net").expect("opening this thread's netns");
    unshare_netns();
    let other = File::open("/proc/thread-self/ns/net").expect("opening the new netns");
    enter_netns(here.as_fd()).expect("returning to the test's netns");
    other.into()
}

/// Reads a file of this thread's network namespace view (`/proc/sys/net`
/// resolves against the calling thread).
pub(crate) fn read_sysctl(path: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {path}: {e}"))
        .trim()
        .to_string()
}

fn unshare_netns() {
    // SAFETY: unshare takes no pointers; CLONE_NEWNET moves only the calling
    // thread into a new network namespace.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(
        rc,
        0,
        "unshare(CLONE_NEWNET) failed: {} — the network tests must run as root",
        std::io::Error::last_os_error()
    );
}
