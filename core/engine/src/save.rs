//! `berth save`: images to one tar that is both an OCI image layout
//! (`oci-layout`, `index.json`, `blobs/sha256/…`) and a `docker save`
//! archive (`manifest.json`), so docker, skopeo (`oci-archive:` and
//! `docker-archive:`) and berth itself can read it.

use std::path::Path;

use oci_spec::image::ImageManifest;
use serde_json::json;

use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::reference::Reference;

fn append(ar: &mut tar::Builder<std::fs::File>, name: &str, data: &[u8]) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_cksum();
    ar.append_data(&mut h, name, data)
}

pub fn save(engine: &Engine, names: &[String], out: &Path) -> Result<()> {
    let cs = engine.content();
    let mut manifests = Vec::new();
    let mut docker = Vec::new();
    let mut blobs = std::collections::BTreeSet::new();
    for n in names {
        let (full, rec) = engine.image(n)?;
        // An image saved by its id (a dangling one) goes without a name.
        let r = (!crate::images::dangling(&full))
            .then(|| Reference::parse(&full))
            .transpose()?;
        let mbytes = cs.read(&rec.manifest)?;
        let m: ImageManifest = serde_json::from_slice(&mbytes).map_err(|e| EngineError::Image {
            name: full.clone(),
            reason: format!("manifest: {e}"),
        })?;
        blobs.insert(rec.manifest.clone());
        blobs.insert(rec.config.clone());
        let layer_paths: Vec<String> = m
            .layers()
            .iter()
            .map(|l| {
                blobs.insert(l.digest().to_string());
                format!("blobs/sha256/{}", &l.digest().to_string()[7..])
            })
            .collect();
        let mut entry = json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": rec.manifest,
            "size": mbytes.len(),
        });
        if let Some(r) = &r {
            entry["annotations"] = json!({
                "io.containerd.image.name": full,
                "org.opencontainers.image.ref.name": r.tag.clone().unwrap_or_default()
            });
        }
        manifests.push(entry);
        docker.push(json!({
            "Config": format!("blobs/sha256/{}", &rec.config[7..]),
            "RepoTags": r.iter().map(|r| r.short()).collect::<Vec<_>>(),
            "Layers": layer_paths
        }));
    }
    let tmp = out.with_extension("berth-tmp");
    let f = std::fs::File::create(&tmp).map_err(|e| EngineError::io("creating", &tmp, e))?;
    let mut ar = tar::Builder::new(f);
    let io = |e| EngineError::io("writing", out, e);
    append(&mut ar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io)?;
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
    append(&mut ar, "index.json", index.to_string().as_bytes()).map_err(io)?;
    append(
        &mut ar,
        "manifest.json",
        serde_json::Value::Array(docker).to_string().as_bytes(),
    )
    .map_err(io)?;
    for d in blobs {
        let mut f = cs.open_blob(&d)?;
        let len = f.metadata().map_err(io)?.len();
        let mut h = tar::Header::new_gnu();
        h.set_size(len);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        ar.append_data(&mut h, format!("blobs/sha256/{}", &d[7..]), &mut f)
            .map_err(io)?;
    }
    let f = ar.into_inner().map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, out).map_err(|e| EngineError::io("renaming", out, e))
}
