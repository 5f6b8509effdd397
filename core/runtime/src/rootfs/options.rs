//! OCI mount options (`ro`, `nosuid`, `rbind`, `rprivate`, `size=…`) as
//! mount(2) flags, propagation and the leftover data string.

use libc::c_ulong;

/// Mount flags and the leftover data string from an OCI options list.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MountOptions {
    pub flags: c_ulong,
    pub clear: c_ulong,
    pub propagation: c_ulong,
    pub data: Vec<String>,
    pub bind: bool,
    pub recursive: bool,
}

/// Parses OCI mount options as mount(8) does. An option berth cannot
/// honour is returned as the error.
pub fn parse_options(opts: &[String]) -> Result<MountOptions, String> {
    use libc::*;
    let mut o = MountOptions::default();
    for opt in opts {
        let (set, clr): (c_ulong, c_ulong) = match opt.as_str() {
            "defaults" => (0, 0),
            "ro" => (MS_RDONLY, 0),
            "rw" => (0, MS_RDONLY),
            "nosuid" => (MS_NOSUID, 0),
            "suid" => (0, MS_NOSUID),
            "nodev" => (MS_NODEV, 0),
            "dev" => (0, MS_NODEV),
            "noexec" => (MS_NOEXEC, 0),
            "exec" => (0, MS_NOEXEC),
            "sync" => (MS_SYNCHRONOUS, 0),
            "async" => (0, MS_SYNCHRONOUS),
            "dirsync" => (MS_DIRSYNC, 0),
            "remount" => (MS_REMOUNT, 0),
            "mand" => (MS_MANDLOCK, 0),
            "nomand" => (0, MS_MANDLOCK),
            "atime" => (0, MS_NOATIME),
            "noatime" => (MS_NOATIME, 0),
            "diratime" => (0, MS_NODIRATIME),
            "nodiratime" => (MS_NODIRATIME, 0),
            "relatime" => (MS_RELATIME, 0),
            "norelatime" => (0, MS_RELATIME),
            "strictatime" => (MS_STRICTATIME, 0),
            "nostrictatime" => (0, MS_STRICTATIME),
            "bind" => {
                o.bind = true;
                (0, 0)
            }
            "rbind" => {
                o.bind = true;
                o.recursive = true;
                (0, 0)
            }
            p if propagation_flags(p) != 0 => {
                o.propagation |= propagation_flags(p);
                (0, 0)
            }
            "tmpcopyup" | "idmap" | "ridmap" => return Err(opt.clone()),
            other => {
                o.data.push(other.to_string());
                (0, 0)
            }
        };
        o.flags = (o.flags | set) & !clr;
        o.clear |= clr;
    }
    Ok(o)
}

pub(super) fn propagation_flags(name: &str) -> c_ulong {
    use libc::*;
    match name {
        "private" => MS_PRIVATE,
        "rprivate" => MS_PRIVATE | MS_REC,
        "shared" => MS_SHARED,
        "rshared" => MS_SHARED | MS_REC,
        "slave" => MS_SLAVE,
        "rslave" => MS_SLAVE | MS_REC,
        "unbindable" => MS_UNBINDABLE,
        "runbindable" => MS_UNBINDABLE | MS_REC,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_become_flags_and_data() {
        let o = parse_options(&[
            "nosuid".into(),
            "ro".into(),
            "mode=755".into(),
            "size=65536k".into(),
            "rprivate".into(),
        ])
        .unwrap();
        assert_eq!(o.flags, libc::MS_NOSUID | libc::MS_RDONLY);
        assert_eq!(o.data, vec!["mode=755", "size=65536k"]);
        assert_eq!(o.propagation, libc::MS_PRIVATE | libc::MS_REC);
        let o = parse_options(&["ro".into(), "rw".into(), "rbind".into()]).unwrap();
        assert_eq!(o.flags, 0);
        assert!(o.bind && o.recursive);
        assert_eq!(parse_options(&["idmap".into()]), Err("idmap".to_string()));
    }
}
