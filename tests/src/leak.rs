//! Finding what a container left on the host: cgroup directories, mounts,
//! state files and processes.

use crate::cgroup;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// What to look for.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub id: &'a str,
    /// The runtime's `--root`.
    pub root: &'a Path,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    /// `linux.cgroupsPath` (absolute, relative to each hierarchy's root).
    pub cgroups_path: &'a str,
}

/// Every leftover found, one line each; empty when the host is clean.
pub fn find(s: Scope<'_>) -> Vec<String> {
    let mut found = Vec::new();
    if !s.cgroups_path.is_empty() {
        for dir in cgroup::dirs(s.cgroups_path) {
            if dir.exists() {
                found.push(format!("cgroup directory {}", dir.display()));
            }
        }
    }
    for m in mounts_under(s.bundle)
        .into_iter()
        .chain(mounts_under(s.rootfs))
    {
        found.push(format!("mount {m}"));
    }
    state_files(s.root, s.id, &mut found);
    processes(s, &mut found);
    found.dedup();
    found
}

/// Mount points (from /proc/self/mountinfo) at or below `path`, or whose
/// source root is there; deepest first.
pub fn mounts_under(path: &Path) -> Vec<String> {
    let p = path.to_string_lossy();
    let info = fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    let mut out: Vec<String> = info
        .lines()
        .filter(|l| {
            l.split(' ')
                .skip(3)
                .take(2)
                .any(|f| f == p || f.starts_with(&format!("{p}/")))
        })
        .map(|l| l.split(' ').nth(4).unwrap_or_default().to_string())
        .collect();
    out.sort_by_key(|m| std::cmp::Reverse(m.len()));
    out
}

/// Lazily unmounts everything mounted at or below `path`; true when nothing remains.
pub fn unmount_under(path: &Path) -> bool {
    let p = path.to_string_lossy().into_owned();
    for m in mounts_under(path) {
        if m == p || m.starts_with(&format!("{p}/")) {
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
    }
    mounts_under(path)
        .iter()
        .all(|m| !(m == &p || m.starts_with(&format!("{p}/"))))
}

fn state_files(dir: &Path, id: &str, found: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().contains(id) {
            found.push(format!("state entry {}", e.path().display()));
        }
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            state_files(&e.path(), id, found);
        }
    }
}

fn processes(s: Scope<'_>, found: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir("/proc") else {
        return;
    };
    let cg = s.cgroups_path.trim_end_matches('/');
    // A pivoted process's root reads as "/" through readlink; compare inodes instead.
    let rootfs_id = fs::metadata(s.rootfs).ok().map(|m| (m.dev(), m.ino()));
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let proc_dir = e.path();
        for link in ["cwd", "root"] {
            if let Ok(target) = fs::read_link(proc_dir.join(link)) {
                if target.starts_with(s.rootfs) {
                    found.push(format!("process {name} with {link} {}", target.display()));
                }
            }
        }
        let root_id = fs::metadata(proc_dir.join("root"))
            .ok()
            .map(|m| (m.dev(), m.ino()));
        if rootfs_id.is_some() && root_id == rootfs_id {
            found.push(format!("process {name} whose root is the rootfs"));
        }
        if cg.is_empty() {
            continue;
        }
        let groups = fs::read_to_string(proc_dir.join("cgroup")).unwrap_or_default();
        if groups.lines().any(|l| {
            let path = l.splitn(3, ':').nth(2).unwrap_or_default();
            path == cg || path.starts_with(&format!("{cg}/"))
        }) {
            found.push(format!("process {name} in cgroup {cg}"));
        }
    }
}
