//! Applies a plan's links, addresses and routes through rtnetlink — in the
//! host's namespace and in a container's — hands its bandwidth limits to
//! the shaper (`shape.rs`), and undoes it all one journaled step at a time.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth, LinkMessage, MacVlanMode};
use netlink_packet_route::route::{RouteMessage, RouteScope};
use rtnetlink::{
    AddressMessageBuilder, LinkBridge, LinkMacVlan, LinkMessageBuilder, LinkUnspec, LinkVeth,
    RouteMessageBuilder,
};

use super::netlink::{gone_is_ok, Netlink};
use super::plan::{Link, LinkKind, Plan, Route, Side, Step};
use super::NetError;

/// A journal callback: called with each step before it is taken.
pub(crate) type Record<'a> = dyn FnMut(Step) -> std::io::Result<()> + Send + 'a;
impl Netlink {
    /// Applies `plan.links`, then `plan.addresses`, `plan.routes` and
    /// `plan.shaping` — not `plan.rules`, which go through the firewall.
    /// `self` acts on the host side, a connection opened in `netns` on the
    /// container side. `record` is called before every step that leaves
    /// something to undo; on the first error this stops and returns it, and
    /// the caller undoes the recorded steps in reverse with [`Netlink::undo`].
    pub(crate) async fn apply(
        &self,
        plan: &Plan,
        netns: Option<BorrowedFd<'_>>,
        record: &mut Record<'_>,
    ) -> Result<(), NetError> {
        let container = match netns {
            Some(fd) if touches_container(plan) => Some(Netlink::in_netns(fd)?),
            _ => None,
        };
        let sides = Sides {
            host: self,
            container: container.as_ref(),
            netns,
        };
        let mut created = HashSet::new();
        for link in &plan.links {
            sides.create_link(link, record).await?;
            created.insert(link.name.as_str());
        }
        if let Some(container) = &container {
            container
                .set_up("lo", "bringing up lo in the container")
                .await?;
        }
        for address in &plan.addresses {
            let what = format!(
                "adding {} to {}{}",
                address.addr,
                address.link,
                where_(address.side)
            );
            let nl = sides.get(address.side, &what)?;
            let index = nl.index(&address.link, &what).await?;
            if address.side == Side::Host && !created.contains(address.link.as_str()) {
                journal(
                    record,
                    Step::Address {
                        link: address.link.clone(),
                        addr: address.addr,
                    },
                    &what,
                )?;
            }
            nl.handle
                .address()
                .add(
                    index,
                    IpAddr::V4(address.addr.addr()),
                    address.addr.prefix_len(),
                )
                .execute()
                .await
                .map_err(|e| NetError::netlink(&what, &e))?;
        }
        for route in &plan.routes {
            let what = format!("adding route {}", describe_route(route));
            let nl = sides.get(route.side, &what)?;
            let index = nl.index(&route.link, &what).await?;
            if route.side == Side::Host {
                journal(
                    record,
                    Step::Route {
                        route: route.clone(),
                    },
                    &what,
                )?;
            }
            nl.handle
                .route()
                .add(route_message(route, index))
                .execute()
                .await
                .map_err(|e| NetError::netlink(&what, &e))?;
        }
        for shaping in &plan.shaping {
            let what = format!(
                "limiting {}{} to {} bit/s",
                shaping.link,
                where_(shaping.side),
                shaping.rate
            );
            let nl = sides.get(shaping.side, &what)?;
            nl.shape(shaping, &what, record).await?;
        }
        Ok(())
    }

    /// Undoes one step. An object that is already gone counts as success, and
    /// so does a container-side step when `netns` is `None` (the namespace
    /// went away with the container), so undo works after a crash and may be
    /// repeated. [`Step::Rules`] is not a netlink step: firewall rules are
    /// removed with `Firewall::remove`, and passing one here is an error.
    pub(crate) async fn undo(
        &self,
        step: &Step,
        netns: Option<BorrowedFd<'_>>,
    ) -> Result<(), NetError> {
        match step {
            Step::Link { name } => self.delete_link(name, None).await,
            Step::ContainerLink { name } => {
                let Some(fd) = netns else { return Ok(()) };
                // Only a moved macvlan is journaled this way; whatever else
                // carries that name in the container is not ours to delete.
                Netlink::in_netns(fd)?
                    .delete_link(name, Some(InfoKind::MacVlan))
                    .await
            }
            Step::Address { link, addr } => {
                let what = format!("deleting {addr} from {link}");
                let Some(index) = self.find_index(link, &what).await? else {
                    return Ok(());
                };
                let message = AddressMessageBuilder::<Ipv4Addr>::new()
                    .index(index)
                    .address(addr.addr(), addr.prefix_len())
                    .build();
                let result = self.handle.address().del(message).execute().await;
                gone_is_ok(result, &[libc::EADDRNOTAVAIL, libc::ENODEV], &what)
            }
            Step::Route { route } => {
                let what = format!("deleting route {}", describe_route(route));
                let container;
                let nl = match (route.side, netns) {
                    (Side::Host, _) => self,
                    (Side::Container, None) => return Ok(()),
                    (Side::Container, Some(fd)) => {
                        container = Netlink::in_netns(fd)?;
                        &container
                    }
                };
                let Some(index) = nl.find_index(&route.link, &what).await? else {
                    return Ok(());
                };
                let result = nl
                    .handle
                    .route()
                    .del(route_message(route, index))
                    .execute()
                    .await;
                gone_is_ok(result, &[libc::ESRCH, libc::ENODEV], &what)
            }
            Step::Shaping { side, link } => {
                let what = format!("removing the bandwidth limit of {link}{}", where_(*side));
                match (side, netns) {
                    (Side::Host, _) => self.unshape(link, &what).await,
                    (Side::Container, None) => Ok(()),
                    (Side::Container, Some(fd)) => {
                        Netlink::in_netns(fd)?.unshape(link, &what).await
                    }
                }
            }
            Step::Rules { owner } => Err(NetError::new(
                format!("undoing the firewall rules of {owner}"),
                "firewall rules are undone by the firewall (Firewall::remove), not through netlink",
            )),
        }
    }
}

/// The two connections a plan acts through.
struct Sides<'a> {
    host: &'a Netlink,
    container: Option<&'a Netlink>,
    netns: Option<BorrowedFd<'a>>,
}

impl<'a> Sides<'a> {
    fn get(&self, side: Side, what: &str) -> Result<&'a Netlink, NetError> {
        match side {
            Side::Host => Ok(self.host),
            Side::Container => self.container.ok_or_else(|| no_netns(what)),
        }
    }

    fn netns(&self, what: &str) -> Result<BorrowedFd<'a>, NetError> {
        self.netns.ok_or_else(|| no_netns(what))
    }

    async fn create_link(&self, link: &Link, record: &mut Record<'_>) -> Result<(), NetError> {
        let host = self.host;
        let name = link.name.as_str();
        match &link.kind {
            LinkKind::Bridge => {
                let what = format!("creating bridge {name}");
                host.ensure_absent(name, &what).await?;
                let builder = LinkBridge::new(name);
                let message = host.common(builder, link, &what).await?.build();
                journal(record, Step::Link { name: name.into() }, &what)?;
                add_link(host, message, &what).await
            }
            LinkKind::Veth { peer } => {
                let what = format!("creating veth {name} (peer {peer} in the container)");
                let netns = self.netns(&what)?;
                let container = self.get(Side::Container, &what)?;
                host.ensure_absent(name, &what).await?;
                let mut peer_link = LinkUnspec::new_with_name(peer).setns_by_fd(netns.as_raw_fd());
                if link.mtu != 0 {
                    peer_link = peer_link.mtu(link.mtu);
                }
                let builder = LinkMessageBuilder::<LinkVeth>::new(name, peer)
                    .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_link.build())));
                let message = host.common(builder, link, &what).await?.build();
                journal(record, Step::Link { name: name.into() }, &what)?;
                add_link(host, message, &what).await?;
                container
                    .set_up(peer, &format!("bringing up {peer} in the container"))
                    .await
            }
            LinkKind::Macvlan {
                parent,
                mode,
                container_name,
            } => {
                let what = format!("creating macvlan {name} on {parent}");
                let netns = self.netns(&what)?;
                let container = self.get(Side::Container, &what)?;
                let mode = macvlan_mode(mode).ok_or_else(|| {
                    NetError::new(
                        &what,
                        format!(
                            "unknown macvlan mode {mode:?} (bridge, private, vepa or passthru)"
                        ),
                    )
                })?;
                let parent_index = host.index(parent, &what).await?;
                host.ensure_absent(name, &what).await?;
                let builder = LinkMacVlan::new(name, parent_index, mode);
                let message = host.common(builder, link, &what).await?.build();
                journal(record, Step::Link { name: name.into() }, &what)?;
                add_link(host, message, &what).await?;

                let what = format!("moving macvlan {name} into the container as {container_name}");
                // Checked first: a rename that fails after the move would leave
                // the link in the container under its host name.
                container.ensure_absent(container_name, &what).await?;
                let index = host.index(name, &what).await?;
                let message = LinkUnspec::new_with_index(index)
                    .setns_by_fd(netns.as_raw_fd())
                    .name(container_name.clone())
                    .build();
                journal(
                    record,
                    Step::ContainerLink {
                        name: container_name.clone(),
                    },
                    &what,
                )?;
                host.handle
                    .link()
                    .set(message)
                    .execute()
                    .await
                    .map_err(|e| NetError::netlink(&what, &e))?;
                container
                    .set_up(
                        container_name,
                        &format!("bringing up {container_name} in the container"),
                    )
                    .await
            }
        }
    }
}

impl Netlink {
    /// Adds a plan link's MTU and master to a link being created, and asks
    /// for it to come up.
    async fn common<T>(
        &self,
        builder: LinkMessageBuilder<T>,
        link: &Link,
        what: &str,
    ) -> Result<LinkMessageBuilder<T>, NetError> {
        let mut builder = builder.up();
        if link.mtu != 0 {
            builder = builder.mtu(link.mtu);
        }
        if let Some(master) = &link.master {
            builder = builder.controller(self.index(master, what).await?);
        }
        Ok(builder)
    }
}

async fn add_link(nl: &Netlink, message: LinkMessage, what: &str) -> Result<(), NetError> {
    nl.handle
        .link()
        .add(message)
        .execute()
        .await
        .map_err(|e| NetError::netlink(what, &e))
}

pub(super) fn journal(record: &mut Record<'_>, step: Step, what: &str) -> Result<(), NetError> {
    record(step).map_err(|e| NetError {
        errno: e.raw_os_error(),
        ..NetError::new(what, format!("could not journal the step: {e}"))
    })
}

fn no_netns(what: &str) -> NetError {
    NetError::new(
        what,
        "no container network namespace was given for a container-side step",
    )
}

/// Whether any step of `plan` acts inside the container.
fn touches_container(plan: &Plan) -> bool {
    plan.links
        .iter()
        .any(|l| matches!(l.kind, LinkKind::Veth { .. } | LinkKind::Macvlan { .. }))
        || plan.addresses.iter().any(|a| a.side == Side::Container)
        || plan.routes.iter().any(|r| r.side == Side::Container)
        || plan.shaping.iter().any(|s| s.side == Side::Container)
}

fn where_(side: Side) -> &'static str {
    match side {
        Side::Host => "",
        Side::Container => " in the container",
    }
}

fn describe_route(route: &Route) -> String {
    let destination = match route.destination {
        Some(net) => net.to_string(),
        None => "default".into(),
    };
    let via = match route.gateway {
        Some(gateway) => format!(" via {gateway}"),
        None => String::new(),
    };
    format!(
        "{destination}{via} dev {}{}",
        route.link,
        where_(route.side)
    )
}

/// The message that adds (or, sent as a deletion, removes) `route`.
fn route_message(route: &Route, index: u32) -> RouteMessage {
    let mut builder = RouteMessageBuilder::<Ipv4Addr>::new().output_interface(index);
    if let Some(net) = route.destination {
        builder = builder.destination_prefix(net.network(), net.prefix_len());
    }
    builder = match route.gateway {
        Some(gateway) => builder.gateway(gateway),
        None => builder.scope(RouteScope::Link),
    };
    builder.build()
}

fn macvlan_mode(mode: &str) -> Option<MacVlanMode> {
    match mode {
        "bridge" => Some(MacVlanMode::Bridge),
        "private" => Some(MacVlanMode::Private),
        "vepa" => Some(MacVlanMode::Vepa),
        "passthru" => Some(MacVlanMode::Passthrough),
        _ => None,
    }
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
