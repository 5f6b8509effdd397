//! `userns-remap`: the ranges of /etc/subuid and /etc/subgid a daemon's
//! containers run in (docker's `default` — here a `berth` entry, added when
//! missing — or `USER[:GROUP]`), the user namespace that maps them, and
//! idmapped mounts that show files stored with the image's own ids (root is
//! 0 on disk) as owned by those ranges, so layers, snapshots and volumes
//! stay shared with unmapped containers and commits need no shifting.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::error::{EngineError, Result};

/// The files the ranges come from.
pub const SUBUID: &str = "/etc/subuid";
pub const SUBGID: &str = "/etc/subgid";

/// The user `userns-remap = "default"` names (docker's is `dockremap`).
pub const DEFAULT_USER: &str = "berth";

/// One subordinate id range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub start: u32,
    pub size: u32,
}

impl IdRange {
    /// The line of /proc/PID/uid_map (and OCI's mapping) for it.
    pub fn map_line(&self) -> String {
        format!("0 {} {}", self.start, self.size)
    }
}

/// The remapping of a daemon's containers.
#[derive(Debug)]
pub struct Remap {
    /// What `userns-remap` said.
    pub setting: String,
    pub uid: IdRange,
    pub gid: IdRange,
    /// The user namespace of the mapping, made at first use.
    ns: OnceLock<std::result::Result<Arc<OwnedFd>, String>>,
}

fn bad(setting: &str, reason: String) -> EngineError {
    EngineError::Config {
        path: PathBuf::from("berth.toml"),
        reason: format!("userns-remap = {setting:?}: {reason}"),
    }
}

/// The first range of `name` (a name, or its numeric id `id`) in a
/// subordinate-id file's `text`.
fn range_in(text: &str, name: &str, id: Option<u32>) -> Option<IdRange> {
    text.lines().find_map(|l| {
        let mut f = l.trim().split(':');
        let (who, start, size) = (f.next()?, f.next()?, f.next()?);
        let matches = who == name || id.is_some_and(|i| who == i.to_string());
        if !matches {
            return None;
        }
        Some(IdRange {
            start: start.trim().parse().ok()?,
            size: size.trim().parse().ok()?,
        })
    })
}

/// The first free start of a 65536-id range in `text`, past 100000 and
/// every range there (as useradd picks them).
fn free_start(text: &str) -> u32 {
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().split(':').skip(1);
            let start: u64 = f.next()?.trim().parse().ok()?;
            let size: u64 = f.next()?.trim().parse().ok()?;
            Some(start + size)
        })
        .fold(100_000u64, u64::max)
        .min(u64::from(u32::MAX - 65_536)) as u32
}

/// `name`'s range in `file`, added (65536 ids after every other range) when
/// `add` and it has none.
fn range(file: &Path, name: &str, id: Option<u32>, add: bool, setting: &str) -> Result<IdRange> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && add => String::new(),
        Err(e) => return Err(EngineError::io("reading", file, e)),
    };
    if let Some(r) = range_in(&text, name, id) {
        if r.size == 0 {
            return Err(bad(
                setting,
                format!("{name}'s range in {} is empty", file.display()),
            ));
        }
        return Ok(r);
    }
    if !add {
        return Err(bad(
            setting,
            format!(
                "{} has no range for {name} (add a line such as `{name}:100000:65536`)",
                file.display()
            ),
        ));
    }
    let r = IdRange {
        start: free_start(&text),
        size: 65_536,
    };
    let mut new = text;
    if !new.is_empty() && !new.ends_with('\n') {
        new.push('\n');
    }
    new.push_str(&format!("{name}:{}:{}\n", r.start, r.size));
    // Written whole, then renamed over the file.
    let tmp = file.with_extension("berth-tmp");
    std::fs::write(&tmp, new)
        .and_then(|_| std::fs::rename(&tmp, file))
        .map_err(|e| EngineError::io("adding a range to", file, e))?;
    tracing::info!(
        "userns-remap: added {name}:{}:{} to {}",
        r.start,
        r.size,
        file.display()
    );
    Ok(r)
}

impl Remap {
    /// Resolves a `userns-remap` setting: `default` (the `berth` ranges,
    /// added to /etc/subuid and /etc/subgid when missing, as dockerd adds
    /// `dockremap`'s), or `USER[:GROUP]` (names or numeric ids), whose
    /// ranges must be there.
    pub fn resolve(setting: &str) -> Result<Remap> {
        Remap::resolve_in(setting, Path::new(SUBUID), Path::new(SUBGID))
    }

    fn resolve_in(setting: &str, subuid: &Path, subgid: &Path) -> Result<Remap> {
        let (user, group, add) = if setting == "default" {
            (DEFAULT_USER.to_string(), DEFAULT_USER.to_string(), true)
        } else {
            let (u, g) = setting.split_once(':').unwrap_or((setting, setting));
            if u.is_empty() || g.is_empty() {
                return Err(bad(setting, "give default, USER or USER:GROUP".into()));
            }
            (u.to_string(), g.to_string(), false)
        };
        let uid = match user.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => nix::unistd::User::from_name(&user)
                .ok()
                .flatten()
                .map(|u| u.uid.as_raw()),
        };
        let gid = match group.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => nix::unistd::Group::from_name(&group)
                .ok()
                .flatten()
                .map(|g| g.gid.as_raw()),
        };
        let u = range(subuid, &user, uid, add, setting)?;
        let g = range(subgid, &group, gid, add, setting)?;
        Ok(Remap {
            setting: setting.to_string(),
            uid: u,
            gid: g,
            ns: OnceLock::new(),
        })
    }

    /// The user namespace of this mapping (one for the daemon's life).
    pub fn userns(&self) -> Result<Arc<OwnedFd>> {
        self.ns
            .get_or_init(|| {
                make_userns(&self.uid, &self.gid)
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(|reason| EngineError::Config {
                path: PathBuf::from("berth.toml"),
                reason: format!("userns-remap: making the user namespace: {reason}"),
            })
    }
}

/// A user namespace mapping 0..size to the ranges: a forked child unshares
/// one, this process writes its maps and keeps a descriptor of it.
fn make_userns(uid: &IdRange, gid: &IdRange) -> std::io::Result<OwnedFd> {
    use nix::unistd::{fork, ForkResult};
    let (ready_r, ready_w) = nix::unistd::pipe()?;
    let (done_r, done_w) = nix::unistd::pipe()?;
    // SAFETY: the child only calls prctl, close, unshare, write, read and
    // _exit, all async-signal-safe, before it exits.
    match unsafe { fork() }? {
        ForkResult::Child => {
            // SAFETY: plain system calls on descriptors this process owns.
            unsafe {
                // Never outlive the daemon (it inherited the daemon's
                // signal handlers, so SIGTERM would not end it).
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                // Its copies of the parent's ends: with done_w open here,
                // the read below would never see the end of the pipe.
                libc::close(done_w.as_raw_fd());
                libc::close(ready_r.as_raw_fd());
                let ok: u8 = u8::from(libc::unshare(libc::CLONE_NEWUSER) == 0);
                libc::write(ready_w.as_raw_fd(), (&ok as *const u8).cast(), 1);
                let mut b = 0u8;
                libc::read(done_r.as_raw_fd(), (&mut b as *mut u8).cast(), 1);
                libc::_exit(0);
            }
        }
        ForkResult::Parent { child } => {
            drop(ready_w);
            drop(done_r);
            let result = (|| {
                let mut ok = [0u8; 1];
                let n = nix::unistd::read(&ready_r, &mut ok)?;
                if n != 1 || ok[0] != 1 {
                    return Err(std::io::Error::other(
                        "the child could not unshare a user namespace",
                    ));
                }
                let proc = PathBuf::from(format!("/proc/{child}"));
                std::fs::write(proc.join("uid_map"), uid.map_line())?;
                std::fs::write(proc.join("gid_map"), gid.map_line())?;
                let f = std::fs::File::open(proc.join("ns/user"))?;
                Ok(OwnedFd::from(f))
            })();
            drop(done_w);
            let _ = nix::sys::wait::waitpid(child, None);
            result
        }
    }
}

const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

/// The kernel's `struct mount_attr`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn cstr(p: &Path) -> std::io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
}

/// A detached copy of the mount tree at `source`, idmapped with `userns`.
fn idmapped_clone(source: &Path, userns: BorrowedFd<'_>) -> std::io::Result<OwnedFd> {
    let src = cstr(source)?;
    // SAFETY: open_tree with a valid C string; a returned descriptor is
    // owned by us.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            src.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | AT_RECURSIVE,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: open_tree returned a new descriptor.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    // SAFETY: mount_setattr on our detached tree with a properly sized attr.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint | AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(tree)
}

/// Attaches a detached tree at `target` (an existing directory).
fn attach(tree: &OwnedFd, target: &Path) -> std::io::Result<()> {
    let t = cstr(target)?;
    // SAFETY: move_mount of our detached tree onto a path.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Mounts an idmapped view of `source` on `target`.
pub fn idmapped_bind(source: &Path, target: &Path, userns: BorrowedFd<'_>) -> std::io::Result<()> {
    let tree = idmapped_clone(source, userns)?;
    attach(&tree, target)
}

/// Points the spec's named-volume mounts (sources under `volumes`) at
/// idmapped views of them attached under `views`, which the runtime binds
/// into the container; [`detach_views`] removes them once it has.
pub fn volume_views(
    r: &Remap,
    spec: &mut oci_spec::runtime::Spec,
    volumes: &Path,
    views: &Path,
) -> Result<()> {
    let Some(mut mounts) = spec.mounts().clone() else {
        return Ok(());
    };
    let mut made = 0;
    for m in mounts.iter_mut() {
        let Some(src) = m.source().clone() else {
            continue;
        };
        if !src.starts_with(volumes) {
            continue;
        }
        if made == 0 {
            let _ = detach_views(views);
            std::fs::create_dir_all(views).map_err(|e| EngineError::io("creating", views, e))?;
        }
        let at = views.join(made.to_string());
        made += 1;
        std::fs::create_dir(&at).map_err(|e| EngineError::io("creating", &at, e))?;
        let ns = r.userns()?;
        use std::os::fd::AsFd as _;
        idmapped_bind(&src, &at, ns.as_fd()).map_err(|e| EngineError::Mount {
            id: src.display().to_string(),
            reason: format!("an idmapped view of the volume for userns-remap: {e}"),
        })?;
        m.set_source(Some(at));
    }
    spec.set_mounts(Some(mounts));
    Ok(())
}

/// Detaches and removes the views [`volume_views`] made.
pub fn detach_views(views: &Path) -> std::io::Result<()> {
    let Ok(rd) = std::fs::read_dir(views) else {
        return Ok(());
    };
    for e in rd.flatten() {
        let _ = nix::mount::umount2(&e.path(), nix::mount::MntFlags::MNT_DETACH);
    }
    std::fs::remove_dir_all(views)
}

/// Gives the container's /etc/hosts, /etc/hostname and /etc/resolv.conf in
/// `cdir` to its remapped root, who may change them (as docker's).
pub fn give_etc(r: &Remap, cdir: &Path) -> Result<()> {
    for f in crate::networks::files::FILES {
        let p = crate::networks::files::path(cdir, f);
        if p.exists() {
            std::os::unix::fs::lchown(&p, Some(r.uid.start), Some(r.gid.start))
                .map_err(|e| EngineError::io("giving to the remapped root", &p, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_found_added_or_named_missing() {
        let dir = tempfile::tempdir().unwrap();
        let (u, g) = (dir.path().join("subuid"), dir.path().join("subgid"));
        std::fs::write(&u, "alice:100000:65536\n1001:300000:1000\n").unwrap();
        std::fs::write(&g, "alice:100000:65536").unwrap();
        // `default` adds berth's after every other range, and finds it next time.
        let r = Remap::resolve_in("default", &u, &g).unwrap();
        assert_eq!(
            (r.uid.start, r.uid.size, r.gid.start),
            (301_000, 65_536, 165_536)
        );
        assert!(std::fs::read_to_string(&g)
            .unwrap()
            .ends_with("\nberth:165536:65536\n"));
        let again = Remap::resolve_in("default", &u, &g).unwrap();
        assert_eq!(again.uid, r.uid);
        // USER:GROUP by name; a numeric id matches its number's line.
        let a = Remap::resolve_in("alice:alice", &u, &g).unwrap();
        assert_eq!(
            a.uid,
            IdRange {
                start: 100_000,
                size: 65_536
            }
        );
        let e = Remap::resolve_in("1001:alice", &u, &g).unwrap();
        assert_eq!(
            e.uid,
            IdRange {
                start: 300_000,
                size: 1000
            }
        );
        let e = Remap::resolve_in("bob", &u, &g).unwrap_err().to_string();
        assert!(
            e.contains("has no range for bob") && e.contains("subuid"),
            "{e}"
        );
        assert_eq!(r.uid.map_line(), "0 301000 65536");
    }
}
