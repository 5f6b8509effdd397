//! Networking for network plugins: the plan types (`plan`, `spec`), the
//! checks of a plan and of a plugin's answers against its grants (`check`,
//! `answer`, refusals in `violation`), the netlink connection (`netlink`),
//! the applier of links, addresses and routes (`apply`), the tc shaper
//! (`shape`), the nftables firewall (`nft`), and the on-disk journal of what
//! was applied, with its apply and undo (`journal`).

pub(crate) mod answer;
pub(crate) mod apply;
pub(crate) mod check;
pub(crate) mod journal;
pub(crate) mod netlink;
pub(crate) mod nft;
pub mod plan;
mod shape;
pub(crate) mod spec;
#[cfg(test)]
mod testnl;
mod violation;

pub use violation::PlanViolation;

/// A step of a plan that the kernel (or `nft`) refused.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{what}: {reason}")]
pub struct NetError {
    /// The step, naming its object (`creating veth veth1a2b3c4d5e6 (peer eth0)`).
    pub what: String,
    /// Why it failed (the kernel's error text).
    pub reason: String,
    /// The errno the kernel (or another system call) refused the step
    /// with; `None` when the host itself refused it (a link that already
    /// exists, a missing namespace) or `nft` failed.
    pub errno: Option<i32>,
}

impl NetError {
    /// What kind of failure the kernel's errno makes it: a link or address
    /// that exists or is busy is a conflict, a refused permission forbidden,
    /// a missing link or namespace not found, exhausted memory or space
    /// unavailable; anything else (and a step the host refused) internal.
    pub fn kind(&self) -> berth_errdefs::ErrorKind {
        use berth_errdefs::ErrorKind;
        match self.errno {
            Some(libc::EEXIST | libc::EADDRINUSE | libc::EBUSY) => ErrorKind::Conflict,
            Some(libc::EPERM | libc::EACCES) => ErrorKind::Forbidden,
            Some(libc::ENOENT | libc::ENODEV | libc::ESRCH) => ErrorKind::NotFound,
            Some(libc::ENOMEM | libc::ENOSPC | libc::ENOBUFS | libc::EAGAIN) => {
                ErrorKind::Unavailable
            }
            _ => ErrorKind::Internal,
        }
    }

    pub(crate) fn new(what: impl Into<String>, reason: impl std::fmt::Display) -> NetError {
        NetError {
            what: what.into(),
            reason: reason.to_string(),
            errno: None,
        }
    }

    /// A step a system call refused: keeps its errno.
    pub(crate) fn io(what: impl Into<String>, error: &std::io::Error) -> NetError {
        NetError {
            errno: error.raw_os_error(),
            ..NetError::new(what, error)
        }
    }

    /// The errno as an [`std::io::Error`], to match on its kind.
    pub fn os_error(&self) -> Option<std::io::Error> {
        self.errno.map(std::io::Error::from_raw_os_error)
    }
}

#[cfg(test)]
mod error_tests {
    use super::NetError;
    use berth_errdefs::ErrorKind;

    #[test]
    fn the_errno_classifies_a_refused_step() {
        let step =
            |errno| NetError::io("creating veth x", &std::io::Error::from_raw_os_error(errno));
        assert_eq!(step(libc::EEXIST).kind(), ErrorKind::Conflict);
        assert_eq!(step(libc::EPERM).kind(), ErrorKind::Forbidden);
        assert_eq!(step(libc::ENODEV).kind(), ErrorKind::NotFound);
        assert_eq!(step(libc::ENOBUFS).kind(), ErrorKind::Unavailable);
        assert_eq!(step(libc::EINVAL).kind(), ErrorKind::Internal);
        assert_eq!(
            NetError::new("nft -f -", "exit status 1").kind(),
            ErrorKind::Internal
        );
        assert_eq!(
            step(libc::EEXIST).os_error().unwrap().kind(),
            std::io::ErrorKind::AlreadyExists
        );
    }
}
