//! Registry token auth: `WWW-Authenticate` challenges and token responses.

use serde::Deserialize;

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Bearer realm=…,service=…,scope=…`: get a token from `realm`.
    Bearer {
        /// The token endpoint URL.
        realm: String,
        /// The registry's service name.
        service: Option<String>,
        /// The scope to ask for.
        scope: Option<String>,
    },
    /// `Basic realm=…`: credentials only the host can add.
    Basic,
}

/// Parses a `WWW-Authenticate` header value (quoted or bare parameters).
pub fn parse_challenge(value: &str) -> Option<Challenge> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(char::is_whitespace).unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest);
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    Some(Challenge::Bearer {
        realm: get("realm")?,
        service: get("service"),
        scope: get("scope"),
    })
}

/// `k=v, k="v, with commas"` pairs.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.trim().is_empty() {
            return out;
        }
        if chars.next() != Some('=') {
            continue;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ','))
                .collect::<String>()
                .trim()
                .to_string();
        }
        out.push((key.trim().to_string(), value));
    }
}

/// The URL to GET a token from.
/// Several scopes are several `scope` parameters, as the token spec says.
pub fn token_url(realm: &str, service: Option<&str>, scopes: &[&str]) -> String {
    let mut query = Vec::new();
    if let Some(s) = service {
        query.push(format!("service={}", encode(s)));
    }
    for s in scopes {
        query.push(format!("scope={}", encode(s)));
    }
    match (query.is_empty(), realm.contains('?')) {
        (true, _) => realm.to_string(),
        (false, true) => format!("{realm}&{}", query.join("&")),
        (false, false) => format!("{realm}?{}", query.join("&")),
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The token in a token endpoint's JSON answer (`token` or `access_token`).
pub fn parse_token(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Answer {
        token: Option<String>,
        access_token: Option<String>,
    }
    let a: Answer = serde_json::from_slice(body).ok()?;
    a.token.or(a.access_token).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull".into()),
            })
        );
        let c = parse_challenge(
            r#"bearer realm=http://127.0.0.1:5000/auth, scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "http://127.0.0.1:5000/auth".into(),
                service: None,
                scope: Some("repository:a/b:pull,push".into())
            }
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Bearer service=x"), None);
        assert_eq!(parse_challenge("Negotiate"), None);
        let escaped = parse_challenge(r#"Bearer realm="a\"b""#).unwrap();
        assert!(matches!(escaped, Challenge::Bearer { realm, .. } if realm == "a\"b"));
    }

    #[test]
    fn token_urls_and_answers() {
        assert_eq!(
            token_url("https://auth.docker.io/token", Some("registry.docker.io"), &["repository:library/busybox:pull"]),
            "https://auth.docker.io/token?service=registry.docker.io&scope=repository%3Alibrary%2Fbusybox%3Apull"
        );
        assert_eq!(
            token_url("https://a/t?x=1", None, &["s"]),
            "https://a/t?x=1&scope=s"
        );
        assert_eq!(
            token_url(
                "https://a/t",
                Some("r"),
                &["repository:a:pull,push", "repository:b:pull"]
            ),
            "https://a/t?service=r&scope=repository%3Aa%3Apull%2Cpush&scope=repository%3Ab%3Apull"
        );
        assert_eq!(
            parse_token(br#"{"token":"abc","expires_in":300}"#).as_deref(),
            Some("abc")
        );
        assert_eq!(
            parse_token(br#"{"access_token":"xyz"}"#).as_deref(),
            Some("xyz")
        );
        assert_eq!(parse_token(br#"{"token":""}"#), None);
        assert_eq!(parse_token(b"nope"), None);
    }
}
