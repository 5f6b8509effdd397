//! The default plugins the binary embeds, by kind and name. The engine knows
//! no plugin by name: the binary fills [`Builtins`] from berth-plugins' one
//! list of defaults (`core/plugins/src/defaults.rs`), and berth.toml's checks
//! and the plugin lookup read it.

use berth_host::Builtin;

use crate::config::PluginKind;

/// The default plugins, embedded in the binary with their compiled forms:
/// each under its kind and the name berth.toml uses (`overlay`, `bridge`, …).
#[derive(Debug, Clone, Default)]
pub struct Builtins(Vec<(PluginKind, &'static str, Builtin)>);

impl Builtins {
    /// The built-in plugin of that kind and name.
    pub fn get(&self, kind: PluginKind, name: &str) -> Option<Builtin> {
        self.0
            .iter()
            .find(|(k, n, _)| *k == kind && *n == name)
            .map(|(_, _, b)| *b)
    }

    /// The names of the built-in plugins of a kind, in the order they were
    /// added.
    pub fn names(&self, kind: PluginKind) -> impl Iterator<Item = &'static str> + '_ {
        self.0
            .iter()
            .filter(move |(k, _, _)| *k == kind)
            .map(|(_, n, _)| *n)
    }

    /// All the names by kind, for an error message: `overlay, vfs (storage),
    /// registry, archive (fetchers), bridge (network)`.
    pub fn describe(&self) -> String {
        [
            (PluginKind::Storage, "storage"),
            (PluginKind::Fetcher, "fetchers"),
            (PluginKind::Network, "network"),
        ]
        .into_iter()
        .filter_map(|(kind, label)| {
            let names: Vec<_> = self.names(kind).collect();
            (!names.is_empty()).then(|| format!("{} ({label})", names.join(", ")))
        })
        .collect::<Vec<_>>()
        .join(", ")
    }
}

impl FromIterator<(PluginKind, &'static str, Builtin)> for Builtins {
    fn from_iter<I: IntoIterator<Item = (PluginKind, &'static str, Builtin)>>(iter: I) -> Self {
        Builtins(iter.into_iter().collect())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builtins with the default names and empty components, for tests that
    /// only look plugins up.
    pub(crate) fn named() -> Builtins {
        let b = Builtin {
            wasm: &[],
            wasm_sha256: "",
            precompiled: &[],
            precompiled_sha256: "",
            settings: 0,
        };
        [
            (PluginKind::Storage, "overlay"),
            (PluginKind::Storage, "vfs"),
            (PluginKind::Fetcher, "registry"),
            (PluginKind::Fetcher, "archive"),
            (PluginKind::Network, "bridge"),
        ]
        .into_iter()
        .map(|(kind, name)| (kind, name, b))
        .collect()
    }

    #[test]
    fn looks_up_by_kind_and_name_and_lists_the_names() {
        let b = named();
        assert!(b.get(PluginKind::Storage, "vfs").is_some());
        assert!(b.get(PluginKind::Fetcher, "vfs").is_none());
        assert!(b.get(PluginKind::Network, "macvlan").is_none());
        assert_eq!(
            b.describe(),
            "overlay, vfs (storage), registry, archive (fetchers), bridge (network)"
        );
        assert_eq!(Builtins::default().describe(), "");
    }
}
