//! Checks what a network plugin answers besides its plan: the subnet and
//! gateway `create-network` chose, and the address, gateway and MAC address
//! `add` gives the container — each against the plugin's grants and the
//! plan it came with.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::check;
use super::plan::{Plan, Side};
use super::violation::PlanViolation;
use crate::bindings::network::exports::berth::plugin::network as wit;
use crate::config::NetworkGrants;

/// The subnet and gateway of a `create-network` answer: the subnet within
/// the granted pools, the gateway (if any) within the subnet.
pub(crate) fn network(
    info: &wit::NetworkInfo,
    g: &NetworkGrants,
) -> Result<(Ipv4Net, Option<Ipv4Addr>), PlanViolation> {
    let subnet = check::parse_cidr(&info.subnet, "subnet")?.trunc();
    let gateway = if info.gateway.is_empty() {
        None
    } else {
        Some(check::parse_ip(&info.gateway, "gateway")?)
    };
    check::check_net_in_pools(&subnet, g, "the network's subnet")?;
    if let Some(gw) = gateway.filter(|g| !subnet.contains(g)) {
        return Err(PlanViolation::GatewayOutsideSubnet {
            gateway: gw,
            subnet,
        });
    }
    Ok((subnet, gateway))
}

/// The address and gateway of an `add` answer whose `plan` was checked: the
/// address is one the plan gives the container, the gateway lies in the
/// granted pools, and every published port goes to that address.
pub(crate) fn attachment(
    att: &wit::Attachment,
    plan: &Plan,
    g: &NetworkGrants,
) -> Result<(Ipv4Net, Option<Ipv4Addr>), PlanViolation> {
    let address = check::parse_cidr(&att.address, "attachment address")?;
    let gateway = if att.gateway.is_empty() {
        None
    } else {
        Some(check::parse_ip(&att.gateway, "gateway")?)
    };
    if !plan
        .addresses
        .iter()
        .any(|a| a.side == Side::Container && a.addr == address)
    {
        return Err(PlanViolation::AddressNotPlanned { address });
    }
    if let Some(gw) = gateway {
        check::check_in_pools(gw, g, "the attachment's gateway")?;
    }
    if let Some(p) = plan
        .rules
        .ports
        .iter()
        .find(|p| p.container_ip != address.addr())
    {
        return Err(PlanViolation::PortToAnotherAddress {
            port: p.clone(),
            address: address.addr(),
        });
    }
    Ok((address, gateway))
}

/// The container interface that carries `address` and the MAC address
/// `mac` to give it; `None` when the plugin left the MAC to the kernel.
pub(crate) fn mac(
    mac: &str,
    plan: &Plan,
    address: Ipv4Net,
) -> Result<Option<(String, [u8; 6])>, PlanViolation> {
    if mac.is_empty() {
        return Ok(None);
    }
    let link = plan
        .addresses
        .iter()
        .find(|a| a.side == Side::Container && a.addr == address)
        .map(|a| a.link.clone());
    match (parse_mac(mac), link) {
        (Some(m), Some(l)) => Ok(Some((l, m))),
        _ => Err(PlanViolation::NotUnicastMac {
            mac: mac.to_owned(),
        }),
    }
}

/// `02:42:ac:11:00:02` → bytes, if it is a unicast MAC.
fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in out.iter_mut() {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    (parts.next().is_none() && out[0] & 1 == 0 && out != [0; 6]).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_unicast() {
        assert_eq!(
            parse_mac("02:42:ac:11:00:02"),
            Some([2, 0x42, 0xac, 0x11, 0, 2])
        );
        assert_eq!(parse_mac("01:00:5e:00:00:01"), None, "multicast");
        assert_eq!(parse_mac("00:00:00:00:00:00"), None);
        assert_eq!(parse_mac("02:42:ac:11:00"), None);
        assert_eq!(parse_mac("02:42:ac:11:00:02:03"), None);
    }
}
