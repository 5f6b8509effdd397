//! Capability sets from the spec, as bit masks the init process applies with
//! prctl/capset (computed here so the child only makes syscalls).

use std::str::FromStr;

use oci_spec::runtime::{Capabilities, LinuxCapabilities};

use crate::error::{Result, RuntimeError};
use crate::process::plan::CapSets;

/// The highest capability number the running kernel knows.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

fn mask(set: &Option<Capabilities>, which: &'static str, last: u32) -> Result<u64> {
    let mut m = 0u64;
    for c in set.iter().flatten() {
        let mut name = c.to_string();
        if !name.starts_with("CAP_") {
            name = format!("CAP_{name}");
        }
        let cap =
            caps::Capability::from_str(&name).map_err(|_| RuntimeError::UnknownCapability {
                set: which,
                name: name.clone(),
            })?;
        let n = cap.index() as u32;
        if n > last {
            // The kernel does not know it: runc ignores these too, with a warning.
            tracing::warn!("capability {name} is not known to this kernel; ignoring it");
            continue;
        }
        m |= 1 << n;
    }
    Ok(m)
}

/// Converts the spec's capabilities into masks.
pub fn sets(c: &LinuxCapabilities) -> Result<CapSets> {
    let last = last_cap();
    Ok(CapSets {
        bounding: mask(c.bounding(), "bounding", last)?,
        effective: mask(c.effective(), "effective", last)?,
        permitted: mask(c.permitted(), "permitted", last)?,
        inheritable: mask(c.inheritable(), "inheritable", last)?,
        ambient: mask(c.ambient(), "ambient", last)?,
        last_cap: last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_bits() {
        let c: LinuxCapabilities = serde_json::from_value(serde_json::json!({
            "bounding": ["CAP_CHOWN", "CAP_KILL"],
            "effective": ["CAP_KILL"],
            "permitted": ["CAP_KILL"],
            "inheritable": [],
            "ambient": []
        }))
        .unwrap();
        let s = sets(&c).unwrap();
        assert_eq!(
            s.bounding,
            (1 << caps::Capability::CAP_CHOWN.index()) | (1 << caps::Capability::CAP_KILL.index())
        );
        assert_eq!(s.effective, 1 << caps::Capability::CAP_KILL.index());
        assert_eq!(s.ambient, 0);
    }
}
