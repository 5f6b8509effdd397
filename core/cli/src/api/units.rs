//! docker's units (go-units): "3 seconds", "About a minute", "5.2MB" —
//! in the API (a container's `Status`) and in the client's tables.

/// docker's "Up 3 seconds", "About a minute", … (units.HumanDuration).
pub fn human(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".into(),
        _ if s < 3600 => format!("{} minutes", s / 60),
        _ if s < 7200 => "About an hour".into(),
        _ if s < 48 * 3600 => format!("{} hours", s / 3600),
        _ if s < 14 * 86400 => format!("{} days", s / 86400),
        _ if s < 60 * 86400 => format!("{} weeks", s / (7 * 86400)),
        _ if s < 365 * 86400 => format!("{} months", s / (30 * 86400)),
        _ => format!("{} years", s / (365 * 86400)),
    }
}

/// A size as docker's image lists show it (decimal units).
pub fn human_size(n: u64) -> String {
    let f = n as f64;
    if f >= 1e9 {
        format!("{:.2}GB", f / 1e9)
    } else if f >= 1e6 {
        format!("{:.1}MB", f / 1e6)
    } else if f >= 1e3 {
        format!("{:.1}kB", f / 1e3)
    } else {
        format!("{n}B")
    }
}

/// A size in binary units, as docker's `info` shows memory (`23.45GiB`).
pub fn human_binary(n: u64) -> String {
    let f = n as f64;
    let units = [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (u, scale) in units {
        if n >= scale {
            return format!("{:.2}{u}", f / scale as f64);
        }
    }
    format!("{n}B")
}

/// A unix time as RFC 3339 (UTC), as docker writes a file's `mtime`.
pub fn rfc3339(t: i64) -> String {
    let s = berth_engine::store::format_time(t, 0);
    format!("{}Z", &s[..19])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(human(0), "Less than a second");
        assert_eq!(human(5), "5 seconds");
        assert_eq!(human(90), "About a minute");
        assert_eq!(human(600), "10 minutes");
        assert_eq!(human(3 * 3600), "3 hours");
    }
}
