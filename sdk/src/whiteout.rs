//! OCI whiteouts: `.wh.NAME` deletes NAME from lower layers, `.wh..wh..opq`
//! makes its directory opaque (hides every lower entry in it).

/// The prefix of a whiteout file's name.
pub const PREFIX: &str = ".wh.";
/// The name of the opaque-directory marker.
pub const OPAQUE: &str = ".wh..wh..opq";

/// What a (cleaned) tar path means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Whiteout<'a> {
    /// An ordinary entry.
    None,
    /// Deletes this path of the lower layers.
    Remove(String),
    /// Hides the lower contents of this directory (`""` is the root).
    Opaque(&'a str),
}

/// Classifies a cleaned tar path.
pub fn classify(path: &str) -> Whiteout<'_> {
    let (dir, name) = match path.rsplit_once('/') {
        Some((dir, name)) => (dir, name),
        None => ("", path),
    };
    if name == OPAQUE {
        Whiteout::Opaque(dir)
    } else if let Some(target) = name.strip_prefix(PREFIX) {
        Whiteout::Remove(crate::path::join(dir, target))
    } else {
        Whiteout::None
    }
}

/// The tar path of the whiteout that deletes `path`.
pub fn remove_marker(path: &str) -> String {
    let (dir, name) = match path.rsplit_once('/') {
        Some((dir, name)) => (dir, name),
        None => ("", path),
    };
    crate::path::join(dir, &format!("{PREFIX}{name}"))
}

/// The tar path of the opaque marker of directory `dir`.
pub fn opaque_marker(dir: &str) -> String {
    crate::path::join(dir, OPAQUE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies() {
        assert_eq!(classify("etc/passwd"), Whiteout::None);
        assert_eq!(
            classify("etc/.wh.passwd"),
            Whiteout::Remove("etc/passwd".into())
        );
        assert_eq!(classify(".wh.tmp"), Whiteout::Remove("tmp".into()));
        assert_eq!(
            classify("var/cache/.wh..wh..opq"),
            Whiteout::Opaque("var/cache")
        );
        assert_eq!(classify(".wh..wh..opq"), Whiteout::Opaque(""));
        assert_eq!(classify("etc/.whatever"), Whiteout::None);
    }

    #[test]
    fn markers_round_trip() {
        assert_eq!(remove_marker("etc/passwd"), "etc/.wh.passwd");
        assert_eq!(remove_marker("tmp"), ".wh.tmp");
        assert_eq!(
            classify(&remove_marker("a/b")),
            Whiteout::Remove("a/b".into())
        );
        assert_eq!(opaque_marker("var"), "var/.wh..wh..opq");
        assert_eq!(classify(&opaque_marker("")), Whiteout::Opaque(""));
    }
}
