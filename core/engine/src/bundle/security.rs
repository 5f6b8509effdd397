//! What a container's process may do and see: its capabilities
//! (`--cap-add`, `--cap-drop`, `--privileged`), no-new-privileges
//! (`--security-opt`), its namespaces (`--network`) and the paths of /proc
//! and /sys it may not read or write.

use oci_spec::runtime::{
    Capabilities, Capability, LinuxCapabilities, LinuxNamespace, LinuxNamespaceType,
};

use super::bad;
use crate::containers::config::HostConfig;
use crate::error::Result;

/// docker's default capability set.
pub const DEFAULT_CAPS: &[Capability] = &[
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// The capability a `--cap-add` or `--cap-drop` names (`net_admin`,
/// `CAP_NET_ADMIN`); `None` for `ALL`.
pub(super) fn cap_name(name: &str, image: &str) -> Result<Option<Capability>> {
    let up = name.to_ascii_uppercase();
    let bare = up.strip_prefix("CAP_").unwrap_or(&up);
    if bare == "ALL" {
        return Ok(None);
    }
    // oci-spec parses the names without their `CAP_` prefix.
    bare.parse::<Capability>()
        .map(Some)
        .map_err(|_| bad(image, format!("unknown capability {name:?}")))
}

/// Every capability the kernel knows that berth itself may hand on (its
/// bounding set: a capability missing there cannot be given to anyone, and
/// asking for it fails the start), as `--privileged` and `--cap-add ALL`
/// give.
fn all_capabilities(image: &str) -> Result<Capabilities> {
    let held = caps::read(None, caps::CapSet::Bounding).unwrap_or_else(|_| caps::all());
    caps::all()
        .iter()
        .filter(|c| held.contains(c))
        .map(|c| {
            let name = c.to_string();
            cap_name(&name, image)?
                .ok_or_else(|| bad(image, format!("unknown capability {name:?}")))
        })
        .collect()
}

/// The capabilities of the process: docker's defaults with `--cap-drop`
/// then `--cap-add` applied, or all of them with `--privileged`.
pub(super) fn capabilities(h: &HostConfig, image: &str) -> Result<Capabilities> {
    let all = all_capabilities(image)?;
    if h.privileged {
        return Ok(all);
    }
    let mut set: Capabilities = DEFAULT_CAPS.iter().copied().collect();
    for d in &h.cap_drop {
        match cap_name(d, image)? {
            None => set.clear(),
            Some(c) => {
                set.remove(&c);
            }
        }
    }
    for a in &h.cap_add {
        match cap_name(a, image)? {
            None => set = all.clone(),
            Some(c) => {
                set.insert(c);
            }
        }
    }
    Ok(set)
}

/// docker's sets: `caps` bounding, effective and permitted; nothing
/// inheritable or ambient.
pub(super) fn process_capabilities(caps: Capabilities) -> LinuxCapabilities {
    let mut c = LinuxCapabilities::default();
    c.set_bounding(Some(caps.clone()))
        .set_effective(Some(caps.clone()))
        .set_permitted(Some(caps))
        .set_inheritable(None)
        .set_ambient(None);
    c
}

/// Whether `--security-opt` asks for no-new-privileges; refuses the
/// options berth does not know.
pub(super) fn no_new_privileges(h: &HostConfig, image: &str) -> Result<bool> {
    for o in &h.security_opt {
        if !o.starts_with("no-new-privileges")
            && !o.starts_with("seccomp=")
            && !o.starts_with("seccomp:")
            && !o.starts_with("label")
            && !o.starts_with("apparmor")
        {
            let shown: String = o.chars().take(60).collect();
            return Err(bad(image, format!("invalid --security-opt: {shown:?} (berth knows no-new-privileges, seccomp=unconfined|PROFILE)")));
        }
    }
    Ok(h.security_opt.iter().any(|o| {
        o == "no-new-privileges" || o == "no-new-privileges:true" || o == "no-new-privileges=true"
    }))
}

/// The container's own namespaces: pid, ipc, uts, mount and cgroup, and
/// network unless `--network host`.
pub(super) fn namespaces(h: &HostConfig, image: &str) -> Result<Vec<LinuxNamespace>> {
    let mut types = vec![
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Cgroup,
    ];
    match h.network_mode.as_str() {
        "host" => {}
        m if m.starts_with("container:") => {
            return Err(bad(
                image,
                format!(
                    "--network {m}: sharing another container's network is not supported by berth"
                ),
            ))
        }
        // none, the default bridge or a named network: a namespace of its own.
        _ => types.push(LinuxNamespaceType::Network),
    }
    Ok(types
        .into_iter()
        .map(|t| {
            let mut n = LinuxNamespace::default();
            n.set_typ(t);
            n
        })
        .collect())
}

/// docker's masked paths (none with `--privileged`).
pub(super) fn masked_paths(h: &HostConfig) -> Vec<String> {
    let paths: &[&str] = if h.privileged {
        &[]
    } else {
        &[
            "/proc/asound",
            "/proc/acpi",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/proc/scsi",
            "/sys/firmware",
        ]
    };
    paths.iter().map(|p| p.to_string()).collect()
}

/// docker's read-only paths (none with `--privileged`).
pub(super) fn readonly_paths(h: &HostConfig) -> Vec<String> {
    let paths: &[&str] = if h.privileged {
        &[]
    } else {
        &[
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger",
        ]
    };
    paths.iter().map(|p| p.to_string()).collect()
}
