//! A rtnetlink connection in one network namespace — the host's, or a
//! container's opened from a short-lived thread that enters it first — and
//! the lookups and link operations the applier and the shaper share.
//!
//! A netlink socket acts in the namespace it was created in, so the
//! container side gets its own connection.

use std::os::fd::{AsRawFd, BorrowedFd};

use futures_util::stream::TryStreamExt;
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage};
use rtnetlink::LinkUnspec;

use super::NetError;

/// A rtnetlink connection in the network namespace it was created in. Its
/// connection task runs on the tokio runtime it was made on and is stopped
/// when this is dropped (a socket left open would keep a container's
/// namespace alive).
#[derive(Debug)]
pub(crate) struct Netlink {
    pub(super) handle: rtnetlink::Handle,
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
            rtnetlink::new_connection().map_err(|e| NetError::io(what, &e))?;
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
        .map_err(|e| NetError::io(what, &e))?;
        let task = runtime.spawn(connection).abort_handle();
        Ok(Netlink { handle, task })
    }

    /// Whether a link of that name exists here.
    pub(crate) async fn link_exists(&self, name: &str) -> Result<bool, NetError> {
        let found = self
            .link(name)
            .await
            .map_err(|e| NetError::netlink(format!("looking up link {name}"), &e))?;
        Ok(found.is_some())
    }

    /// The link called `name`, or `None`.
    pub(super) async fn link(&self, name: &str) -> Result<Option<LinkMessage>, rtnetlink::Error> {
        let mut links = self.handle.link().get().match_name(name).execute();
        match links.try_next().await {
            Ok(link) => Ok(link),
            Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The index of the link called `name`, or `None`.
    pub(super) async fn find_index(&self, name: &str, what: &str) -> Result<Option<u32>, NetError> {
        let link = self
            .link(name)
            .await
            .map_err(|e| NetError::netlink(what, &e))?;
        Ok(link.map(|link| link.header.index))
    }

    /// The index of the link called `name`; its absence is an error.
    pub(super) async fn index(&self, name: &str, what: &str) -> Result<u32, NetError> {
        self.find_index(name, what)
            .await?
            .ok_or_else(|| NetError::new(what, format!("there is no link named {name}")))
    }

    /// Fails if a link called `name` exists: a plan never adopts a link it
    /// did not create (undoing the step would delete someone else's link).
    pub(super) async fn ensure_absent(&self, name: &str, what: &str) -> Result<(), NetError> {
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
            .map_err(|e| NetError::netlink(what, &e))
    }

    pub(super) async fn set_up(&self, name: &str, what: &str) -> Result<(), NetError> {
        let index = self.index(name, what).await?;
        let message = LinkUnspec::new_with_index(index).up().build();
        self.handle
            .link()
            .set(message)
            .execute()
            .await
            .map_err(|e| NetError::netlink(what, &e))
    }

    /// Deletes the link called `name` if it exists (and, with `kind`, only
    /// if it is of that kind).
    pub(super) async fn delete_link(
        &self,
        name: &str,
        kind: Option<InfoKind>,
    ) -> Result<(), NetError> {
        let what = format!("deleting link {name}");
        let link = self
            .link(name)
            .await
            .map_err(|e| NetError::netlink(&what, &e))?;
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
}

pub(super) fn link_kind(link: &LinkMessage) -> Option<&InfoKind> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
            LinkInfo::Kind(kind) => Some(kind),
            _ => None,
        }),
        _ => None,
    })
}

impl NetError {
    /// A step the kernel refused over netlink: keeps its errno.
    pub(super) fn netlink(what: impl Into<String>, error: &rtnetlink::Error) -> NetError {
        NetError {
            errno: errno(error),
            ..NetError::new(what, reason(error))
        }
    }
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
pub(super) fn gone_is_ok(
    result: Result<(), rtnetlink::Error>,
    gone: &[i32],
    what: &str,
) -> Result<(), NetError> {
    match result {
        Ok(()) => Ok(()),
        Err(e) if errno(&e).is_some_and(|code| gone.contains(&code)) => Ok(()),
        Err(e) => Err(NetError::netlink(what, &e)),
    }
}

pub(super) fn runtime(what: &str) -> Result<tokio::runtime::Handle, NetError> {
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

#[cfg(test)]
#[path = "testns.rs"]
pub(super) mod testns;
