//! The plugin's optional `config.json` in its root: registry mirrors.
//!
//! ```json
//! {"mirrors": {"docker.io": ["mirror.example:5000", "http://127.0.0.1:5001"]}}
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

/// The plugin's configuration.
#[derive(Debug, Default, Deserialize)]
pub struct Config {
    /// Mirrors per registry (`docker.io`, `host:port`), tried in order before it.
    #[serde(default)]
    pub mirrors: BTreeMap<String, Vec<String>>,
}

impl Config {
    /// Reads `path`; a missing or unreadable file is an empty configuration.
    pub fn load(path: &str) -> Config {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                berth_sdk::log::warn(&format!("ignoring {path}: {e}"));
                Config::default()
            }),
            Err(_) => Config::default(),
        }
    }

    /// The mirrors of `registry`.
    pub fn mirrors(&self, registry: &str) -> &[String] {
        self.mirrors.get(registry).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_per_registry() {
        let c: Config =
            serde_json::from_str(r#"{"mirrors":{"docker.io":["m1","http://127.0.0.1:5001"]}}"#)
                .unwrap();
        assert_eq!(c.mirrors("docker.io"), ["m1", "http://127.0.0.1:5001"]);
        assert!(c.mirrors("ghcr.io").is_empty());
        assert!(Config::load("/nonexistent/config.json").mirrors.is_empty());
    }
}
