//! The ABI version check: a plugin built for another `berth:plugin` major
//! (for 0.x, another minor) is refused before it is instantiated.
//!
//! Versions follow semver, where for 0.x the minor is the breaking part. So
//! an additive change (new functions, new types) of a 0.x package bumps the
//! patch level — 0.1.0 → 0.1.1 added `layer-fs.stat`, `read-link`,
//! `list-xattrs` and `get-xattr` — and plugins built for any earlier patch
//! level of the same 0.x minor keep loading: wasmtime's linker satisfies an
//! import of `berth:plugin/layer-fs@0.1.0` with the host's `@0.1.1`, and the
//! host finds a plugin's `storage@0.1.0` export the same way. From 1.0 on,
//! additive changes bump the minor, as DESIGN.md says.

use crate::error::HostError;

/// The WIT package the host implements.
pub const ABI_PACKAGE: &str = "berth:plugin";
/// The version of [`ABI_PACKAGE`] the host implements: the WIT package's
/// own (`sdk/wit/worlds.wit`, read by the build script).
pub const ABI_VERSION: &str = env!("BERTH_ABI_VERSION");

/// `major.minor.patch`, ignoring pre-release and build suffixes.
fn parse(v: &str) -> Option<(u64, u64, u64)> {
    let core = v.split(['-', '+']).next()?;
    let mut it = core.split('.').map(|p| p.parse::<u64>().ok());
    let v = (it.next()??, it.next()??, it.next()??);
    it.next().is_none().then_some(v)
}

/// Whether a plugin built for `found` can run on a host implementing
/// `supported`: same major, and for 0.x the same minor (semver's rule).
/// Within that, any patch level loads; an import the host lacks still fails
/// at link time with its name.
pub(crate) fn compatible(found: &str, supported: &str) -> bool {
    match (parse(found), parse(supported)) {
        (Some((0, fmin, _)), Some((0, smin, _))) => fmin == smin,
        (Some((fmaj, _, _)), Some((smaj, _, _))) => fmaj == smaj,
        _ => false,
    }
}

/// Checks every `berth:plugin/…@version` name a component imports or exports.
pub(crate) fn check<'a>(
    plugin: &str,
    names: impl IntoIterator<Item = &'a str>,
) -> Result<(), HostError> {
    let prefix = format!("{ABI_PACKAGE}/");
    for name in names {
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        let found = rest
            .split_once('@')
            .map(|(_, v)| v)
            .unwrap_or("(no version)");
        if !compatible(found, ABI_VERSION) {
            return Err(HostError::Version {
                plugin: plugin.to_owned(),
                found: found.to_owned(),
                supported: ABI_VERSION.to_owned(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugins_of_earlier_patch_levels_load() {
        // 0.1.1 only added functions: a plugin built for 0.1.0 still runs,
        // and one built for a later 0.1.x loads (a function this host lacks
        // fails at link time, naming it).
        assert!(compatible("0.1.0", ABI_VERSION));
        assert!(compatible("0.1.1", ABI_VERSION));
        assert!(compatible("0.1.9", ABI_VERSION));
        assert!(!compatible("0.2.0", ABI_VERSION));
        assert!(!compatible("0.0.9", ABI_VERSION));
        check(
            "old",
            ["berth:plugin/layer-fs@0.1.0", "berth:plugin/storage@0.1.0"],
        )
        .unwrap();
    }

    #[test]
    fn semver_compatibility() {
        assert!(compatible("0.1.0", "0.1.0"));
        assert!(compatible("0.1.7", "0.1.0"));
        assert!(!compatible("0.2.0", "0.1.0"));
        assert!(!compatible("1.0.0", "0.1.0"));
        assert!(compatible("1.3.0", "1.0.2"));
        assert!(!compatible("2.0.0", "1.9.0"));
        assert!(!compatible("garbage", "0.1.0"));
        assert!(compatible("0.1.0-rc1", "0.1.0"));
    }

    #[test]
    fn the_error_names_both_versions() {
        let names = ["wasi:io/streams@0.2.12", "berth:plugin/storage@0.2.0"];
        let err = check("storage-x", names).unwrap_err().to_string();
        assert!(
            err.contains("storage-x") && err.contains("0.2.0") && err.contains(ABI_VERSION),
            "{err}"
        );
        check("ok", ["berth:plugin/log@0.1.3", "wasi:cli/stdin@0.2.0"]).unwrap();
        assert!(check("nov", ["berth:plugin/log"]).is_err());
    }

    #[test]
    fn abi_version_matches_the_wit() {
        let wit = include_str!("../../../sdk/wit/types.wit");
        assert!(
            wit.contains(&format!("package {ABI_PACKAGE}@{ABI_VERSION};")),
            "sdk/wit/types.wit and ABI_VERSION disagree"
        );
    }
}
