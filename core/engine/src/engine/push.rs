//! Pushing an image to its registry through the registry fetcher: each
//! layer, then the config, then the manifest with its exact bytes (the
//! registry's digest is the one berth has). The fetcher reports how each
//! blob went (uploaded, already there, mounted from another repository) and
//! learns from [`BlobSources`] where a mount may come from; the progress
//! shown is docker's (`Preparing`, `Pushing` with bytes, `Pushed`,
//! `Layer already exists`, `Mounted from …`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use berth_host::{Credentials, Descriptor, PushLedger, PushOutcome};
use oci_spec::image::{ImageConfiguration, ImageManifest};

use super::plugins::plugin_spec;
use super::Engine;
use crate::config::PluginKind;
use crate::error::{EngineError, Result};
use crate::progress::Progress;
use crate::reference::Reference;
use crate::sources::BlobSources;

/// What a push made: the tag, the manifest's digest and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The tag pushed.
    pub tag: String,
    /// The manifest's digest.
    pub digest: String,
    /// The manifest's size in bytes.
    pub size: u64,
}

/// The ledger of one push: sources on the target registry, outcomes, bytes.
struct Ledger {
    registry: String,
    sources: Arc<BlobSources>,
    progress: Arc<dyn Progress>,
    /// Digest → (the id progress shows, size, the last position shown).
    shown: HashMap<String, (String, u64)>,
    reported: Mutex<HashMap<String, u64>>,
    outcomes: Mutex<HashMap<String, PushOutcome>>,
}

/// Bytes between two progress reports.
const STEP: u64 = 512 * 1024;

impl PushLedger for Ledger {
    fn sources(&self, digest: &str) -> Vec<String> {
        self.sources.on(&self.registry, digest)
    }

    fn pushed(&self, digest: &str, outcome: PushOutcome) {
        self.outcomes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(digest.to_owned(), outcome);
    }

    fn read_to(&self, digest: &str, position: u64) {
        let Some((id, size)) = self.shown.get(digest) else {
            return;
        };
        let mut reported = self.reported.lock().unwrap_or_else(|e| e.into_inner());
        let last = reported.entry(digest.to_owned()).or_insert(0);
        if position < *last || position - *last >= STEP || position == *size {
            *last = position;
            self.progress.bytes(id, position, *size);
        }
    }
}

fn descriptor(d: &oci_spec::image::Descriptor) -> Descriptor {
    Descriptor {
        media_type: d.media_type().to_string(),
        digest: d.digest().to_string(),
        size: d.size(),
    }
}

/// The manifest's media type: as it declares itself, else by its config's.
fn manifest_media_type(bytes: &[u8], m: &ImageManifest) -> String {
    let declared = serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v["mediaType"].as_str().map(str::to_owned));
    declared.unwrap_or_else(|| {
        if m.config()
            .media_type()
            .to_string()
            .starts_with("application/vnd.docker.")
        {
            "application/vnd.docker.distribution.manifest.v2+json".into()
        } else {
            "application/vnd.oci.image.manifest.v1+json".into()
        }
    })
}

impl Engine {
    /// Pushes the image named `reference` (which must be one of its tags)
    /// to its registry, with `credentials` (from the client's
    /// `X-Registry-Auth`) or else berth.toml's.
    pub async fn push(
        &self,
        reference: &str,
        credentials: Option<Credentials>,
        progress: Arc<dyn Progress>,
    ) -> Result<Pushed> {
        let r = Reference::parse(reference)?;
        if r.digest.is_some() {
            return Err(EngineError::Reference {
                reference: reference.into(),
                reason: "a digest cannot be pushed to; name a tag".into(),
            });
        }
        let tag = r.tag.clone().unwrap_or_else(|| "latest".into());
        let full = r.full();
        let rec = self.images.get(&full)?.ok_or_else(|| EngineError::Image {
            name: r.short(),
            reason: "an image does not exist locally with this tag".into(),
        })?;
        let bad = |reason: String| EngineError::Image {
            name: r.short(),
            reason,
        };
        let manifest_bytes = self.content.read(&rec.manifest)?;
        let m: ImageManifest = serde_json::from_slice(&manifest_bytes).map_err(|e| {
            bad(format!(
                "manifest {} is not an image manifest: {e}",
                rec.manifest
            ))
        })?;
        let config: ImageConfiguration = self.image_config(&rec)?;
        let diff_ids = config.rootfs().diff_ids();
        let layers: Vec<(String, Descriptor)> = m
            .layers()
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let id = diff_ids.get(i).unwrap_or(&l.digest().to_string()).clone();
                (short(&id), descriptor(l))
            })
            .collect();
        let config_desc = descriptor(m.config());
        for (_, d) in layers
            .iter()
            .chain([(String::new(), config_desc.clone())].iter())
        {
            if !self.content.has(&d.digest) {
                return Err(bad(format!(
                    "blob {} is not in the content store (pull or build the image again)",
                    d.digest
                )));
            }
        }

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
        self.write_mirrors(&spec.grants.root)?;
        let fetcher = self.host.load_fetcher(spec)?;
        let store: Arc<dyn berth_host::ContentStore> = self.content.clone();
        let ledger = Arc::new(Ledger {
            registry: r.registry.clone(),
            sources: self.sources.clone(),
            progress: progress.clone(),
            shown: layers
                .iter()
                .map(|(id, d)| (d.digest.clone(), (id.clone(), d.size)))
                .collect(),
            reported: Mutex::default(),
            outcomes: Mutex::default(),
        });

        for (id, _) in &layers {
            progress.status(id, "Preparing");
        }
        for (id, d) in &layers {
            progress.status(id, "Pushing");
            fetcher
                .push(&full, d, store.clone(), ledger.clone())
                .await?;
            let outcome = ledger
                .outcomes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&d.digest);
            progress.status(
                id,
                &match outcome {
                    Some(PushOutcome::Existed) => "Layer already exists".to_owned(),
                    Some(PushOutcome::Mounted(from)) => format!("Mounted from {from}"),
                    // A plugin built for ABI 0.1.2 does not say: it pushed.
                    Some(PushOutcome::Uploaded) | None => "Pushed".to_owned(),
                },
            );
        }
        fetcher
            .push(&full, &config_desc, store.clone(), ledger.clone())
            .await?;
        let manifest = Descriptor {
            media_type: manifest_media_type(&manifest_bytes, &m),
            digest: rec.manifest.clone(),
            size: manifest_bytes.len() as u64,
        };
        fetcher.push(&full, &manifest, store, ledger).await?;
        let name = r.name();
        let digests = layers
            .iter()
            .map(|(_, d)| d.digest.as_str())
            .chain([config_desc.digest.as_str()]);
        if let Err(e) = self.sources.add(&name, digests) {
            tracing::warn!("remembering where {name}'s blobs are: {e}");
        }
        Ok(Pushed {
            tag,
            digest: manifest.digest,
            size: manifest.size,
        })
    }

    /// Remembers that the registry repository `name` holds the blobs of
    /// the image whose manifest is `manifest` (after a pull).
    pub(super) fn remember_sources(&self, name: &str, manifest: &str) {
        let Ok(bytes) = self.content.read(manifest) else {
            return;
        };
        let Ok(m) = serde_json::from_slice::<ImageManifest>(&bytes) else {
            return;
        };
        let digests: Vec<String> = m
            .layers()
            .iter()
            .chain([m.config()])
            .map(|d| d.digest().to_string())
            .collect();
        if let Err(e) = self.sources.add(name, digests.iter().map(String::as_str)) {
            tracing::warn!("remembering where {name}'s blobs are: {e}");
        }
    }
}

/// Docker's 12-character id of a digest.
fn short(digest: &str) -> String {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    hex.chars().take(12).collect()
}

/// A registry as `docker login` names it (`host[:port]`, `http(s)://host…`,
/// docker.io's `https://index.docker.io/v1/`): its `host[:port]`, and
/// whether it was named with `http://`.
pub fn registry_of(server: &str) -> (String, bool) {
    let (rest, http) = match server.strip_prefix("http://") {
        Some(r) => (r, true),
        None => (server.strip_prefix("https://").unwrap_or(server), false),
    };
    let host = rest.split('/').next().unwrap_or("").to_ascii_lowercase();
    match host.as_str() {
        "" | "index.docker.io" | "registry-1.docker.io" | "docker.io" => {
            (crate::reference::DEFAULT_REGISTRY.to_owned(), false)
        }
        _ => (host, http),
    }
}

impl Engine {
    /// Checks `user`/`password` against registry `server` (`docker login`).
    /// Nothing is stored: the client keeps credentials.
    pub async fn login(&self, server: &str, user: &str, password: &str) -> Result<()> {
        let (registry, named_http) = registry_of(server);
        let http = named_http
            || crate::reference::is_loopback_host(&registry)
            || self
                .config
                .registry
                .get(&registry)
                .is_some_and(|c| c.insecure);
        let api_host = if registry == crate::reference::DEFAULT_REGISTRY {
            "registry-1.docker.io"
        } else {
            registry.as_str()
        };
        berth_host::check_login(api_host, http, user, password).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_as_login_names_them() {
        assert_eq!(
            registry_of("127.0.0.1:5000"),
            ("127.0.0.1:5000".into(), false)
        );
        assert_eq!(
            registry_of("http://reg.example:80/"),
            ("reg.example:80".into(), true)
        );
        assert_eq!(
            registry_of("https://index.docker.io/v1/"),
            ("docker.io".into(), false)
        );
        assert_eq!(registry_of("Reg.Example"), ("reg.example".into(), false));
    }
}
