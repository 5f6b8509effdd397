//! Starting processes in containers: the plan computed before clone, the
//! child's init that executes it, the sync protocol, and the parent side.

pub mod describe;
pub mod init;
pub mod plan;
pub mod prepare;
pub mod spawn;
pub mod sync;
