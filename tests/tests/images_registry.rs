//! Pulling from a real registry when things are not simple: multi-platform
//! image indexes and `--platform`, zstd and uncompressed layers, a registry
//! that answers 5xx or breaks connections (through a fault-injecting proxy),
//! a manifest that is not JSON, and a fetcher plugin stopped at its deadline.
//! Every failure must leave no half-written blob and no image behind.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use berth_tests::layouts::{self, Compression, Layer};
use berth_tests::proxy::{Action, Proxy, Request};
use berth_tests::{walk, Berth, Output, Registry};
use sha2::{Digest, Sha256};

fn tmp(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(prefix).tempdir().unwrap()
}

/// The blobs in berth's content store (`<root>/blobs/sha256`), as digests.
fn stored_blobs(b: &Berth) -> Vec<String> {
    walk(&b.root().join("blobs/sha256"))
        .into_iter()
        .filter(|p| p.parent() == Some(&b.root().join("blobs/sha256")))
        .map(|p| format!("sha256:{}", p.file_name().unwrap().to_string_lossy()))
        .collect()
}

/// Fails unless every blob in the content store is whole (hashes to its
/// name) and no temporary (ingest) file is left anywhere under it.
fn assert_no_partial_blob(b: &Berth, what: &str) {
    let dir = b.root().join("blobs/sha256");
    for p in walk(&dir) {
        if p.parent() != Some(dir.as_path()) {
            panic!(
                "{what}: a temporary blob was left behind: {} ({} bytes)",
                p.display(),
                std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0)
            );
        }
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let got = hex::encode(Sha256::digest(std::fs::read(&p).unwrap()));
        assert_eq!(
            got,
            name,
            "{what}: blob {} is not whole (its content hashes to sha256:{got})",
            p.display()
        );
    }
}

fn assert_no_image(b: &Berth, what: &str) {
    let images = b.cmd(&["images", "-q"]);
    images.assert_ok();
    assert!(
        images.stdout.trim().is_empty(),
        "{what}: an image was recorded: {images}"
    );
}

/// Fails if anything is still mounted under berth's root (after `run --rm`).
fn assert_no_mounts(b: &Berth, what: &str) {
    let left = berth_tests::leak::mounts_under(b.root());
    assert!(
        left.is_empty(),
        "{what}: mounts left under the root: {left:?}"
    );
}

/// `berth image inspect IMAGE`'s one object.
fn inspect(b: &Berth, image: &str) -> serde_json::Value {
    let out = b.cmd(&["image", "inspect", image]);
    out.assert_ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("image inspect printed no JSON ({e}): {out}"));
    v[0].clone()
}

/// The OCI name of this machine's architecture.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => panic!("these tests build amd64 and arm64 images; this host is {other}"),
    }
}

/// A busybox image (gzip layer) pushed as `repo:latest`; returns the layout
/// dir (keep it alive) and the digests of its config and layer.
fn pushed_busybox(reg: &Registry, repo: &str) -> (tempfile::TempDir, String, String) {
    let dir = tmp("berth-layout-");
    let l = dir.path().join("oci");
    layouts::single(
        &l,
        "latest",
        &[Layer {
            tar: layouts::busybox_tar(&[("etc/berth-base", "base\n")]),
            compression: Compression::Gzip,
        }],
    );
    reg.push_layout(&l, "latest", repo, None);
    let manifest = layouts::tagged(&l, "latest");
    let config = layouts::config_of(&l, &manifest);
    let layer = layouts::layers_of(&l, &manifest)[0].1.clone();
    (dir, config, layer)
}

#[test]
fn platform_selects_from_a_multi_platform_index() {
    let reg = Registry::start();
    let dir = tmp("berth-layout-");
    let l = dir.path().join("oci");
    layouts::multi_platform(&l, "latest", &["amd64", "arm64"]);
    layouts::push_all(&reg.addr, &l, "latest", "multi");
    // The registry must hold an index of both, or the test proves nothing.
    let raw = layouts::raw_manifest(&reg.addr, "multi", "latest");
    let listed: Vec<String> = raw["manifests"]
        .as_array()
        .unwrap_or_else(|| panic!("the registry holds no index for multi: {raw}"))
        .iter()
        .map(|d| {
            d["platform"]["architecture"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(
        listed,
        ["amd64", "arm64"],
        "the pushed index does not list amd64 and arm64: {raw}"
    );
    let digest_of = |arch: &str| {
        raw["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["platform"]["architecture"] == arch)
            .and_then(|d| d["digest"].as_str())
            .unwrap()
            .to_string()
    };
    let image = format!("{}/multi", reg.addr);

    let b = Berth::new("");
    b.cmd(&["pull", "--platform", "linux/arm64", &image])
        .assert_ok();
    let info = inspect(&b, &image);
    assert_eq!(
        info["Architecture"], "arm64",
        "--platform linux/arm64 pulled another image: {info}"
    );
    assert_eq!(
        info["Manifest"],
        digest_of("arm64"),
        "--platform linux/arm64 did not record the index's arm64 manifest: {info}"
    );

    // Without --platform the same name now gets this machine's image, which runs.
    b.cmd(&["pull", &image]).assert_ok();
    let info = inspect(&b, &image);
    assert_eq!(
        info["Architecture"],
        host_arch(),
        "the default pull did not pick the host's platform: {info}"
    );
    assert_eq!(
        info["Manifest"],
        digest_of(host_arch()),
        "the default pull did not record the index's {} manifest: {info}",
        host_arch()
    );
    let run = b.cmd(&["run", "--rm", &image, "cat", "/etc/berth-arch"]);
    run.assert_ok();
    assert_eq!(
        run.stdout.trim(),
        host_arch(),
        "the container runs another platform's image: {run}"
    );
    assert_no_mounts(&b, "run --rm");

    // A platform the index does not have: refused, naming it and the image.
    let fresh = Berth::new("");
    let out = fresh.cmd(&["pull", "--platform", "linux/s390x", &image]);
    out.assert_failed();
    assert!(
        out.stderr.contains("linux/s390x"),
        "the error does not name the platform: {out}"
    );
    assert!(
        out.stderr.contains(&image),
        "the error does not name the image {image}: {out}"
    );
    assert_no_image(&fresh, "unknown platform");
    assert_no_partial_blob(&fresh, "unknown platform");
    assert!(
        stored_blobs(&fresh).is_empty(),
        "blobs were stored for a platform the image does not have: {:?}",
        stored_blobs(&fresh)
    );
}

#[test]
fn zstd_and_uncompressed_layers_pull_and_run() {
    let reg = Registry::start();
    let dir = tmp("berth-layout-");
    let l = dir.path().join("oci");
    layouts::single(
        &l,
        "latest",
        &[
            Layer {
                tar: layouts::busybox_tar(&[("etc/berth-zstd", "zstd layer\n")]),
                compression: Compression::Zstd,
            },
            Layer {
                tar: layouts::files_tar(&[("etc/berth-plain", "plain layer\n")]),
                compression: Compression::None,
            },
        ],
    );
    layouts::push_raw(&reg.addr, &l, "latest", "mixed");
    // The registry must serve the layers as they are, or the test proves nothing.
    let raw = layouts::raw_manifest(&reg.addr, "mixed", "latest");
    let types: Vec<&str> = raw["layers"]
        .as_array()
        .unwrap_or_else(|| panic!("no layers in the pushed manifest: {raw}"))
        .iter()
        .map(|d| d["mediaType"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        types,
        [
            "application/vnd.oci.image.layer.v1.tar+zstd",
            "application/vnd.oci.image.layer.v1.tar"
        ],
        "the registry does not hold a zstd and an uncompressed layer: {raw}"
    );
    let image = format!("{}/mixed", reg.addr);
    for driver in ["overlay", "vfs"] {
        let b = Berth::new(&format!("storage-driver = \"{driver}\"\n"));
        b.cmd(&["pull", "-q", &image]).assert_ok();
        let run = b.cmd(&[
            "run",
            "--rm",
            &image,
            "sh",
            "-c",
            "echo hello; cat /etc/berth-zstd /etc/berth-plain",
        ]);
        run.assert_ok();
        assert_eq!(
            run.lines(),
            ["hello", "zstd layer", "plain layer"],
            "{driver}: the zstd or the uncompressed layer is not in the container: {run}"
        );
        assert_no_mounts(&b, driver);
    }
}

#[test]
fn pull_retries_5xx_and_resumes_a_broken_download() {
    let reg = Registry::start();
    let (_l, config, layer) = pushed_busybox(&reg, "busybox");
    let (manifests, blobs, cuts) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let layer_path = format!("/blobs/{layer}");
    let proxy = {
        let (manifests, blobs, cuts) = (manifests.clone(), blobs.clone(), cuts.clone());
        let layer_path = layer_path.clone();
        Proxy::start(&reg.addr, move |req| {
            if req.is_manifest_get() && manifests.fetch_add(1, Ordering::SeqCst) == 0 {
                Action::Status(503)
            } else if req.is_blob_get() && blobs.fetch_add(1, Ordering::SeqCst) < 2 {
                // The first blob (the config) fails twice: the third try must work.
                Action::Status(503)
            } else if req.is_blob_get()
                && req.path.ends_with(&layer_path)
                && req.header("range").is_none()
                && cuts.fetch_add(1, Ordering::SeqCst) == 0
            {
                Action::CutBody
            } else {
                Action::Forward
            }
        })
    };
    let image = format!("{}/busybox", proxy.addr);
    let b = Berth::new("");
    let out = b.cmd(&["pull", &image]);
    let log = proxy.log_text();
    out.assert_ok();
    assert_eq!(
        proxy.count("503 (injected)"),
        3,
        "the proxy did not inject the 503s it should have:\n{log}"
    );
    assert!(
        log.contains(&format!("/blobs/{config} -> 200 forwarded")),
        "the config was never fetched after its 503s:\n{log}"
    );
    assert_eq!(
        proxy.count("cut after"),
        1,
        "the layer download was never cut:\n{log}"
    );
    assert!(
        proxy.count(&format!("{layer_path} (range bytes=")) >= 1,
        "the broken layer download was not resumed with a Range request:\n{log}"
    );
    assert_no_partial_blob(&b, "retried pull");
    let run = b.cmd(&[
        "run",
        "--rm",
        &image,
        "sh",
        "-c",
        "echo retried; cat /etc/berth-base",
    ]);
    run.assert_ok();
    assert_eq!(run.lines(), ["retried", "base"], "{run}");
    assert_no_mounts(&b, "run --rm");
}

/// Pulls `busybox` through a proxy that answers `status` to the requests
/// `matches` picks (and forwards the rest); the pull must fail.
fn pull_answering(
    reg: &Registry,
    status: u16,
    matches: fn(&Request) -> bool,
) -> (Berth, Proxy, Output) {
    let proxy = Proxy::start(&reg.addr, move |req| {
        if matches(req) {
            Action::Status(status)
        } else {
            Action::Forward
        }
    });
    let b = Berth::new("");
    let out = b.cmd(&["pull", &format!("{}/busybox", proxy.addr)]);
    out.assert_failed();
    (b, proxy, out)
}

#[test]
fn a_registry_that_always_answers_500_fails_the_pull_cleanly() {
    let reg = Registry::start();
    let (_l, config, layer) = pushed_busybox(&reg, "busybox");
    let (b, proxy, out) = pull_answering(&reg, 500, Request::is_blob_get);
    assert!(
        proxy.count("500 (injected)") >= 2,
        "the blob request was not retried:\n{}",
        proxy.log_text()
    );
    assert!(
        out.stderr.contains("500"),
        "the error does not name the HTTP status: {out}"
    );
    assert!(
        out.stderr.contains(&config),
        "the error does not name the blob that failed ({config}): {out}"
    );
    assert_no_partial_blob(&b, "pull against 500s");
    assert_no_image(&b, "pull against 500s");
    let kept = stored_blobs(&b);
    assert!(
        !kept.contains(&config) && !kept.contains(&layer),
        "a blob that was never served is in the store: {kept:?}"
    );
}

#[test]
fn a_manifest_that_is_not_json_is_refused_and_nothing_stored() {
    let reg = Registry::start();
    let _l = pushed_busybox(&reg, "busybox");
    for content_type in ["application/vnd.oci.image.manifest.v1+json", "text/html"] {
        let ct = content_type.to_string();
        let proxy = Proxy::start(&reg.addr, move |req| {
            if req.is_manifest_get() {
                Action::Body {
                    content_type: ct.clone(),
                    body: b"<html><body>502 Bad Gateway</body></html>\n".to_vec(),
                }
            } else {
                Action::Forward
            }
        });
        let image = format!("{}/busybox:latest", proxy.addr);
        let b = Berth::new("");
        let out = b.cmd(&["pull", &image]);
        out.assert_failed();
        assert!(
            proxy.count("made-up body") >= 1,
            "{content_type}: the garbage manifest was never served:\n{}",
            proxy.log_text()
        );
        assert!(
            out.stderr.contains(&image),
            "{content_type}: the error does not name the image {image}: {out}"
        );
        assert!(
            out.stderr.contains("manifest"),
            "{content_type}: the error does not say the manifest is bad: {out}"
        );
        assert_no_partial_blob(&b, content_type);
        assert_no_image(&b, content_type);
        assert!(
            stored_blobs(&b).is_empty(),
            "{content_type}: the bad manifest (or something else) was stored: {:?}",
            stored_blobs(&b)
        );
    }
}

#[test]
fn a_fetcher_stopped_at_its_deadline_leaves_nothing_and_the_next_pull_works() {
    let reg = Registry::start();
    let (_l, _config, layer) = pushed_busybox(&reg, "busybox");
    let stall = Arc::new(AtomicBool::new(true));
    let layer_path = format!("/blobs/{layer}");
    let proxy = {
        let stall = stall.clone();
        Proxy::start(&reg.addr, move |req| {
            if stall.load(Ordering::SeqCst) && req.is_blob_get() && req.path.ends_with(&layer_path)
            {
                Action::Stall
            } else {
                Action::Forward
            }
        })
    };
    let image = format!("{}/busybox", proxy.addr);
    let b = Berth::new("[plugin.registry]\nkind = \"fetcher\"\ntimeout-secs = 3\n");
    let out = b.cmd(&["pull", &image]);
    out.assert_failed();
    assert!(
        proxy.count("stalled after") >= 1,
        "the layer download was never stalled:\n{}",
        proxy.log_text()
    );
    assert!(
        out.stderr.contains("plugin registry"),
        "the error does not name the plugin: {out}"
    );
    assert!(
        out.stderr.contains("fetch") && out.stderr.contains("did not finish within 3s"),
        "the error does not name the call and its deadline: {out}"
    );
    assert_no_partial_blob(&b, "pull stopped at the deadline");
    assert_no_image(&b, "pull stopped at the deadline");
    assert!(
        !stored_blobs(&b).contains(&layer),
        "the stalled layer is in the store"
    );

    // The same root, the default limits and a registry that answers: it works.
    stall.store(false, Ordering::SeqCst);
    std::fs::write(&b.config, "").unwrap();
    b.cmd(&["pull", &image]).assert_ok();
    assert_no_partial_blob(&b, "the pull after the stopped one");
    let run = b.cmd(&["run", "--rm", &image, "cat", "/etc/berth-base"]);
    run.assert_ok();
    assert_eq!(run.stdout.trim(), "base", "{run}");
    assert_no_mounts(&b, "run --rm");
}

#[test]
fn a_registry_that_forbids_the_image_fails_the_pull_naming_it() {
    let reg = Registry::start();
    let _l = pushed_busybox(&reg, "busybox");
    let (b, proxy, out) = pull_answering(&reg, 403, Request::is_manifest_get);
    assert!(
        proxy.count("403 (injected)") >= 1,
        "the manifest request was never refused:\n{}",
        proxy.log_text()
    );
    assert!(
        out.stderr.contains("403") || out.stderr.to_lowercase().contains("denied"),
        "the error does not say access was denied: {out}"
    );
    assert!(
        out.stderr.contains("busybox"),
        "the error does not name the image: {out}"
    );
    assert_no_partial_blob(&b, "pull against 403");
    assert_no_image(&b, "pull against 403");
    assert!(stored_blobs(&b).is_empty(), "{:?}", stored_blobs(&b));
}
