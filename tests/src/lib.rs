//! Test harness for berth integration tests.
