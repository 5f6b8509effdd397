//! Keeps the daemon's memory small: one malloc arena (see [`one_arena`]),
//! and memory given back once the daemon is idle: a moment after the last API
//! request (and once after start-up), the allocator's free memory goes back
//! to the system (`malloc_trim`), and the daemon lets go of the pages of
//! berth's own executable and of the compiled plugins that start-up and the
//! last requests brought in.
//!
//! Those pages are clean and file-backed: dropping the daemon's mapping of
//! them (MADV_DONTNEED) leaves them in the page cache, shared with the
//! containers' monitors that run the same binary, and the next request that
//! needs them maps them again with minor faults. Without this, every page of
//! code that ever ran stays counted in the daemon's resident set: start-up
//! alone (engine, plugins, networks) touches more code than an idle daemon
//! ever runs again.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long the daemon must be quiet before it trims.
const QUIET: Duration = Duration::from_millis(1000);

/// Makes every thread allocate from one glibc arena. By default each thread
/// that allocates gets an arena of its own (up to 8 per core), and what the
/// daemon's short-lived blocking threads left in theirs stays resident: with
/// one arena, a pull and a run leave a third as much behind. The daemon's
/// few threads hardly contend for it (small allocations come from each
/// thread's cache). Call before any thread is started.
pub fn one_arena() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes glibc's allocator settings; called before
    // the daemon starts any thread, nothing allocates concurrently.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Tracks requests in flight; trims after a quiet spell.
#[derive(Debug, Default)]
pub struct Idle {
    inflight: AtomicUsize,
    /// Something ran since the last trim.
    dirty: AtomicBool,
    wake: tokio::sync::Notify,
}

impl Idle {
    /// Starts the trimming task; the first trim comes once start-up is quiet.
    pub fn start() -> Arc<Idle> {
        let idle = Arc::new(Idle {
            dirty: AtomicBool::new(true),
            ..Default::default()
        });
        let i = idle.clone();
        tokio::spawn(async move {
            loop {
                // Woken by the end of a request (a permit is kept if none waits).
                if !i.dirty.load(Ordering::SeqCst) || i.inflight.load(Ordering::SeqCst) > 0 {
                    i.wake.notified().await;
                    continue;
                }
                // Quiet for a whole spell: no request began or ended during it.
                i.dirty.store(false, Ordering::SeqCst);
                tokio::time::sleep(QUIET).await;
                if i.dirty.load(Ordering::SeqCst) || i.inflight.load(Ordering::SeqCst) > 0 {
                    i.dirty.store(true, Ordering::SeqCst);
                    continue;
                }
                let _ = tokio::task::spawn_blocking(trim).await;
            }
        });
        idle
    }

    /// Marks a request as begun; dropping the guard marks it ended.
    pub fn begin(self: &Arc<Idle>) -> Busy {
        self.inflight.fetch_add(1, Ordering::SeqCst);
        self.dirty.store(true, Ordering::SeqCst);
        Busy(self.clone())
    }
}

/// A request in flight.
#[derive(Debug)]
pub struct Busy(Arc<Idle>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::SeqCst);
        self.0.dirty.store(true, Ordering::SeqCst);
        self.0.wake.notify_one();
    }
}

/// The axum middleware that tells [`Idle`] about requests.
pub async fn track(
    axum::extract::State(idle): axum::extract::State<Arc<Idle>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let _busy = idle.begin();
    next.run(req).await
}

/// Returns free heap memory and drops the daemon's mappings of clean pages of
/// its executable and of compiled plugins.
fn trim() {
    let start = std::time::Instant::now();
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only hands free memory of glibc's arenas back to
    // the system; it is thread-safe and touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let exe = std::fs::read_link("/proc/self/exe").unwrap_or_default();
    let mut dropped = 0usize;
    for (start, end, anonymous) in droppable(&smaps, &exe) {
        if anonymous != 0 {
            continue;
        }
        // SAFETY: [start, end) is a whole mapping that /proc/self/smaps shows
        // as private, not writable, backed by berth's executable or a
        // compiled plugin, and holding no anonymous page: every page of it is
        // the file's own clean page (no copy-on-write copy made by a
        // relocation, debugger breakpoint or uprobe). MADV_DONTNEED on such a
        // mapping only unmaps those pages; the mapping stays, and the next
        // access (from any thread) maps the same contents from the file
        // again. Nothing in berth writes to these mappings (they are not
        // writable), and neither the executable nor a cache file changes in
        // place while mapped (the cache is only ever renamed over).
        let r =
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        if r == 0 {
            dropped += end - start;
        }
    }
    tracing::debug!(
        "idle: heap trimmed, {} KiB of code and data unmapped, in {} µs",
        dropped / 1024,
        start.elapsed().as_micros()
    );
}

/// `(start, end, Anonymous kB)` of each mapping of `exe` or of a compiled
/// plugin (`*.cwasm`) that is private and not writable, from smaps text.
fn droppable(smaps: &str, exe: &std::path::Path) -> Vec<(usize, usize, u64)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let Some(first) = f.next() else { continue };
        if let Some((lo, hi)) = first.split_once('-') {
            if let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
            {
                // start-end perms offset dev inode path
                let perms = f.next().unwrap_or("");
                let path = f.nth(3).unwrap_or("");
                let ours = !path.is_empty()
                    && (std::path::Path::new(path) == exe || path.ends_with(".cwasm"));
                let fixed = perms.len() == 4 && !perms.contains('w') && perms.ends_with('p');
                current = (ours && fixed).then_some((lo, hi));
                continue;
            }
        }
        if first == "Anonymous:" {
            if let Some((lo, hi)) = current.take() {
                let kb = f.next().and_then(|v| v.parse().ok()).unwrap_or(u64::MAX);
                out.push((lo, hi, kb));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
00400000-00500000 r--p 00000000 fd:01 123 /usr/bin/berth
Size:               1024 kB
Rss:                 300 kB
Anonymous:             0 kB
00500000-00900000 r-xp 00100000 fd:01 123 /usr/bin/berth
Anonymous:             0 kB
00900000-00901000 r--p 00500000 fd:01 123 /usr/bin/berth
Anonymous:             4 kB
00901000-00902000 rw-p 00501000 fd:01 123 /usr/bin/berth
Anonymous:             4 kB
7f0000000000-7f0000100000 r-xp 00000000 fd:01 77 /var/lib/berth/plugin-cache/ab-48.0.8-01.cwasm
Anonymous:             0 kB
7f0000200000-7f0000300000 r-xp 00000000 fd:01 78 /usr/lib/x86_64-linux-gnu/libc.so.6
Anonymous:             0 kB
7f0000400000-7f0000500000 rw-p 00000000 00:00 0 
Anonymous:           100 kB
";

    #[test]
    fn only_read_only_mappings_of_berth_and_its_plugins_are_candidates() {
        let got = droppable(SMAPS, std::path::Path::new("/usr/bin/berth"));
        assert_eq!(
            got,
            vec![
                (0x400000, 0x500000, 0),
                (0x500000, 0x900000, 0),
                // Relocated read-only data: skipped by the caller.
                (0x900000, 0x901000, 4),
                (0x7f0000000000, 0x7f0000100000, 0),
            ]
        );
    }
}
