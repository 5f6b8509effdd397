//! Archive references, as skopeo spells them: `oci:/dir[:tag]`,
//! `oci-archive:/file.tar[:tag]`, `docker-archive:/file.tar[:name:tag]`.

use berth_sdk::error::PluginError;

/// What kind of archive a reference names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An OCI image layout directory.
    OciDir,
    /// A tar of an OCI image layout.
    OciArchive,
    /// A `docker save` tarball.
    DockerArchive,
}

/// A parsed archive reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveRef {
    /// The transport.
    pub kind: Kind,
    /// Absolute path of the directory or file (a guest path the host granted).
    pub path: String,
    /// Which image in it (tag, or `name:tag` for docker archives), if given.
    pub image: Option<String>,
}

impl ArchiveRef {
    /// Parses `transport:path[:image]`; the path ends at its first `:`.
    pub fn parse(reference: &str) -> Result<Self, PluginError> {
        let bad =
            |why: &str| PluginError::Invalid(format!("archive reference {reference:?}: {why}"));
        let (transport, rest) = reference
            .split_once(':')
            .ok_or_else(|| bad("no transport"))?;
        let kind = match transport {
            "oci" => Kind::OciDir,
            "oci-archive" => Kind::OciArchive,
            "docker-archive" => Kind::DockerArchive,
            _ => return Err(bad("transport must be oci, oci-archive or docker-archive")),
        };
        let (path, image) = match rest.split_once(':') {
            Some((p, i)) if !i.is_empty() => (p, Some(i.to_string())),
            Some((p, _)) => (p, None),
            None => (rest, None),
        };
        if !path.starts_with('/') {
            return Err(bad("the path must be absolute"));
        }
        Ok(ArchiveRef {
            kind,
            path: path.to_string(),
            image,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_transports() {
        let r = ArchiveRef::parse("oci:/srv/layout:v1").unwrap();
        assert_eq!(
            (r.kind, r.path.as_str(), r.image.as_deref()),
            (Kind::OciDir, "/srv/layout", Some("v1"))
        );
        let r = ArchiveRef::parse("oci-archive:/tmp/img.tar").unwrap();
        assert_eq!((r.kind, r.image), (Kind::OciArchive, None));
        let r = ArchiveRef::parse("docker-archive:/tmp/s.tar:localhost:5000/app:1").unwrap();
        assert_eq!(
            (r.kind, r.path.as_str()),
            (Kind::DockerArchive, "/tmp/s.tar")
        );
        assert_eq!(r.image.as_deref(), Some("localhost:5000/app:1"));
        assert!(ArchiveRef::parse("docker://busybox").is_err());
        assert!(ArchiveRef::parse("oci:relative/dir").is_err());
        assert!(ArchiveRef::parse("/no/transport").is_err());
    }
}
