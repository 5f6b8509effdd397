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
        let range = req
            .headers
            .iter()
            .find(|(k, _)| k == "content-range")
            .map_or(String::new(), |(_, v)| format!(" [{v}]"));
        self.seen.push(
            format!(
                "{:?} {scheme}://{}{}{range} {auth}",
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
fn referrers_come_from_the_api_or_the_fallback_tag_and_raw_fetches_keep_indexes() {
    let hex = "b".repeat(64);
    let referrers = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
    // A registry with the referrers API (OCI 1.1): its answer is used.
    let mut c = client(
        &format!("127.0.0.1:5000/app:sha256-{hex}"),
        vec![reply(200, &[], referrers)],
    );
    let doc = ops::fetch_raw(&mut c).unwrap();
    assert_eq!(doc.bytes, referrers.as_bytes());
    assert_eq!(
        doc.desc.media_type,
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(
        c.t.seen,
        [format!(
            "Get http://127.0.0.1:5000/v2/app/referrers/sha256:{hex}"
        )]
    );
    // Without it (404): the sha256-<hex> tag.
    let mut c = client(
        &format!("127.0.0.1:5000/app:sha256-{hex}"),
        vec![
            reply(404, &[], "404 page not found"),
            reply(200, &[], referrers),
        ],
    );
    ops::fetch_raw(&mut c).unwrap();
    assert_eq!(
        c.t.seen[1],
        format!("Get http://127.0.0.1:5000/v2/app/manifests/sha256-{hex}")
    );
    // Any other reference: the manifest or index as it is, no platform picked.
    let index = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
    let mut c = client("127.0.0.1:5000/app:v1", vec![reply(200, &[], index)]);
    let doc = ops::fetch_raw(&mut c).unwrap();
    assert_eq!(doc.bytes, index.as_bytes());
    assert_eq!(c.t.seen, ["Get http://127.0.0.1:5000/v2/app/manifests/v1"]);
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

fn push_client(reference: &str, replies: Vec<Reply>) -> Client<Script> {
    let t = Script {
        replies: replies.into(),
        ..Default::default()
    };
    Client::new(t, Reference::parse(reference).unwrap(), &[], true)
}

/// A blob source that remembers the offsets streams were asked from.
#[derive(Default)]
struct Offsets(std::cell::RefCell<Vec<u64>>);

impl crate::upload::Source<()> for Offsets {
    fn stream_at(&self, offset: u64) -> Result<(), PluginError> {
        self.0.borrow_mut().push(offset);
        Ok(())
    }
}

fn broken() -> Reply {
    Err(SendError::Broken("connection reset".into()))
}

use crate::upload::{push_blob, Outcome};

#[test]
fn push_steps() {
    let mut c = push_client(
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
    let blob = berth_sdk::oci::Descriptor::new("x", "sha256:ab".into(), 3);
    let src = Offsets::default();
    assert_eq!(
        push_blob(&mut c, &blob, &[], &src, 4).unwrap(),
        Outcome::Uploaded
    );
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
    assert_eq!(*src.0.borrow(), [0]);
}

#[test]
fn a_blob_the_registry_has_is_not_sent() {
    let mut c = push_client("127.0.0.1:5000/app:v1", vec![reply(200, &[], "")]);
    let blob = berth_sdk::oci::Descriptor::new("x", "sha256:ab".into(), 3);
    let src = Offsets::default();
    let sources = ["other".to_string()];
    assert_eq!(
        push_blob(&mut c, &blob, &sources, &src, 4).unwrap(),
        Outcome::Existed
    );
    assert_eq!(c.t.seen.len(), 1);
    assert!(src.0.borrow().is_empty());
}

#[test]
fn a_mount_asks_for_pull_on_its_source_and_falls_back_to_uploading() {
    let challenge = r#"Bearer realm="http://127.0.0.1:5000/token",service="reg",scope="repository:team/app:pull,push""#;
    let mut c = push_client(
        "127.0.0.1:5000/team/app:v1",
        vec![
            reply(401, &[("www-authenticate", challenge)], ""),
            reply(200, &[], r#"{"token":"A"}"#),
            reply(404, &[], ""),
            // The mount from `base` (the token lacks pull on it: asked again).
            reply(401, &[("www-authenticate", challenge)], ""),
            reply(200, &[], r#"{"token":"B"}"#),
            reply(201, &[], ""),
        ],
    );
    let blob = berth_sdk::oci::Descriptor::new("x", "sha256:ab".into(), 3);
    let sources = ["team/app".to_string(), "base".to_string()];
    let src = Offsets::default();
    assert_eq!(
        push_blob(&mut c, &blob, &sources, &src, 4).unwrap(),
        Outcome::Mounted("base".into())
    );
    assert_eq!(
        c.t.seen,
        [
            "Head http://127.0.0.1:5000/v2/team/app/blobs/sha256:ab",
            "Get http://127.0.0.1:5000/token?service=reg&scope=repository%3Ateam%2Fapp%3Apull%2Cpush",
            "Head http://127.0.0.1:5000/v2/team/app/blobs/sha256:ab Bearer A",
            "Post http://127.0.0.1:5000/v2/team/app/blobs/uploads/?mount=sha256%3Aab&from=base",
            "Get http://127.0.0.1:5000/token?service=reg&scope=repository%3Ateam%2Fapp%3Apull%2Cpush&scope=repository%3Abase%3Apull",
            "Post http://127.0.0.1:5000/v2/team/app/blobs/uploads/?mount=sha256%3Aab&from=base Bearer B",
        ]
    );
    assert!(src.0.borrow().is_empty(), "a mounted blob is not read");

    // A registry that does not mount opens an upload: it is used.
    let mut c = push_client(
        "127.0.0.1:5000/app:v1",
        vec![
            reply(404, &[], ""),
            reply(202, &[("location", "/v2/app/blobs/uploads/u9")], ""),
            reply(201, &[], ""),
        ],
    );
    let sources = ["base".to_string()];
    assert_eq!(
        push_blob(&mut c, &blob, &sources, &src, 4).unwrap(),
        Outcome::Uploaded
    );
    assert_eq!(
        c.t.seen[2],
        "Put http://127.0.0.1:5000/v2/app/blobs/uploads/u9?digest=sha256%3Aab"
    );
}

#[test]
fn a_chunked_upload_resumes_where_the_registry_stopped() {
    let mut c = push_client(
        "127.0.0.1:5000/app:v1",
        vec![
            reply(404, &[], ""),
            reply(202, &[("location", "/v2/app/blobs/uploads/u?s=0")], ""),
            reply(
                202,
                &[
                    ("location", "/v2/app/blobs/uploads/u?s=4"),
                    ("range", "0-3"),
                ],
                "",
            ),
            broken(),
            reply(
                204,
                &[
                    ("location", "/v2/app/blobs/uploads/u?s=6"),
                    ("range", "0-5"),
                ],
                "",
            ),
            reply(
                202,
                &[
                    ("location", "/v2/app/blobs/uploads/u?s=10"),
                    ("range", "0-9"),
                ],
                "",
            ),
            reply(201, &[], ""),
        ],
    );
    let blob = berth_sdk::oci::Descriptor::new("x", "sha256:ab".into(), 10);
    let src = Offsets::default();
    assert_eq!(
        push_blob(&mut c, &blob, &[], &src, 4).unwrap(),
        Outcome::Uploaded
    );
    assert_eq!(
        c.t.seen,
        [
            "Head http://127.0.0.1:5000/v2/app/blobs/sha256:ab",
            "Post http://127.0.0.1:5000/v2/app/blobs/uploads/",
            "Patch http://127.0.0.1:5000/v2/app/blobs/uploads/u?s=0 [0-3]",
            "Patch http://127.0.0.1:5000/v2/app/blobs/uploads/u?s=4 [4-7]",
            "Get http://127.0.0.1:5000/v2/app/blobs/uploads/u?s=4",
            "Patch http://127.0.0.1:5000/v2/app/blobs/uploads/u?s=6 [6-9]",
            "Put http://127.0.0.1:5000/v2/app/blobs/uploads/u?s=10&digest=sha256%3Aab",
        ]
    );
    assert_eq!(*src.0.borrow(), [0, 4, 6]);
}

#[test]
fn a_cancelled_upload_starts_again_and_a_dead_one_gives_up() {
    // distribution cancels a session whose cut chunk left extra bytes.
    let mut c = push_client(
        "127.0.0.1:5000/app:v1",
        vec![
            reply(404, &[], ""),
            reply(202, &[("location", "/v2/app/blobs/uploads/a")], ""),
            reply(
                202,
                &[("location", "/v2/app/blobs/uploads/a2"), ("range", "0-3")],
                "",
            ),
            broken(),
            reply(404, &[], r#"{"errors":[{"code":"BLOB_UPLOAD_INVALID"}]}"#),
            reply(404, &[], ""),
            reply(202, &[("location", "/v2/app/blobs/uploads/b")], ""),
            reply(
                202,
                &[("location", "/v2/app/blobs/uploads/b2"), ("range", "0-3")],
                "",
            ),
            reply(
                202,
                &[("location", "/v2/app/blobs/uploads/b3"), ("range", "0-5")],
                "",
            ),
            reply(201, &[], ""),
        ],
    );
    let blob = berth_sdk::oci::Descriptor::new("x", "sha256:ab".into(), 6);
    let src = Offsets::default();
    assert_eq!(
        push_blob(&mut c, &blob, &[], &src, 4).unwrap(),
        Outcome::Uploaded
    );
    assert_eq!(
        c.t.seen[4..],
        [
            "Get http://127.0.0.1:5000/v2/app/blobs/uploads/a2",
            "Delete http://127.0.0.1:5000/v2/app/blobs/uploads/a2",
            "Post http://127.0.0.1:5000/v2/app/blobs/uploads/",
            "Patch http://127.0.0.1:5000/v2/app/blobs/uploads/b [0-3]",
            "Patch http://127.0.0.1:5000/v2/app/blobs/uploads/b2 [4-5]",
            "Put http://127.0.0.1:5000/v2/app/blobs/uploads/b3?digest=sha256%3Aab",
        ]
    );
    assert_eq!(*src.0.borrow(), [0, 4, 0, 4]);

    // A registry that keeps breaking the connection: bounded, then an error.
    let mut replies = vec![
        reply(404, &[], ""),
        reply(202, &[("location", "/v2/app/blobs/uploads/a")], ""),
    ];
    for _ in 0..crate::upload::RECOVERIES + 1 {
        replies.extend([
            broken(),
            reply(404, &[], ""),
            reply(202, &[], ""),
            reply(202, &[("location", "/v2/app/blobs/uploads/a")], ""),
        ]);
    }
    let mut c = push_client("127.0.0.1:5000/app:v1", replies);
    let e = push_blob(&mut c, &blob, &[], &src, 4).unwrap_err();
    assert!(
        matches!(&e, PluginError::Unavailable(m) if m.contains("gave up")),
        "{e:?}"
    );
}
