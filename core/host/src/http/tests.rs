//! Tests of the registry allow-list and credential injection.

use super::*;

fn policy(f: impl FnOnce(&mut Grants)) -> HttpPolicy {
    let mut g = Grants::new("/nonexistent");
    g.registries = vec![
        "registry.example.com".into(),
        "127.0.0.1:5000".into(),
        "localhost:5001".into(),
        "[::1]:5002".into(),
        "auth.example.com".into(),
        "plain.example.com:8080".into(),
    ];
    g.insecure_registries = vec!["plain.example.com:8080".into()];
    f(&mut g);
    HttpPolicy::new(
        "fetch-test".into(),
        Arc::new(HttpGrants::new(&g)),
        Arc::default(),
    )
}

fn uri(s: &str) -> Uri {
    s.parse().unwrap()
}

fn allowed(p: &HttpPolicy, u: &str) -> bool {
    matches!(p.decide(&uri(u), false), Decision::Allow { .. })
}

#[test]
fn only_granted_registries() {
    let p = policy(|_| {});
    assert!(allowed(&p, "https://registry.example.com/v2/"));
    assert!(allowed(&p, "https://registry.example.com:443/v2/"));
    assert!(!allowed(&p, "https://registry.example.com:8443/v2/"));
    assert!(!allowed(&p, "https://evil.example.com/v2/"));
    assert!(!allowed(&p, "https://169.254.169.254/latest/meta-data"));
    let Decision::Deny(why) = p.decide(&uri("https://evil.example.com/"), false) else {
        panic!()
    };
    assert!(why.contains("evil.example.com"), "{why}");
}

#[test]
fn plain_http_only_for_insecure_and_loopback() {
    let p = policy(|_| {});
    assert!(!allowed(&p, "http://registry.example.com/v2/"));
    assert!(allowed(&p, "http://127.0.0.1:5000/v2/"));
    assert!(allowed(&p, "http://localhost:5001/v2/"));
    assert!(allowed(&p, "http://[::1]:5002/v2/"));
    assert!(allowed(&p, "http://plain.example.com:8080/v2/"));
    assert!(!allowed(&p, "ftp://registry.example.com/"));
    // Loopback but not granted.
    assert!(!allowed(&p, "http://127.0.0.1:6000/v2/"));
}

#[test]
fn credentials_are_added_by_the_host() {
    let p = policy(|g| {
        g.credentials.insert(
            "registry.example.com".into(),
            Credentials::Basic {
                username: "user".into(),
                password: "pass".into(),
            },
        );
        g.credentials.insert(
            "127.0.0.1:5000".into(),
            Credentials::Bearer {
                token: "tok".into(),
            },
        );
    });
    let Decision::Allow { auth: Some(a), .. } =
        p.decide(&uri("https://registry.example.com/v2/"), false)
    else {
        panic!()
    };
    assert_eq!(a.to_str().unwrap(), "Basic dXNlcjpwYXNz");
    // A plugin's own Authorization (a bearer token it obtained) is kept.
    assert!(matches!(
        p.decide(&uri("https://registry.example.com/v2/"), true),
        Decision::Allow { auth: None, .. }
    ));
    let Decision::Allow { auth: Some(a), .. } = p.decide(&uri("http://127.0.0.1:5000/v2/"), false)
    else {
        panic!()
    };
    assert_eq!(a.to_str().unwrap(), "Bearer tok");
    // The realm learned from a 401 gets the registry's credentials.
    lock(&p.learned).realms.insert(
        Authority::parse("auth.example.com").unwrap(),
        Authority::parse("registry.example.com").unwrap(),
    );
    let Decision::Allow { auth: Some(a), .. } =
        p.decide(&uri("https://auth.example.com/token?x"), false)
    else {
        panic!()
    };
    assert_eq!(a.to_str().unwrap(), "Basic dXNlcjpwYXNz");
}

#[test]
fn redirects_from_a_registry_are_allowed_once() {
    let p = policy(|_| {});
    lock(&p.permits).insert("https://cdn.example.net/blob?sig=1".into());
    assert!(allowed(&p, "https://cdn.example.net/blob?sig=1"));
    assert!(!allowed(&p, "https://cdn.example.net/blob?sig=1"));
}

#[test]
fn realm_and_location_parsing() {
    let r = realm_of(
        r#"Bearer realm="https://auth.example.com/token",service="registry",scope="repository:a:pull""#,
    );
    assert_eq!(r.unwrap().host(), Some("auth.example.com"));
    assert!(realm_of("Basic realm=x").is_none());
    let l = resolve_location(&uri("https://r.example.com/v2/a/blobs/x"), "/other?y=1").unwrap();
    assert_eq!(l.to_string(), "https://r.example.com/other?y=1");
    assert_eq!(base64(b"ab"), "YWI=");
    assert_eq!(base64(b"abc"), "YWJj");
    assert_eq!(base64(b"a"), "YQ==");
}
