//! What the engine's records share on disk and in memory: atomic JSON
//! writes, random ids and names, object-name rules and timestamps. Containers
//! and networks (and the API layer) use this one module, so neither imports
//! the other for it.

use std::io::{Read as _, Write as _};
use std::path::Path;

use serde::Serialize;

use crate::error::{EngineError, Result};

/// Writes JSON to `path` so that a crash leaves the old or the new file,
/// never half of one: a temporary file, fsync, rename, fsync of the directory.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let data = serde_json::to_vec_pretty(value).expect("serializable");
    let r = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(d) = path.parent() {
            std::fs::File::open(d)?.sync_all()?;
        }
        Ok(())
    })();
    r.map_err(|e| EngineError::io("writing", path, e))
}

/// Fills `b` from the kernel's random source; an error, never zeros.
pub fn random_bytes(b: &mut [u8]) -> Result<()> {
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(b))
        .map_err(|e| EngineError::io("reading random bytes from", "/dev/urandom", e))
}

/// A new object id: 32 random bytes in hex (docker's 64-character ids).
pub fn new_id() -> Result<String> {
    let mut b = [0u8; 32];
    random_bytes(&mut b)?;
    Ok(hex::encode(b))
}

/// docker's rule for container, network and volume names:
/// `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at least `min_len` characters (volumes: 2).
/// Each caller words the refusal as docker does for its object.
pub fn valid_name(name: &str, min_len: usize) -> bool {
    let mut c = name.chars();
    c.next().is_some_and(|f| f.is_ascii_alphanumeric())
        && name.len() >= min_len
        && c.all(|ch| ch.is_ascii_alphanumeric() || "_.-".contains(ch))
}

/// Now, as RFC 3339 with nanoseconds (UTC).
pub fn now() -> String {
    berth_runtime::state::now_rfc3339()
}

/// `secs` since the epoch as RFC 3339 (`2026-11-27T10:00:00.000000001Z`).
pub fn format_time(secs: i64, nanos: u32) -> String {
    berth_runtime::state::format_rfc3339(secs, nanos)
}

/// Seconds since the epoch of an RFC 3339 UTC time (`…Z`).
pub fn parse_time(s: &str) -> Option<i64> {
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, dd) = (d.next()??, d.next()??, d.next()??);
    let t = time.trim_end_matches('Z');
    let t = t.split('.').next()?;
    let mut tt = t.split(':').map(|x| x.parse::<i64>().ok());
    let (h, mi, sec) = (tt.next()??, tt.next()??, tt.next()??);
    let (y2, m2) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + dd - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + h * 3600 + mi * 60 + sec)
}

/// Whole seconds from `a` to `b` (RFC 3339 times).
pub fn secs_between(a: &str, b: &str) -> Option<i64> {
    Some(parse_time(b)? - parse_time(a)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        let s = format_time(1_795_000_000, 123);
        assert_eq!(parse_time(&s), Some(1_795_000_000));
        assert_eq!(
            secs_between("2026-11-27T10:00:00Z", "2026-11-27T10:00:12.5Z"),
            Some(12)
        );
    }

    #[test]
    fn ids_are_random_hex() {
        let (a, b) = (new_id().unwrap(), new_id().unwrap());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn names_follow_dockers_rule() {
        assert!(valid_name("web-1.a_b", 1) && valid_name("x", 1));
        assert!(!valid_name("-x", 1) && !valid_name("a b", 1) && !valid_name("", 1));
        assert!(!valid_name("x", 2) && valid_name("xy", 2));
    }

    #[test]
    fn json_is_replaced_whole() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("r.json");
        write_json(&p, &serde_json::json!({"a": 1})).unwrap();
        write_json(&p, &serde_json::json!({"a": 2})).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(v["a"], 2);
        assert!(!p.with_extension("tmp").exists());
    }
}
