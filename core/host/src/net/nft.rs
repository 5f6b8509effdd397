//! The host's firewall: every owner's rules (masquerade, published ports,
//! forwarding, isolation) rendered into one nftables `table ip` and applied
//! by `nft -f -` as a single atomic transaction. The rules per owner live in
//! a JSON state file, written before the table is, so the table can be
//! rebuilt after a restart or a reboot.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use super::plan::Rules;
use super::NetError;

/// Every owner's rules, by owner.
type State = BTreeMap<String, Rules>;

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";
const NFT_NOT_INSTALLED: &str = "nft (Debian package nftables) is not installed";

/// One nftables table shared by owners, and the file that remembers their
/// rules.
#[derive(Debug)]
pub(crate) struct Firewall {
    state: PathBuf,
    table: String,
    /// Serializes read-modify-write of the state file and the table.
    lock: Mutex<()>,
}

impl Firewall {
    /// A firewall whose rules are kept per owner in `state` (a JSON file:
    /// owner → rules) and applied as `table ip <table>`.
    pub(crate) fn new(state: PathBuf, table: &str) -> Firewall {
        Firewall {
            state,
            table: table.to_string(),
            lock: Mutex::new(()),
        }
    }

    /// Replaces `owner`'s rules (empty rules remove the owner) and re-applies
    /// the whole table. The state file is written first; if `nft` refuses
    /// the table, it is put back as it was and the old table stays.
    pub(crate) fn set(&self, owner: &str, rules: &Rules) -> Result<(), NetError> {
        let what = format!(
            "installing the firewall rules of {owner} in table ip {}",
            self.table
        );
        check_rules(rules).map_err(|e| NetError::new(&what, e))?;
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let before = self.load(&what)?;
        let mut after = before.clone();
        if rules.is_empty() {
            after.remove(owner);
        } else {
            after.insert(owner.to_string(), rules.clone());
        }
        self.commit(&before, &after, &what)
    }

    /// Removes `owner`'s rules (an unknown owner is success) and re-applies
    /// the table; when no owner is left, the table is deleted.
    pub(crate) fn remove(&self, owner: &str) -> Result<(), NetError> {
        let what = format!(
            "removing the firewall rules of {owner} from table ip {}",
            self.table
        );
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let before = self.load(&what)?;
        if !before.contains_key(owner) {
            return Ok(());
        }
        let mut after = before.clone();
        after.remove(owner);
        self.commit(&before, &after, &what)
    }

    /// Re-applies the table from the state file (after a daemon restart or a
    /// reboot).
    pub(crate) fn restore(&self) -> Result<(), NetError> {
        let what = format!("restoring firewall table ip {}", self.table);
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let state = self.load(&what)?;
        self.install(&state, &what)
    }

    /// The owners that have rules (for garbage collection). An unreadable
    /// state file is logged and reads as no owners.
    pub(crate) fn owners(&self) -> Vec<String> {
        match self.load("listing the firewall's owners") {
            Ok(state) => state.into_keys().collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the firewall state");
                Vec::new()
            }
        }
    }

    fn commit(&self, before: &State, after: &State, what: &str) -> Result<(), NetError> {
        self.save(after, what)?;
        if let Err(e) = self.install(after, what) {
            // nft applies all or nothing, so the old table is still in place:
            // the state file goes back to describing it.
            if let Err(undo) = self.save(before, what) {
                tracing::error!(error = %undo, "cannot restore the firewall state file");
            }
            return Err(e);
        }
        Ok(())
    }

    fn install(&self, state: &State, what: &str) -> Result<(), NetError> {
        let script = render(&self.table, state).map_err(|e| NetError::new(what, e))?;
        run_nft(&script).map_err(|e| NetError::new(what, e))?;
        let forwards = state
            .values()
            .any(|r| !r.masquerade.is_empty() || !r.forward.is_empty() || !r.ports.is_empty());
        if forwards {
            enable_ip_forward().map_err(|e| NetError::io("turning on IPv4 forwarding", &e))?;
        }
        Ok(())
    }

    fn load(&self, what: &str) -> Result<State, NetError> {
        match std::fs::read(&self.state) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                NetError::new(
                    what,
                    format!("{} is not valid firewall state: {e}", self.state.display()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::new()),
            Err(e) => Err(NetError::new(
                what,
                format!("reading {}: {e}", self.state.display()),
            )),
        }
    }

    fn save(&self, state: &State, what: &str) -> Result<(), NetError> {
        let bytes = serde_json::to_vec_pretty(state).map_err(|e| NetError::new(what, e))?;
        write_atomically(&self.state, &bytes)
            .map_err(|e| NetError::new(what, format!("writing {}: {e}", self.state.display())))
    }
}

/// Writes `path` so that a crash leaves either the old or the new content.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Refuses interface names nft could misread: rules quote them, and only
/// the characters Linux link names use in practice are allowed.
fn check_rules(rules: &Rules) -> Result<(), String> {
    let bridges = rules
        .masquerade
        .iter()
        .map(|(_, bridge)| bridge)
        .chain(&rules.forward)
        .chain(&rules.isolate);
    for name in bridges {
        check_ifname(name)?;
    }
    Ok(())
}

fn check_ifname(name: &str) -> Result<(), String> {
    let valid = (1..=15).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a usable interface name (1 to 15 of A-Z a-z 0-9 _ . -)"
        ))
    }
}

fn check_table(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && name.as_bytes()[0].is_ascii_alphabetic();
    if valid {
        Ok(())
    } else {
        Err(format!("{name:?} is not a usable nftables table name"))
    }
}

/// The nft script that replaces `table ip <table>` with the rules of every
/// owner, or deletes it when there are none. `add table` first makes the
/// `delete` valid when the table does not exist yet.
fn render(table: &str, state: &State) -> Result<String, String> {
    check_table(table)?;
    let mut postrouting = Lines::default();
    let mut prerouting = Lines::default();
    let mut output = Lines::default();
    let mut forward = Lines::default();
    for rules in state.values() {
        check_rules(rules)?;
        for (subnet, bridge) in &rules.masquerade {
            postrouting.push(format!(
                "ip saddr {} oifname != \"{bridge}\" masquerade",
                subnet.trunc()
            ));
        }
        for bridge in &rules.isolate {
            forward.push(format!("iifname \"{bridge}\" oifname != \"{bridge}\" drop"));
            forward.push(format!("oifname \"{bridge}\" iifname != \"{bridge}\" drop"));
        }
    }
    // Accepts come after every owner's isolation drops.
    for rules in state.values() {
        for bridge in &rules.forward {
            forward.push(format!("iifname \"{bridge}\" accept"));
            forward.push(format!("oifname \"{bridge}\" accept"));
        }
        for port in &rules.ports {
            let proto = port.protocol.as_str();
            let daddr = match port.host_ip {
                Some(ip) => format!("ip daddr {ip} "),
                None => String::new(),
            };
            let dnat = format!(
                "fib daddr type local {proto} dport {} dnat to {}:{}",
                port.host_port, port.container_ip, port.container_port
            );
            prerouting.push(format!("{daddr}{dnat}"));
            // Connections to loopback are served by a userland proxy.
            if !port.host_ip.is_some_and(|ip| ip.is_loopback()) {
                output.push(format!("ip daddr != 127.0.0.0/8 {daddr}{dnat}"));
            }
            forward.push(format!(
                "ip daddr {} {proto} dport {} accept",
                port.container_ip, port.container_port
            ));
        }
    }

    let mut script = format!("add table ip {table}\ndelete table ip {table}\n");
    if state.is_empty() {
        return Ok(script);
    }
    let _ = writeln!(script, "table ip {table} {{");
    chain(
        &mut script,
        "postrouting",
        "nat hook postrouting priority srcnat",
        &postrouting.0,
    );
    chain(
        &mut script,
        "prerouting",
        "nat hook prerouting priority dstnat",
        &prerouting.0,
    );
    // `dstnat` names -100 only for prerouting; output takes the number.
    chain(
        &mut script,
        "output",
        "nat hook output priority -100",
        &output.0,
    );
    if !forward.0.is_empty() {
        let mut rules = vec!["ct state established,related accept".to_string()];
        rules.extend(forward.0);
        chain(
            &mut script,
            "forward",
            "filter hook forward priority filter",
            &rules,
        );
    }
    script.push_str("}\n");
    Ok(script)
}

fn chain(script: &mut String, name: &str, hook: &str, rules: &[String]) {
    if rules.is_empty() {
        return;
    }
    let _ = writeln!(script, "\tchain {name} {{\n\t\ttype {hook}; policy accept;");
    for rule in rules {
        let _ = writeln!(script, "\t\t{rule}");
    }
    script.push_str("\t}\n");
}

/// Rule lines in order, each once (owners may share a bridge).
#[derive(Default)]
struct Lines(Vec<String>);

impl Lines {
    fn push(&mut self, line: String) {
        if !self.0.contains(&line) {
            self.0.push(line);
        }
    }
}

/// The `nft` binary: from PATH, else where Debian installs it.
fn nft_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("nft"))
        .chain(["/usr/sbin/nft", "/sbin/nft"].map(PathBuf::from))
        .find(|candidate| candidate.is_file())
}

/// Applies `script` with `nft -f -` (one transaction), in the calling
/// thread's network namespace.
fn run_nft(script: &str) -> Result<(), String> {
    let nft = nft_binary().ok_or(NFT_NOT_INSTALLED)?;
    let mut child = Command::new(&nft)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running {}: {e}", nft.display()))?;
    let mut stdin = child.stdin.take().ok_or("nft has no stdin")?;
    let written = stdin.write_all(script.as_bytes());
    drop(stdin);
    let output = child
        .wait_with_output()
        .map_err(|e| format!("waiting for {}: {e}", nft.display()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!(
            "nft -f - failed ({}): {}",
            output.status,
            stderr.trim()
        ));
    }
    written.map_err(|e| format!("writing the script to nft: {e}"))
}

/// Turns on IPv4 forwarding in the calling thread's network namespace.
fn enable_ip_forward() -> std::io::Result<()> {
    if std::fs::read_to_string(IP_FORWARD)?.trim() == "1" {
        return Ok(());
    }
    std::fs::write(IP_FORWARD, "1\n")
}

#[cfg(test)]
#[path = "nft_tests.rs"]
mod tests;
