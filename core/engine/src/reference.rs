//! Image references as docker users write them: `busybox`, `busybox:1.36`,
//! `127.0.0.1:5000/team/app:v1`, `repo@sha256:…`; normalized to a full name
//! (`docker.io/library/busybox:latest`) and shown the short way docker shows it.

use crate::error::{EngineError, Result};

pub const DEFAULT_REGISTRY: &str = "docker.io";

/// A parsed registry reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

fn err(reference: &str, reason: &str) -> EngineError {
    EngineError::Reference {
        reference: reference.into(),
        reason: reason.into(),
    }
}

impl Reference {
    pub fn parse(s: &str) -> Result<Reference> {
        if s.is_empty() {
            return Err(err(s, "empty"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                crate::content::parse_digest(d)
                    .map_err(|_| err(s, "the digest after @ is not sha256:<hex>"))?;
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i + 1..].contains('/') => {
                (&rest[..i], Some(rest[i + 1..].to_string()))
            }
            _ => (rest, None),
        };
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), path.to_string())
            }
            _ if !name.contains('/') => (DEFAULT_REGISTRY.to_string(), format!("library/{name}")),
            _ => (DEFAULT_REGISTRY.to_string(), name.to_string()),
        };
        let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c);
        if repository.is_empty() || !repository.chars().all(valid) {
            return Err(err(
                s,
                "repository names use lowercase letters, digits and . _ - /",
            ));
        }
        if let Some(t) = &tag {
            if t.is_empty()
                || t.len() > 128
                || !t
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            {
                return Err(err(s, "tags use letters, digits and . _ - (at most 128)"));
            }
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".into())
        } else {
            tag
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The full name: `registry/repository:tag` (or `@digest`).
    pub fn full(&self) -> String {
        let mut s = format!("{}/{}", self.registry, self.repository);
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }

    /// The repository as docker shows it (`busybox`, `127.0.0.1:5000/busybox`).
    pub fn short_repository(&self) -> String {
        if self.registry == DEFAULT_REGISTRY {
            self.repository
                .strip_prefix("library/")
                .unwrap_or(&self.repository)
                .to_string()
        } else {
            format!("{}/{}", self.registry, self.repository)
        }
    }

    /// The name as docker shows it (`busybox:latest`).
    pub fn short(&self) -> String {
        match (&self.tag, &self.digest) {
            (Some(t), _) => format!("{}:{t}", self.short_repository()),
            (None, Some(d)) => format!("{}@{d}", self.short_repository()),
            _ => self.short_repository(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_names_normalize() {
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.full(), "docker.io/library/busybox:latest");
        assert_eq!(r.short(), "busybox:latest");
        let r = Reference::parse("127.0.0.1:5000/team/app:v1").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("127.0.0.1:5000", "team/app")
        );
        assert_eq!(r.short(), "127.0.0.1:5000/team/app:v1");
        let r = Reference::parse("localhost/app").unwrap();
        assert_eq!(r.registry, "localhost");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("app@{d}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
    }

    #[test]
    fn bad_references_are_refused() {
        for bad in ["", "Upper", "app:", "app@sha256:zz", "a b"] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }
}
