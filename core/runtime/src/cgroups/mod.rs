//! cgroups (placeholder being written)
