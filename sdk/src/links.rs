//! Names and hardware addresses of the links network plugins plan: the
//! kernel's rules for interface names, deterministic host-side veth names,
//! and docker-style MAC addresses.

use std::net::Ipv4Addr;

use sha2::{Digest, Sha256};

use crate::error::PluginError;

/// The longest interface name the kernel accepts, in bytes (`IFNAMSIZ - 1`).
pub const MAX_IFNAME: usize = 15;

/// An interface name the kernel would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid interface name {name:?}: {reason}")]
pub struct LinkNameError {
    /// The name as given.
    pub name: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl From<LinkNameError> for PluginError {
    fn from(e: LinkNameError) -> Self {
        PluginError::Invalid(e.to_string())
    }
}

/// Checks `name` against the kernel's rules (`dev_valid_name`): 1 to 15
/// bytes, not `.` or `..`, no `/`, `:` or whitespace.
pub fn check_ifname(name: &str) -> Result<(), LinkNameError> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.len() > MAX_IFNAME {
        "it is longer than 15 bytes"
    } else if name == "." || name == ".." {
        "it is . or .."
    } else if name
        .bytes()
        .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0x0b)
    {
        "it contains '/', ':' or whitespace"
    } else {
        return Ok(());
    };
    Err(LinkNameError {
        name: name.to_string(),
        reason,
    })
}

/// The host-side name of the veth that attaches `container_id` to
/// `network_id`: `veth` and the first 11 hex digits of
/// sha256(`network_id` `/` `container_id`), 15 bytes. The same pair always
/// gets the same name, so `del` and `gc` after a crash find the link again.
///
/// ```
/// let name = berth_sdk::links::veth_name("net", "ctr");
/// assert_eq!(name.len(), berth_sdk::links::MAX_IFNAME);
/// assert!(name.starts_with("veth"));
/// ```
pub fn veth_name(network_id: &str, container_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(network_id.as_bytes());
    h.update(b"/");
    h.update(container_id.as_bytes());
    let hex = hex::encode(h.finalize());
    format!("veth{}", &hex[..MAX_IFNAME - 4])
}

/// A locally administered MAC address made from `addr`, as docker makes
/// them: `02:42` and the address's four bytes (`02:42:ac:12:00:02` for
/// 172.18.0.2). Unique within a network since addresses are.
pub fn mac_from_ipv4(addr: Ipv4Addr) -> String {
    let [a, b, c, d] = addr.octets();
    format!("02:42:{a:02x}:{b:02x}:{c:02x}:{d:02x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_names_are_deterministic_and_fit_ifnamsiz() {
        let a = veth_name("n1", "c1");
        assert_eq!(a, veth_name("n1", "c1"));
        assert_eq!(a.len(), 15);
        assert!(a.starts_with("veth"));
        assert!(a[4..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        // sha256("n1/c1") starts with these digits.
        let digest = hex::encode(Sha256::digest(b"n1/c1"));
        assert_eq!(a[4..], digest[..11]);
        assert_ne!(a, veth_name("n1", "c2"));
        assert_ne!(a, veth_name("n2", "c1"));
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(veth_name("ab", "c"), veth_name("a", "bc"));
        check_ifname(&a).unwrap();
    }

    #[test]
    fn macs_follow_docker() {
        assert_eq!(
            mac_from_ipv4(Ipv4Addr::new(172, 18, 0, 2)),
            "02:42:ac:12:00:02"
        );
        assert_eq!(
            mac_from_ipv4(Ipv4Addr::new(10, 255, 1, 254)),
            "02:42:0a:ff:01:fe"
        );
    }

    #[test]
    fn ifnames_follow_the_kernels_rules() {
        for ok in ["eth0", "berth0", "br-0123456789ab", "a"] {
            check_ifname(ok).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "a:1", "a b", "0123456789abcdef"] {
            let e = check_ifname(bad).unwrap_err();
            assert!(
                matches!(PluginError::from(e), PluginError::Invalid(_)),
                "{bad}"
            );
        }
    }
}
