//! berth-engine: images, containers and their storage; the content store and
//! the image index on disk. It calls the runtime (berth-runtime) and the
//! plugins (through berth-host); the CLI and, later, the daemon call it.

pub mod build;
pub mod builtins;
pub mod bundle;
pub mod config;
pub mod containers;
pub mod content;
pub mod dockerfile;
pub mod engine;
pub mod error;
mod gz;
pub mod images;
pub mod layers;
pub mod monitor;
pub mod mount;
pub mod networks;
pub mod progress;
pub mod reference;
mod save;
pub mod sources;
pub mod store;
mod store_adapter;
pub mod trust;
pub mod userns;

pub use berth_host;
pub use builtins::Builtins;
pub use engine::{Engine, ImageSummary};
pub use error::{EngineError, Result};
pub use progress::{Progress, Quiet};
