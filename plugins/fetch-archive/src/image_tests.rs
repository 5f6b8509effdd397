//! Resolution against OCI layouts, OCI archives and `docker save` tarballs made here.

use std::path::Path;

use super::*;
use berth_sdk::digest::sha256;
use berth_sdk::oci::Manifest;

fn platform(arch: &str) -> Platform {
    Platform {
        os: "linux".into(),
        architecture: arch.into(),
        variant: String::new(),
    }
}

fn put_blob(dir: &Path, data: &[u8]) -> String {
    let d = sha256(data);
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("blobs/sha256").join(&d[7..]), data).unwrap();
    d
}

fn manifest_for(dir: &Path, arch: &str) -> (String, usize) {
    let config = format!(
        r#"{{"architecture":"{arch}","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}}}}"#
    );
    let cd = put_blob(dir, config.as_bytes());
    let layer = put_blob(dir, format!("layer-{arch}").as_bytes());
    let m = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{cd}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer}","size":{}}}]}}"#,
        oci::MEDIA_OCI_MANIFEST,
        oci::MEDIA_OCI_CONFIG,
        config.len(),
        5 + arch.len() + 1
    );
    (put_blob(dir, m.as_bytes()), m.len())
}

/// A layout whose index.json names ("v1") a multi-platform index.
fn layout(dir: &Path) -> (String, String) {
    let (amd, amd_len) = manifest_for(dir, "amd64");
    let (arm, arm_len) = manifest_for(dir, "arm64");
    let nested = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{m}","digest":"{amd}","size":{amd_len},"platform":{{"os":"linux","architecture":"amd64"}}}},{{"mediaType":"{m}","digest":"{arm}","size":{arm_len},"platform":{{"os":"linux","architecture":"arm64"}}}}]}}"#,
        m = oci::MEDIA_OCI_MANIFEST
    );
    let nd = put_blob(dir, nested.as_bytes());
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{}","digest":"{nd}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"v1","io.containerd.image.name":"docker.io/library/app:v1"}}}}]}}"#,
        oci::MEDIA_OCI_INDEX,
        nested.len()
    );
    std::fs::write(dir.join("index.json"), index).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    (amd, arm)
}

fn check_layout(r: &ArchiveRef, src: &Source, amd: &str, arm: &str) {
    let res = resolve(r, src, &platform("amd64"), "oci:x").unwrap();
    assert_eq!(res.manifest.digest, amd);
    assert_eq!(res.name, "docker.io/library/app:v1");
    assert_eq!(sha256(&res.manifest_json), amd);
    let (index, bytes) = res.index.unwrap();
    assert_eq!(
        (index.media_type.as_str(), sha256(&bytes)),
        (oci::MEDIA_OCI_INDEX, index.digest.clone())
    );
    let m: Manifest = oci::from_json("m", &res.manifest_json).unwrap();
    let loc = locate_blob(r, src, &m.layers[0].digest).unwrap();
    assert_eq!(loc.size, m.layers[0].size);
    let arm_res = resolve(r, src, &platform("arm64"), "oci:x").unwrap();
    assert_eq!(arm_res.manifest.digest, arm);
    assert!(matches!(
        resolve(r, src, &platform("s390x"), "x"),
        Err(PluginError::NotFound(_))
    ));
}

#[test]
fn oci_layout_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let (amd, arm) = layout(tmp.path());
    let r = ArchiveRef::parse(&format!("oci:{}:v1", tmp.path().display())).unwrap();
    check_layout(&r, &open(&r).unwrap(), &amd, &arm);
    // The only image is found without a tag; a wrong tag is not found.
    let r = ArchiveRef::parse(&format!("oci:{}", tmp.path().display())).unwrap();
    check_layout(&r, &open(&r).unwrap(), &amd, &arm);
    let r = ArchiveRef::parse(&format!("oci:{}:nope", tmp.path().display())).unwrap();
    assert!(matches!(
        resolve(&r, &open(&r).unwrap(), &platform("amd64"), "x"),
        Err(PluginError::NotFound(_))
    ));
}

#[test]
fn oci_archive_tar() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layout");
    let (amd, arm) = layout(&dir);
    let file = tmp.path().join("img.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&file).unwrap());
    b.append_dir_all(".", &dir).unwrap();
    b.into_inner().unwrap();
    let r = ArchiveRef::parse(&format!("oci-archive:{}:v1", file.display())).unwrap();
    let src = open(&r).unwrap();
    check_layout(&r, &src, &amd, &arm);
    // The location points into the tar at the blob's bytes.
    let loc = locate_blob(&r, &src, &amd).unwrap();
    let all = std::fs::read(&file).unwrap();
    assert_eq!(
        sha256(&all[loc.offset as usize..][..loc.size as usize]),
        amd
    );
}

#[test]
fn docker_save_tarball_becomes_an_oci_manifest() {
    let layer1 = b"pretend this is a layer tar".to_vec();
    let (d1, d2) = (sha256(&layer1), sha256(b"second"));
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{d1}","{d1}","{d2}"]}}}}"#
    );
    let manifest = format!(
        r#"[{{"Config":"{}.json","RepoTags":["busybox:latest","127.0.0.1:5000/bb:1"],"Layers":["aaa/layer.tar","bbb/layer.tar","ccc/layer.tar"]}}]"#,
        &sha256(config.as_bytes())[7..]
    );
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("save.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&file).unwrap());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, data).unwrap();
    };
    add("manifest.json", manifest.as_bytes());
    add(
        &format!("{}.json", &sha256(config.as_bytes())[7..]),
        config.as_bytes(),
    );
    add("aaa/layer.tar", &layer1);
    add("ccc/layer.tar", b"second");
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "bbb/layer.tar", "../aaa/layer.tar")
        .unwrap();
    b.into_inner().unwrap();

    for image in [
        "",
        ":busybox",
        ":docker.io/library/busybox:latest",
        ":127.0.0.1:5000/bb:1",
    ] {
        let r = ArchiveRef::parse(&format!("docker-archive:{}{image}", file.display())).unwrap();
        let src = open(&r).unwrap();
        let res = resolve(&r, &src, &platform("amd64"), "ref").unwrap();
        assert_eq!(res.name, "docker.io/library/busybox:latest");
        assert!(res.index.is_none());
        let m: Manifest = oci::from_json("m", &res.manifest_json).unwrap();
        assert_eq!(m.config.digest, sha256(config.as_bytes()));
        assert_eq!(m.config.media_type, oci::MEDIA_OCI_CONFIG);
        let layers: Vec<_> = m
            .layers
            .iter()
            .map(|l| (l.digest.clone(), l.size, l.media_type.as_str()))
            .collect();
        let t = oci::MEDIA_OCI_LAYER_TAR;
        assert_eq!(
            layers,
            [(d1.clone(), 27, t), (d1.clone(), 27, t), (d2.clone(), 6, t)]
        );
        let loc = locate_blob(&r, &src, &d1).unwrap();
        let all = std::fs::read(&file).unwrap();
        assert_eq!(
            &all[loc.offset as usize..][..loc.size as usize],
            &layer1[..]
        );
        assert!(locate_blob(&r, &src, &m.config.digest).is_ok());
    }
    let r = ArchiveRef::parse(&format!("docker-archive:{}:other:1", file.display())).unwrap();
    assert!(matches!(
        resolve(&r, &open(&r).unwrap(), &platform("amd64"), "x"),
        Err(PluginError::NotFound(_))
    ));
}
