//! Hand-made hostile images: an OCI layout whose one (uncompressed) layer
//! holds entries a well-behaved image never has — `..` paths, writes through
//! a symlink that points out of the layer — to check they are refused.

use std::path::Path;

use serde_json::json;
use sha2::{Digest, Sha256};

/// One tar entry of a crafted layer.
#[derive(Debug, Clone)]
pub enum Entry {
    /// A regular file with raw `name` (not cleaned: may contain `..`).
    File {
        name: String,
        data: Vec<u8>,
    },
    /// A symlink `name` → `target`.
    Symlink {
        name: String,
        target: String,
    },
    Dir {
        name: String,
    },
    /// A hard link `name` → `target` (raw: may contain `..` or be absolute).
    Hardlink {
        name: String,
        target: String,
    },
    /// A character device node.
    CharDev {
        name: String,
        major: u32,
        minor: u32,
    },
}

fn raw_header(name: &str, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    {
        let old = h.as_old_mut();
        let b = name.as_bytes();
        assert!(b.len() < 100, "crafted names must fit the ustar name field");
        old.name[..b.len()].copy_from_slice(b);
    }
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o755);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

fn put_blob(layout: &Path, data: &[u8]) -> String {
    let hex = hex::encode(Sha256::digest(data));
    std::fs::write(layout.join("blobs/sha256").join(&hex), data).expect("write blob");
    format!("sha256:{hex}")
}

/// Writes an OCI layout with image `tag` made of one layer of `entries`.
pub fn layout(layout: &Path, tag: &str, entries: &[Entry]) {
    std::fs::create_dir_all(layout.join("blobs/sha256")).expect("layout dirs");
    let mut ar = tar::Builder::new(Vec::new());
    for e in entries {
        match e {
            Entry::File { name, data } => {
                let mut h = raw_header(name, tar::EntryType::Regular, data.len() as u64);
                h.set_cksum();
                ar.append(&h, &data[..]).expect("tar file");
            }
            Entry::Symlink { name, target } => {
                let mut h = raw_header(name, tar::EntryType::Symlink, 0);
                h.set_link_name(target).expect("link name");
                h.set_cksum();
                ar.append(&h, &[][..]).expect("tar symlink");
            }
            Entry::CharDev { name, major, minor } => {
                let mut h = raw_header(name, tar::EntryType::Char, 0);
                h.set_device_major(*major).expect("major");
                h.set_device_minor(*minor).expect("minor");
                h.set_cksum();
                ar.append(&h, &[][..]).expect("tar device");
            }
            Entry::Hardlink { name, target } => {
                let mut h = raw_header(name, tar::EntryType::Link, 0);
                let b = target.as_bytes();
                assert!(
                    b.len() < 100,
                    "crafted link targets must fit the ustar field"
                );
                h.as_old_mut().linkname[..b.len()].copy_from_slice(b);
                h.set_cksum();
                ar.append(&h, &[][..]).expect("tar hard link");
            }
            Entry::Dir { name } => {
                let mut h = raw_header(name, tar::EntryType::Directory, 0);
                h.set_cksum();
                ar.append(&h, &[][..]).expect("tar dir");
            }
        }
    }
    let layer = ar.into_inner().expect("tar");
    let layer_digest = put_blob(layout, &layer);
    let config = json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]}
    })
    .to_string();
    let config_digest = put_blob(layout, config.as_bytes());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}]
    })
    .to_string();
    let manifest_digest = put_blob(layout, manifest.as_bytes());
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag}
        }]
    });
    std::fs::write(layout.join("index.json"), index.to_string()).expect("index.json");
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("oci-layout");
}
