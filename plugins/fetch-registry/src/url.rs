//! Just enough URL handling for registries: absolute URLs from token realms
//! and `Location` headers, relative ones resolved against the request.

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP (loopback or insecure registries).
    Http,
    /// HTTPS.
    Https,
}

/// A URL split the way wasi:http wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// Scheme.
    pub scheme: Scheme,
    /// `host[:port]`.
    pub authority: String,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Url {
    /// Parses an absolute `http(s)://authority/path?query` URL.
    pub fn parse(s: &str) -> Option<Url> {
        let (scheme, rest) = if let Some(r) = s.strip_prefix("https://") {
            (Scheme::Https, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (Scheme::Http, r)
        } else {
            return None;
        };
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.is_empty() {
            return None;
        }
        let path = match path {
            "" => "/".to_string(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_string(),
        };
        Some(Url {
            scheme,
            authority: authority.to_string(),
            path,
        })
    }

    /// Resolves a `Location` header against this URL.
    pub fn join(&self, location: &str) -> Option<Url> {
        if let Some(u) = Url::parse(location) {
            return Some(u);
        }
        if let Some(rest) = location.strip_prefix("//") {
            let scheme = if self.scheme == Scheme::Https {
                "https"
            } else {
                "http"
            };
            return Url::parse(&format!("{scheme}://{rest}"));
        }
        let path = if location.starts_with('/') {
            location.to_string()
        } else {
            let base = self.path.split('?').next().unwrap_or("/");
            format!(
                "{}/{location}",
                base.rsplit_once('/').map_or("", |(d, _)| d)
            )
        };
        Some(Url {
            path,
            ..self.clone()
        })
    }

    /// Appends a query parameter (already encoded).
    pub fn with_query(&self, param: &str) -> Url {
        let sep = if self.path.contains('?') { '&' } else { '?' };
        Url {
            path: format!("{}{sep}{param}", self.path),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_joins() {
        let u = Url::parse("https://auth.docker.io/token?x=1").unwrap();
        assert_eq!(
            (u.scheme, u.authority.as_str(), u.path.as_str()),
            (Scheme::Https, "auth.docker.io", "/token?x=1")
        );
        assert_eq!(Url::parse("http://127.0.0.1:5000").unwrap().path, "/");
        assert!(Url::parse("ftp://x/y").is_none());
        let base = Url::parse("http://127.0.0.1:5000/v2/a/blobs/uploads/").unwrap();
        let up = base.join("/v2/a/blobs/uploads/uuid?_state=s").unwrap();
        assert_eq!(
            (up.authority.as_str(), up.path.as_str()),
            ("127.0.0.1:5000", "/v2/a/blobs/uploads/uuid?_state=s")
        );
        assert_eq!(
            up.with_query("digest=sha256%3Aab").path,
            "/v2/a/blobs/uploads/uuid?_state=s&digest=sha256%3Aab"
        );
        let s3 = base.join("https://s3.example/bucket/blob?sig=1").unwrap();
        assert_eq!(
            (s3.scheme, s3.authority.as_str()),
            (Scheme::Https, "s3.example")
        );
        assert_eq!(base.join("uuid").unwrap().path, "/v2/a/blobs/uploads/uuid");
        assert_eq!(
            base.join("//cdn.example/x").unwrap().authority,
            "cdn.example"
        );
    }
}
