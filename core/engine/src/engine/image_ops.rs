//! The images already here: finding, listing and inspecting them, tagging,
//! removing a name (and the layers and blobs nothing uses any more), saving.

use std::path::Path;

use oci_spec::image::{ImageConfiguration, ImageManifest};

use super::Engine;
use crate::error::{EngineError, Result};
use crate::images::{dangling, ImageRecord};
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

/// One image in `system df`.
#[derive(Debug, Clone)]
pub struct ImageUsage {
    /// The config digest.
    pub id: String,
    /// Its names as docker shows them (none for a dangling image).
    pub names: Vec<String>,
    /// When it was created (RFC 3339, empty if the config says nothing).
    pub created: String,
    /// The bytes of its layers.
    pub size: u64,
    /// The bytes of its layers other images use too.
    pub shared_size: u64,
}

/// One row of an image's history (docker's `GET /images/{name}/history`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct HistoryEntry {
    /// The image id for the newest row, `<missing>` for the rows below it
    /// (their images are not here as images of their own).
    pub id: String,
    /// Seconds since the epoch.
    pub created: i64,
    pub created_by: String,
    pub tags: Vec<String>,
    /// The size of the layer the row made (0 for rows that made none).
    pub size: u64,
    pub comment: String,
}

impl Engine {
    /// An image's history, newest first: the config's `history` rows, each
    /// that made a layer with that layer's size.
    pub fn image_history(&self, name_or_id: &str) -> Result<Vec<HistoryEntry>> {
        let (_, rec) = self.image(name_or_id)?;
        let config: serde_json::Value = serde_json::from_slice(&self.content.read(&rec.config)?)
            .map_err(|e| EngineError::Image {
                name: name_or_id.into(),
                reason: format!("config is not JSON: {e}"),
            })?;
        let manifest = serde_json::from_slice::<ImageManifest>(&self.content.read(&rec.manifest)?)
            .map_err(|e| EngineError::Image {
                name: name_or_id.into(),
                reason: format!("manifest: {e}"),
            })?;
        let mut sizes = manifest.layers().iter().map(|l| l.size());
        let str_of = |v: &serde_json::Value, k: &str| {
            v.get(k)
                .and_then(|x| x.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let history = config["history"].as_array().cloned().unwrap_or_default();
        let mut rows: Vec<HistoryEntry> = if history.is_empty() {
            // No history recorded: a row per layer.
            sizes
                .map(|size| HistoryEntry {
                    id: "<missing>".into(),
                    created: crate::store::parse_time(&str_of(&config, "created")).unwrap_or(0),
                    created_by: String::new(),
                    tags: Vec::new(),
                    size,
                    comment: String::new(),
                })
                .collect()
        } else {
            history
                .iter()
                .map(|h| {
                    let empty = h["empty_layer"].as_bool().unwrap_or(false);
                    HistoryEntry {
                        id: "<missing>".into(),
                        created: crate::store::parse_time(&str_of(h, "created")).unwrap_or(0),
                        created_by: str_of(h, "created_by"),
                        tags: Vec::new(),
                        size: if empty { 0 } else { sizes.next().unwrap_or(0) },
                        comment: str_of(h, "comment"),
                    }
                })
                .collect()
        };
        rows.reverse();
        if let Some(top) = rows.first_mut() {
            top.id = rec.config.clone();
            for (n, r) in self.images.all()? {
                if r.config == rec.config && !dangling(&n) {
                    top.tags.push(Reference::parse(&n)?.short());
                }
            }
        }
        Ok(rows)
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

    /// What images take on disk (`system df`): the size of all their
    /// distinct layers, and per image (one row per id, all its names) its
    /// size and the part of it other images share.
    pub fn images_usage(&self) -> Result<(u64, Vec<ImageUsage>)> {
        let mut by_id: Vec<(ImageUsage, Vec<(String, u64)>)> = Vec::new();
        for (full, rec) in self.images.all()? {
            let name = (!dangling(&full))
                .then(|| Reference::parse(&full).map(|r| r.short()))
                .transpose()?;
            if let Some((u, _)) = by_id.iter_mut().find(|(u, _)| u.id == rec.config) {
                u.names.extend(name);
                continue;
            }
            let layers: Vec<(String, u64)> =
                serde_json::from_slice::<ImageManifest>(&self.content.read(&rec.manifest)?)
                    .map(|m| {
                        m.layers()
                            .iter()
                            .map(|l| (l.digest().to_string(), l.size()))
                            .collect()
                    })
                    .unwrap_or_default();
            let created = self
                .image_config(&rec)
                .ok()
                .and_then(|c| c.created().clone())
                .unwrap_or_default();
            by_id.push((
                ImageUsage {
                    id: rec.config.clone(),
                    names: name.into_iter().collect(),
                    created,
                    size: layers.iter().map(|(_, s)| s).sum(),
                    shared_size: 0,
                },
                layers,
            ));
        }
        let mut users: std::collections::HashMap<&str, (u64, usize)> = Default::default();
        for (_, layers) in &by_id {
            for (d, size) in layers {
                users.entry(d.as_str()).or_insert((*size, 0)).1 += 1;
            }
        }
        let total = users.values().map(|(s, _)| s).sum();
        let shared: Vec<u64> = by_id
            .iter()
            .map(|(_, layers)| {
                layers
                    .iter()
                    .filter(|(d, _)| users.get(d.as_str()).is_some_and(|(_, n)| *n > 1))
                    .map(|(_, s)| s)
                    .sum()
            })
            .collect();
        Ok((
            total,
            by_id
                .into_iter()
                .zip(shared)
                .map(|((mut u, _), s)| {
                    u.shared_size = s;
                    u
                })
                .collect(),
        ))
    }

    /// Every image name with its summary; intermediate images (unnamed
    /// images another image was made on, as a build's steps) only with `all`.
    pub fn list_images(&self, all: bool) -> Result<Vec<ImageSummary>> {
        let mut out = Vec::new();
        let parents = self.images.parents()?;
        for (full, rec) in self.images.all()? {
            if !all && dangling(&full) && parents.contains(&rec.config) {
                continue;
            }
            let (repository, tag) = if dangling(&full) {
                ("<none>".to_string(), "<none>".to_string())
            } else {
                let r = Reference::parse(&full)?;
                let tag = r.tag.clone().unwrap_or_else(|| "<none>".into());
                (r.short_repository(), tag)
            };
            let size = serde_json::from_slice::<ImageManifest>(&self.content.read(&rec.manifest)?)
                .map(|m| m.layers().iter().map(|l| l.size()).sum())
                .unwrap_or(0);
            let created = self
                .image_config(&rec)
                .ok()
                .and_then(|c| c.created().clone())
                .unwrap_or_default();
            out.push(ImageSummary {
                repository,
                tag,
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
            if r.config == rec.config && !dangling(&n) {
                let r2 = Reference::parse(&n)?;
                tags.push(r2.short());
                digests.push(format!("{}@{}", r2.short_repository(), r.manifest));
            }
        }
        let size: u64 = serde_json::from_slice::<ImageManifest>(&self.content.read(&rec.manifest)?)
            .map(|m| m.layers().iter().map(|l| l.size()).sum())
            .unwrap_or(0);
        let _ = full;
        // The runtime config as stored: docker's fields OCI's config type
        // lacks (`Healthcheck`, `OnBuild`, `Shell`, …) stay.
        let raw: serde_json::Value =
            serde_json::from_slice(&self.content.read(&rec.config)?).unwrap_or_default();
        let config = match &raw["config"] {
            serde_json::Value::Object(m) => serde_json::Value::Object(m.clone()),
            _ => serde_json::json!({}),
        };
        Ok(serde_json::json!({
            "Id": rec.config,
            "RepoTags": tags,
            "RepoDigests": digests,
            "Parent": rec.parent.clone().unwrap_or_default(),
            "Comment": raw["comment"].as_str().unwrap_or(""),
            "Created": cfg.created(),
            "DockerVersion": "",
            "Author": cfg.author().clone().unwrap_or_default(),
            "Config": config,
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
            // The signatures `[[trust]]` verified at pull (berth's field).
            "Signatures": rec.signers,
        }))
    }

    /// Adds a name for an existing image (an image the name pointed at
    /// before stays, dangling, if no other name points at it).
    pub fn tag(&self, source: &str, target: &str) -> Result<()> {
        let (_, rec) = self.image(source)?;
        let t = Reference::parse(target)?;
        self.images.name(Some(&t.full()), rec)
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
        let mut removed = Vec::new();
        if !dangling(&full) {
            removed.push(format!("Untagged: {}", Reference::parse(&full)?.short()));
        }
        if self
            .images
            .all()?
            .iter()
            .any(|(_, r)| r.config == rec.config)
        {
            return Ok(removed);
        }
        self.remove_unused_layers(&rec).await?;
        removed.push(format!("Deleted: {}", rec.config));
        // Its unnamed parents go with it (docker's rmi without --no-prune):
        // each one no other image was made on and no container uses.
        let mut parent = rec.parent.clone();
        while let Some(p) = parent.take() {
            let all = self.images.all()?;
            let Some((key, prec)) = all.iter().find(|(_, r)| r.config == p).cloned() else {
                break;
            };
            let named = all.iter().any(|(k, r)| r.config == p && !dangling(k));
            let children = all
                .iter()
                .any(|(_, r)| r.parent.as_deref() == Some(p.as_str()));
            if named || children || !self.containers_using(&p)?.is_empty() {
                break;
            }
            self.images.untag(&key)?;
            self.remove_unused_layers(&prec).await?;
            removed.push(format!("Deleted: {p}"));
            parent = prec.parent.clone();
        }
        self.collect_blobs()?;
        Ok(removed)
    }

    /// Removes the images no container uses (docker's `image prune`): those
    /// without a name, or with `all` every one. Returns docker's
    /// `Untagged: …`/`Deleted: …` lines and the bytes of the layers removed.
    pub async fn prune_images(&self, all: bool) -> Result<(Vec<String>, u64)> {
        let mut lines = Vec::new();
        let mut space = 0;
        let parents = self.images.parents()?;
        for (key, rec) in self.images.all()? {
            if !(all || dangling(&key)) || !self.containers_using(&rec.config)?.is_empty() {
                continue;
            }
            // An image others were made on goes with them, not before.
            if parents.contains(&rec.config) || !self.images.all()?.iter().any(|(k, _)| *k == key) {
                continue;
            }
            let size: u64 =
                serde_json::from_slice::<ImageManifest>(&self.content.read(&rec.manifest)?)
                    .map(|m| m.layers().iter().map(|l| l.size()).sum())
                    .unwrap_or(0);
            let removed = self.remove_image(&key, false).await?;
            if removed.iter().any(|l| l.starts_with("Deleted: ")) {
                space += size;
            }
            lines.extend(removed);
        }
        Ok((lines, space))
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
        self.sources.retain(|d| keep.contains(d))
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
}
