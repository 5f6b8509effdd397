//! Signed images: the `[[trust]]` policy of berth.toml (per registry,
//! namespace or repository; the most specific scope wins) and the check of
//! cosign signatures on pull, made here in the host — a fetcher plugin only
//! carries the bytes and cannot vouch for them. Key-based ECDSA P-256
//! signatures in both of cosign's forms: the tag form (`sha256-<hex>.sig`,
//! simple-signing payloads signed in the `dev.cosignproject.cosign/signature`
//! annotation) and the OCI 1.1 form (referrers holding a sigstore bundle
//! with a DSSE envelope of an in-toto statement), found through the
//! referrers API or its `sha256-<hex>` fallback tag.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// What a scope asks of its images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Signed by one of `keys`.
    SignedBy,
    /// Never pulled.
    Reject,
    /// Pulled without a check.
    #[serde(alias = "insecure-accept-anything")]
    Accept,
}

/// One `[[trust]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TrustConfig {
    /// A registry (`host[:port]`), a namespace or a repository
    /// (`host/team`, `host/team/app`), or `*` for every other image.
    pub scope: String,
    pub policy: Policy,
    /// Public keys (PEM) for `signed-by`.
    #[serde(default)]
    pub keys: Vec<PathBuf>,
}

/// The signature media types and annotation of cosign's forms.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
pub const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
pub const IN_TOTO: &str = "application/vnd.in-toto+json";

/// A key of a policy, read and parsed.
#[derive(Debug, Clone)]
pub struct Key {
    pub path: PathBuf,
    pub key: VerifyingKey,
}

impl Key {
    pub fn load(path: &Path) -> Result<Key, String> {
        let pem = std::fs::read_to_string(path)
            .map_err(|e| format!("reading the key {}: {e}", path.display()))?;
        let key = VerifyingKey::from_public_key_pem(&pem).map_err(|e| {
            format!(
                "the key {} is not an ECDSA P-256 public key in PEM: {e}",
                path.display()
            )
        })?;
        Ok(Key {
            path: path.to_path_buf(),
            key,
        })
    }

    /// `sha256:<hex>` of the key's DER form (as `cosign` prints key ids).
    pub fn fingerprint(&self) -> String {
        use p256::pkcs8::EncodePublicKey as _;
        let der = self
            .key
            .to_public_key_der()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default();
        format!("sha256:{}", hex::encode(Sha256::digest(der)))
    }

    fn verifies(&self, message: &[u8], sig_b64: &str) -> bool {
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(sig_b64.trim()) else {
            return false;
        };
        let sig = Signature::from_der(&raw).or_else(|_| Signature::from_slice(&raw));
        sig.is_ok_and(|s| self.key.verify(message, &s).is_ok())
    }
}

/// Checks the `[[trust]]` entries: scopes well formed, keys for
/// `signed-by`, every key readable.
pub fn check(entries: &[TrustConfig]) -> Result<(), String> {
    for t in entries {
        if t.scope.is_empty() || t.scope.contains("://") || t.scope.contains('@') {
            return Err(format!(
                "[[trust]] scope {:?}: give a registry, a namespace or a repository (host[:port][/path]), or *",
                t.scope
            ));
        }
        if t.policy == Policy::SignedBy && t.keys.is_empty() {
            return Err(format!(
                "[[trust]] scope {:?}: signed-by needs keys",
                t.scope
            ));
        }
        for k in &t.keys {
            Key::load(k).map_err(|e| format!("[[trust]] scope {:?}: {e}", t.scope))?;
        }
    }
    Ok(())
}

/// The entry that governs repository `name` (`host[:port]/path`): the one
/// with the longest scope that is the name, a namespace of it or its
/// registry; `*` when none is.
pub fn policy_for<'a>(entries: &'a [TrustConfig], name: &str) -> Option<&'a TrustConfig> {
    let covers = |scope: &str| {
        let scope = scope.trim_end_matches('/');
        name == scope || name.starts_with(&format!("{scope}/"))
    };
    entries
        .iter()
        .filter(|t| t.scope != "*" && covers(&t.scope))
        .max_by_key(|t| t.scope.trim_end_matches('/').len())
        .or_else(|| entries.iter().find(|t| t.scope == "*"))
}

/// A signature that verified: shown by `image inspect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Signer {
    /// The key file of the policy that verified it.
    pub key: String,
    /// The key's fingerprint.
    pub key_id: String,
    /// `cosign` (the tag form) or `sigstore-bundle` (an OCI 1.1 referrer).
    pub form: String,
    /// The digest the signature covers.
    pub digest: String,
    /// The scope whose policy asked for it.
    pub scope: String,
}

/// Why a candidate signature did not count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// The signature does not verify with any of the keys.
    BadSignature,
    /// It verifies, for another image (`what` it names).
    OtherImage(String),
    /// Not a signature berth reads.
    Unreadable(String),
}

/// The simple-signing payload of the tag form.
#[derive(Deserialize)]
struct SimpleSigning {
    critical: Critical,
}

#[derive(Deserialize)]
struct Critical {
    identity: Identity,
    image: ImageId,
}

#[derive(Deserialize)]
struct Identity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Deserialize)]
struct ImageId {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// The repository a reference names, without tag or digest.
fn repository_of(reference: &str) -> &str {
    let no_digest = reference.split('@').next().unwrap_or(reference);
    match no_digest.rsplit_once(':') {
        // A colon after the last slash is a tag's.
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => no_digest,
    }
}

/// Checks a tag-form signature: `payload` signed as `sig_b64` by one of
/// `keys`, naming repository `name` and one of `digests`.
pub fn check_simple_signing<'k>(
    keys: &'k [Key],
    payload: &[u8],
    sig_b64: &str,
    name: &str,
    digests: &[String],
) -> Result<(&'k Key, String), Miss> {
    let key = keys
        .iter()
        .find(|k| k.verifies(payload, sig_b64))
        .ok_or(Miss::BadSignature)?;
    let p: SimpleSigning = serde_json::from_slice(payload)
        .map_err(|e| Miss::Unreadable(format!("the signed payload is not simple signing: {e}")))?;
    let digest = p.critical.image.docker_manifest_digest;
    let signed_name = repository_of(&p.critical.identity.docker_reference);
    if !digests.contains(&digest) || !same_repository(signed_name, name) {
        return Err(Miss::OtherImage(format!("{signed_name}@{digest}")));
    }
    Ok((key, digest))
}

/// Whether two repository names are the same (docker.io's short forms
/// included).
fn same_repository(a: &str, b: &str) -> bool {
    let full = |n: &str| {
        crate::reference::Reference::parse(n)
            .map(|r| r.name())
            .unwrap_or_else(|_| n.to_string())
    };
    full(a) == full(b)
}

/// DSSE's pre-authentication encoding.
fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Checks a sigstore bundle (v0.3, DSSE envelope of an in-toto statement)
/// signed by one of `keys` for repository `name` and one of `digests`.
pub fn check_bundle<'k>(
    keys: &'k [Key],
    bundle: &[u8],
    name: &str,
    digests: &[String],
) -> Result<(&'k Key, String), Miss> {
    let b: serde_json::Value = serde_json::from_slice(bundle)
        .map_err(|e| Miss::Unreadable(format!("the bundle is not JSON: {e}")))?;
    let env = &b["dsseEnvelope"];
    let (Some(ptype), Some(payload)) = (env["payloadType"].as_str(), env["payload"].as_str())
    else {
        return Err(Miss::Unreadable(
            "the bundle holds no DSSE envelope (message signatures of images are not read)".into(),
        ));
    };
    let payload = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .map_err(|e| Miss::Unreadable(format!("the envelope's payload is not base64: {e}")))?;
    let message = pae(ptype, &payload);
    let sigs = env["signatures"].as_array().cloned().unwrap_or_default();
    let key = keys
        .iter()
        .find(|k| {
            sigs.iter().any(|s| {
                s["sig"]
                    .as_str()
                    .is_some_and(|sig| k.verifies(&message, sig))
            })
        })
        .ok_or(Miss::BadSignature)?;
    if ptype != IN_TOTO {
        return Err(Miss::Unreadable(format!(
            "the envelope holds {ptype}, not an in-toto statement"
        )));
    }
    let st: serde_json::Value = serde_json::from_slice(&payload)
        .map_err(|e| Miss::Unreadable(format!("the statement is not JSON: {e}")))?;
    let mut named = Vec::new();
    for s in st["subject"].as_array().into_iter().flatten() {
        let digest = s["digest"]["sha256"]
            .as_str()
            .map(|h| format!("sha256:{h}"))
            .unwrap_or_default();
        let subject = s["name"].as_str().unwrap_or_default();
        if digests.contains(&digest)
            && (subject.is_empty() || same_repository(repository_of(subject), name))
        {
            return Ok((key, digest));
        }
        named.push(format!("{subject}@{digest}"));
    }
    Err(Miss::OtherImage(named.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(scope: &str, policy: Policy) -> TrustConfig {
        TrustConfig {
            scope: scope.into(),
            policy,
            keys: vec![],
        }
    }

    #[test]
    fn the_most_specific_scope_wins() {
        let e = vec![
            entry("*", Policy::Accept),
            entry("reg.example:5000", Policy::Reject),
            entry("reg.example:5000/team", Policy::SignedBy),
            entry("reg.example:5000/team/app", Policy::Accept),
        ];
        let p = |n: &str| policy_for(&e, n).map(|t| t.scope.as_str());
        assert_eq!(
            p("reg.example:5000/team/app"),
            Some("reg.example:5000/team/app")
        );
        assert_eq!(
            p("reg.example:5000/team/other"),
            Some("reg.example:5000/team")
        );
        assert_eq!(p("reg.example:5000/teamx/a"), Some("reg.example:5000"));
        assert_eq!(p("docker.io/library/busybox"), Some("*"));
        assert_eq!(
            policy_for(&e[1..], "docker.io/library/busybox").map(|t| t.policy),
            None
        );
        assert_eq!(repository_of("reg:5000/a/b:v1"), "reg:5000/a/b");
        assert_eq!(repository_of("reg:5000/a/b@sha256:00"), "reg:5000/a/b");
        assert_eq!(repository_of("reg:5000/a/b"), "reg:5000/a/b");
        assert_eq!(pae("t", b"abc"), b"DSSEv1 1 t 3 abc".to_vec());
    }
}
