//! Getting images in: pulling from a registry (with the registry's grants,
//! mirrors and credentials from berth.toml) and loading archives, both
//! through an image-fetcher plugin, then unpacking the missing layers.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use berth_host::{Descriptor, FetcherPlugin, Grants};
use oci_spec::image::{ImageConfiguration, ImageManifest};

use super::plugins::plugin_spec;
use super::{host_platform, parse_platform, Engine};
use crate::config::PluginKind;
use crate::error::{EngineError, Result};
use crate::images::ImageRecord;
use crate::layers::{self, DigestReader};
use crate::progress::{CountingReader, CountingStore, Progress};
use crate::reference::Reference;

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
    /// Pulls an image from its registry.
    pub async fn pull(
        &self,
        reference: &str,
        platform: Option<&str>,
        progress: Arc<dyn Progress>,
    ) -> Result<String> {
        self.pull_as(reference, platform, None, progress).await
    }

    /// Pulls with `credentials` (a client's `X-Registry-Auth`) instead of
    /// berth.toml's for the image's registry.
    pub async fn pull_as(
        &self,
        reference: &str,
        platform: Option<&str>,
        credentials: Option<berth_host::Credentials>,
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
        if let Some(c) = credentials {
            spec.grants.credentials.insert(r.registry.clone(), c);
        }
        let mirrors = self.write_mirrors(&spec.grants.root)?;
        for (authority, http) in mirrors.get(&r.registry).into_iter().flatten() {
            self.grant_registry(&mut spec.grants, authority, *http);
        }
        let fetcher = self.host.load_fetcher(spec)?;
        let full = r.full();
        let store: Arc<dyn berth_host::ContentStore> = self.content.clone();
        // The trust policy first: a pull it refuses stores nothing; a
        // verified one pulls exactly the digest its signature covers.
        let (source, signers) = match crate::trust::policy_for(&self.config.trust, &r.name()) {
            Some(t) => self.check_trust(&fetcher, &r, t).await?,
            None => (full.clone(), Vec::new()),
        };
        let resolved = fetcher.resolve(&source, &platform, store).await?;
        self.import(
            &full,
            &source,
            &resolved.manifest,
            &fetcher,
            progress,
            signers,
        )
        .await?;
        self.remember_sources(&r.name(), &resolved.manifest.digest);
        Ok(resolved.manifest.digest)
    }

    /// Lets a fetcher reach `registry` (`host[:port]`): over plain http when
    /// it is on loopback, configured insecure or named `http://` (`http`), with
    /// the credentials berth.toml gives it.
    pub(super) fn grant_registry(&self, grants: &mut Grants, registry: &str, http: bool) {
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
    pub(super) fn write_mirrors(
        &self,
        dir: &Path,
    ) -> Result<BTreeMap<String, Vec<(String, bool)>>> {
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
        self.import(
            &name,
            &reference,
            &resolved.manifest,
            &fetcher,
            progress,
            Vec::new(),
        )
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
        signers: Vec<crate::trust::Signer>,
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
        // An image the name pointed at before stays, dangling (docker's
        // `<none>:<none>` after a pull of a newer image under its tag).
        self.images.name(
            Some(name),
            ImageRecord {
                manifest: manifest.digest.clone(),
                config: cfg_desc.digest,
                chain,
                added: berth_runtime::state::now_rfc3339(),
                parent: None,
                signers,
            },
        )
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
