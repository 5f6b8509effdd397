//! Applies a plan's links, addresses, routes and bandwidth limits through
//! rtnetlink — in the host's namespace and in a container's — and undoes
//! them one journaled step at a time.
//!
//! A netlink socket acts in the namespace it was created in, so the
//! container side gets its own connection, opened on a short-lived thread
//! that first enters the container's namespace.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, BorrowedFd};

use futures_util::stream::{StreamExt, TryStreamExt};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkInfo, LinkMessage, MacVlanMode,
};
use netlink_packet_route::route::{RouteMessage, RouteScope};
use netlink_packet_route::tc::{TcAttribute, TcHandle, TcHeader, TcMessage, TcOption};
use netlink_packet_route::RouteNetlinkMessage;
use rtnetlink::packet_core::{
    DefaultNla, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST,
};
use rtnetlink::{
    AddressMessageBuilder, LinkBridge, LinkMacVlan, LinkMessageBuilder, LinkUnspec, LinkVeth,
    RouteMessageBuilder,
};

use super::plan::{Link, LinkKind, Plan, Route, Shaping, Side, Step};
use super::NetError;

/// A journal callback: called with each step before it is taken.
pub(crate) type Record<'a> = dyn FnMut(Step) -> std::io::Result<()> + Send + 'a;

/// A rtnetlink connection in the network namespace it was created in. Its
/// connection task runs on the tokio runtime it was made on and is stopped
/// when this is dropped (a socket left open would keep a container's
/// namespace alive).
#[derive(Debug)]
pub(crate) struct Netlink {
    handle: rtnetlink::Handle,
    task: tokio::task::AbortHandle,
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Netlink {
    /// A connection in the calling thread's current network namespace
    /// (spawns rtnetlink's connection task on the current tokio runtime).
    pub(crate) fn new() -> Result<Netlink, NetError> {
        let what = "opening a netlink connection";
        let runtime = runtime(what)?;
        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(|e| NetError::new(what, e))?;
        let task = runtime.spawn(connection).abort_handle();
        Ok(Netlink { handle, task })
    }

    /// A connection inside the namespace `netns` (an open `/proc/PID/ns/net`
    /// or a bind-mounted nsfs file). The socket is created on a short-lived
    /// thread that enters the namespace first; the calling thread's own
    /// namespace does not change.
    pub(crate) fn in_netns(netns: BorrowedFd<'_>) -> Result<Netlink, NetError> {
        let what = "opening a netlink connection in the container's network namespace";
        let runtime = runtime(what)?;
        let (connection, handle) = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    enter_netns(netns)?;
                    // The socket registers with the runtime's reactor from this
                    // thread; it keeps the namespace it was created in.
                    let _entered = runtime.enter();
                    let (connection, handle, _) = rtnetlink::new_connection()?;
                    Ok::<_, std::io::Error>((connection, handle))
                })
                .join()
        })
        .map_err(|_| NetError::new(what, "the thread that enters the namespace panicked"))?
        .map_err(|e| NetError::new(what, e))?;
        let task = runtime.spawn(connection).abort_handle();
        Ok(Netlink { handle, task })
    }

    /// Whether a link of that name exists here.
    pub(crate) async fn link_exists(&self, name: &str) -> Result<bool, NetError> {
        let found = self
            .link(name)
            .await
            .map_err(|e| NetError::new(format!("looking up link {name}"), reason(&e)))?;
        Ok(found.is_some())
    }

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
                .map_err(|e| NetError::new(&what, reason(&e)))?;
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
                .map_err(|e| NetError::new(&what, reason(&e)))?;
        }
        for shaping in &plan.shaping {
            sides.shape(shaping, record).await?;
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

    /// The link called `name`, or `None`.
    async fn link(&self, name: &str) -> Result<Option<LinkMessage>, rtnetlink::Error> {
        let mut links = self.handle.link().get().match_name(name).execute();
        match links.try_next().await {
            Ok(link) => Ok(link),
            Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The index of the link called `name`, or `None`.
    async fn find_index(&self, name: &str, what: &str) -> Result<Option<u32>, NetError> {
        let link = self
            .link(name)
            .await
            .map_err(|e| NetError::new(what, reason(&e)))?;
        Ok(link.map(|link| link.header.index))
    }

    /// The index of the link called `name`; its absence is an error.
    async fn index(&self, name: &str, what: &str) -> Result<u32, NetError> {
        self.find_index(name, what)
            .await?
            .ok_or_else(|| NetError::new(what, format!("there is no link named {name}")))
    }

    /// Fails if a link called `name` exists: a plan never adopts a link it
    /// did not create (undoing the step would delete someone else's link).
    async fn ensure_absent(&self, name: &str, what: &str) -> Result<(), NetError> {
        match self.find_index(name, what).await? {
            Some(_) => Err(NetError::new(what, format!("link {name} already exists"))),
            None => Ok(()),
        }
    }

    /// Sets the MAC address of link `name` (here).
    pub(crate) async fn set_mac(&self, name: &str, mac: [u8; 6]) -> Result<(), NetError> {
        let what = format!(
            "setting the MAC address of {name} to {}",
            mac.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        );
        let index = self.index(name, &what).await?;
        let message = LinkUnspec::new_with_index(index)
            .address(mac.to_vec())
            .build();
        self.handle
            .link()
            .set(message)
            .execute()
            .await
            .map_err(|e| NetError::new(what, reason(&e)))
    }

    async fn set_up(&self, name: &str, what: &str) -> Result<(), NetError> {
        let index = self.index(name, what).await?;
        let message = LinkUnspec::new_with_index(index).up().build();
        self.handle
            .link()
            .set(message)
            .execute()
            .await
            .map_err(|e| NetError::new(what, reason(&e)))
    }

    /// Deletes the link called `name` if it exists (and, with `kind`, only
    /// if it is of that kind).
    async fn delete_link(&self, name: &str, kind: Option<InfoKind>) -> Result<(), NetError> {
        let what = format!("deleting link {name}");
        let link = self
            .link(name)
            .await
            .map_err(|e| NetError::new(&what, reason(&e)))?;
        let Some(link) = link else { return Ok(()) };
        if let Some(kind) = kind {
            if link_kind(&link) != Some(&kind) {
                tracing::warn!(link = name, ?kind, "not deleting a link of another kind");
                return Ok(());
            }
        }
        let result = self.handle.link().del(link.header.index).execute().await;
        gone_is_ok(result, &[libc::ENODEV], &what)
    }

    /// Removes the root qdisc of `link` if it is the token bucket the
    /// shaping step installs.
    async fn unshape(&self, link: &str, what: &str) -> Result<(), NetError> {
        let Some(index) = self.find_index(link, what).await? else {
            return Ok(());
        };
        let qdiscs: Vec<TcMessage> = self
            .handle
            .qdisc()
            .get()
            .index(index as i32)
            .execute()
            .try_collect()
            .await
            .map_err(|e| NetError::new(what, reason(&e)))?;
        let ours = qdiscs.iter().any(|q| {
            q.header.index == index as i32
                && q.header.parent == TcHandle::ROOT
                && q.attributes.contains(&TcAttribute::Kind("tbf".into()))
        });
        if !ours {
            return Ok(());
        }
        let mut request = self.handle.qdisc().del(index as i32);
        request.message_mut().header.parent = TcHandle::ROOT;
        gone_is_ok(request.execute().await, &[libc::ENOENT, libc::ENODEV], what)
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
                    .map_err(|e| NetError::new(&what, reason(&e)))?;
                container
                    .set_up(
                        container_name,
                        &format!("bringing up {container_name} in the container"),
                    )
                    .await
            }
        }
    }

    async fn shape(&self, shaping: &Shaping, record: &mut Record<'_>) -> Result<(), NetError> {
        let what = format!(
            "limiting {}{} to {} bit/s",
            shaping.link,
            where_(shaping.side),
            shaping.rate
        );
        let nl = self.get(shaping.side, &what)?;
        let link = nl
            .link(&shaping.link)
            .await
            .map_err(|e| NetError::new(&what, reason(&e)))?
            .ok_or_else(|| {
                NetError::new(&what, format!("there is no link named {}", shaping.link))
            })?;
        let mtu = link
            .attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::Mtu(mtu) => Some(*mtu),
                _ => None,
            })
            .unwrap_or(1500);
        let tick = psched_ticks_per_usec().map_err(|e| NetError::new(&what, e))?;
        let options = tbf_options(shaping.rate, mtu, tick).map_err(|e| NetError::new(&what, e))?;
        journal(
            record,
            Step::Shaping {
                side: shaping.side,
                link: shaping.link.clone(),
            },
            &what,
        )?;
        let header = TcHeader {
            index: link.header.index as i32,
            parent: TcHandle::ROOT,
            ..Default::default()
        };
        let message = TcMessage::from_parts(
            header,
            vec![
                TcAttribute::Kind("tbf".into()),
                TcAttribute::Options(options),
            ],
        );
        let mut request = NetlinkMessage::from(RouteNetlinkMessage::NewQueueDiscipline(message));
        request.header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
        let mut handle = nl.handle.clone();
        let mut responses = handle
            .request(request)
            .map_err(|e| NetError::new(&what, reason(&e)))?;
        while let Some(response) = responses.next().await {
            if let NetlinkPayload::Error(e) = response.payload {
                if e.code.is_some() {
                    return Err(NetError::new(&what, e.to_io()));
                }
            }
        }
        Ok(())
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
        .map_err(|e| NetError::new(what, reason(&e)))
}

fn journal(record: &mut Record<'_>, step: Step, what: &str) -> Result<(), NetError> {
    record(step).map_err(|e| NetError::new(what, format!("could not journal the step: {e}")))
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

fn link_kind(link: &LinkMessage) -> Option<&InfoKind> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
            LinkInfo::Kind(kind) => Some(kind),
            _ => None,
        }),
        _ => None,
    })
}

/// The errno of a kernel refusal.
fn errno(error: &rtnetlink::Error) -> Option<i32> {
    match error {
        rtnetlink::Error::NetlinkError(message) => message.to_io().raw_os_error(),
        _ => None,
    }
}

/// The kernel's words for an error ("File exists (os error 17)").
fn reason(error: &rtnetlink::Error) -> String {
    match error {
        rtnetlink::Error::NetlinkError(message) => message.to_io().to_string(),
        other => other.to_string(),
    }
}

/// Success, or a failure whose errno says the object is already gone.
fn gone_is_ok(
    result: Result<(), rtnetlink::Error>,
    gone: &[i32],
    what: &str,
) -> Result<(), NetError> {
    match result {
        Ok(()) => Ok(()),
        Err(e) if errno(&e).is_some_and(|code| gone.contains(&code)) => Ok(()),
        Err(e) => Err(NetError::new(what, reason(&e))),
    }
}

fn runtime(what: &str) -> Result<tokio::runtime::Handle, NetError> {
    tokio::runtime::Handle::try_current().map_err(|e| NetError::new(what, e))
}

/// Moves the calling thread (only it) into the network namespace `netns`.
pub(super) fn enter_netns(netns: BorrowedFd<'_>) -> std::io::Result<()> {
    // SAFETY: setns reads nothing but the descriptor, which the borrow keeps
    // open for the call; it changes the namespace of the calling thread only.
    let rc = unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

// The token bucket filter (`tbf`) qdisc. netlink-packet-route does not model
// its options, so they are encoded here as the kernel's structs
// (include/uapi/linux/pkt_sched.h), in native byte order.

const TCA_TBF_PARMS: u16 = 1;
const TCA_TBF_RATE64: u16 = 4;
const TCA_TBF_BURST: u16 = 6;
const TC_LINKLAYER_ETHERNET: u8 = 1;
/// How much traffic may wait in the bucket's queue, in time at the rate.
const TBF_LATENCY_USEC: u64 = 50_000;
/// The smallest burst: enough for a few full frames whatever the rate.
const TBF_MIN_BURST: u64 = 16 * 1024;

/// The `TCA_OPTIONS` of a token bucket at `rate` bits/s on a link of `mtu`,
/// with `ticks_per_usec` psched ticks to a microsecond.
fn tbf_options(rate: u64, mtu: u32, ticks_per_usec: f64) -> Result<Vec<TcOption>, String> {
    if rate < 8 {
        return Err(format!(
            "a rate of {rate} bit/s is below one byte per second"
        ));
    }
    let bytes_per_sec = rate / 8;
    // At least one timer tick's worth of traffic (tc's rule of thumb is
    // rate/HZ; 10 ms covers HZ=100), and a couple of full frames.
    let burst = (bytes_per_sec / 100)
        .max(TBF_MIN_BURST)
        .max(2 * u64::from(mtu))
        .min(u64::from(u32::MAX));
    let limit = (bytes_per_sec.saturating_mul(TBF_LATENCY_USEC) / 1_000_000)
        .saturating_add(burst)
        .min(u64::from(u32::MAX));
    // The bucket's depth as the time to send `burst` at the rate, in ticks.
    let usec = 1_000_000.0 * burst as f64 / bytes_per_sec as f64;
    let buffer = (usec * ticks_per_usec).min(f64::from(u32::MAX)) as u32;

    let rate32 = u32::try_from(bytes_per_sec).unwrap_or(u32::MAX);
    let mut parms = Vec::with_capacity(36);
    // struct tc_ratespec rate: cell_log, linklayer, overhead, cell_align, mpu, rate
    parms.extend_from_slice(&[0, TC_LINKLAYER_ETHERNET]);
    parms.extend_from_slice(&0u16.to_ne_bytes());
    parms.extend_from_slice(&0i16.to_ne_bytes());
    parms.extend_from_slice(&0u16.to_ne_bytes());
    parms.extend_from_slice(&rate32.to_ne_bytes());
    // struct tc_ratespec peakrate: none
    parms.extend_from_slice(&[0u8; 12]);
    parms.extend_from_slice(&(limit as u32).to_ne_bytes());
    parms.extend_from_slice(&buffer.to_ne_bytes());
    parms.extend_from_slice(&0u32.to_ne_bytes()); // mtu: only with a peak rate

    let mut options = vec![
        TcOption::Other(DefaultNla::new(TCA_TBF_PARMS, parms)),
        TcOption::Other(DefaultNla::new(
            TCA_TBF_BURST,
            (burst as u32).to_ne_bytes().to_vec(),
        )),
    ];
    if bytes_per_sec > u64::from(u32::MAX) {
        options.push(TcOption::Other(DefaultNla::new(
            TCA_TBF_RATE64,
            bytes_per_sec.to_ne_bytes().to_vec(),
        )));
    }
    Ok(options)
}

/// Packet scheduler ticks per microsecond, from the clock parameters the
/// kernel publishes in /proc/net/psched (read the way tc reads them: the
/// ratio of its first two words, scaled by the clock resolution in the
/// third, where a resolution of 1 GHz marks the old nanosecond convention).
fn psched_ticks_per_usec() -> Result<f64, String> {
    let path = "/proc/net/psched";
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"))?;
    parse_psched(&text).ok_or_else(|| format!("{path} is not 3 hex numbers: {text:?}"))
}

fn parse_psched(text: &str) -> Option<f64> {
    let mut words = text
        .split_whitespace()
        .map(|w| u32::from_str_radix(w, 16).ok());
    let (t2us, us2t, clock_res) = (words.next()??, words.next()??, words.next()??);
    if us2t == 0 || clock_res == 0 {
        return None;
    }
    let t2us = if clock_res == 1_000_000_000 {
        us2t
    } else {
        t2us
    };
    Some(f64::from(t2us) / f64::from(us2t) * (f64::from(clock_res) / 1_000_000.0))
}

#[cfg(test)]
#[path = "testns.rs"]
pub(super) mod testns;

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
