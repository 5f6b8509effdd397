//! The /etc/hosts, /etc/hostname and /etc/resolv.conf a container sees:
//! files in the container's directory, bind-mounted over the image's. They
//! are written before the container is created and rewritten in place (same
//! inode, so the bind mount shows the new text) once its addresses are known.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The files, by their name in /etc.
pub const FILES: [&str; 3] = ["hosts", "hostname", "resolv.conf"];

/// What goes into the files.
#[derive(Debug, Default)]
pub struct EtcFiles<'a> {
    pub hostname: &'a str,
    /// The container's own addresses.
    pub addresses: Vec<String>,
    /// `--add-host` entries (`name:ip`); `host-gateway` is the first gateway.
    pub extra_hosts: &'a [String],
    /// `nameserver` lines.
    pub nameservers: Vec<String>,
    pub search: &'a [String],
    pub options: &'a [String],
    /// The first network's gateway (for `host-gateway`).
    pub gateway: Option<String>,
}

/// Where a file of a container lives.
pub fn path(cdir: &Path, name: &str) -> PathBuf {
    cdir.join(format!("etc-{name}"))
}

fn hosts(f: &EtcFiles<'_>) -> Result<String, String> {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for h in f.extra_hosts {
        let (name, ip) = h
            .split_once(':')
            .or_else(|| h.split_once('='))
            .ok_or_else(|| format!("invalid argument {h:?} for --add-host: expected HOST:IP"))?;
        let ip = if ip == "host-gateway" {
            f.gateway
                .clone()
                .ok_or_else(|| format!("--add-host {h}: the container has no gateway"))?
        } else {
            ip.parse::<std::net::IpAddr>()
                .map_err(|_| format!("invalid IP address in --add-host {h:?}: {ip:?}"))?;
            ip.to_string()
        };
        s.push_str(&format!("{ip}\t{name}\n"));
    }
    for a in &f.addresses {
        s.push_str(&format!("{a}\t{}\n", f.hostname));
    }
    Ok(s)
}

fn resolv(f: &EtcFiles<'_>) -> String {
    let mut s = String::new();
    for n in &f.nameservers {
        s.push_str(&format!("nameserver {n}\n"));
    }
    if !f.search.is_empty() {
        s.push_str(&format!("search {}\n", f.search.join(" ")));
    }
    if !f.options.is_empty() {
        s.push_str(&format!("options {}\n", f.options.join(" ")));
    }
    s
}

/// Checks `--add-host` entries without writing anything.
pub fn check_extra_hosts(extra: &[String]) -> Result<(), String> {
    hosts(&EtcFiles {
        extra_hosts: extra,
        gateway: Some("0.0.0.0".into()),
        ..Default::default()
    })
    .map(|_| ())
}

/// Writes (or rewrites in place) the three files.
pub fn write(cdir: &Path, f: &EtcFiles<'_>) -> Result<(), String> {
    let texts = [hosts(f)?, format!("{}\n", f.hostname), resolv(f)];
    for (name, text) in FILES.iter().zip(texts) {
        let p = path(cdir, name);
        // Truncate and write, never replace: the file is bind-mounted.
        std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&p)
            .and_then(|mut file| file.write_all(text.as_bytes()))
            .map_err(|e| format!("writing {}: {e}", p.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_resolv() {
        let extra = vec!["db:10.0.0.5".to_string(), "gw:host-gateway".to_string()];
        let f = EtcFiles {
            hostname: "abc",
            addresses: vec!["172.18.0.2".into()],
            extra_hosts: &extra,
            nameservers: vec!["172.18.0.1".into()],
            search: &[],
            options: &[],
            gateway: Some("172.18.0.1".into()),
        };
        let h = hosts(&f).unwrap();
        assert!(h.contains("10.0.0.5\tdb\n") && h.contains("172.18.0.1\tgw\n"));
        assert!(h.contains("172.18.0.2\tabc\n") && h.starts_with("127.0.0.1\tlocalhost"));
        assert_eq!(resolv(&f), "nameserver 172.18.0.1\n");
        assert!(check_extra_hosts(&["nocolon".into()])
            .unwrap_err()
            .contains("nocolon"));
        assert!(check_extra_hosts(&["x:1.2.3".into()])
            .unwrap_err()
            .contains("1.2.3"));
    }
}
