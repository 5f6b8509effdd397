//! A pull under a `[[trust]]` policy: the digest the reference names now,
//! its cosign signatures (the tag form and OCI 1.1 referrers) fetched
//! through the fetcher and checked here, and what to pull — that very
//! digest — or why not. Nothing the check fetched stays in the content
//! store but the image's own top manifest.

use std::sync::Arc;

use berth_host::{Descriptor, FetcherPlugin, HostError, Platform, PluginErrorKind};

use super::Engine;
use crate::error::{EngineError, Result};
use crate::reference::Reference;
use crate::trust::{self, Key, Miss, Policy, Signer, TrustConfig};

/// A fetch that found nothing (no signature of that form).
fn not_found(e: &HostError) -> bool {
    matches!(e, HostError::Plugin { error, .. } if error.kind == PluginErrorKind::NotFound)
}

impl Engine {
    /// Applies policy `t` to a pull of `r`: returns the reference to pull
    /// (pinned to the verified digest) and the signers, or the refusal.
    pub(super) async fn check_trust(
        &self,
        fetcher: &FetcherPlugin,
        r: &Reference,
        t: &TrustConfig,
    ) -> Result<(String, Vec<Signer>)> {
        let full = r.full();
        let refused = |why: String| EngineError::Image {
            name: full.clone(),
            reason: format!("refused by the trust policy of {}: {why}", t.scope),
        };
        match t.policy {
            Policy::Accept => return Ok((full.clone(), Vec::new())),
            Policy::Reject => return Err(refused("the policy rejects every image".into())),
            Policy::SignedBy => {}
        }
        let keys = t
            .keys
            .iter()
            .map(|k| Key::load(k))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(refused)?;
        let mut added = Vec::new();
        let outcome = self.find_signature(fetcher, r, t, &keys, &mut added).await;
        // The signature artifacts go again, whatever the outcome; on a
        // refusal, the image's top manifest too.
        let keep = match &outcome {
            Ok((digest, _)) => Some(digest.clone()),
            Err(_) => None,
        };
        // (Not what an image already in the store is made of.)
        let used: std::collections::HashSet<String> = self
            .images
            .all()
            .unwrap_or_default()
            .into_iter()
            .flat_map(|(_, rec)| [rec.manifest, rec.config])
            .collect();
        for d in added
            .iter()
            .filter(|d| Some(*d) != keep.as_ref() && !used.contains(*d))
        {
            let _ = self.content.remove(d);
        }
        let (digest, signer) = outcome.map_err(|e| match e {
            Found::Refused(why) => refused(why),
            Found::Failed(e) => e,
        })?;
        Ok((format!("{}@{digest}", r.name()), vec![signer]))
    }

    /// Resolves `reference` as it is (no platform), noting its blob.
    async fn raw(
        &self,
        fetcher: &FetcherPlugin,
        reference: &str,
        added: &mut Vec<String>,
    ) -> std::result::Result<Descriptor, HostError> {
        let store: Arc<dyn berth_host::ContentStore> = self.content.clone();
        let empty = Platform {
            os: String::new(),
            architecture: String::new(),
            variant: String::new(),
        };
        let res = fetcher.resolve(reference, &empty, store).await?;
        if !added.contains(&res.manifest.digest) {
            added.push(res.manifest.digest.clone());
        }
        Ok(res.manifest)
    }

    /// A stored manifest or index as JSON (`null` if it is not JSON: it
    /// then lists nothing).
    fn stored_json(&self, digest: &str) -> std::result::Result<serde_json::Value, Found> {
        let bytes = self.content.read(digest).map_err(Found::Failed)?;
        Ok(serde_json::from_slice(&bytes).unwrap_or_default())
    }

    /// The bytes of blob `d` of `reference`, fetched if missing.
    async fn blob(
        &self,
        fetcher: &FetcherPlugin,
        reference: &str,
        d: &Descriptor,
        added: &mut Vec<String>,
    ) -> Result<Vec<u8>> {
        if !self.content.has(&d.digest) {
            let store: Arc<dyn berth_host::ContentStore> = self.content.clone();
            fetcher.fetch(reference, d, store).await?;
            added.push(d.digest.clone());
        }
        self.content.read(&d.digest)
    }

    async fn find_signature(
        &self,
        fetcher: &FetcherPlugin,
        r: &Reference,
        t: &TrustConfig,
        keys: &[Key],
        added: &mut Vec<String>,
    ) -> std::result::Result<(String, Signer), Found> {
        let name = r.name();
        let top = self
            .raw(fetcher, &r.full(), added)
            .await
            .map_err(|e| Found::Failed(e.into()))?;
        let digest = top.digest.clone();
        let hex = digest
            .strip_prefix("sha256:")
            .unwrap_or(&digest)
            .to_string();
        let digests = vec![digest.clone()];
        let mut misses: Vec<Miss> = Vec::new();
        let signer = |key: &Key, form: &str, d: String| Signer {
            key: key.path.display().to_string(),
            key_id: key.fingerprint(),
            form: form.into(),
            digest: d,
            scope: t.scope.clone(),
        };
        // The tag form: sha256-<hex>.sig, simple-signing layers.
        let sig_ref = format!("{name}:sha256-{hex}.sig");
        match self.raw(fetcher, &sig_ref, added).await {
            Ok(m) => {
                let manifest = self.stored_json(&m.digest)?;
                for l in manifest["layers"].as_array().into_iter().flatten() {
                    let Some(d) = descriptor(l) else { continue };
                    let Some(sig) = l["annotations"][trust::SIGNATURE_ANNOTATION].as_str() else {
                        continue;
                    };
                    if d.media_type != trust::SIMPLE_SIGNING {
                        continue;
                    }
                    let payload = self
                        .blob(fetcher, &sig_ref, &d, added)
                        .await
                        .map_err(Found::Failed)?;
                    match trust::check_simple_signing(keys, &payload, sig, &name, &digests) {
                        Ok((k, d)) => return Ok((digest.clone(), signer(k, "cosign", d))),
                        Err(m) => misses.push(m),
                    }
                }
            }
            Err(e) if not_found(&e) => {}
            Err(e) => return Err(Found::Failed(e.into())),
        }
        // The OCI 1.1 form: referrers (API or sha256-<hex> tag) holding
        // sigstore bundles.
        let referrers = format!("{name}:sha256-{hex}");
        match self.raw(fetcher, &referrers, added).await {
            Ok(idx) => {
                let index = self.stored_json(&idx.digest)?;
                for m in index["manifests"].as_array().into_iter().flatten() {
                    let Some(md) = descriptor(m) else { continue };
                    if m["artifactType"]
                        .as_str()
                        .is_some_and(|a| a != trust::BUNDLE)
                    {
                        continue;
                    }
                    let at = format!("{name}@{}", md.digest);
                    let man = self
                        .raw(fetcher, &at, added)
                        .await
                        .map_err(|e| Found::Failed(e.into()))?;
                    let man = self.stored_json(&man.digest)?;
                    for l in man["layers"].as_array().into_iter().flatten() {
                        let Some(d) = descriptor(l).filter(|d| d.media_type == trust::BUNDLE)
                        else {
                            continue;
                        };
                        let bundle = self
                            .blob(fetcher, &at, &d, added)
                            .await
                            .map_err(Found::Failed)?;
                        match trust::check_bundle(keys, &bundle, &name, &digests) {
                            Ok((k, d)) => {
                                return Ok((digest.clone(), signer(k, "sigstore-bundle", d)))
                            }
                            Err(m) => misses.push(m),
                        }
                    }
                }
            }
            Err(e) if not_found(&e) => {}
            Err(e) => return Err(Found::Failed(e.into())),
        }
        let keys_named = keys
            .iter()
            .map(|k| k.path.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let why = if let Some(Miss::OtherImage(what)) =
            misses.iter().find(|m| matches!(m, Miss::OtherImage(_)))
        {
            format!("signed for another image ({what}), not {name}@{digest}")
        } else if misses.contains(&Miss::BadSignature) {
            format!("signature does not verify with key {keys_named}")
        } else if let Some(Miss::Unreadable(why)) = misses.first() {
            format!("no signature berth can read: {why}")
        } else {
            format!("no signature for {name}@{digest}")
        };
        Err(Found::Refused(why))
    }
}

/// The outcome of looking for a signature that is not one.
enum Found {
    /// The policy refuses the image, for this reason.
    Refused(String),
    /// Fetching failed.
    Failed(EngineError),
}

fn descriptor(v: &serde_json::Value) -> Option<Descriptor> {
    Some(Descriptor {
        media_type: v["mediaType"].as_str()?.to_string(),
        digest: v["digest"].as_str()?.to_string(),
        size: v["size"].as_u64()?,
    })
}
