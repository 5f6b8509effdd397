//! berth-sdk: write berth plugins (storage drivers, image fetchers, network
//! plugins) in Rust.
//!
//! A plugin is a crate built for `wasm32-wasip2` (`crate-type = ["cdylib", "rlib"]`)
//! that enables exactly one world feature of this crate (`storage-driver`,
//! `image-fetcher` or `network-plugin`), implements that world's trait and
//! exports it with one macro:
//!
//! ```ignore
//! use berth_sdk::fetcher::{BlobReader, BlobWriter, Descriptor, Error, ImageFetcher, Platform, Resolved};
//!
//! pub struct Hello;
//! impl ImageFetcher for Hello {
//!     fn resolve(reference: String, _: Platform) -> Result<Resolved, Error> {
//!         Err(Error::NotFound(reference))
//!     }
//!     fn fetch(_: String, blob: Descriptor, _: &BlobWriter) -> Result<(), Error> { Err(Error::NotFound(blob.digest)) }
//!     fn push(_: String, _: Descriptor, _: &BlobReader) -> Result<(), Error> { Err(Error::Other("read-only".into())) }
//! }
//! berth_sdk::export_fetcher!(Hello);
//! ```
//!
//! `plugins/storage-vfs`, `plugins/fetch-archive` and `plugins/network-bridge`
//! in berth's repository are complete examples. Keep plugin logic in plain
//! functions over the traits here ([`unpack::LayerFs`], a transport, a root
//! path) so it unit-tests natively;
//! everything in this crate compiles natively, where the export macros expand
//! to nothing and host imports must not be called.
//!
//! Plugin-independent pieces: [`tar_read`] / [`tar_write`] (OCI layer tars),
//! [`whiteout`], [`path`] cleaning, [`layerfs`] (the filesystem primitives
//! storage drivers work through), [`unpack`] (applying a layer through them),
//! [`diff`] (a snapshot's changes as a tar), [`snapshots`] (storage
//! bookkeeping), [`driver`] (the verbs every storage driver shares),
//! [`reference`] (docker/OCI image names), [`oci`] (manifests, indexes,
//! platform selection), [`digest`], [`io`] (wasi stream adapters and
//! host-side splicing), and for network plugins [`ipam`] (IPv4 subnets,
//! pools and leases) and [`links`] (interface names, veth names, MACs).

pub mod diff;
pub mod digest;
pub mod driver;
pub mod error;
pub mod io;
pub mod ipam;
pub mod layerfs;
pub mod links;
pub mod log;
pub mod oci;
pub mod path;
pub mod reference;
pub mod snapshots;
pub mod tar_read;
pub mod tar_write;
#[cfg(all(unix, any(test, feature = "testing")))]
pub mod testing;
pub mod unpack;
pub mod whiteout;
pub mod wit;

#[cfg(feature = "image-fetcher")]
pub mod fetcher;
#[cfg(feature = "network-plugin")]
pub mod network;
#[cfg(feature = "storage-driver")]
pub mod storage;

pub use error::{PluginError, SdkError};
