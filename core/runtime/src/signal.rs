//! Signals as people and other engines write them: a name with or without
//! `SIG`, in any case (`TERM`, `SIGTERM`, `term`), or a number (`15`). The
//! one signal table of berth: the runtime's CLI and the engine parse with it.

use nix::sys::signal::Signal;

use crate::error::{Result, RuntimeError};

/// Parses a signal given as a name or a number.
pub fn parse(s: &str) -> Result<Signal> {
    let invalid = || RuntimeError::InvalidSignal { signal: s.into() };
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| invalid());
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<Signal>().map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_any_case_and_numbers() {
        assert_eq!(parse("TERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse("sigkill").unwrap(), Signal::SIGKILL);
        assert_eq!(parse("SIGHUP").unwrap(), Signal::SIGHUP);
        assert_eq!(parse("9").unwrap(), Signal::SIGKILL);
        for bad in ["SIGNOPE", "0", "999", ""] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.kind(), berth_errdefs::ErrorKind::InvalidInput);
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }
}
