//! Registry operations on a [`Client`]: resolving a manifest (through an
//! index), opening a blob, putting a manifest. Blob uploads are in
//! [`crate::upload`].

use berth_sdk::digest::sha256;
use berth_sdk::error::PluginError;
use berth_sdk::oci::{self, Descriptor, Index, Platform};

use crate::client::{Client, Method, Response, Transport, Upload};

/// What a manifest request may be answered with.
pub const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
    application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.docker.distribution.manifest.list.v2+json";

/// The largest manifest or index accepted.
pub const MAX_MANIFEST: u64 = 4 << 20;

/// A fetched manifest or index.
#[derive(Debug, Clone)]
pub struct Document {
    /// Its descriptor (digest computed here).
    pub desc: Descriptor,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// A resolved image: the platform's manifest and the index on the way.
#[derive(Debug, Clone)]
pub struct Resolution {
    /// The manifest.
    pub manifest: Document,
    /// The index, if the reference named one.
    pub index: Option<Document>,
}

fn header_list(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// GETs manifest `reference` (a tag or digest).
pub fn get_manifest<T: Transport>(
    c: &mut Client<T>,
    reference: &str,
) -> Result<Document, PluginError> {
    let what = format!("manifest {}:{reference}", c.reference.name());
    let resp = c.call(
        Method::Get,
        &format!("manifests/{reference}"),
        &header_list(&[("accept", ACCEPT)]),
        Upload::None,
    )?;
    if resp.status != 200 {
        return Err(c.error(resp, &what));
    }
    let content_type = resp
        .header("content-type")
        .map(|v| v.split(';').next().unwrap_or("").trim().to_string());
    let bytes = c.body(resp, MAX_MANIFEST)?;
    let declared = oci::declared_media_type(&bytes);
    let media_type = match (declared, content_type) {
        (Some(t), _) => t,
        (None, Some(t)) if oci::is_index(&t) || oci::is_manifest(&t) => t,
        _ => {
            return Err(PluginError::Invalid(format!(
                "{what}: not a manifest (no media type, or not JSON)"
            )))
        }
    };
    // A body that only claims to be a manifest (by its Content-Type) must
    // parse as one, or it would be stored as the image's manifest.
    if oci::is_manifest(&media_type) {
        oci::from_json::<oci::Manifest>(&what, &bytes)?;
    }
    let digest = sha256(&bytes);
    if reference.starts_with("sha256:") && reference != digest {
        return Err(PluginError::Invalid(format!(
            "{what}: content has digest {digest}"
        )));
    }
    Ok(Document {
        desc: Descriptor::new(&media_type, digest, bytes.len() as u64),
        bytes,
    })
}

/// Resolves the client's reference for `platform`.
pub fn resolve<T: Transport>(
    c: &mut Client<T>,
    platform: &Platform,
) -> Result<Resolution, PluginError> {
    let wanted = c.reference.manifest_ref().to_owned();
    let top = get_manifest(c, &wanted)?;
    if !oci::is_index(&top.desc.media_type) {
        return Ok(Resolution {
            manifest: top,
            index: None,
        });
    }
    let index: Index = oci::from_json(&format!("image index {}", top.desc.digest), &top.bytes)?;
    let chosen = oci::select_platform(&index, platform)?.digest.clone();
    let manifest = get_manifest(c, &chosen)?;
    if !oci::is_manifest(&manifest.desc.media_type) {
        return Err(PluginError::Invalid(format!(
            "{chosen}: expected an image manifest, got {}",
            manifest.desc.media_type
        )));
    }
    Ok(Resolution {
        manifest,
        index: Some(top),
    })
}

/// The document the reference names, as it is (an index stays an index):
/// `resolve` for an empty platform. A tag of the referrers tag schema
/// (`sha256-<hex>`) asks the registry's referrers API (OCI 1.1) first, and
/// falls back to the tag on registries without it.
pub fn fetch_raw<T: Transport>(c: &mut Client<T>) -> Result<Document, PluginError> {
    let wanted = c.reference.manifest_ref().to_owned();
    let hex = wanted
        .strip_prefix("sha256-")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    if let Some(hex) = hex {
        let index = "application/vnd.oci.image.index.v1+json";
        let resp = c.call(
            Method::Get,
            &format!("referrers/sha256:{hex}"),
            &header_list(&[("accept", index)]),
            Upload::None,
        )?;
        if resp.status == 200 {
            let bytes = c.body(resp, MAX_MANIFEST)?;
            oci::from_json::<Index>(&format!("the referrers of sha256:{hex}"), &bytes)?;
            let digest = sha256(&bytes);
            return Ok(Document {
                desc: Descriptor::new(index, digest, bytes.len() as u64),
                bytes,
            });
        }
    }
    get_manifest(c, &wanted)
}

/// Opens blob `digest` from byte `offset` on (a `Range` request when > 0).
pub fn open_blob<T: Transport>(
    c: &mut Client<T>,
    digest: &str,
    offset: u64,
) -> Result<Response<T::Body>, PluginError> {
    let mut headers = Vec::new();
    if offset > 0 {
        headers.push(("range".to_string(), format!("bytes={offset}-")));
    }
    let resp = c.call(
        Method::Get,
        &format!("blobs/{digest}"),
        &headers,
        Upload::None,
    )?;
    match (resp.status, offset) {
        (200, 0) | (206, _) => Ok(resp),
        (200, _) => Err(PluginError::Unavailable(format!(
            "blob {digest}: the registry cannot resume at byte {offset}"
        ))),
        _ => Err(c.error(resp, &format!("blob {digest} of {}", c.reference.name()))),
    }
}

/// PUTs a manifest under `tag`.
pub fn put_manifest<T: Transport>(
    c: &mut Client<T>,
    tag: &str,
    media_type: &str,
    bytes: &[u8],
) -> Result<(), PluginError> {
    let len = bytes.len().to_string();
    let headers = header_list(&[("content-type", media_type), ("content-length", &len)]);
    let resp = c.call(
        Method::Put,
        &format!("manifests/{tag}"),
        &headers,
        Upload::Bytes(bytes),
    )?;
    match resp.status {
        201 | 204 => Ok(()),
        _ => Err(c.error(
            resp,
            &format!("pushing manifest {}:{tag}", c.reference.name()),
        )),
    }
}
