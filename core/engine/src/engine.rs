//! The engine: pull, load, save, tag, remove and run images, with the
//! storage driver and image fetchers as plugins and the runtime underneath.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use berth_host::{
    Compiler, Descriptor, FetcherPlugin, Grants, Platform, PluginHost, PluginSpec, StoragePlugin,
    WasmSource,
};
use oci_spec::image::{ImageConfiguration, ImageManifest};

use crate::builtins::Builtins;
use crate::config::{Config, PluginKind};
use crate::content::ContentStore;
use crate::error::{EngineError, Result};
use crate::images::{ImageRecord, ImageStore};
use crate::layers::{self, DigestReader};
use crate::progress::{CountingReader, CountingStore, Progress};
use crate::reference::Reference;

/// What `images` shows for one name.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImageSummary {
    pub repository: String,
    pub tag: String,
    pub id: String,
    pub created: String,
    pub size: u64,
    pub full_name: String,
}

/// The engine over one root directory.
pub struct Engine {
    root: PathBuf,
    content: Arc<ContentStore>,
    images: ImageStore,
    host: PluginHost,
    storage: StoragePlugin,
    config: Config,
    builtins: Builtins,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("root", &self.root).finish()
    }
}

/// The platform of this machine, in OCI terms.
pub fn host_platform() -> Platform {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        other => other,
    };
    Platform {
        os: "linux".into(),
        architecture: arch.into(),
        variant: if arch == "arm64" {
            "v8".into()
        } else {
            String::new()
        },
    }
}

/// Parses `os/arch[/variant]`.
pub fn parse_platform(s: &str) -> Result<Platform> {
    let parts: Vec<&str> = s.split('/').collect();
    match parts.as_slice() {
        [os, arch] => Ok(Platform {
            os: os.to_string(),
            architecture: arch.to_string(),
            variant: String::new(),
        }),
        [os, arch, v] => Ok(Platform {
            os: os.to_string(),
            architecture: arch.to_string(),
            variant: v.to_string(),
        }),
        _ => Err(EngineError::Reference {
            reference: s.into(),
            reason: "a platform is os/arch[/variant], e.g. linux/amd64".into(),
        }),
    }
}

/// Reads the whole stream on drop, so a digest over it covers everything
/// even when the consumer stopped at the tar's end-of-archive blocks.
struct DrainOnDrop<R: Read>(R);
impl<R: Read> Read for DrainOnDrop<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}
impl<R: Read> Drop for DrainOnDrop<R> {
    fn drop(&mut self) {
        let _ = layers::drain(&mut self.0);
    }
}

impl Engine {
    /// Opens (or creates) the engine's state under `root`, with `berth.toml`
    /// from `config_path`; components that are neither built in nor in the
    /// compile cache are compiled by `compiler`.
    pub fn open(
        root: &Path,
        config_path: &Path,
        builtins: Builtins,
        compiler: Compiler,
    ) -> Result<Engine> {
        std::fs::create_dir_all(root).map_err(|e| EngineError::io("creating", root, e))?;
        let config = Config::load(config_path, &builtins)?;
        let content = Arc::new(ContentStore::open(root)?);
        let host = PluginHost::new(berth_host::HostConfig {
            // Compiled plugins may be shared between roots (the tests do):
            // entries are keyed by component digest and engine settings.
            cache_dir: std::env::var_os("BERTH_PLUGIN_CACHE")
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join("plugin-cache")),
            compiler,
            ..Default::default()
        })?;
        let driver = config
            .storage_driver
            .clone()
            .unwrap_or_else(|| "overlay".into());
        let storage = host.load_storage(plugin_spec(
            root,
            &config,
            &driver,
            PluginKind::Storage,
            &builtins,
        )?)?;
        Ok(Engine {
            root: root.to_path_buf(),
            content,
            images: ImageStore::open(root),
            host,
            storage,
            config,
            builtins,
        })
    }

    pub fn runtime(&self) -> berth_runtime::Runtime {
        berth_runtime::Runtime::new(self.root.join("runtime"))
    }

    /// Pulls an image from its registry.
    pub async fn pull(
        &self,
        reference: &str,
        platform: Option<&str>,
        progress: Arc<dyn Progress>,
    ) -> Result<String> {
        let r = Reference::parse(reference)?;
        let platform = match platform {
            Some(p) => parse_platform(p)?,
            None => host_platform(),
        };
        let mut spec = plugin_spec(
            &self.root,
            &self.config,
            "registry",
            PluginKind::Fetcher,
            &self.builtins,
        )?;
        self.grant_registry(&mut spec.grants, &r.registry, false);
        let mirrors = self.write_mirrors(&spec.grants.root)?;
        for (authority, http) in mirrors.get(&r.registry).into_iter().flatten() {
            self.grant_registry(&mut spec.grants, authority, *http);
        }
        let fetcher = self.host.load_fetcher(spec)?;
        let full = r.full();
        let store: Arc<dyn berth_host::ContentStore> = self.content.clone();
        let resolved = fetcher.resolve(&full, &platform, store).await?;
        self.import(&full, &full, &resolved.manifest, &fetcher, progress)
            .await?;
        Ok(resolved.manifest.digest)
    }

    /// Lets a fetcher reach `registry` (`host[:port]`): over plain http when
    /// it is on loopback, configured insecure or named `http://` (`http`), with
    /// the credentials berth.toml gives it.
    fn grant_registry(&self, grants: &mut Grants, registry: &str, http: bool) {
        let cfg = self.config.registry.get(registry);
        grants.registries.push(registry.to_owned());
        if http || crate::reference::is_loopback_host(registry) || cfg.is_some_and(|c| c.insecure) {
            grants.insecure_registries.push(registry.to_owned());
        }
        if let Some(cred) = cfg.and_then(credentials) {
            grants.credentials.insert(registry.to_owned(), cred);
        }
    }

    /// Writes the registry fetcher's `config.json` (its mirrors, from
    /// berth.toml) into its root `dir`, atomically, and returns each
    /// registry's mirrors as (`host[:port]`, named `http://`).
    fn write_mirrors(&self, dir: &Path) -> Result<BTreeMap<String, Vec<(String, bool)>>> {
        let mut parsed = BTreeMap::new();
        let mut json = serde_json::Map::new();
        for (registry, c) in &self.config.registry {
            if c.mirrors.is_empty() {
                continue;
            }
            let list = c
                .mirrors
                .iter()
                .map(|m| crate::config::mirror_authority(m))
                .collect::<Result<Vec<_>>>()?;
            json.insert(registry.clone(), serde_json::json!(c.mirrors));
            parsed.insert(registry.clone(), list);
        }
        let body = serde_json::to_vec(&serde_json::json!({ "mirrors": json }))
            .expect("a JSON map serializes");
        std::fs::create_dir_all(dir).map_err(|e| EngineError::io("creating", dir, e))?;
        let path = dir.join("config.json");
        let tmp = dir.join(format!(".config.json.{}", std::process::id()));
        std::fs::write(&tmp, body)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                EngineError::io("writing", &path, e)
            })?;
        Ok(parsed)
    }

    /// Loads images from an OCI layout directory, an OCI archive or a `docker save` tarball.
    pub async fn load(&self, path: &Path, progress: Arc<dyn Progress>) -> Result<Vec<String>> {
        let path = std::path::absolute(path).map_err(|e| EngineError::io("resolving", path, e))?;
        let reference = if path.is_dir() {
            format!("oci:{}", path.display())
        } else {
            let f = std::fs::File::open(&path).map_err(|e| EngineError::io("opening", &path, e))?;
            let mut has_docker_manifest = false;
            let mut ar = tar::Archive::new(f);
            for e in ar
                .entries()
                .map_err(|e| EngineError::io("reading archive", &path, e))?
            {
                let e = e.map_err(|e| EngineError::io("reading archive", &path, e))?;
                if e.path()
                    .map(|p| p.as_os_str() == "manifest.json")
                    .unwrap_or(false)
                {
                    has_docker_manifest = true;
                    break;
                }
            }
            if has_docker_manifest {
                format!("docker-archive:{}", path.display())
            } else {
                format!("oci-archive:{}", path.display())
            }
        };
        let mut spec = plugin_spec(
            &self.root,
            &self.config,
            "archive",
            PluginKind::Fetcher,
            &self.builtins,
        )?;
        spec.grants.read_paths.push(path.clone());
        let fetcher = self.host.load_fetcher(spec)?;
        let store: Arc<dyn berth_host::ContentStore> = self.content.clone();
        let resolved = fetcher.resolve(&reference, &host_platform(), store).await?;
        let name = Reference::parse(&resolved.name)
            .map_err(|_| EngineError::Image {
                name: resolved.name.clone(),
                reason: format!(
                    "{} names its image {:?}, which is not a valid reference",
                    path.display(),
                    resolved.name
                ),
            })?
            .full();
        self.import(&name, &reference, &resolved.manifest, &fetcher, progress)
            .await?;
        Ok(vec![name])
    }

    /// Fetches what is missing of an image and unpacks its layers.
    async fn import(
        &self,
        name: &str,
        reference: &str,
        manifest: &Descriptor,
        fetcher: &FetcherPlugin,
        progress: Arc<dyn Progress>,
    ) -> Result<()> {
        let store: Arc<dyn berth_host::ContentStore> = self.content.clone();
        let bad = |reason: String| EngineError::Image {
            name: name.into(),
            reason,
        };
        let m: ImageManifest = serde_json::from_slice(&self.content.read(&manifest.digest)?)
            .map_err(|e| {
                bad(format!(
                    "manifest {} is not an image manifest: {e}",
                    manifest.digest
                ))
            })?;
        let cfg_desc = Descriptor {
            media_type: m.config().media_type().to_string(),
            digest: m.config().digest().to_string(),
            size: m.config().size(),
        };
        if !self.content.has(&cfg_desc.digest) {
            fetcher.fetch(reference, &cfg_desc, store.clone()).await?;
        }
        let config: ImageConfiguration =
            serde_json::from_slice(&self.content.read(&cfg_desc.digest)?).map_err(|e| {
                bad(format!(
                    "config {} is not an image config: {e}",
                    cfg_desc.digest
                ))
            })?;
        let diff_ids = config.rootfs().diff_ids().clone();
        if diff_ids.len() != m.layers().len() {
            return Err(bad(format!(
                "the manifest has {} layers but the config lists {} diff ids",
                m.layers().len(),
                diff_ids.len()
            )));
        }
        let chain = layers::chain_ids(&diff_ids);
        let short = |l: &oci_spec::image::Descriptor| l.digest().to_string()[7..19].to_owned();
        let mut present = Vec::with_capacity(chain.len());
        for (l, id) in m.layers().iter().zip(&chain) {
            let has = self.storage.has_layer(id).await?;
            progress.status(
                &short(l),
                if has {
                    "Already exists"
                } else {
                    "Pulling fs layer"
                },
            );
            present.push(has);
        }
        for (i, l) in m.layers().iter().enumerate() {
            if present[i] {
                continue;
            }
            let short = &short(l);
            let desc = Descriptor {
                media_type: l.media_type().to_string(),
                digest: l.digest().to_string(),
                size: l.size(),
            };
            if !self.content.has(&desc.digest) {
                progress.status(short, "Downloading");
                let counting = CountingStore::new(store.clone(), progress.clone(), short);
                fetcher.fetch(reference, &desc, Arc::new(counting)).await?;
                progress.status(short, "Download complete");
            }
            progress.status(short, "Extracting");
            let comp = layers::compression(&desc.media_type).map_err(|_| {
                bad(format!(
                    "layer {} has the unsupported media type {}",
                    desc.digest, desc.media_type
                ))
            })?;
            let blob = CountingReader::new(
                self.content.open_blob(&desc.digest)?,
                progress.clone(),
                short,
                desc.size,
            );
            let (reader, digest) = DigestReader::new(layers::decompress(blob, comp)?);
            let parent = if i == 0 {
                None
            } else {
                Some(chain[i - 1].as_str())
            };
            self.storage
                .apply_layer(&chain[i], parent, Box::new(DrainOnDrop(reader)))
                .await?;
            if digest.digest() != diff_ids[i] {
                let _ = self.storage.remove(&chain[i]).await;
                return Err(bad(format!(
                    "layer {} unpacks to {} but the config says {}",
                    desc.digest,
                    digest.digest(),
                    diff_ids[i]
                )));
            }
            progress.status(short, "Pull complete");
        }
        self.images.set(
            name,
            ImageRecord {
                manifest: manifest.digest.clone(),
                config: cfg_desc.digest,
                chain,
                added: berth_runtime::state::now_rfc3339(),
            },
        )
    }

    /// Finds an image by name or id.
    pub fn image(&self, name_or_id: &str) -> Result<(String, ImageRecord)> {
        let full = Reference::parse(name_or_id).ok().map(|r| r.full());
        self.images
            .find(name_or_id, full.as_deref())?
            .ok_or_else(|| EngineError::ImageNotFound {
                name: name_or_id.into(),
            })
    }

    /// The image's config.
    pub fn image_config(&self, rec: &ImageRecord) -> Result<ImageConfiguration> {
        serde_json::from_slice(&self.content.read(&rec.config)?).map_err(|e| EngineError::Image {
            name: rec.config.clone(),
            reason: format!("config is not an image config: {e}"),
        })
    }

    /// Every image name with its summary.
    pub fn list_images(&self) -> Result<Vec<ImageSummary>> {
        let mut out = Vec::new();
        for (full, rec) in self.images.all()? {
            let r = Reference::parse(&full)?;
            let size = serde_json::from_slice::<ImageManifest>(&self.content.read(&rec.manifest)?)
                .map(|m| m.layers().iter().map(|l| l.size()).sum())
                .unwrap_or(0);
            let created = self
                .image_config(&rec)
                .ok()
                .and_then(|c| c.created().clone())
                .unwrap_or_default();
            out.push(ImageSummary {
                repository: r.short_repository(),
                tag: r.tag.clone().unwrap_or_else(|| "<none>".into()),
                id: rec.config.clone(),
                created,
                size,
                full_name: full,
            });
        }
        Ok(out)
    }

    /// docker's image inspect JSON (`GET /images/{name}/json`).
    pub fn inspect_image(&self, name_or_id: &str) -> Result<serde_json::Value> {
        let (full, rec) = self.image(name_or_id)?;
        let cfg = self.image_config(&rec)?;
        let mut tags = Vec::new();
        let mut digests = Vec::new();
        for (n, r) in self.images.all()? {
            if r.config == rec.config {
                let r2 = Reference::parse(&n)?;
                tags.push(r2.short());
                digests.push(format!("{}@{}", r2.short_repository(), r.manifest));
            }
        }
        let size: u64 = serde_json::from_slice::<ImageManifest>(&self.content.read(&rec.manifest)?)
            .map(|m| m.layers().iter().map(|l| l.size()).sum())
            .unwrap_or(0);
        let _ = full;
        Ok(serde_json::json!({
            "Id": rec.config,
            "RepoTags": tags,
            "RepoDigests": digests,
            "Parent": "",
            "Comment": "",
            "Created": cfg.created(),
            "DockerVersion": "",
            "Author": cfg.author().clone().unwrap_or_default(),
            "Config": cfg.config(),
            "Architecture": cfg.architecture().to_string(),
            "Variant": cfg.variant(),
            "Os": cfg.os().to_string(),
            "Size": size,
            "VirtualSize": size,
            "GraphDriver": {"Name": self.storage.info().name, "Data": {}},
            "RootFS": {"Type": "layers", "Layers": cfg.rootfs().diff_ids()},
            "Metadata": {"LastTagTime": rec.added},
            "Manifest": rec.manifest,
            "ChainIDs": rec.chain,
        }))
    }

    /// Adds a name for an existing image.
    pub fn tag(&self, source: &str, target: &str) -> Result<()> {
        let (_, rec) = self.image(source)?;
        let t = Reference::parse(target)?;
        self.images.set(&t.full(), rec)
    }

    /// Removes an image name; the image's layers and blobs go when no name
    /// and no container uses them.
    pub async fn remove_image(&self, name_or_id: &str, force: bool) -> Result<Vec<String>> {
        let (full, rec) = self.image(name_or_id)?;
        if !force {
            if let Some(c) = self.containers_using(&rec.config)?.first() {
                return Err(EngineError::ImageInUse {
                    name: full,
                    container: c.clone(),
                });
            }
        }
        self.images.untag(&full)?;
        let mut removed = vec![format!("Untagged: {}", Reference::parse(&full)?.short())];
        if self
            .images
            .all()?
            .iter()
            .any(|(_, r)| r.config == rec.config)
        {
            return Ok(removed);
        }
        self.remove_unused_layers(&rec).await?;
        self.collect_blobs()?;
        removed.push(format!("Deleted: {}", rec.config));
        Ok(removed)
    }

    /// Removes the layers of `rec` that no recorded image uses, top first.
    /// A layer a container's snapshot still builds on stays (the driver
    /// refuses it); the container's end calls this again.
    async fn remove_unused_layers(&self, rec: &ImageRecord) -> Result<()> {
        self.remove_orphan_layers(&rec.config, &rec.chain).await
    }

    /// Removes the layers `chain` of image `config` that no recorded image
    /// uses, top first, if no name refers to the image any more.
    pub(crate) async fn remove_orphan_layers(&self, config: &str, chain: &[String]) -> Result<()> {
        let rest = self.images.all()?;
        if rest.iter().any(|(_, r)| r.config == config) {
            return Ok(());
        }
        let used: std::collections::HashSet<&String> =
            rest.iter().flat_map(|(_, r)| r.chain.iter()).collect();
        for id in chain.iter().rev() {
            if !used.contains(id) {
                let _ = self.storage.remove(id).await;
            }
        }
        Ok(())
    }

    /// Removes blobs no image refers to.
    fn collect_blobs(&self) -> Result<()> {
        let mut keep = std::collections::HashSet::new();
        for (_, r) in self.images.all()? {
            keep.insert(r.manifest.clone());
            keep.insert(r.config.clone());
            if let Ok(m) = serde_json::from_slice::<ImageManifest>(&self.content.read(&r.manifest)?)
            {
                for l in m.layers() {
                    keep.insert(l.digest().to_string());
                }
            }
        }
        for d in self.content.list()? {
            if !keep.contains(&d) {
                self.content.remove(&d)?;
            }
        }
        Ok(())
    }

    fn containers_using(&self, config: &str) -> Result<Vec<String>> {
        let dir = self.root.join("containers");
        let mut out = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                if std::fs::read_to_string(e.path().join("image"))
                    .ok()
                    .as_deref()
                    == Some(config)
                {
                    out.push(e.file_name().to_string_lossy().into_owned());
                }
            }
        }
        Ok(out)
    }

    /// Writes images to a tar that is both an OCI image layout and a
    /// `docker save` archive (manifest.json), as docker 25+ writes them.
    pub fn save(&self, names: &[String], out: &Path) -> Result<()> {
        crate::save::save(self, names, out)
    }

    pub(crate) fn content(&self) -> &ContentStore {
        &self.content
    }

    /// Loads the network plugin `name` (built-in or from berth.toml).
    pub(crate) fn load_network(
        &self,
        name: &str,
        net: &berth_host::Networking,
    ) -> Result<berth_host::NetworkPlugin> {
        let spec = plugin_spec(
            &self.root,
            &self.config,
            name,
            PluginKind::Network,
            &self.builtins,
        )?;
        Ok(self.host.load_network(spec, net)?)
    }

    pub(crate) fn storage(&self) -> &StoragePlugin {
        &self.storage
    }

    /// The configuration (`berth.toml`).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// berth's state root (`--root`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The storage driver's name (docker's `Driver`).
    pub fn storage_driver(&self) -> &str {
        &self.storage.info().name
    }
}

fn credentials(c: &crate::config::RegistryConfig) -> Option<berth_host::Credentials> {
    match (&c.username, &c.password, &c.token) {
        (Some(u), Some(p), _) => Some(berth_host::Credentials::Basic {
            username: u.clone(),
            password: p.clone(),
        }),
        (_, _, Some(t)) => Some(berth_host::Credentials::Bearer { token: t.clone() }),
        _ => None,
    }
}

/// The spec of a plugin: built-in or from `berth.toml`, with its grants.
fn plugin_spec(
    root: &Path,
    config: &Config,
    name: &str,
    kind: PluginKind,
    builtins: &Builtins,
) -> Result<PluginSpec> {
    let builtin = builtins.get(kind, name);
    let pc = config.plugin.get(name);
    if let Some(pc) = pc {
        if pc.kind != kind {
            return Err(EngineError::Config {
                path: PathBuf::from("berth.toml"),
                reason: format!(
                    "plugin {name} is a {:?} plugin, but is used as a {kind:?} plugin",
                    pc.kind
                ),
            });
        }
    }
    let wasm = match (pc.and_then(|p| p.wasm.clone()), builtin) {
        (Some(path), _) => WasmSource::File(path),
        (None, Some(builtin)) => WasmSource::Builtin(builtin),
        (None, None) => {
            return Err(EngineError::Config {
                path: PathBuf::from("berth.toml"),
                reason: format!(
                    "no plugin named {name:?}: built-in ones are {}; others need [plugin.{name}] with wasm = \"…\"",
                    builtins.describe()
                ),
            })
        }
    };
    let mut grants = Grants {
        root: root.join("plugins").join(name),
        // Real images carry device nodes (debootstrap's /dev/console, …). The
        // built-in drivers are ours and may make them; an external plugin only
        // when berth.toml grants it (it could open a node it made in its root).
        device_nodes: kind == PluginKind::Storage && pc.and_then(|p| p.wasm.as_ref()).is_none(),
        ..Default::default()
    };
    if let Some(pc) = pc {
        if let Some(d) = pc.device_nodes {
            grants.device_nodes = d;
        }
        if let Some(m) = pc.memory_limit_mib {
            grants.memory_limit = m << 20;
        }
        if let Some(t) = pc.timeout_secs {
            grants.timeout = Duration::from_secs(t);
        }
    }
    if kind == PluginKind::Network && builtin.is_some() && pc.is_none_or(|p| p.wasm.is_none()) {
        // The built-in bridge plugin: its own link names and the private
        // ranges, unless berth.toml says otherwise.
        grants.network.link_prefixes = vec!["berth".into(), "br-".into(), "veth".into()];
        grants.network.pools = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
            .iter()
            .map(|p| p.parse().expect("a valid CIDR"))
            .collect();
    }
    if let Some(pc) = pc {
        if !pc.link_prefixes.is_empty() {
            grants.network.link_prefixes = pc.link_prefixes.clone();
        }
        if !pc.macvlan_parents.is_empty() {
            grants.network.macvlan_parents = pc.macvlan_parents.clone();
        }
        if !pc.pools.is_empty() {
            grants.network.pools = pc
                .pools
                .iter()
                .map(|p| {
                    p.parse().map_err(|_| EngineError::Config {
                        path: PathBuf::from("berth.toml"),
                        reason: format!("[plugin.{name}] pools: {p:?} is not an IPv4 CIDR"),
                    })
                })
                .collect::<Result<_>>()?;
        }
    }
    Ok(PluginSpec {
        name: name.to_string(),
        wasm,
        grants,
    })
}
