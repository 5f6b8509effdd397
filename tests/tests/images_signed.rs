//! Signed images under `[[trust]]`: keys made with openssl, cosign's
//! artifacts built by the test (Debian has no cosign) and pushed to a local
//! registry: the tag form (`sha256-<hex>.sig`, simple signing) and the OCI
//! 1.1 form (a referrer holding a sigstore bundle, found through the
//! `sha256-<hex>` fallback tag, as this registry has no referrers API).
//! Signed pulls work and `image inspect` shows the signer; unsigned,
//! tampered, wrongly keyed, misdirected and rejected pulls fail naming the
//! image, the scope and why, and leave nothing stored or runnable; images
//! out of every scope pull as before.

use std::path::Path;

use base64::Engine as _;
use berth_tests::daemon::{clients, layout, Daemon};
use berth_tests::registry::Registry;
use sha2::Digest as _;

fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("running openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A P-256 key pair `NAME.key` / `NAME.pub` in `dir`.
fn keypair(dir: &Path, name: &str) {
    let key = format!("{name}.key");
    openssl(
        dir,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            &key,
        ],
    );
    openssl(
        dir,
        &["ec", "-in", &key, "-pubout", "-out", &format!("{name}.pub")],
    );
}

/// `data` signed with `NAME.key` (ECDSA, SHA-256, DER), in base64.
fn sign(dir: &Path, name: &str, data: &[u8]) -> String {
    let f = dir.join("to-sign");
    std::fs::write(&f, data).unwrap();
    let sig = openssl(
        dir,
        &[
            "dgst",
            "-sha256",
            "-sign",
            &format!("{name}.key"),
            "to-sign",
        ],
    );
    base64::engine::general_purpose::STANDARD.encode(sig)
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const SIMPLE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// The empty config both artifact forms use.
fn empty_config(reg: &Registry, repo: &str) -> serde_json::Value {
    let d = reg.put_blob(repo, b"{}");
    serde_json::json!({"mediaType": "application/vnd.oci.empty.v1+json", "digest": d, "size": 2})
}

/// Pushes a tag-form signature of `repo@digest`: `payload` as the layer,
/// `sig` in its annotation.
fn push_tag_signature(reg: &Registry, repo: &str, digest: &str, payload: &[u8], sig: &str) {
    let layer = reg.put_blob(repo, payload);
    let config = empty_config(reg, repo);
    let m = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config,
        "layers": [{"mediaType": SIMPLE, "digest": layer, "size": payload.len(),
                    "annotations": {"dev.cosignproject.cosign/signature": sig}}],
    });
    let tag = format!("{}.sig", digest.replace(':', "-"));
    reg.put_manifest(repo, &tag, OCI_MANIFEST, m.to_string().as_bytes());
}

/// cosign's simple-signing payload for `name@digest`.
fn payload(name: &str, digest: &str) -> Vec<u8> {
    serde_json::json!({
        "critical": {"identity": {"docker-reference": name},
                     "image": {"docker-manifest-digest": digest},
                     "type": "cosign container image signature"},
        "optional": null,
    })
    .to_string()
    .into_bytes()
}

/// Pushes an OCI 1.1 signature of `repo@digest` (size `size`): a sigstore
/// bundle whose DSSE envelope holds an in-toto statement about it, in a
/// referrer, listed by the `sha256-<hex>` fallback tag.
fn push_bundle(
    reg: &Registry,
    dir: &Path,
    key: &str,
    repo: &str,
    name: &str,
    digest: &str,
    size: usize,
) {
    let statement = serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": name, "digest": {"sha256": digest.trim_start_matches("sha256:")}}],
        "predicateType": "https://sigstore.dev/cosign/sign/v1",
        "predicate": {},
    })
    .to_string();
    let ptype = "application/vnd.in-toto+json";
    let pae = format!(
        "DSSEv1 {} {ptype} {} {statement}",
        ptype.len(),
        statement.len()
    );
    let sig = sign(dir, key, pae.as_bytes());
    let b64 = base64::engine::general_purpose::STANDARD;
    let bundle = serde_json::json!({
        "mediaType": BUNDLE,
        "verificationMaterial": {"publicKey": {"hint": key}},
        "dsseEnvelope": {"payload": b64.encode(&statement), "payloadType": ptype,
                         "signatures": [{"sig": sig}]},
    })
    .to_string();
    let layer = reg.put_blob(repo, bundle.as_bytes());
    let config = empty_config(reg, repo);
    let m = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": BUNDLE,
        "config": config,
        "layers": [{"mediaType": BUNDLE, "digest": layer, "size": bundle.len()}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": digest, "size": size},
    })
    .to_string();
    let md = sha256(m.as_bytes());
    reg.put_manifest(repo, &md, OCI_MANIFEST, m.as_bytes());
    let index = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": md, "size": m.len(),
                       "artifactType": BUNDLE}],
    });
    reg.put_manifest(
        repo,
        &digest.replace(':', "-"),
        OCI_INDEX,
        index.to_string().as_bytes(),
    );
}

#[test]
fn pulls_follow_the_trust_policy() {
    let mut d = Daemon::start();
    let reg = Registry::start_in(d.netns());
    let keys = tempfile::tempdir().unwrap();
    keypair(keys.path(), "team");
    keypair(keys.path(), "other");
    let host = reg.addr.clone();
    let image = layout().join("oci");
    let mut pushed = std::collections::BTreeMap::new();
    for repo in [
        "team/tagsig",
        "team/bundled",
        "team/unsigned",
        "team/tampered",
        "team/wrongkey",
        "team/misdirected",
        "blocked/app",
        "free/app",
    ] {
        reg.push_layout(&image, "latest", repo, None);
        // One manifest per repository (the same layers): an annotation
        // tells them apart, so what a refused pull leaves can be seen.
        let mut m: serde_json::Value =
            serde_json::from_slice(&reg.get_manifest(repo, "latest")).unwrap();
        m["annotations"] = serde_json::json!({"org.example.repository": repo});
        let media_type = m["mediaType"].as_str().unwrap_or(OCI_MANIFEST).to_string();
        let bytes = m.to_string().into_bytes();
        let d = reg.put_manifest(repo, "latest", &media_type, &bytes);
        pushed.insert(repo, (d, bytes.len()));
    }
    let name = |repo: &str| format!("{host}/{repo}");
    let (digest, _) = pushed["team/tagsig"].clone();
    let p = payload(&name("team/tagsig"), &digest);
    push_tag_signature(
        &reg,
        "team/tagsig",
        &digest,
        &p,
        &sign(keys.path(), "team", &p),
    );
    let (digest, size2) = pushed["team/bundled"].clone();
    push_bundle(
        &reg,
        keys.path(),
        "team",
        "team/bundled",
        &name("team/bundled"),
        &digest,
        size2,
    );
    // Tampered: the signature is of one payload, the registry holds another.
    let (digest, _) = pushed["team/tampered"].clone();
    let signed = payload(&name("team/tampered"), &digest);
    let mut served = signed.clone();
    served.extend_from_slice(b" ");
    push_tag_signature(
        &reg,
        "team/tampered",
        &digest,
        &served,
        &sign(keys.path(), "team", &signed),
    );
    let (digest, _) = pushed["team/wrongkey"].clone();
    let p = payload(&name("team/wrongkey"), &digest);
    push_tag_signature(
        &reg,
        "team/wrongkey",
        &digest,
        &p,
        &sign(keys.path(), "other", &p),
    );
    // A good signature of another image, copied next to this one.
    let (digest, _) = pushed["team/misdirected"].clone();
    let p = payload(&name("team/tagsig"), &pushed["team/tagsig"].0);
    push_tag_signature(
        &reg,
        "team/misdirected",
        &digest,
        &p,
        &sign(keys.path(), "team", &p),
    );

    let key = keys.path().join("team.pub");
    std::fs::write(
        d.config_path(),
        format!(
            "[[trust]]\nscope = \"{host}/team\"\npolicy = \"signed-by\"\nkeys = [{key:?}]\n\n\
             [[trust]]\nscope = \"{host}/blocked\"\npolicy = \"reject\"\n",
        ),
    )
    .unwrap();
    d.restart();
    let c = clients()[1].1;
    for (repo, form) in [
        ("team/tagsig", "cosign"),
        ("team/bundled", "sigstore-bundle"),
    ] {
        let r = name(repo);
        d.docker(c, &["pull", &r]).assert_ok();
        let sigs =
            berth_tests::ok(d.docker(c, &["image", "inspect", "-f", "{{json .Signatures}}", &r]));
        let v: serde_json::Value = serde_json::from_str(&sigs).unwrap();
        assert_eq!(
            v[0]["Key"],
            key.to_string_lossy().as_ref(),
            "{repo}: {sigs}"
        );
        assert_eq!(v[0]["Form"], form, "{repo}: {sigs}");
        assert_eq!(v[0]["Digest"], pushed[repo].0.as_str(), "{repo}: {sigs}");
        assert_eq!(v[0]["Scope"], format!("{host}/team"), "{repo}: {sigs}");
        assert!(
            v[0]["KeyId"].as_str().unwrap().starts_with("sha256:"),
            "{sigs}"
        );
        berth_tests::ok(d.docker(c, &["run", "--rm", "--network", "none", &r, "true"]));
    }
    let blobs = d.root().join("blobs");
    for (repo, why) in [
        ("team/unsigned", "no signature".to_string()),
        (
            "team/tampered",
            format!("signature does not verify with key {}", key.display()),
        ),
        (
            "team/wrongkey",
            format!("signature does not verify with key {}", key.display()),
        ),
        ("team/misdirected", "signed for another image".to_string()),
        ("blocked/app", "the policy rejects every image".to_string()),
    ] {
        let r = name(repo);
        for (client, c) in clients() {
            let out = d.docker(c, &["pull", &r]);
            let scope = if repo.starts_with("team") {
                "team"
            } else {
                "blocked"
            };
            assert!(
                out.code != 0
                    && out.stderr.contains(&r)
                    && out
                        .stderr
                        .contains(&format!("trust policy of {host}/{scope}"))
                    && out.stderr.contains(&why),
                "{client} pull {repo}: {out}"
            );
        }
        let out = d.docker(c, &["image", "inspect", &r]);
        assert!(out.code != 0, "{repo} was stored: {out}");
        let hex = pushed[repo].0.trim_start_matches("sha256:").to_string();
        let found = berth_tests::cmd::host(
            "find",
            &[&blobs.to_string_lossy(), "-name", &format!("*{hex}*")],
        );
        assert!(
            found.stdout.trim().is_empty(),
            "{repo}'s manifest stayed in the store: {}",
            found.stdout
        );
        let out = d.docker(c, &["run", "--rm", "--pull", "never", &r, "true"]);
        assert!(out.code != 0, "{repo} runs: {out}");
    }
    // Out of every scope: pulled as before.
    d.docker(c, &["pull", &name("free/app")]).assert_ok();
    let sigs = berth_tests::ok(d.docker(
        c,
        &[
            "image",
            "inspect",
            "-f",
            "{{json .Signatures}}",
            &name("free/app"),
        ],
    ));
    assert_eq!(sigs, "[]");
}

#[test]
fn a_bad_trust_section_is_refused_naming_it() {
    let cases = [
        ("[[trust]]\nscope = \"r.example/team\"\npolicy = \"signed-by\"\n", "signed-by needs keys"),
        (
            "[[trust]]\nscope = \"r.example/team\"\npolicy = \"signed-by\"\nkeys = [\"/nonexistent.pub\"]\n",
            "reading the key /nonexistent.pub",
        ),
        ("[[trust]]\nscope = \"r.example\"\npolicy = \"maybe\"\n", "maybe"),
    ];
    for (toml, want) in cases {
        let out = berth_tests::berth::Berth::new(toml).cmd(&["images"]);
        let err = out.stderr.clone();
        assert!(out.code != 0 && err.contains(want), "{toml}: {out}");
    }
}
