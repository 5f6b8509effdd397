//! What holds a plugin call to its deadline and memory cap outside wasm
//! code: the heap memory the host allocates while it runs the call
//! (resource-table entries, `wasi:http` fields and requests, stream buffers
//! — everything allocated while the call's future is polled) is counted
//! against the call's cap together with its linear memory; and a host or
//! WASI call that blocks the thread (opening a FIFO, reading a terminal)
//! past the deadline is interrupted with a signal, as the epoch deadline
//! cannot reach into a blocking system call.
//!
//! The counting needs [`CountingAlloc`] as the process's global allocator
//! (berth's binary installs it); [`counting`] tells whether it is.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Context, Poll};
use std::time::Instant;

use crate::streams::lock;

/// The system allocator, counting what is allocated and freed on a thread
/// while it polls a plugin call, for that call.
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingAlloc;

thread_local! {
    /// The counter of the call this thread polls, or null. Const-initialised
    /// with no destructor: safe to use from the allocator.
    static CURRENT: Cell<*const AtomicIsize> = const { Cell::new(std::ptr::null()) };
}

#[inline]
fn charge(delta: isize) {
    let _ = CURRENT.try_with(|c| {
        let p = c.get();
        if !p.is_null() {
            // SAFETY: `p` is set only by `Entered`, which points it at the
            // counter of a `Watch` it holds an `Arc` of and resets it before
            // dropping that `Arc`; only this thread reads its slot.
            unsafe { &*p }.fetch_add(delta, Ordering::Relaxed);
        }
    });
}

// SAFETY: every method hands the request to `System` unchanged and only
// counts sizes on the side; it allocates nothing itself.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on to System as it is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            charge(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            charge(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `alloc`.
        unsafe { System.dealloc(ptr, layout) };
        charge(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            charge(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Whether [`CountingAlloc`] is the global allocator (an allocation made
/// while a counter is set shows up in it).
pub fn counting() -> bool {
    static ANSWER: OnceLock<bool> = OnceLock::new();
    *ANSWER.get_or_init(|| {
        let counter = AtomicIsize::new(0);
        CURRENT.with(|c| c.set(&counter));
        let b = std::hint::black_box(Box::new([0u8; 64]));
        CURRENT.with(|c| c.set(std::ptr::null()));
        drop(b);
        counter.load(Ordering::Relaxed) >= 64
    })
}

/// One running call, as the watchdog and the allocator see it.
#[derive(Debug)]
pub(crate) struct Watch {
    deadline: Instant,
    /// Net bytes the host allocated while polling the call.
    host: AtomicIsize,
    /// The thread polling the call right now, if any.
    polling: Mutex<Option<libc::pthread_t>>,
}

/// Every running call (weakly: a finished call's entry just fails to upgrade).
static RUNNING: Mutex<Vec<Weak<Watch>>> = Mutex::new(Vec::new());

/// The signal that interrupts a blocked thread: SIGURG, ignored by default
/// (so one arriving early harms nothing), with a handler that does nothing
/// and no SA_RESTART, so the blocking call returns EINTR.
const INTERRUPT: libc::c_int = libc::SIGURG;

extern "C" fn interrupted(_: libc::c_int) {}

/// Installs the handler of [`INTERRUPT`] (once).
pub(crate) fn install_handler() -> std::io::Result<()> {
    static DONE: OnceLock<std::io::Result<()>> = OnceLock::new();
    let r = DONE.get_or_init(|| {
        // SAFETY: a zeroed sigaction is a valid starting value; the handler
        // is async-signal-safe (it does nothing); SA_ONSTACK uses the
        // thread's alternate stack when it has one (wasmtime's threads do).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = interrupted as extern "C" fn(libc::c_int) as usize;
            sa.sa_flags = libc::SA_ONSTACK;
            libc::sigemptyset(&mut sa.sa_mask);
            if libc::sigaction(INTERRUPT, &sa, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    });
    match r {
        Ok(()) => Ok(()),
        Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
    }
}

impl Watch {
    /// Registers a call ending at `deadline`.
    pub(crate) fn start(deadline: Instant) -> Arc<Watch> {
        let w = Arc::new(Watch {
            deadline,
            host: AtomicIsize::new(0),
            polling: Mutex::new(None),
        });
        let mut running = lock(&RUNNING);
        running.retain(|w| w.strong_count() > 0);
        running.push(Arc::downgrade(&w));
        w
    }

    /// Net bytes of host memory allocated for the call so far (0 when less
    /// was freed than allocated).
    pub(crate) fn host_bytes(&self) -> usize {
        self.host.load(Ordering::Relaxed).max(0) as usize
    }

    /// `fut`, counted and watched whenever it is polled.
    pub(crate) fn watched<F: Future>(self: &Arc<Self>, fut: F) -> Watched<F> {
        Watched {
            fut: Box::pin(fut),
            watch: self.clone(),
        }
    }

    fn enter(self: &Arc<Self>) -> Entered {
        // SAFETY: pthread_self has no preconditions.
        *lock(&self.polling) = Some(unsafe { libc::pthread_self() });
        let previous = CURRENT.with(|c| c.replace(&self.host));
        Entered {
            watch: self.clone(),
            previous,
        }
    }
}

/// While it lives, the thread counts for the call and may be interrupted.
struct Entered {
    watch: Arc<Watch>,
    previous: *const AtomicIsize,
}

impl Drop for Entered {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.previous));
        *lock(&self.watch.polling) = None;
    }
}

/// A call's future under its [`Watch`].
pub(crate) struct Watched<F> {
    fut: Pin<Box<F>>,
    watch: Arc<Watch>,
}

impl<F: Future> Future for Watched<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let _e = this.watch.enter();
        this.fut.as_mut().poll(cx)
    }
}

/// Interrupts every thread still polling a call past its deadline (called
/// by the epoch ticker at each tick). The slot's lock is held while
/// signalling, so the signal lands while that thread polls the call and
/// never in other work it goes on to.
pub(crate) fn interrupt_overdue() {
    let now = Instant::now();
    let running: Vec<Arc<Watch>> = lock(&RUNNING).iter().filter_map(Weak::upgrade).collect();
    for w in running {
        if now < w.deadline {
            continue;
        }
        let polling = lock(&w.polling);
        if let Some(thread) = *polling {
            // SAFETY: `thread` is alive: it clears the slot (under this
            // lock) before it leaves the call's poll.
            unsafe { libc::pthread_kill(thread, INTERRUPT) };
        }
    }
}
