//! berth-runtime: the privileged core of berth. It turns an OCI runtime bundle
//! into an isolated, resource-limited process (namespaces, mounts, pivot_root,
//! capabilities, seccomp, rlimits, cgroups v1/v2) and manages its lifecycle.
//! It knows nothing of images or plugins.

pub mod cgroups;
