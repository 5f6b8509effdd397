//! The list of berth's default plugins: the one place that names them. The
//! build script (which builds, embeds and compiles each) and the library
//! (which exposes them) both read it, and the binary registers what the
//! library exposes, so adding a default plugin is one line in [`DEFAULTS`]
//! plus its crate under `plugins/`.

/// What a plugin is for: which WIT world it implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A storage driver (`storage-driver`).
    Storage,
    /// An image fetcher (`image-fetcher`).
    Fetcher,
    /// A network plugin (`network-plugin`).
    Network,
}

impl Kind {
    /// The WIT world a plugin of this kind implements (`sdk/wit/worlds.wit`).
    pub const fn world(self) -> &'static str {
        match self {
            Kind::Storage => "storage-driver",
            Kind::Fetcher => "image-fetcher",
            Kind::Network => "network-plugin",
        }
    }

    /// What a plugin of this kind is called in prose.
    pub const fn noun(self) -> &'static str {
        match self {
            Kind::Storage => "storage driver",
            Kind::Fetcher => "image fetcher",
            Kind::Network => "network plugin",
        }
    }
}

/// One default plugin.
#[derive(Debug, Clone, Copy)]
pub struct DefaultPlugin {
    /// Its kind.
    pub kind: Kind,
    /// The name berth.toml and the command line use (`storage-driver =
    /// "vfs"`, `network create -d bridge`); unique within its kind.
    pub name: &'static str,
    /// Its crate, `plugins/<package>` (the component is `<package>` with
    /// `_` for `-`, `.wasm`).
    pub package: &'static str,
    /// What it does, for the docs.
    pub about: &'static str,
}

const fn plugin(
    kind: Kind,
    name: &'static str,
    package: &'static str,
    about: &'static str,
) -> DefaultPlugin {
    DefaultPlugin {
        kind,
        name,
        package,
        about,
    }
}

/// berth's default plugins. Within a kind, the order is the one error
/// messages list the names in.
#[rustfmt::skip]
pub const DEFAULTS: &[DefaultPlugin] = &[
    plugin(Kind::Storage, "overlay", "storage-overlay", "overlayfs"),
    plugin(Kind::Storage, "vfs", "storage-vfs", "full copies; works on any filesystem"),
    plugin(Kind::Fetcher, "registry", "fetch-registry", "OCI distribution over wasi:http"),
    plugin(Kind::Fetcher, "archive", "fetch-archive", "OCI layouts, OCI archives, `docker save` tars"),
    plugin(Kind::Network, "bridge", "network-bridge", "Linux bridge, veth pairs, IPAM, NAT"),
];
