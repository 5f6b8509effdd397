//! Error kinds, classified once (moby's errdefs idea): each berth crate's
//! error type says which kind each of its errors is through a `kind()`
//! method, and only the API layer turns a kind into an HTTP status. Callers
//! match on the kind, never on message text.
//!
//! ```
//! use berth_errdefs::ErrorKind;
//! assert_eq!(ErrorKind::NotFound.to_string(), "not found");
//! assert!(ErrorKind::Conflict.is_client_error());
//! ```

/// What kind of failure an error is, independent of the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The object (container, image, network, …) does not exist.
    NotFound,
    /// The object exists but its state forbids the request (running, in use,
    /// name taken).
    Conflict,
    /// The request itself is wrong: a bad value, a malformed config.
    InvalidInput,
    /// The request is understood and refused by policy (a grant, a
    /// predefined object).
    Forbidden,
    /// Something the operation needs is not there or not answering now (a
    /// registry, a kernel feature, a plugin that timed out).
    Unavailable,
    /// A failure of berth or the machine (an I/O error, a bug).
    Internal,
}

impl ErrorKind {
    /// Whether the caller can fix it by asking differently (docker's 4xx).
    pub fn is_client_error(self) -> bool {
        matches!(
            self,
            ErrorKind::NotFound
                | ErrorKind::Conflict
                | ErrorKind::InvalidInput
                | ErrorKind::Forbidden
        )
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        })
    }
}
