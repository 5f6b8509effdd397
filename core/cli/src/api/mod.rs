//! The Docker Engine API as berth serves it: serde types for the requests
//! and responses of containers, images, networks, volumes, exec and system,
//! which the daemon (`crate::daemon`) writes and the client
//! (`crate::client`) reads — neither side builds or indexes untyped JSON.
//!
//! Field names are docker's (`PascalCase`, with its exceptions renamed);
//! where docker omits a field the type says so (`skip_serializing_if`), and
//! where it sends `null` the field is an `Option` that is always written.

pub mod containers;
pub mod exec;
pub mod images;
pub mod networks;
pub mod stats;
pub mod system;
pub mod units;
pub mod volumes;

use std::path::PathBuf;

use anyhow::{bail, Result};
use serde::{Deserialize, Deserializer, Serialize};

/// Lowest and highest API version served (docker 28 speaks 1.50).
pub const MIN_API: (u32, u32) = (1, 24);
pub const MAX_API: (u32, u32) = (1, 50);
pub const API_VERSION: &str = "1.50";

/// Parses `unix://PATH` (or a bare path).
pub fn socket_path(host: &str) -> Result<PathBuf> {
    if let Some(p) = host.strip_prefix("unix://") {
        return Ok(PathBuf::from(p));
    }
    if host.starts_with('/') {
        return Ok(PathBuf::from(host));
    }
    bail!("unsupported host {host:?}: berth's client talks to unix sockets (unix:///path)")
}

/// An error answer: `{"message": …}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub message: String,
}

/// `{"Id": …}`: what creating an exec instance answers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IdResponse {
    pub id: String,
}

/// A field docker may send as `null` where berth wants the empty value.
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// docker's `filters` query: `{"status": ["exited"]}`, or old clients'
/// `{"status": {"exited": true}}`; the values per key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Filters(pub std::collections::BTreeMap<String, FilterValues>);

/// The values of one filter key, in either of docker's shapes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FilterValues {
    List(Vec<String>),
    Set(std::collections::BTreeMap<String, bool>),
}

impl FilterValues {
    /// The values, whichever shape they came in.
    pub fn values(&self) -> Vec<String> {
        match self {
            FilterValues::List(l) => l.clone(),
            FilterValues::Set(m) => m.keys().cloned().collect(),
        }
    }
}
