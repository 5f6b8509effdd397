//! Resolving an archive reference to an image manifest (through an image
//! index if there is one) and finding where each blob's bytes are.

use berth_sdk::error::PluginError;
use berth_sdk::oci::{self, Descriptor, Index, Platform};
use berth_sdk::reference::Reference;

use crate::docker;
use crate::refs::{ArchiveRef, Kind};
use crate::source::{Location, Source};

/// What `resolve` found: documents to store and the manifest to return.
#[derive(Debug, Clone)]
pub struct Resolution {
    /// The image's name (from the archive, or the reference itself).
    pub name: String,
    /// The platform's manifest.
    pub manifest: Descriptor,
    /// Its bytes.
    pub manifest_json: Vec<u8>,
    /// The index passed on the way, and its bytes.
    pub index: Option<(Descriptor, Vec<u8>)>,
}

/// Opens the directory or indexes the tar file a reference names.
pub fn open(r: &ArchiveRef) -> Result<Source, PluginError> {
    match r.kind {
        Kind::OciDir => Ok(Source::dir(&r.path)),
        Kind::OciArchive | Kind::DockerArchive => Source::tar(&r.path),
    }
}

/// Resolves `r` (already opened as `src`) for `platform`.
pub fn resolve(
    r: &ArchiveRef,
    src: &Source,
    platform: &Platform,
    reference: &str,
) -> Result<Resolution, PluginError> {
    if r.kind == Kind::DockerArchive {
        let c = docker::convert(src, r.image.as_deref())?;
        let manifest = Descriptor::new(
            oci::MEDIA_OCI_MANIFEST,
            berth_sdk::digest::sha256(&c.manifest_json),
            c.manifest_json.len() as u64,
        );
        let name = c
            .name
            .as_deref()
            .and_then(|n| Reference::parse(n).ok())
            .map(|r| r.to_string());
        return Ok(Resolution {
            name: name.unwrap_or_else(|| reference.to_string()),
            manifest,
            manifest_json: c.manifest_json,
            index: None,
        });
    }
    let index: Index = oci::from_json("index.json", &src.read("index.json")?)?;
    let top = pick(&index.manifests, r.image.as_deref())?;
    let name = image_name(top)
        .or_else(|| ref_name(top, &r.path))
        .unwrap_or_else(|| reference.to_string());
    let (manifest, index) = if oci::is_index(&top.media_type) {
        let bytes = src.read(&Source::blob_name(&top.digest)?)?;
        let nested: Index = oci::from_json(&format!("image index {}", top.digest), &bytes)?;
        let m = oci::select_platform(&nested, platform)?.clone();
        (m, Some((strip(top), bytes)))
    } else {
        (top.clone(), None)
    };
    if !oci::is_manifest(&manifest.media_type) {
        return Err(PluginError::Invalid(format!(
            "{} has unsupported media type {}",
            manifest.digest, manifest.media_type
        )));
    }
    let manifest_json = src.read(&Source::blob_name(&manifest.digest)?)?;
    Ok(Resolution {
        name,
        manifest: strip(&manifest),
        manifest_json,
        index,
    })
}

/// Where blob `digest` of the image is.
pub fn locate_blob(r: &ArchiveRef, src: &Source, digest: &str) -> Result<Location, PluginError> {
    if r.kind == Kind::DockerArchive {
        let c = docker::convert(src, r.image.as_deref())?;
        let (_, path) = c
            .blobs
            .iter()
            .find(|(d, _)| d == digest)
            .ok_or_else(|| PluginError::NotFound(format!("blob {digest} in {}", r.path)))?;
        return src.locate(path);
    }
    src.locate(&Source::blob_name(digest)?)
}

fn strip(d: &Descriptor) -> Descriptor {
    Descriptor::new(&d.media_type, d.digest.clone(), d.size)
}

fn image_name(d: &Descriptor) -> Option<String> {
    let full = d.annotations.get(oci::ANNOTATION_IMAGE_NAME)?;
    Reference::parse(full).ok().map(|r| r.to_string())
}

/// A name from the `org.opencontainers.image.ref.name` annotation: a full
/// reference as it is, a bare tag under `localhost/<archive name>` (as
/// podman names images loaded from a layout without a full name).
fn ref_name(d: &Descriptor, archive: &str) -> Option<String> {
    let tag = d.annotations.get(oci::ANNOTATION_REF_NAME)?;
    if tag.contains('/') {
        return Reference::parse(tag).ok().map(|r| r.to_string());
    }
    let stem = archive.trim_end_matches('/').rsplit('/').next()?;
    let stem = stem.split('.').next().unwrap_or(stem).to_ascii_lowercase();
    Reference::parse(&format!("localhost/{stem}:{tag}"))
        .ok()
        .map(|r| r.to_string())
}

/// The manifest named `want` (by ref-name or image-name annotation), or the only one.
fn pick<'a>(
    manifests: &'a [Descriptor],
    want: Option<&str>,
) -> Result<&'a Descriptor, PluginError> {
    let Some(want) = want else {
        return match manifests {
            [one] => Ok(one),
            _ => Err(PluginError::Invalid(format!(
                "the layout holds {} images: name one as oci:PATH:TAG",
                manifests.len()
            ))),
        };
    };
    let norm = |s: &str| Reference::parse(s).map(|r| r.to_string()).ok();
    manifests
        .iter()
        .find(|d| {
            d.annotations
                .get(oci::ANNOTATION_REF_NAME)
                .is_some_and(|n| n == want)
                || d.annotations
                    .get(oci::ANNOTATION_IMAGE_NAME)
                    .is_some_and(|n| n == want || (norm(n).is_some() && norm(n) == norm(want)))
        })
        .ok_or_else(|| PluginError::NotFound(format!("image {want:?} in the layout")))
}

#[cfg(test)]
#[path = "image_tests.rs"]
mod tests;
