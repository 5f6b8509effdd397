//! `docker save` tarballs: `manifest.json` (config and layer paths per image)
//! converted into an OCI manifest. Layers there are uncompressed tars, so a
//! layer's digest is its diff id from the config.

use berth_sdk::digest;
use berth_sdk::error::PluginError;
use berth_sdk::oci::{self, Descriptor, Manifest};
use berth_sdk::reference::Reference;
use serde::Deserialize;

use crate::source::Source;

/// One image of `manifest.json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SavedImage {
    /// Path of the config JSON in the tarball.
    pub config: String,
    /// `name:tag`s of the image.
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    /// Paths of the layer tars, bottom first.
    pub layers: Vec<String>,
}

#[derive(Deserialize)]
struct Config {
    rootfs: RootFs,
}

#[derive(Deserialize)]
struct RootFs {
    diff_ids: Vec<String>,
}

/// An image converted to OCI: the manifest, its bytes, and where each blob is.
#[derive(Debug, Clone)]
pub struct Converted {
    /// The image's first tag, if any.
    pub name: Option<String>,
    /// The OCI manifest.
    pub manifest: Manifest,
    /// Its JSON.
    pub manifest_json: Vec<u8>,
    /// (digest, path in the tarball) of the config and each layer.
    pub blobs: Vec<(String, String)>,
}

/// Picks the image named `want` (`name:tag`, normalized) or the only one.
pub fn select<'a>(
    images: &'a [SavedImage],
    want: Option<&str>,
) -> Result<&'a SavedImage, PluginError> {
    let Some(want) = want else {
        return match images {
            [one] => Ok(one),
            _ => Err(PluginError::Invalid(format!(
                "the archive holds {} images: name one as docker-archive:PATH:NAME:TAG",
                images.len()
            ))),
        };
    };
    let norm = |s: &str| {
        Reference::parse(s)
            .map(|r| r.to_string())
            .unwrap_or_else(|_| s.to_string())
    };
    let want = norm(want);
    images
        .iter()
        .find(|i| i.repo_tags.iter().flatten().any(|t| norm(t) == want))
        .ok_or_else(|| PluginError::NotFound(format!("image {want} in the archive")))
}

/// Converts the image `want` of the `docker save` tarball in `src`.
pub fn convert(src: &Source, want: Option<&str>) -> Result<Converted, PluginError> {
    let images: Vec<SavedImage> =
        oci::from_json("docker save manifest.json", &src.read("manifest.json")?)?;
    let image = select(&images, want)?;
    let config_json = src.read(&image.config)?;
    let config: Config = oci::from_json("image config", &config_json)?;
    if config.rootfs.diff_ids.len() != image.layers.len() {
        return Err(PluginError::Invalid(format!(
            "image config lists {} layers but manifest.json {}",
            config.rootfs.diff_ids.len(),
            image.layers.len()
        )));
    }
    let config_desc = Descriptor::new(
        oci::MEDIA_OCI_CONFIG,
        digest::sha256(&config_json),
        config_json.len() as u64,
    );
    let mut blobs = vec![(config_desc.digest.clone(), image.config.clone())];
    let mut layers = Vec::new();
    for (path, diff_id) in image.layers.iter().zip(&config.rootfs.diff_ids) {
        digest::validate(diff_id)?;
        let size = src.locate(path)?.size;
        let (media_type, blob_digest) = layer_blob(src, path, diff_id)?;
        layers.push(Descriptor::new(media_type, blob_digest.clone(), size));
        blobs.push((blob_digest, path.clone()));
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(oci::MEDIA_OCI_MANIFEST.to_string()),
        config: config_desc,
        layers,
    };
    let manifest_json = serde_json::to_vec(&manifest).expect("manifests serialize");
    let name = image.repo_tags.iter().flatten().next().cloned();
    Ok(Converted {
        name,
        manifest,
        manifest_json,
        blobs,
    })
}

/// The media type and digest of a layer file. Legacy `docker save`
/// (`<id>/layer.tar`) holds uncompressed tars whose digest is the diff id;
/// docker 25+ stores layers as `blobs/sha256/<hex>`, named by their digest and
/// possibly compressed (sniffed from the magic bytes).
fn layer_blob(
    src: &Source,
    path: &str,
    diff_id: &str,
) -> Result<(&'static str, String), PluginError> {
    let Some(hex) = path.strip_prefix("blobs/sha256/") else {
        return Ok((oci::MEDIA_OCI_LAYER_TAR, diff_id.to_string()));
    };
    let named = format!("sha256:{hex}");
    digest::validate(&named)?;
    let magic = src.prefix(path, 4)?;
    let media = if magic.starts_with(&[0x1f, 0x8b]) {
        "application/vnd.oci.image.layer.v1.tar+gzip"
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        "application/vnd.oci.image.layer.v1.tar+zstd"
    } else {
        oci::MEDIA_OCI_LAYER_TAR
    };
    Ok((media, named))
}
