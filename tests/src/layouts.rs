//! OCI layouts written by hand for the registry tests: busybox images whose
//! layers are gzip, zstd or uncompressed tars, and multi-platform image
//! indexes (one busybox-based image per platform, each with its own marker
//! file so a test can tell which one it got).

use std::path::Path;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    fn compress(self, tar: &[u8]) -> Vec<u8> {
        use std::io::Write;
        match self {
            Compression::None => tar.to_vec(),
            Compression::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(tar).expect("gzip a layer");
                e.finish().expect("gzip a layer")
            }
            Compression::Zstd => zstd::encode_all(tar, 3).expect("zstd a layer"),
        }
    }
}

/// A layer: an uncompressed tar and how to store it.
#[derive(Debug, Clone)]
pub struct Layer {
    pub tar: Vec<u8>,
    pub compression: Compression,
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

fn put_blob(layout: &Path, data: &[u8]) -> String {
    let digest = sha256(data);
    std::fs::write(layout.join("blobs/sha256").join(&digest[7..]), data).expect("write blob");
    digest
}

fn init(layout: &Path) {
    std::fs::create_dir_all(layout.join("blobs/sha256")).expect("layout dirs");
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("oci-layout");
}

/// A tar of the busybox rootfs (see [`crate::rootfs`]) plus `files`
/// (path → content, written as regular files mode 0644).
pub fn busybox_tar(files: &[(&str, &str)]) -> Vec<u8> {
    let mut ar = tar::Builder::new(Vec::new());
    ar.follow_symlinks(false);
    ar.mode(tar::HeaderMode::Deterministic);
    ar.append_dir_all(".", crate::rootfs::base())
        .expect("tar the busybox rootfs");
    append_files(&mut ar, files);
    ar.into_inner().expect("finish tar")
}

/// A tar of just `files` (path → content).
pub fn files_tar(files: &[(&str, &str)]) -> Vec<u8> {
    let mut ar = tar::Builder::new(Vec::new());
    append_files(&mut ar, files);
    ar.into_inner().expect("finish tar")
}

fn append_files(ar: &mut tar::Builder<Vec<u8>>, files: &[(&str, &str)]) {
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        ar.append_data(&mut h, path, data.as_bytes())
            .expect("tar a file");
    }
}

/// Writes one image (layers, config, manifest) into `layout`'s blobs and
/// returns the manifest's descriptor (with `platform` for `arch`).
pub fn write_image(layout: &Path, arch: &str, layers: &[Layer]) -> Value {
    init(layout);
    let mut diff_ids = Vec::new();
    let mut descs = Vec::new();
    for l in layers {
        diff_ids.push(sha256(&l.tar));
        let blob = l.compression.compress(&l.tar);
        let digest = put_blob(layout, &blob);
        descs.push(json!({
            "mediaType": l.compression.media_type(),
            "digest": digest,
            "size": blob.len(),
        }));
    }
    let config = json!({
        "architecture": arch,
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin:/sbin:/usr/bin"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    })
    .to_string();
    let config_digest = put_blob(layout, config.as_bytes());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": descs,
    })
    .to_string();
    let digest = put_blob(layout, manifest.as_bytes());
    json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest,
        "size": manifest.len(),
        "platform": {"architecture": arch, "os": "linux"},
    })
}

fn write_index(layout: &Path, tag: &str, mut top: Value) {
    top["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
    let index = json!({"schemaVersion": 2, "manifests": [top]});
    std::fs::write(layout.join("index.json"), index.to_string()).expect("write index.json");
}

/// An OCI layout at `layout` whose image `tag` is one image of `layers` (amd64).
pub fn single(layout: &Path, tag: &str, layers: &[Layer]) {
    let desc = write_image(layout, "amd64", layers);
    write_index(layout, tag, desc);
}

/// An OCI layout at `layout` whose `tag` names an image index (its own
/// blob, mediaType application/vnd.oci.image.index.v1+json) listing one
/// busybox image per architecture in `arches`; each image has
/// `/etc/berth-arch` holding its architecture's name.
pub fn multi_platform(layout: &Path, tag: &str, arches: &[&str]) {
    let manifests: Vec<Value> = arches
        .iter()
        .map(|arch| {
            let marker = format!("{arch}\n");
            let layer = Layer {
                tar: busybox_tar(&[("etc/berth-arch", &marker)]),
                compression: Compression::Gzip,
            };
            write_image(layout, arch, &[layer])
        })
        .collect();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    })
    .to_string();
    let digest = put_blob(layout, index.as_bytes());
    write_index(
        layout,
        tag,
        json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": digest,
            "size": index.len(),
        }),
    );
}

/// The layer descriptors (media type, digest, size) of image manifest
/// `manifest_digest` in `layout`.
pub fn layers_of(layout: &Path, manifest_digest: &str) -> Vec<(String, String, u64)> {
    let m: Value = serde_json::from_slice(
        &std::fs::read(layout.join("blobs/sha256").join(&manifest_digest[7..]))
            .expect("read manifest blob"),
    )
    .expect("manifest JSON");
    m["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| {
            (
                l["mediaType"].as_str().unwrap_or_default().to_string(),
                l["digest"].as_str().unwrap_or_default().to_string(),
                l["size"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

/// The digest of the manifest (or index) `tag` names in `layout`'s index.json.
pub fn tagged(layout: &Path, tag: &str) -> String {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("read index.json"))
            .expect("index.json JSON");
    index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .and_then(|d| d["digest"].as_str())
        .unwrap_or_else(|| panic!("no {tag} in {}/index.json", layout.display()))
        .to_string()
}

/// Pushes `layout`'s `tag` — an image index and every image it lists — to
/// `repo:tag` on `registry` (`host:port`) with `skopeo copy --all`.
pub fn push_all(registry: &str, layout: &Path, tag: &str, repo: &str) {
    let src = format!("oci:{}:{tag}", layout.display());
    let dst = format!("docker://{registry}/{repo}:{tag}");
    crate::cmd::host(
        "skopeo",
        &[
            "copy",
            "--all",
            "--dest-tls-verify=false",
            "--insecure-policy",
            &src,
            &dst,
        ],
    );
}

/// What the registry holds as manifest `repo:tag` (`skopeo inspect --raw`).
pub fn raw_manifest(registry: &str, repo: &str, tag: &str) -> Value {
    let out = crate::cmd::host(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{registry}/{repo}:{tag}"),
        ],
    );
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("skopeo inspect --raw gave no JSON ({e}): {out}"))
}

/// The config digest of image manifest `manifest_digest` in `layout`.
pub fn config_of(layout: &Path, manifest_digest: &str) -> String {
    let m: Value = serde_json::from_slice(
        &std::fs::read(layout.join("blobs/sha256").join(&manifest_digest[7..]))
            .expect("read manifest blob"),
    )
    .expect("manifest JSON");
    m["config"]["digest"]
        .as_str()
        .expect("config digest")
        .to_string()
}

/// One HTTP/1.1 request to `registry` (`host:port`) with `Connection:
/// close`: (status, headers with lowercase names, body).
fn http(
    registry: &str,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(registry)
        .unwrap_or_else(|e| panic!("connecting to the registry {registry}: {e}"));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {registry}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("send a request");
    s.write_all(body).expect("send a request body");
    let mut all = Vec::new();
    s.read_to_end(&mut all).expect("read a response");
    let end = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("{method} {path}: no HTTP response from {registry}"));
    let text = String::from_utf8_lossy(&all[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, all[end + 4..].to_vec())
}

/// Pushes `layout`'s image `tag` (one image manifest) to `repo:tag` on
/// `registry` byte for byte, with the distribution API — unlike skopeo,
/// which gzips uncompressed layers on the way.
pub fn push_raw(registry: &str, layout: &Path, tag: &str, repo: &str) {
    let manifest_digest = tagged(layout, tag);
    let blob = |d: &str| {
        std::fs::read(layout.join("blobs/sha256").join(&d[7..]))
            .unwrap_or_else(|e| panic!("reading blob {d} of {}: {e}", layout.display()))
    };
    let manifest = blob(&manifest_digest);
    let mut digests = vec![config_of(layout, &manifest_digest)];
    digests.extend(layers_of(layout, &manifest_digest).into_iter().map(|l| l.1));
    for d in digests {
        let (status, headers, body) = http(
            registry,
            "POST",
            &format!("/v2/{repo}/blobs/uploads/"),
            "application/octet-stream",
            &[],
        );
        let location = headers
            .iter()
            .find(|(n, _)| n == "location")
            .map(|(_, v)| v.clone());
        let Some(location) = location.filter(|_| status == 202) else {
            panic!(
                "starting an upload to {registry}/{repo}: HTTP {status} {}",
                String::from_utf8_lossy(&body)
            );
        };
        // The registry answers with an absolute URL; keep its path and query.
        let path = match location.split_once("://") {
            Some((_, rest)) => rest[rest.find('/').unwrap_or(rest.len())..].to_string(),
            None => location,
        };
        let sep = if path.contains('?') { '&' } else { '?' };
        let (status, _, body) = http(
            registry,
            "PUT",
            &format!("{path}{sep}digest={}", d.replace(':', "%3A")),
            "application/octet-stream",
            &blob(&d),
        );
        assert_eq!(
            status,
            201,
            "uploading blob {d} to {registry}/{repo}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let (status, _, body) = http(
        registry,
        "PUT",
        &format!("/v2/{repo}/manifests/{tag}"),
        "application/vnd.oci.image.manifest.v1+json",
        &manifest,
    );
    assert_eq!(
        status,
        201,
        "pushing manifest {registry}/{repo}:{tag}: {}",
        String::from_utf8_lossy(&body)
    );
}

/// Rewrites the config of image `tag` in `layout` with `edit` (new config
/// and manifest blobs; the index points at the new manifest).
pub fn edit_config(layout: &Path, tag: &str, edit: impl FnOnce(&mut Value)) {
    let index_path = layout.join("index.json");
    let mut index: Value =
        serde_json::from_slice(&std::fs::read(&index_path).expect("read index.json"))
            .expect("index JSON");
    let blob =
        |d: &str| std::fs::read(layout.join("blobs/sha256").join(&d[7..])).expect("read blob");
    let entries = index["manifests"].as_array_mut().expect("manifests");
    let entry = entries
        .iter_mut()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .expect("the tag in index.json");
    let mut manifest: Value =
        serde_json::from_slice(&blob(entry["digest"].as_str().expect("digest")))
            .expect("manifest JSON");
    let mut config: Value = serde_json::from_slice(&blob(
        manifest["config"]["digest"]
            .as_str()
            .expect("config digest"),
    ))
    .expect("config JSON");
    edit(&mut config);
    let config = config.to_string();
    manifest["config"]["digest"] = json!(put_blob(layout, config.as_bytes()));
    manifest["config"]["size"] = json!(config.len());
    let manifest = manifest.to_string();
    entry["digest"] = json!(put_blob(layout, manifest.as_bytes()));
    entry["size"] = json!(manifest.len());
    std::fs::write(&index_path, index.to_string()).expect("write index.json");
}
