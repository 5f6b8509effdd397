//! Images made from a container's writable layer (docker's `commit`): the
//! storage plugin's `diff` of the snapshot, gzip-compressed (incompressible
//! parts stored: [`crate::gz`]) into the content store as it is written
//! (hashed once each way: the diff id of the tar, the digest of the blob); a
//! config and a manifest on top of the container's image; the new layer
//! unpacked under its chain id so the image runs; the image named, or kept
//! under its id. Also docker's `diff`: the same layer read as added, changed
//! and deleted paths.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::Engine;
use crate::content::NewBlob;
use crate::error::{EngineError, Result};
use crate::gz::GzWriter;
use crate::images::ImageRecord;

/// What a commit records besides the config: docker's `author`, `comment`,
/// the `created_by` of its history entry, and the container it came from.
#[derive(Debug, Clone, Default)]
pub struct CommitMeta {
    pub author: String,
    pub comment: String,
    pub created_by: String,
    pub container: String,
    /// Directories made only as mount targets (a build step's `--mount`s
    /// and their parents, relative to the root): left out of the layer
    /// unless something else in it lies beneath them, as BuildKit does.
    pub mount_stubs: Vec<String>,
}

/// A layer blob made from a snapshot.
#[derive(Debug, Clone)]
struct LayerBlob {
    digest: String,
    size: u64,
    diff_id: String,
}

/// The tar stream of a `diff` on its way into the content store.
struct DiffSink {
    gz: Option<GzWriter<NewBlob>>,
    diff: Sha256,
    /// Whether the tar holds anything but its end-of-archive zeros.
    changed: bool,
}

/// The writer handed to the plugin host; the sink comes back after the call.
struct SharedSink(Arc<Mutex<DiffSink>>);

impl Write for SharedSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut s = self.0.lock().expect("diff sink");
        let n = s.gz.as_mut().expect("open until finished").write(buf)?;
        s.diff.update(&buf[..n]);
        s.changed |= buf[..n].iter().any(|b| *b != 0);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        let mut s = self.0.lock().expect("diff sink");
        s.gz.as_mut().expect("open until finished").flush()
    }
}

impl Engine {
    /// The changes of snapshot `key` against its parent as a gzip layer in
    /// the content store, without the mountpoints berth itself made in the
    /// writable layer ([`MOUNTPOINTS`]); `None` when nothing changed.
    async fn layer_from(&self, key: &str, stubs: &[String]) -> Result<Option<LayerBlob>> {
        let blob = self.content.ingest_new()?;
        let sink = Arc::new(Mutex::new(DiffSink {
            gz: Some(GzWriter::new(blob, flate2::Compression::fast())),
            diff: Sha256::new(),
            changed: false,
        }));
        let (reader, writer) = std::io::pipe()
            .map_err(|e| EngineError::io("making a pipe for the diff of", key, e))?;
        let filter = {
            let mut out = SharedSink(sink.clone());
            let stubs = stubs.to_vec();
            tokio::task::spawn_blocking(move || without_mountpoints(reader, &mut out, &stubs))
        };
        let diffed = self.storage.diff(key, Box::new(writer)).await;
        let filtered = filter.await.map_err(|_| {
            EngineError::io(
                "filtering the diff of",
                key,
                std::io::Error::other("the filter panicked"),
            )
        })?;
        diffed?;
        filtered.map_err(|e| EngineError::io("reading the diff of", key, e))?;
        let mut s = sink.lock().expect("diff sink");
        if !s.changed {
            return Ok(None);
        }
        let diff_id = format!("sha256:{}", hex::encode(s.diff.clone().finalize()));
        let blob =
            s.gz.take()
                .expect("open until finished")
                .finish()
                .map_err(|e| EngineError::io("compressing the layer of", key, e))?;
        let (digest, size) = blob.commit()?;
        Ok(Some(LayerBlob {
            digest,
            size,
            diff_id,
        }))
    }

    /// Makes an image of snapshot `key` on top of image `base`, with
    /// `config` as its runtime config (docker's `Cmd`, `Env`, …), and names
    /// it `full_name` (or keeps it under its id). Returns the image id.
    pub async fn commit_image(
        &self,
        base: &ImageRecord,
        key: &str,
        config: Map<String, Value>,
        meta: &CommitMeta,
        full_name: Option<&str>,
    ) -> Result<String> {
        let bad = |reason: String| EngineError::Image {
            name: base.config.clone(),
            reason,
        };
        let layer = self.layer_from(key, &meta.mount_stubs).await?;
        let image: Value = serde_json::from_slice(&self.content.read(&base.config)?)
            .map_err(|e| bad(format!("config is not JSON: {e}")))?;
        let manifest: Value = serde_json::from_slice(&self.content.read(&base.manifest)?)
            .map_err(|e| bad(format!("manifest is not JSON: {e}")))?;
        self.stack_image(Some(base), image, manifest, layer, config, meta, full_name)
            .await
    }

    /// Makes an image with `base`'s layers (none for `scratch`) and
    /// `config` as its runtime config: a build's steps that change only the
    /// config (`ENV`, `CMD`, …). Returns the image id.
    pub async fn derive_image(
        &self,
        base: Option<&ImageRecord>,
        config: Map<String, Value>,
        meta: &CommitMeta,
    ) -> Result<String> {
        let (image, manifest) = match base {
            Some(b) => {
                let bad = |reason: String| EngineError::Image {
                    name: b.config.clone(),
                    reason,
                };
                let image: Value = serde_json::from_slice(&self.content.read(&b.config)?)
                    .map_err(|e| bad(format!("config is not JSON: {e}")))?;
                let manifest: Value = serde_json::from_slice(&self.content.read(&b.manifest)?)
                    .map_err(|e| bad(format!("manifest is not JSON: {e}")))?;
                (image, manifest)
            }
            None => empty_image(),
        };
        self.stack_image(base, image, manifest, None, config, meta, None)
            .await
    }

    /// Makes an image of one layer from a tar (docker's `import`): `config`
    /// as its runtime config, `meta.comment` as its history's comment.
    pub async fn import_image(
        &self,
        tar: impl std::io::Read + Send + 'static,
        config: Map<String, Value>,
        meta: &CommitMeta,
        full_name: Option<&str>,
    ) -> Result<String> {
        let blob = self.content.ingest_new()?;
        let layer = tokio::task::spawn_blocking(move || -> std::io::Result<Option<LayerBlob>> {
            let mut sink = SharedSink(Arc::new(Mutex::new(DiffSink {
                gz: Some(GzWriter::new(blob, flate2::Compression::fast())),
                diff: Sha256::new(),
                changed: false,
            })));
            // Read through a tar reader on the way: what is not a tar fails
            // here, before anything is stored.
            let mut ar = tar::Archive::new(Tee {
                input: tar,
                out: &mut sink,
            });
            for entry in ar.entries()? {
                std::io::copy(&mut entry?, &mut std::io::sink())?;
            }
            let mut rest = ar.into_inner();
            std::io::copy(&mut rest, &mut std::io::sink())?;
            let mut s = sink.0.lock().expect("diff sink");
            if !s.changed {
                return Ok(None);
            }
            let diff_id = format!("sha256:{}", hex::encode(s.diff.clone().finalize()));
            let blob = s.gz.take().expect("open until finished").finish()?;
            let (digest, size) = blob.commit().map_err(std::io::Error::other)?;
            Ok(Some(LayerBlob {
                digest,
                size,
                diff_id,
            }))
        })
        .await
        .map_err(|_| {
            EngineError::io(
                "importing",
                "the archive",
                std::io::Error::other("the import panicked"),
            )
        })?
        .map_err(|e| EngineError::io("importing", "the archive", e))?;
        let Some(layer) = layer else {
            return Err(EngineError::invalid(
                "archive",
                "-",
                "the archive is empty: nothing to import".to_string(),
            ));
        };
        let (image, manifest) = empty_image();
        self.stack_image(None, image, manifest, Some(layer), config, meta, full_name)
            .await
    }

    /// Puts `layer` (if any) on top of `image` and `manifest` (those of
    /// `base`, or empty ones), with a history row from `meta`; unpacks the
    /// layer, names the image. Returns its id.
    #[allow(clippy::too_many_arguments)]
    async fn stack_image(
        &self,
        base: Option<&ImageRecord>,
        mut image: Value,
        mut manifest: Value,
        layer: Option<LayerBlob>,
        config: Map<String, Value>,
        meta: &CommitMeta,
        full_name: Option<&str>,
    ) -> Result<String> {
        let created = crate::store::now();
        let mut history = json!({"created": created, "created_by": meta.created_by});
        if !meta.author.is_empty() {
            history["author"] = json!(meta.author);
            image["author"] = json!(meta.author);
        }
        if !meta.comment.is_empty() {
            history["comment"] = json!(meta.comment);
        }
        match &layer {
            Some(l) => push(&mut image["rootfs"]["diff_ids"], json!(l.diff_id)),
            None => history["empty_layer"] = json!(true),
        }
        push(&mut image["history"], history);
        image["created"] = json!(created);
        image["config"] = Value::Object(config);
        if !meta.container.is_empty() {
            image["container"] = json!(meta.container);
        }
        let config_bytes = serde_json::to_vec(&image).expect("serializable");
        let config_digest = self.content.put(&config_bytes)?;
        // The layer and config media types follow the base's manifest (docker's or OCI's).
        let docker = manifest["mediaType"].as_str()
            == Some("application/vnd.docker.distribution.manifest.v2+json");
        let (layer_type, config_type) = if docker {
            (
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "application/vnd.docker.container.image.v1+json",
            )
        } else {
            (
                "application/vnd.oci.image.layer.v1.tar+gzip",
                "application/vnd.oci.image.config.v1+json",
            )
        };
        manifest["config"] = json!({
            "mediaType": config_type,
            "digest": config_digest,
            "size": config_bytes.len(),
        });
        if let Some(l) = &layer {
            push(
                &mut manifest["layers"],
                json!({"mediaType": layer_type, "digest": l.digest, "size": l.size}),
            );
        }
        if let Some(m) = manifest.as_object_mut() {
            m.remove("annotations");
        }
        let manifest_digest = self
            .content
            .put(&serde_json::to_vec(&manifest).expect("serializable"))?;
        let parent = base.and_then(|b| b.chain.last().cloned());
        let mut chain = base.map(|b| b.chain.clone()).unwrap_or_default();
        if let Some(l) = &layer {
            let diff_ids: Vec<String> = image["rootfs"]["diff_ids"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|d| d.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            let id = crate::layers::chain_ids(&diff_ids)
                .pop()
                .expect("the new layer's diff id is there");
            if !self.storage.has_layer(&id).await? {
                let blob = self.content.open_blob(&l.digest)?;
                let tar = crate::layers::decompress(blob, crate::layers::Compression::Gzip)?;
                self.storage
                    .apply_layer(&id, parent.as_deref(), tar)
                    .await?;
            }
            chain.push(id);
        }
        let rec = ImageRecord {
            signers: Vec::new(),
            manifest: manifest_digest,
            config: config_digest.clone(),
            chain,
            added: created,
            parent: base.map(|b| b.config.clone()),
        };
        self.images.name(full_name, rec)?;
        Ok(config_digest)
    }
}

/// The config and manifest of an image without layers (`scratch`, `import`).
fn empty_image() -> (Value, Value) {
    let arch = crate::engine::host_platform().architecture;
    (
        json!({
            "architecture": arch,
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": []},
            "history": [],
        }),
        json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "layers": [],
        }),
    )
}

/// A reader that writes what it reads to `out`.
struct Tee<R, W> {
    input: R,
    out: W,
}

impl<R: std::io::Read, W: Write> std::io::Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.input.read(buf)?;
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// A path a container changed (docker's `GET /containers/{id}/changes`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    /// Absolute, as the container sees it.
    pub path: String,
    pub kind: ChangeKind,
}

/// docker's change kinds (`C`, `A`, `D`; 0, 1, 2 in the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    Modified = 0,
    Added = 1,
    Deleted = 2,
}

impl Engine {
    /// What snapshot `key` changed on top of image `base`: each path of
    /// its diff is added, or changed when the image has it; whiteouts are
    /// deletions. The image's own files are looked up in a read-only view
    /// of it, mounted for the call.
    pub async fn changes(&self, key: &str, base: &ImageRecord) -> Result<Vec<Change>> {
        let (reader, writer) = std::io::pipe()
            .map_err(|e| EngineError::io("making a pipe for the diff of", key, e))?;
        let list = tokio::task::spawn_blocking(move || diff_paths(reader));
        let diffed = self.storage.diff(key, Box::new(writer)).await;
        let listed = list.await.map_err(|_| {
            EngineError::io(
                "listing the diff of",
                key,
                std::io::Error::other("the lister panicked"),
            )
        })?;
        diffed?;
        let entries = listed.map_err(|e| EngineError::io("reading the diff of", key, e))?;
        let view = tempfile::Builder::new()
            .prefix("berth-view-")
            .tempdir_in(&self.root)
            .map_err(|e| EngineError::io("making a view directory in", &self.root, e))?;
        let view_key = format!("{key}-view");
        let lower = match base.chain.last() {
            Some(top) => {
                let mounts = self.storage.view(&view_key, top).await?;
                crate::mount::mount_all(&view_key, &mounts, view.path())?;
                Some(view.path().to_path_buf())
            }
            None => None,
        };
        let in_image = |p: &str| {
            lower
                .as_ref()
                .is_some_and(|l| std::fs::symlink_metadata(l.join(p)).is_ok())
        };
        let mut out: Vec<Change> = entries
            .into_iter()
            .map(|(path, deleted)| Change {
                kind: if deleted {
                    ChangeKind::Deleted
                } else if in_image(&path) {
                    ChangeKind::Modified
                } else {
                    ChangeKind::Added
                },
                path: format!("/{path}"),
            })
            .collect();
        if lower.is_some() {
            let _ = crate::mount::unmount_all(view.path());
            let _ = self.storage.remove(&view_key).await;
        }
        out.sort();
        out.dedup_by(|a, b| a.path == b.path);
        Ok(out)
    }
}

/// The paths of a layer tar, without the engine's mountpoints: `(path,
/// deleted)`, a whiteout `.wh.NAME` naming a deleted `NAME`; opaque markers
/// are left out (their directory is listed itself).
fn diff_paths(input: impl std::io::Read) -> std::io::Result<Vec<(String, bool)>> {
    let mut ar = tar::Archive::new(input);
    let mut out = Vec::new();
    for entry in ar.entries()? {
        let entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        let path = path
            .trim_start_matches("./")
            .trim_start_matches('/')
            .trim_end_matches('/')
            .to_string();
        if path.is_empty() {
            continue;
        }
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", &path));
        if name == ".wh..wh..opq" {
            continue;
        }
        if let Some(gone) = name.strip_prefix(".wh.") {
            let p = if dir.is_empty() {
                gone.to_string()
            } else {
                format!("{dir}/{gone}")
            };
            out.push((p, true));
            continue;
        }
        let header = entry.header();
        if header.entry_type().is_file()
            && header.size()? == 0
            && MOUNTPOINTS.contains(&path.as_str())
        {
            continue;
        }
        out.push((path, false));
    }
    Ok(out)
}

/// Files the engine's bind mounts need in a container's root filesystem:
/// the runtime makes them, empty, in the writable layer. They are not the
/// container's changes (docker keeps them in an "init" layer of their own).
pub(crate) const MOUNTPOINTS: &[&str] = &["etc/hostname", "etc/hosts", "etc/resolv.conf"];

/// Copies a layer tar from `input` to `out` as it is — headers, extension
/// headers and data byte for byte — but for the empty files of
/// [`MOUNTPOINTS`] (with their extension headers, if any), and the
/// directories of `stubs` with nothing beneath them (each held back until an
/// entry under it shows up). Ends with the tar's two zero blocks when
/// anything is left, and writes nothing when not.
fn without_mountpoints(
    input: impl std::io::Read,
    out: &mut impl Write,
    stubs: &[String],
) -> std::io::Result<()> {
    let mut ar = tar::Archive::new(input);
    let mut pending: Vec<u8> = Vec::new();
    let mut held: Vec<(String, Vec<u8>)> = Vec::new();
    let mut wrote = false;
    let entries = ar.entries()?.raw(true);
    for entry in entries {
        let mut entry = entry?;
        let header = entry.header().clone();
        let mut bytes = header.as_bytes().to_vec();
        let size = header.entry_size()?;
        std::io::Read::read_to_end(&mut entry, &mut bytes)?;
        let pad = (512 - (size % 512) as usize) % 512;
        bytes.resize(bytes.len() + pad, 0);
        let kind = header.entry_type();
        if kind.is_gnu_longname() || kind.is_gnu_longlink() || kind.is_pax_local_extensions() {
            pending.extend_from_slice(&bytes);
            continue;
        }
        let path = header.path_bytes();
        let path = String::from_utf8_lossy(&path);
        let path = path.trim_start_matches("./").trim_start_matches('/');
        if kind.is_file() && size == 0 && MOUNTPOINTS.contains(&path) {
            pending.clear();
            continue;
        }
        let path = path.trim_end_matches('/');
        if kind.is_dir() && stubs.iter().any(|s| s == path) {
            let mut kept = std::mem::take(&mut pending);
            kept.extend_from_slice(&bytes);
            held.push((path.to_owned(), kept));
            continue;
        }
        // The held stubs this entry lies beneath go first, in their order.
        let mut i = 0;
        while i < held.len() {
            if path.starts_with(&format!("{}/", held[i].0)) {
                out.write_all(&held.remove(i).1)?;
            } else {
                i += 1;
            }
        }
        out.write_all(&pending)?;
        out.write_all(&bytes)?;
        pending.clear();
        wrote = true;
    }
    if wrote {
        out.write_all(&[0u8; 1024])?;
    }
    out.flush()
}

/// Appends to a JSON array, making it one if it is missing.
fn push(v: &mut Value, item: Value) {
    if !v.is_array() {
        *v = json!([]);
    }
    v.as_array_mut().expect("an array").push(item);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, path, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn names(tar: &[u8]) -> Vec<String> {
        tar::Archive::new(tar)
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn the_engines_mountpoints_leave_the_diff_and_the_rest_stays_as_it_was() {
        let long = format!("deep/{}/file", "d".repeat(120));
        let input = tar_of(&[
            ("etc/hostname", b""),
            ("added", b"new\n"),
            ("etc/hosts", b"not empty: the container's own"),
            ("./etc/resolv.conf", b""),
            (&long, b"x"),
        ]);
        let mut out = Vec::new();
        without_mountpoints(&input[..], &mut out, &[]).unwrap();
        assert_eq!(names(&out), ["added", "etc/hosts", long.as_str()]);
        assert_eq!(out.len() % 512, 0);
        // Only mountpoints: nothing at all, so the commit has no layer.
        let mut out = Vec::new();
        without_mountpoints(&tar_of(&[("etc/hosts", b"")])[..], &mut out, &[]).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn mount_stubs_leave_the_diff_unless_something_lies_beneath_them() {
        let mut b = tar::Builder::new(Vec::new());
        for (path, dir) in [
            ("mnt/", true),
            ("mnt/tool/", true),
            ("mnt/tool2/", true),
            ("mnt/tool2/kept", false),
            ("scratch/", true),
            ("tool-version", false),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(if dir {
                tar::EntryType::Directory
            } else {
                tar::EntryType::Regular
            });
            h.set_size(if dir { 0 } else { 1 });
            h.set_mode(0o755);
            h.set_cksum();
            b.append_data(&mut h, path, if dir { &b""[..] } else { &b"x"[..] })
                .unwrap();
        }
        let input = b.into_inner().unwrap();
        let stubs: Vec<String> = ["mnt", "mnt/tool", "mnt/tool2", "scratch"]
            .map(String::from)
            .to_vec();
        let mut out = Vec::new();
        without_mountpoints(&input[..], &mut out, &stubs).unwrap();
        assert_eq!(
            names(&out),
            ["mnt/", "mnt/tool2/", "mnt/tool2/kept", "tool-version"]
        );
    }

    #[test]
    fn a_diff_lists_its_paths_and_whiteouts_as_deletions() {
        let input = tar_of(&[
            ("etc/", b""),
            ("etc/.wh.group", b""),
            ("etc/hostname", b""),
            (".wh.mnt", b""),
            ("made/.wh..wh..opq", b""),
            ("made/file", b"x"),
        ]);
        assert_eq!(
            diff_paths(&input[..]).unwrap(),
            [
                ("etc".to_string(), false),
                ("etc/group".to_string(), true),
                ("mnt".to_string(), true),
                ("made/file".to_string(), false)
            ]
        );
    }
}
