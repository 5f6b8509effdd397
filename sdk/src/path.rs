//! Cleaning of paths taken from layer tars: relative, no `.`, no escapes.

use crate::error::SdkError;

/// Cleans a path from a layer tar into a relative path beneath the layer root.
///
/// Leading `/` and `./` are dropped (umoci writes `/etc/passwd`), empty and `.`
/// components vanish and `..` pops a component. A `..` that would leave the
/// root is refused. The layer root itself is `""`.
pub fn clean(path: &str) -> Result<String, SdkError> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(SdkError::PathEscape(path.to_string()));
                }
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// The parent of a cleaned path (`""` for a top-level entry), or `None` for the root.
pub fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    Some(path.rsplit_once('/').map_or("", |(dir, _)| dir))
}

/// The last component of a cleaned path.
pub fn file_name(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, name)| name)
}

/// Joins a cleaned relative path onto a base (either may be empty).
pub fn join(base: &str, rel: &str) -> String {
    match (base.is_empty(), rel.is_empty()) {
        (true, _) => rel.to_string(),
        (_, true) => base.to_string(),
        _ => format!("{base}/{rel}"),
    }
}

/// The ancestors of a cleaned path, outermost first (`a`, `a/b` for `a/b/c`).
pub fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_prefixes_and_dots() {
        assert_eq!(clean("./etc/passwd").unwrap(), "etc/passwd");
        assert_eq!(clean("/etc//passwd").unwrap(), "etc/passwd");
        assert_eq!(clean("usr/./bin/").unwrap(), "usr/bin");
        assert_eq!(clean("./").unwrap(), "");
        assert_eq!(clean("/").unwrap(), "");
    }

    #[test]
    fn dotdot_inside_is_fine_escape_is_not() {
        assert_eq!(clean("a/b/../c").unwrap(), "a/c");
        assert!(clean("../etc").is_err());
        assert!(clean("a/../../etc").is_err());
        assert!(clean("/../x").is_err());
    }

    #[test]
    fn helpers() {
        assert_eq!(parent("a/b/c"), Some("a/b"));
        assert_eq!(parent("a"), Some(""));
        assert_eq!(parent(""), None);
        assert_eq!(file_name("a/b/c"), "c");
        assert_eq!(join("", "x"), "x");
        assert_eq!(join("l/fs", "x/y"), "l/fs/x/y");
        assert_eq!(join("l/fs", ""), "l/fs");
        assert_eq!(ancestors("a/b/c").collect::<Vec<_>>(), ["a", "a/b"]);
        assert_eq!(ancestors("a").count(), 0);
    }
}
