//! OCI image JSON (descriptors, manifests, indexes) and platform selection.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::SdkError;

/// OCI image manifest.
pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Uncompressed OCI layer.
pub const MEDIA_OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// Docker schema-2 manifest.
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker schema-2 manifest list.
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Annotation naming a manifest in an OCI layout's index.json.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation containerd writes with the full image name.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";

/// Whether a media type is an image index or manifest list.
pub fn is_index(media_type: &str) -> bool {
    media_type == MEDIA_OCI_INDEX || media_type == MEDIA_DOCKER_LIST
}

/// Whether a media type is an image manifest (OCI or Docker schema 2).
pub fn is_manifest(media_type: &str) -> bool {
    media_type == MEDIA_OCI_MANIFEST || media_type == MEDIA_DOCKER_MANIFEST
}

/// A platform as image indexes describe it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// `linux`, ...
    pub os: String,
    /// `amd64`, `arm64`, ...
    pub architecture: String,
    /// `v7`, `v8`, ... or empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

/// An OCI content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// Platform, in an index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    /// A descriptor without platform or annotations.
    pub fn new(media_type: &str, digest: String, size: u64) -> Self {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            platform: None,
            annotations: BTreeMap::new(),
        }
    }
}

/// An image index or Docker manifest list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// The index's own media type, if it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The manifests.
    pub manifests: Vec<Descriptor>,
}

/// An image manifest (OCI or Docker schema 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// The manifest's own media type, if it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The image config.
    pub config: Descriptor,
    /// The layers, bottom first.
    pub layers: Vec<Descriptor>,
}

/// Parses JSON, naming `what` in the error.
pub fn from_json<T: serde::de::DeserializeOwned>(what: &str, data: &[u8]) -> Result<T, SdkError> {
    serde_json::from_slice(data).map_err(|source| SdkError::Json {
        what: what.to_string(),
        source,
    })
}

/// The media type a manifest or index document declares (`mediaType`), if any.
pub fn declared_media_type(data: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    let probe: Probe = serde_json::from_slice(data).ok()?;
    probe
        .media_type
        .or_else(|| probe.manifests.map(|_| MEDIA_OCI_INDEX.to_string()))
}

/// The architecture's variant when none is given (`arm64` is `v8`).
fn default_variant(arch: &str) -> &'static str {
    match arch {
        "arm64" => "v8",
        "arm" => "v7",
        _ => "",
    }
}

fn normalize_arch(arch: &str) -> &str {
    match arch {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        "i386" | "i686" => "386",
        other => other,
    }
}

/// Picks the manifest of `index` for `want` (os and architecture must match;
/// an empty wanted variant takes the architecture's default or any).
pub fn select_platform<'a>(index: &'a Index, want: &Platform) -> Result<&'a Descriptor, SdkError> {
    let want_arch = normalize_arch(&want.architecture);
    let variant_of = |v: &str, arch: &str| -> String {
        if v.is_empty() {
            default_variant(arch).to_string()
        } else {
            v.to_string()
        }
    };
    let candidates = index.manifests.iter().filter(|d| {
        d.platform
            .as_ref()
            .is_some_and(|p| p.os == want.os && normalize_arch(&p.architecture) == want_arch)
            && !is_index(&d.media_type)
    });
    let mut fallback = None;
    for d in candidates {
        let p = d.platform.as_ref().expect("filtered on platform");
        let have = variant_of(&p.variant, want_arch);
        if have == variant_of(&want.variant, want_arch) {
            return Ok(d);
        }
        if want.variant.is_empty() && fallback.is_none() {
            fallback = Some(d);
        }
    }
    fallback.ok_or_else(|| SdkError::NoPlatform(want.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = r#"{
      "schemaVersion": 2,
      "mediaType": "application/vnd.oci.image.index.v1+json",
      "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1, "digest": "sha256:amd",
         "platform": {"architecture": "amd64", "os": "linux"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1, "digest": "sha256:armv6",
         "platform": {"architecture": "arm", "os": "linux", "variant": "v6"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1, "digest": "sha256:armv7",
         "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1, "digest": "sha256:arm64",
         "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1, "digest": "sha256:att",
         "platform": {"architecture": "unknown", "os": "unknown"},
         "annotations": {"vnd.docker.reference.type": "attestation-manifest"}}
      ]
    }"#;

    fn pick(os: &str, arch: &str, variant: &str) -> Result<String, SdkError> {
        let index: Index = from_json("index", INDEX.as_bytes()).unwrap();
        let want = Platform {
            os: os.into(),
            architecture: arch.into(),
            variant: variant.into(),
        };
        select_platform(&index, &want).map(|d| d.digest.clone())
    }

    #[test]
    fn selects_by_os_arch_and_variant() {
        assert_eq!(pick("linux", "amd64", "").unwrap(), "sha256:amd");
        assert_eq!(pick("linux", "x86_64", "").unwrap(), "sha256:amd");
        assert_eq!(pick("linux", "arm64", "").unwrap(), "sha256:arm64");
        assert_eq!(pick("linux", "aarch64", "v8").unwrap(), "sha256:arm64");
        assert_eq!(pick("linux", "arm", "v6").unwrap(), "sha256:armv6");
        assert_eq!(pick("linux", "arm", "").unwrap(), "sha256:armv7");
        assert!(
            matches!(pick("linux", "riscv64", ""), Err(SdkError::NoPlatform(p)) if p == "linux/riscv64")
        );
        assert!(pick("windows", "amd64", "").is_err());
        assert!(pick("linux", "arm", "v5").is_err());
    }

    #[test]
    fn media_types() {
        assert_eq!(
            declared_media_type(INDEX.as_bytes()).as_deref(),
            Some(MEDIA_OCI_INDEX)
        );
        assert_eq!(
            declared_media_type(br#"{"manifests": []}"#).as_deref(),
            Some(MEDIA_OCI_INDEX)
        );
        assert_eq!(declared_media_type(br#"{"schemaVersion": 2}"#), None);
        assert!(is_index(MEDIA_DOCKER_LIST) && is_manifest(MEDIA_DOCKER_MANIFEST));
        let m: Manifest = from_json(
            "manifest",
            br#"{"schemaVersion":2,"config":{"mediaType":"c","digest":"sha256:1","size":2},"layers":[]}"#,
        )
        .unwrap();
        assert_eq!(m.config.size, 2);
        assert!(from_json::<Manifest>("manifest", b"not json").is_err());
    }
}
