//! Pushes that go wrong, daemonless (`berth --root`), through the
//! fault-injecting proxy in front of Debian's registry: an upload cut in the
//! middle of a chunk is finished by the plugin's own recovery; a push that
//! keeps failing fails naming the blob, leaves no manifest on the registry,
//! and a retry finishes it without sending again what had arrived; a
//! registry that refuses (403) is named. The image has a layer larger than
//! one upload chunk, so the chunked path is the one exercised.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use berth_tests::layouts::{self, Compression, Layer};
use berth_tests::proxy::{Action, Proxy, Request};
use berth_tests::{Berth, Registry};

/// A tar with one file of `size` bytes that do not compress.
fn big_tar(size: usize) -> Vec<u8> {
    let mut data = vec![0u8; size];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let mut ar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(size as u64);
    h.set_mode(0o644);
    h.set_cksum();
    ar.append_data(&mut h, "big", data.as_slice()).unwrap();
    ar.into_inner().unwrap()
}

/// A berth root holding a two-layer image (busybox, then a 40 MB file)
/// named `name`.
fn with_image(name: &str) -> (Berth, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let l = dir.path().join("oci");
    layouts::single(
        &l,
        "latest",
        &[
            Layer {
                tar: layouts::busybox_tar(&[("etc/berth-base", "base\n")]),
                compression: Compression::Gzip,
            },
            Layer {
                tar: big_tar(40 << 20),
                compression: Compression::None,
            },
        ],
    );
    let b = Berth::new("");
    let source = b.load(&l);
    b.cmd(&["tag", &source, name]).assert_ok();
    (b, dir)
}

fn is_upload(r: &Request) -> bool {
    (r.method == "PATCH" || r.method == "PUT") && r.path.contains("/blobs/uploads/")
}

fn manifest_status(reg: &Registry, repo_tag: &str) -> String {
    let (repo, tag) = repo_tag.split_once(':').unwrap();
    let out = berth_tests::cmd::host(
        "curl",
        &[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json",
            &format!("http://{}/v2/{repo}/manifests/{tag}", reg.addr),
        ],
    );
    out.stdout.trim().to_string()
}

#[test]
fn an_upload_cut_midway_is_resumed_and_the_push_completes() {
    let reg = Registry::start();
    let cuts = Arc::new(AtomicUsize::new(0));
    let c = cuts.clone();
    let proxy = Proxy::start(&reg.addr, move |r| {
        if r.method == "PATCH" && c.fetch_add(1, Ordering::SeqCst) == 1 {
            Action::CutRequest
        } else {
            Action::Forward
        }
    });
    let name = format!("{}/cut/app:v1", proxy.addr);
    let (b, _dir) = with_image(&name);
    let out = b.cmd(&["push", &name]);
    out.assert_ok();
    assert!(out.stdout.contains("v1: digest: sha256:"), "{out}");
    assert_eq!(proxy.count("request cut after"), 1, "{}", proxy.log_text());
    assert_eq!(manifest_status(&reg, "cut/app:v1"), "200");
    // The pushed image pulls back whole into a fresh root.
    let fresh = Berth::new("");
    fresh
        .cmd(&["pull", &format!("{}/cut/app:v1", reg.addr)])
        .assert_ok();
    let run = fresh.cmd(&[
        "run",
        "--rm",
        &format!("{}/cut/app:v1", reg.addr),
        "sh",
        "-c",
        "wc -c < /big && cat /etc/berth-base",
    ]);
    run.assert_ok();
    assert_eq!(run.stdout.trim(), format!("{}\nbase", 40 << 20), "{run}");
}

#[test]
fn a_push_that_keeps_breaking_fails_cleanly_and_a_retry_finishes_it() {
    let reg = Registry::start();
    let broken = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = broken.clone();
    let proxy = Proxy::start(&reg.addr, move |r| {
        if flag.load(Ordering::SeqCst) && r.method == "PATCH" && is_upload(r) {
            Action::CutRequest
        } else {
            Action::Forward
        }
    });
    let name = format!("{}/retry/app:v1", proxy.addr);
    let (b, _dir) = with_image(&name);
    let out = b.cmd(&["push", &name]);
    assert_ne!(
        out.code, 0,
        "a push whose uploads all break succeeded: {out}"
    );
    assert!(
        out.stderr.contains("uploading sha256:") && out.stderr.contains("gave up"),
        "the error names the blob and why: {out}"
    );
    assert_eq!(
        manifest_status(&reg, "retry/app:v1"),
        "404",
        "a failed push left a manifest pointing at a missing blob"
    );
    let small_puts = proxy.count("PUT /v2/retry/app/blobs/uploads/");
    assert!(
        small_puts >= 1,
        "the small layer went up first: {}",
        proxy.log_text()
    );

    broken.store(false, Ordering::SeqCst);
    let again = b.cmd(&["push", &name]);
    again.assert_ok();
    assert!(
        again.stdout.contains("Layer already exists") && again.stdout.contains("Pushed"),
        "the retry sent only what was missing: {again}"
    );
    assert_eq!(manifest_status(&reg, "retry/app:v1"), "200");
}

#[test]
fn a_registry_that_refuses_the_push_is_named() {
    let reg = Registry::start();
    let proxy = Proxy::start(&reg.addr, |r| {
        if r.method == "POST" {
            Action::Status(403)
        } else {
            Action::Forward
        }
    });
    let name = format!("{}/denied/app:v1", proxy.addr);
    let (b, _dir) = with_image(&name);
    let out = b.cmd(&["push", &name]);
    assert_ne!(out.code, 0, "{out}");
    assert!(
        out.stderr.contains("403") && out.stderr.contains("denied/app"),
        "{out}"
    );
    assert_eq!(manifest_status(&reg, "denied/app:v1"), "404");
    let missing = b.cmd(&["push", &format!("{}/nothing/here:v1", proxy.addr)]);
    assert_ne!(missing.code, 0);
    assert!(
        missing.stderr.contains("does not exist locally"),
        "{missing}"
    );
}

#[test]
fn a_pull_of_a_newer_image_under_the_tag_leaves_the_old_one_dangling() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let push = |n: &str| {
        let l = dir.path().join(format!("oci-{n}"));
        layouts::single(
            &l,
            "latest",
            &[Layer {
                tar: layouts::busybox_tar(&[("etc/version", n)]),
                compression: Compression::Gzip,
            }],
        );
        reg.push_layout(&l, "latest", "moving/app", None);
    };
    let name = format!("{}/moving/app:latest", reg.addr);
    let b = Berth::new("");
    push("1");
    b.cmd(&["pull", "-q", &name]).assert_ok();
    let old = b.cmd(&["images", "-q"]);
    old.assert_ok();
    push("2");
    b.cmd(&["pull", "-q", &name]).assert_ok();
    let images = b.cmd(&["images"]);
    images.assert_ok();
    let rows: Vec<&str> = images.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{images}");
    let old_id = old.stdout.trim();
    assert!(
        rows.iter()
            .any(|r| r.starts_with("<none>") && r.contains(old_id)),
        "the displaced image is <none>: {images}"
    );
    let run = b.cmd(&["run", "--rm", old_id, "cat", "/etc/version"]);
    run.assert_ok();
    assert_eq!(run.stdout.trim(), "1");
    let run = b.cmd(&["run", "--rm", &name, "cat", "/etc/version"]);
    assert_eq!(run.stdout.trim(), "2", "{run}");
}
