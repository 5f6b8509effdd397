//! Docker/OCI image references: `[registry/]repository[:tag][@digest]`, with
//! docker.io's defaults (`busybox` is `docker.io/library/busybox:latest`).

use std::fmt;

use crate::error::SdkError;

/// The registry a reference without one names.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that serves docker.io's registry API.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Registry host with an optional port (`docker.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// Repository path (`library/busybox`).
    pub repository: String,
    /// Tag; `latest` when neither a tag nor a digest is given.
    pub tag: Option<String>,
    /// Digest (`sha256:…`), when pinned.
    pub digest: Option<String>,
}

impl Reference {
    /// Parses a reference, applying docker.io's defaults.
    pub fn parse(input: &str) -> Result<Self, SdkError> {
        let bad = |reason| SdkError::Reference {
            reference: input.to_string(),
            reason,
        };
        if input.is_empty() || input.chars().any(|c| c.is_whitespace()) {
            return Err(bad("empty or contains whitespace"));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest)) => {
                crate::digest::validate(digest)
                    .map_err(|_| bad("the digest after @ is not sha256:<hex>"))?;
                (rest, Some(digest.to_string()))
            }
            None => (input, None),
        };
        // A ':' after the last '/' starts the tag (a ':' before it is a port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            let ok = !tag.is_empty()
                && tag.len() <= 128
                && !tag.starts_with(['.', '-'])
                && tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !ok {
                return Err(bad(
                    "tags use letters, digits and . _ - (at most 128, not first . or -)",
                ));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains(['.', ':']) || first == "localhost" || first.starts_with('[') =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let registry = match registry.as_str() {
            "index.docker.io" | DOCKER_HUB_API => DOCKER_HUB.to_string(),
            _ => registry,
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if !valid_repository(&repository) {
            return Err(bad(
                "repository names use lowercase letters, digits and . _ - / (not at the ends of a part)",
            ));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, None) => Some("latest".to_string()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The host (and port) that serves the registry API.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// The tag or digest to ask the registry for (`manifests/<this>`).
    pub fn manifest_ref(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// Whether the registry is on a loopback address (plain HTTP is the default there).
    pub fn is_loopback(&self) -> bool {
        is_loopback_host(&self.registry)
    }

    /// The full name: `registry/repository:tag` and/or `@digest`.
    pub fn full(&self) -> String {
        self.to_string()
    }

    /// The repository as docker shows it (`busybox`, `127.0.0.1:5000/busybox`).
    pub fn short_repository(&self) -> String {
        if self.registry == DOCKER_HUB {
            let r = &self.repository;
            r.strip_prefix("library/").unwrap_or(r).to_string()
        } else {
            self.name()
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

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Whether `host[:port]` names a loopback address (127.0.0.0/8, localhost, `[::1]`).
pub fn is_loopback_host(host_port: &str) -> bool {
    let host = if let Some(rest) = host_port.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    if host == "localhost" || host == "::1" {
        return true;
    }
    host.parse::<std::net::Ipv4Addr>()
        .is_ok_and(|ip| ip.is_loopback())
}

fn valid_repository(repo: &str) -> bool {
    !repo.is_empty()
        && repo.split('/').all(|part| {
            !part.is_empty()
                && part.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && part.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Reference {
        Reference::parse(s).unwrap()
    }

    #[test]
    fn docker_hub_defaults() {
        let r = parse("busybox");
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert_eq!(r.manifest_ref(), "latest");
        assert_eq!(parse("user/app:1.0").to_string(), "docker.io/user/app:1.0");
        assert_eq!(parse("docker.io/busybox").repository, "library/busybox");
        assert_eq!(
            parse("index.docker.io/library/busybox:1").registry,
            "docker.io"
        );
    }

    #[test]
    fn short_names_as_docker_shows_them() {
        assert_eq!(parse("busybox").short(), "busybox:latest");
        assert_eq!(parse("user/app:1").short(), "user/app:1");
        assert_eq!(
            parse("127.0.0.1:5000/team/app:v1").short(),
            "127.0.0.1:5000/team/app:v1"
        );
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(parse(&format!("app@{d}")).short(), format!("app@{d}"));
        assert_eq!(parse("busybox").full(), "docker.io/library/busybox:latest");
    }

    #[test]
    fn explicit_registries_keep_their_host() {
        let r = parse("127.0.0.1:5000/busybox");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("127.0.0.1:5000", "busybox")
        );
        assert_eq!(r.tag.as_deref(), Some("latest"));
        assert!(r.is_loopback());
        let r = parse("localhost/a/b:v2");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("localhost", "a/b")
        );
        assert_eq!(parse("ghcr.io/o/r:t").api_host(), "ghcr.io");
        assert!(!parse("ghcr.io/o/r").is_loopback());
        assert!(parse("[::1]:5000/x").is_loopback());
    }

    #[test]
    fn digests() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = parse(&format!("busybox@{d}"));
        assert_eq!(r.tag, None);
        assert_eq!(r.manifest_ref(), d);
        let r = parse(&format!("127.0.0.1:5000/x:1@{d}"));
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert_eq!(r.to_string(), format!("127.0.0.1:5000/x:1@{d}"));
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "",
            "Busybox",
            "a b",
            "busybox:",
            "x@sha256:zz",
            "a//b",
            "x:-t",
            "-a",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback_host("127.0.0.1:5000"));
        assert!(is_loopback_host("127.1.2.3"));
        assert!(is_loopback_host("localhost:5000"));
        assert!(!is_loopback_host("128.0.0.1"));
        assert!(!is_loopback_host("registry.local:5000"));
    }
}
