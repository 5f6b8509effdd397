//! The registry conversation against a scripted transport.

use std::collections::VecDeque;

use super::*;
use crate::ops;
use berth_sdk::oci::Platform;

type Reply = Result<Response<Vec<u8>>, SendError>;

#[derive(Default)]
struct Script {
    replies: VecDeque<Reply>,
    seen: Vec<String>,
    slept: Vec<u64>,
}

impl Transport for Script {
    type Body = Vec<u8>;
    type Stream = ();
    fn send(&mut self, req: &Request<'_, ()>) -> Result<Response<Vec<u8>>, SendError> {
        let scheme = if req.url.scheme == Scheme::Https {
            "https"
        } else {
            "http"
        };
        let auth = req
            .headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .map_or("", |(_, v)| v.as_str());
        self.seen.push(
            format!(
                "{:?} {scheme}://{}{} {auth}",
                req.method, req.url.authority, req.url.path
            )
            .trim()
            .to_string(),
        );
        self.replies.pop_front().expect("no reply scripted")
    }
    fn read_body(&mut self, body: Vec<u8>, _max: u64) -> Result<Vec<u8>, SendError> {
        Ok(body)
    }
    fn sleep_ms(&mut self, ms: u64) {
        self.slept.push(ms);
    }
}

fn reply(status: u16, headers: &[(&str, &str)], body: &str) -> Reply {
    let headers = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Ok(Response {
        status,
        headers,
        body: body.as_bytes().to_vec(),
    })
}

fn client(reference: &str, replies: Vec<Reply>) -> Client<Script> {
    let t = Script {
        replies: replies.into(),
        ..Default::default()
    };
    Client::new(t, Reference::parse(reference).unwrap(), &[], false)
}

const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:c","size":1},"layers":[]}"#;

fn amd64() -> Platform {
    Platform {
        os: "linux".into(),
        architecture: "amd64".into(),
        variant: String::new(),
    }
}

#[test]
fn bearer_token_flow_on_docker_hub() {
    let challenge = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#;
    let mut c = client(
        "busybox",
        vec![
            reply(401, &[("www-authenticate", challenge)], ""),
            reply(200, &[], r#"{"token":"T"}"#),
            reply(
                200,
                &[("content-type", "application/vnd.oci.image.manifest.v1+json")],
                MANIFEST,
            ),
        ],
    );
    let res = ops::resolve(&mut c, &amd64()).unwrap();
    assert!(res.index.is_none());
    assert_eq!(
        res.manifest.desc.digest,
        berth_sdk::digest::sha256(MANIFEST.as_bytes())
    );
    assert_eq!(
        c.t.seen,
        [
            "Get https://registry-1.docker.io/v2/library/busybox/manifests/latest",
            "Get https://auth.docker.io/token?service=registry.docker.io&scope=repository%3Alibrary%2Fbusybox%3Apull",
            "Get https://registry-1.docker.io/v2/library/busybox/manifests/latest Bearer T",
        ]
    );
}

#[test]
fn loopback_registries_use_http_and_indexes_select_a_platform() {
    let manifest_digest = berth_sdk::digest::sha256(MANIFEST.as_bytes());
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[
        {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{}","size":1,"platform":{{"os":"linux","architecture":"arm64"}}}},
        {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{manifest_digest}","size":1,"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#,
        "a".repeat(64)
    );
    let mut c = client(
        "127.0.0.1:5000/busybox:1",
        vec![reply(200, &[], &index), reply(200, &[], MANIFEST)],
    );
    let res = ops::resolve(&mut c, &amd64()).unwrap();
    assert_eq!(
        res.index.unwrap().desc.media_type,
        berth_sdk::oci::MEDIA_DOCKER_LIST
    );
    assert_eq!(res.manifest.desc.digest, manifest_digest);
    assert_eq!(
        c.t.seen[0],
        "Get http://127.0.0.1:5000/v2/busybox/manifests/1"
    );
    assert_eq!(
        c.t.seen[1],
        format!("Get http://127.0.0.1:5000/v2/busybox/manifests/{manifest_digest}")
    );
}

#[test]
fn retries_are_bounded_and_https_falls_back_to_http() {
    let mut c = client(
        "reg.example/app",
        vec![
            reply(503, &[], ""),
            Err(SendError::Broken("reset".into())),
            reply(502, &[], "bad gateway"),
        ],
    );
    let err = ops::get_manifest(&mut c, "latest").unwrap_err();
    assert!(
        matches!(&err, PluginError::Unavailable(m) if m.contains("502")),
        "{err:?}"
    );
    assert_eq!((c.t.seen.len(), c.t.slept.len()), (3, 2));

    let mut c = client(
        "reg.example/app",
        vec![
            Err(SendError::Connect("tls".into())),
            reply(200, &[], MANIFEST),
        ],
    );
    ops::get_manifest(&mut c, "latest").unwrap();
    assert_eq!(
        c.t.seen[1],
        "Get http://reg.example/v2/app/manifests/latest"
    );

    let mut c = client(
        "reg.example/app",
        vec![reply(
            404,
            &[],
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#,
        )],
    );
    let err = ops::get_manifest(&mut c, "nope").unwrap_err();
    assert!(
        matches!(&err, PluginError::NotFound(m) if m.contains("MANIFEST_UNKNOWN")),
        "{err:?}"
    );
    let mut c = client(
        "reg.example/app",
        vec![reply(401, &[("www-authenticate", "Basic realm=x")], "")],
    );
    assert!(matches!(
        ops::get_manifest(&mut c, "x"),
        Err(PluginError::Unauthorized(_))
    ));
    let mut c = client("reg.example/app", vec![reply(200, &[], "not json")]);
    assert!(matches!(
        ops::get_manifest(&mut c, "x"),
        Err(PluginError::Invalid(_))
    ));
}

#[test]
fn redirects_drop_the_token_on_other_hosts_and_mirrors_come_first() {
    let challenge = r#"Bearer realm="https://auth.example/t""#;
    let mut c = client(
        "reg.example/app",
        vec![
            reply(401, &[("www-authenticate", challenge)], ""),
            reply(200, &[], r#"{"access_token":"A"}"#),
            reply(307, &[("location", "https://cdn.example/blob?sig=1")], ""),
            reply(200, &[], "bytes"),
        ],
    );
    let resp = ops::open_blob(&mut c, "sha256:abc", 0).unwrap();
    assert_eq!(resp.body, b"bytes");
    assert_eq!(
        c.t.seen[1],
        "Get https://auth.example/t?scope=repository%3Aapp%3Apull"
    );
    assert_eq!(c.t.seen[3], "Get https://cdn.example/blob?sig=1");

    let t = Script {
        replies: vec![
            reply(500, &[], ""),
            reply(500, &[], ""),
            reply(500, &[], ""),
            reply(200, &[], MANIFEST),
        ]
        .into(),
        ..Default::default()
    };
    let mut c = Client::new(
        t,
        Reference::parse("busybox").unwrap(),
        &["http://127.0.0.1:5001".into()],
        false,
    );
    ops::get_manifest(&mut c, "latest").unwrap();
    assert!(c.t.seen[0].starts_with("Get http://127.0.0.1:5001/v2/library/busybox/"));
    assert!(c.t.seen[3].starts_with("Get https://registry-1.docker.io/"));
}

#[test]
fn push_steps() {
    let mut c = client(
        "127.0.0.1:5000/app:v1",
        vec![
            reply(404, &[], ""),
            reply(
                202,
                &[("location", "/v2/app/blobs/uploads/u1?_state=s")],
                "",
            ),
            reply(201, &[], ""),
            reply(201, &[], ""),
        ],
    );
    assert!(!ops::blob_exists(&mut c, "sha256:ab").unwrap());
    let url = ops::start_upload(&mut c).unwrap();
    let blob = berth_sdk::oci::Descriptor::new("x", "sha256:ab".into(), 3);
    ops::finish_upload(&mut c, &url, &blob, Upload::Bytes(b"abc")).unwrap();
    ops::put_manifest(
        &mut c,
        "v1",
        berth_sdk::oci::MEDIA_OCI_MANIFEST,
        MANIFEST.as_bytes(),
    )
    .unwrap();
    assert_eq!(
        c.t.seen,
        [
            "Head http://127.0.0.1:5000/v2/app/blobs/sha256:ab",
            "Post http://127.0.0.1:5000/v2/app/blobs/uploads/",
            "Put http://127.0.0.1:5000/v2/app/blobs/uploads/u1?_state=s&digest=sha256%3Aab",
            "Put http://127.0.0.1:5000/v2/app/manifests/v1",
        ]
    );
}
