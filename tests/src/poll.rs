//! Waiting for something to happen: the tests' one polling loop.
//!
//! [`until`] calls a check until it says it is done and panics, naming what
//! it waited for and what it saw last, when the deadline passes; [`poll`] is
//! the same loop for callers that must not panic (cleanup in `Drop`) or that
//! fail in their own words. The first check runs at once; the pause between
//! checks grows from 1 ms to 20 ms, so quick things are seen quickly and slow
//! ones are not checked in a busy loop.

use std::time::{Duration, Instant};

/// The longest pause between two checks.
const MAX_PAUSE: Duration = Duration::from_millis(20);

/// What a check returns: done (with the value [`until`] returns) or not yet
/// (with what it saw, for the message when time runs out).
pub trait Check {
    type Value;
    fn done(self) -> Result<Self::Value, String>;
}

/// Done when true.
impl Check for bool {
    type Value = ();
    fn done(self) -> Result<(), String> {
        if self {
            Ok(())
        } else {
            Err(String::new())
        }
    }
}

/// Done when `Some`, with its value.
impl<T> Check for Option<T> {
    type Value = T;
    fn done(self) -> Result<T, String> {
        self.ok_or_else(String::new)
    }
}

/// `(done, what was seen)`: the value is what was seen.
impl Check for (bool, String) {
    type Value = String;
    fn done(self) -> Result<String, String> {
        let (done, seen) = self;
        if done {
            Ok(seen)
        } else {
            Err(seen)
        }
    }
}

/// Calls `check` until it is done and returns its value; once `timeout` has
/// passed, returns what the last check saw instead. Never panics itself.
pub fn poll<C: Check>(timeout: Duration, mut check: impl FnMut() -> C) -> Result<C::Value, String> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        let seen = match check().done() {
            Ok(v) => return Ok(v),
            Err(seen) => seen,
        };
        if Instant::now() > deadline {
            return Err(seen);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// Calls `check` until it is done and returns its value; panics after
/// `timeout` with `what` and what the last check saw.
#[track_caller]
pub fn until<C: Check>(what: &str, timeout: Duration, check: impl FnMut() -> C) -> C::Value {
    match poll(timeout, check) {
        Ok(v) => v,
        Err(seen) if seen.is_empty() => panic!("timed out after {timeout:?} waiting for {what}"),
        Err(seen) => panic!("timed out after {timeout:?} waiting for {what}; last seen: {seen}"),
    }
}
