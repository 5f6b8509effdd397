//! WASI filesystem calls whose path leaves the directory it is resolved in
//! (absolute, or `..` past its start) are policy violations that end the
//! call, as `layer-fs` escapes do: cap-std refuses them anyway, but a
//! plugin that tries is not left to go on. The path-taking methods of
//! `wasi:filesystem/types` are shadowed by checks that then call WASI's own.

use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::filesystem::WasiFilesystemView as _;
use wasmtime_wasi::p2::bindings::filesystem::types::{
    Descriptor, DescriptorFlags, DescriptorStat, HostDescriptor, MetadataHashValue, NewTimestamp,
    OpenFlags, PathFlags,
};
use wasmtime_wasi::p2::FsError;

use crate::error::Refusal;
use crate::state::State;

/// The instance the guarded methods live in (wasmtime-wasi's p2 version).
const TYPES: &str = "wasi:filesystem/types@0.2.12";

/// Whether `path`, resolved from a directory, leaves it.
pub(crate) fn escapes(path: &str) -> bool {
    if path.starts_with('/') {
        return true;
    }
    let mut depth = 0i64;
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

/// The trap of a guarded call with a path that leaves its directory.
fn refuse(s: &mut State, op: &str, path: &str) -> wasmtime::Error {
    s.violation(Refusal::WasiPath {
        op: op.to_owned(),
        path: path.to_owned(),
    })
}

/// WASI's answer as the guest sees it: its error code, or a trap.
fn lowered<T>(
    r: Result<T, FsError>,
) -> wasmtime::Result<(Result<T, wasmtime_wasi::p2::bindings::filesystem::types::ErrorCode>,)> {
    match r {
        Ok(v) => Ok((Ok(v),)),
        Err(e) => Ok((Err(e.downcast()?),)),
    }
}

/// Shadows the path-taking methods of `wasi:filesystem/types` (linked
/// before) with the escape check.
pub(crate) fn link(l: &mut Linker<State>) -> wasmtime::Result<()> {
    l.allow_shadowing(true);
    let mut i = l.instance(TYPES)?;
    macro_rules! guard {
        ($name:literal, $method:ident, ($($arg:ident : $ty:ty),*), [$($checked:ident),*], $ret:ty) => {
            i.func_wrap_async(
                $name,
                |mut store: wasmtime::StoreContextMut<'_, State>, (fd, $($arg),*): (Resource<Descriptor>, $($ty),*)| {
                    Box::new(async move {
                        $(
                            if escapes(&$checked) {
                                return Err(refuse(store.data_mut(), $name, &$checked));
                            }
                        )*
                        let mut v = store.data_mut().filesystem();
                        let r: Result<$ret, FsError> = HostDescriptor::$method(&mut v, fd, $($arg),*).await;
                        lowered(r)
                    })
                },
            )?;
        };
    }
    guard!("[method]descriptor.open-at", open_at,
        (path_flags: PathFlags, path: String, oflags: OpenFlags, flags: DescriptorFlags),
        [path], Resource<Descriptor>);
    guard!("[method]descriptor.create-directory-at", create_directory_at, (path: String), [path], ());
    guard!("[method]descriptor.stat-at", stat_at, (path_flags: PathFlags, path: String), [path], DescriptorStat);
    guard!("[method]descriptor.set-times-at", set_times_at,
        (path_flags: PathFlags, path: String, atim: NewTimestamp, mtim: NewTimestamp), [path], ());
    guard!("[method]descriptor.link-at", link_at,
        (old_flags: PathFlags, old_path: String, new_fd: Resource<Descriptor>, new_path: String),
        [old_path, new_path], ());
    guard!("[method]descriptor.readlink-at", readlink_at, (path: String), [path], String);
    guard!("[method]descriptor.remove-directory-at", remove_directory_at, (path: String), [path], ());
    guard!("[method]descriptor.rename-at", rename_at,
        (old_path: String, new_fd: Resource<Descriptor>, new_path: String), [old_path, new_path], ());
    // The link's target is stored, not resolved: only where it is made counts.
    guard!("[method]descriptor.symlink-at", symlink_at, (target: String, new_path: String), [new_path], ());
    guard!("[method]descriptor.unlink-file-at", unlink_file_at, (path: String), [path], ());
    guard!("[method]descriptor.metadata-hash-at", metadata_hash_at,
        (path_flags: PathFlags, path: String), [path], MetadataHashValue);
    l.allow_shadowing(false);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::escapes;

    #[test]
    fn paths_that_leave_their_directory() {
        for p in [
            "/etc/passwd",
            "..",
            "../x",
            "a/../../b",
            "./../x",
            "a/./../..",
        ] {
            assert!(escapes(p), "{p}");
        }
        for p in ["", ".", "a", "a/b/../c", "a/..", "./a/./b", "a//b"] {
            assert!(!escapes(p), "{p}");
        }
    }
}
