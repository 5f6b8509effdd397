//! Small file helpers shared by the cgroup writers: reading and writing interface files with
//! errors that name the file, creating directories while remembering which ones were new, and
//! removing them again.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use super::CgroupError;

/// Writes `value` to the existing interface file `dir/file`. A missing file means the kernel (or
/// the layout) cannot apply `setting`, and is reported as such.
pub(crate) fn write_setting(
    dir: &Path,
    file: &str,
    value: &str,
    setting: &str,
) -> Result<(), CgroupError> {
    let path = dir.join(file);
    match write_file(&path, value) {
        Err(CgroupError::Write { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            Err(CgroupError::MissingFile {
                setting: setting.to_string(),
                path,
            })
        }
        other => other,
    }
}

/// Writes `value` to the existing file `path` in a single write(2), as cgroupfs expects.
pub(crate) fn write_file(path: &Path, value: &str) -> Result<(), CgroupError> {
    tracing::trace!(path = %path.display(), value, "cgroup write");
    fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|source| CgroupError::Write {
            path: path.to_path_buf(),
            value: value.to_string(),
            source,
        })
}

/// Reads a whole interface file.
pub(crate) fn read(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a whole interface file; `None` when it does not exist.
pub(crate) fn read_opt(path: &Path) -> Result<Option<String>, CgroupError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Parses a single unsigned number (a file such as `memory.usage_in_bytes`).
pub(crate) fn parse_u64(path: &Path, content: &str) -> Result<u64, CgroupError> {
    content.trim().parse().map_err(|_| CgroupError::Parse {
        path: path.to_path_buf(),
        content: content.to_string(),
    })
}

/// Reads a single number; `None` when the file does not exist.
pub(crate) fn read_u64_opt(path: &Path) -> Result<Option<u64>, CgroupError> {
    read_opt(path)?.map(|s| parse_u64(path, &s)).transpose()
}

/// Reads a number or `max` (`pids.max`, `memory.max`); `max` and absent files give `None`.
pub(crate) fn read_max_opt(path: &Path) -> Result<Option<u64>, CgroupError> {
    match read_opt(path)? {
        Some(s) if s.trim() == "max" => Ok(None),
        Some(s) => parse_u64(path, &s).map(Some),
        None => Ok(None),
    }
}

/// Looks `key` up in a flat-keyed file (`key value` per line, as `cpu.stat` or `memory.events`).
pub(crate) fn flat_key(path: &Path, content: &str, key: &str) -> Result<Option<u64>, CgroupError> {
    for line in content.lines() {
        let mut it = line.split_whitespace();
        if it.next() == Some(key) {
            return it.next().map(|v| parse_u64(path, v)).transpose();
        }
    }
    Ok(None)
}

/// The processes listed in `dir/cgroup.procs` (not descendants). A missing directory is empty.
pub(crate) fn procs(dir: &Path) -> Result<Vec<i32>, CgroupError> {
    let path = dir.join("cgroup.procs");
    let Some(content) = read_opt(&path)? else {
        return Ok(Vec::new());
    };
    content
        .split_whitespace()
        .map(|p| {
            p.parse().map_err(|_| CgroupError::Parse {
                path: path.clone(),
                content: content.clone(),
            })
        })
        .collect()
}

/// `dir` and every cgroup directory below it, parents before children.
pub(crate) fn tree(dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => return Err(CgroupError::Read { path: d, source }),
        };
        for entry in entries {
            let entry = entry.map_err(|source| CgroupError::Read {
                path: d.clone(),
                source,
            })?;
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(entry.path());
            }
        }
        out.push(d);
    }
    out.sort_by_key(|p| p.components().count());
    Ok(out)
}

/// Creates `base/rel` one level at a time, appending each directory it made to `created`
/// (parents first) so a failure later can undo exactly that.
pub(crate) fn mkdir_tracked(
    base: &Path,
    rel: &Path,
    created: &mut Vec<PathBuf>,
) -> Result<(), CgroupError> {
    // A parent may vanish under us when another container's delete prunes
    // an empty `/berth`: start again from the top a few times.
    let mut attempts = 0;
    'again: loop {
        let mut cur = base.to_path_buf();
        for comp in rel.components() {
            cur.push(comp);
            match fs::create_dir(&cur) {
                Ok(()) => created.push(cur.clone()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && cur.is_dir() => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempts < 10 => {
                    attempts += 1;
                    continue 'again;
                }
                Err(source) => return Err(CgroupError::Create { path: cur, source }),
            }
        }
        return Ok(());
    }
}

/// Removes a cgroup directory, retrying for a while on EBUSY (the kernel frees a cgroup a little
/// after its last process exits). A directory that is already gone is fine.
pub(crate) fn remove_dir(path: &Path) -> Result<(), CgroupError> {
    let mut delay = Duration::from_millis(1);
    let mut waited = Duration::ZERO;
    loop {
        match fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && waited < Duration::from_secs(5) => {
                thread::sleep(delay);
                waited += delay;
                delay = (delay * 2).min(Duration::from_millis(100));
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// Polls `check` until it returns true, for up to `limit`.
pub(crate) fn poll(
    limit: Duration,
    mut check: impl FnMut() -> Result<bool, CgroupError>,
) -> Result<bool, CgroupError> {
    let mut delay = Duration::from_micros(200);
    let mut waited = Duration::ZERO;
    loop {
        if check()? {
            return Ok(true);
        }
        if waited >= limit {
            return Ok(false);
        }
        thread::sleep(delay);
        waited += delay;
        delay = (delay * 2).min(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_setting_reports_a_missing_file_with_the_setting() {
        let tmp = tempfile::tempdir().unwrap();
        let err = write_setting(tmp.path(), "pids.max", "5", "pids.limit").unwrap_err();
        assert!(matches!(err, CgroupError::MissingFile { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("pids.limit") && msg.contains("pids.max"),
            "{msg}"
        );
    }

    #[test]
    fn write_to_a_directory_names_file_and_value() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("memory.max")).unwrap();
        let err = write_setting(tmp.path(), "memory.max", "42", "memory.limit").unwrap_err();
        assert!(matches!(err, CgroupError::Write { .. }));
        assert!(err.to_string().contains("\"42\""), "{err}");
    }

    #[test]
    fn mkdir_tracked_records_only_new_dirs_and_tree_lists_parents_first() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("a")).unwrap();
        let mut created = Vec::new();
        mkdir_tracked(tmp.path(), Path::new("a/b/c"), &mut created).unwrap();
        assert_eq!(
            created,
            vec![tmp.path().join("a/b"), tmp.path().join("a/b/c")]
        );
        let t = tree(&tmp.path().join("a")).unwrap();
        assert_eq!(t.first().unwrap(), &tmp.path().join("a"));
        assert_eq!(t.last().unwrap(), &tmp.path().join("a/b/c"));
        remove_dir(&tmp.path().join("a/b/c")).unwrap();
        remove_dir(&tmp.path().join("a/b/c")).unwrap();
    }

    #[test]
    fn flat_keys_and_max_values() {
        let p = Path::new("cpu.stat");
        assert_eq!(
            flat_key(p, "usage_usec 5\nuser_usec 3\n", "user_usec").unwrap(),
            Some(3)
        );
        assert_eq!(flat_key(p, "usage_usec 5\n", "nr_periods").unwrap(), None);
        assert!(flat_key(p, "usage_usec x\n", "usage_usec").is_err());
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("pids.max"), "max\n").unwrap();
        assert_eq!(read_max_opt(&tmp.path().join("pids.max")).unwrap(), None);
        fs::write(tmp.path().join("pids.max"), "12\n").unwrap();
        assert_eq!(
            read_max_opt(&tmp.path().join("pids.max")).unwrap(),
            Some(12)
        );
    }
}
