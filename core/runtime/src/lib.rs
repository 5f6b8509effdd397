//! berth-runtime: the privileged core of berth. It turns an OCI runtime bundle
//! into an isolated, resource-limited process (namespaces, mounts, pivot_root,
//! capabilities, seccomp, rlimits, cgroups v1/v2) and manages its lifecycle.
//! It knows nothing of images or plugins.

pub mod caps;
pub mod cgroups;
pub mod container;
pub mod error;
pub mod hooks;
pub mod paths;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod signal;
pub mod spec;
pub mod state;
pub mod supervise;
pub mod tty;

pub use container::{CreateOptions, ExecOptions, Runtime};
pub use error::{Result, RuntimeError};
pub use state::Status;
