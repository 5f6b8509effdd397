//! Container commands as a client of the daemon, with docker's flags and
//! output: run, create, start, stop, restart, kill, rm, ps, logs, exec,
//! inspect, wait, top, stats, rename, pause, unpause.

mod attach;
mod exec;
mod inspect;
mod lifecycle;
mod ps;
mod run;

pub use attach::logs;
pub use exec::{exec, ExecArgs};
pub use inspect::{inspect, stats, top};
pub use lifecycle::{
    commit, diff, kill, rename, rm, simple, stop, update, wait, CommitArgs, UpdateArgs,
};
pub use ps::{ps, PsArgs};
pub use run::{create, run, start, start_failure_code};
