//! Plugins as a new user meets them: the default plugins were compiled when
//! berth was built, so a daemon on a fresh root compiles nothing — not at
//! start, not to load an image, not to run a container — and a restarted
//! daemon takes them from its cache; an external plugin from berth.toml is
//! compiled by a separate `berth plugin-compile`, once.

use berth_tests::daemon::{layout, macvlan_example, Daemon};
use berth_tests::ok;

/// `(plugin, origin)` of every `loaded plugin` line of the daemon's log
/// (`… loaded plugin plugin="storage-overlay" origin=Precompiled`).
fn loads(log: &str) -> Vec<(String, String)> {
    log.lines()
        .filter(|l| l.contains("loaded plugin"))
        .map(|l| {
            let field = |name: &str| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix(&format!("{name}=")))
                    .unwrap_or("?")
                    .trim_matches('"')
                    .to_string()
            };
            (field("plugin"), field("origin"))
        })
        .collect()
}

/// The compiled plugins in the cache (`*.cwasm`), and whether a temporary
/// file was left there.
fn cached(d: &Daemon) -> (usize, bool) {
    let names: Vec<String> = std::fs::read_dir(d.plugin_cache())
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    (
        names.iter().filter(|n| n.ends_with(".cwasm")).count(),
        names.iter().any(|n| n.starts_with('.')),
    )
}

#[test]
fn a_daemon_on_a_fresh_root_compiles_no_plugin() {
    let mut d = Daemon::start_fresh("");
    // Start: the storage driver and the default bridge's plugin. Then an
    // image loaded through the daemon (the archive fetcher): the busybox
    // layout as an OCI archive.
    let archive = tempfile::tempdir().unwrap();
    let tar = archive.path().join("busybox.tar");
    let mut ar = tar::Builder::new(std::fs::File::create(&tar).unwrap());
    ar.append_dir_all(".", layout().join("oci")).unwrap();
    ar.finish().unwrap();
    let out = ok(d.berth(&["load", "-i", &tar.to_string_lossy()]));
    let name = berth_tests::berth::loaded_name(&out);
    // On the default bridge: storage, network and runtime all used.
    assert_eq!(ok(d.berth(&["run", "--rm", &name, "echo", "hi"])), "hi");

    let log = d.log();
    let seen = loads(&log);
    for plugin in ["overlay", "bridge", "archive"] {
        assert!(
            seen.iter().any(|(p, o)| p == plugin && o == "Precompiled"),
            "{plugin} was not installed from berth's build: {seen:?}\n{log}"
        );
    }
    assert!(
        seen.iter().all(|(_, o)| o == "Precompiled" || o == "Cache"),
        "a plugin was compiled: {seen:?}\n{log}"
    );
    assert!(
        !log.contains("compiled in this process") && !log.contains("compiled by "),
        "{log}"
    );
    assert_eq!(
        cached(&d),
        (3, false),
        "the cache holds the three plugins used"
    );

    // Restarted on the same root: everything from the cache.
    d.restart();
    let log = d.log();
    let after: Vec<_> = loads(&log).into_iter().skip(seen.len()).collect();
    assert!(
        !after.is_empty(),
        "no plugin loaded after the restart:\n{log}"
    );
    assert!(
        after.iter().all(|(_, o)| o == "Cache"),
        "after the restart: {after:?}\n{log}"
    );
}

#[test]
fn an_external_plugin_is_compiled_once_by_a_separate_process() {
    let wasm = macvlan_example();
    let mut d = Daemon::start_fresh(&format!(
        "[plugin.macvlan]\nkind = \"network\"\nwasm = \"{}\"\nlink-prefixes = [\"mv\"]\npools = [\"10.99.0.0/16\"]\nmacvlan-parents = [\"par0\"]\n",
        wasm.display()
    ));
    d.netns().ip(&[
        "link", "add", "par0", "type", "veth", "peer", "name", "par1",
    ]);
    d.netns().ip(&["link", "set", "par0", "up"]);
    ok(d.berth(&[
        "network",
        "create",
        "-d",
        "macvlan",
        "--subnet",
        "10.99.0.0/24",
        "-o",
        "parent=par0",
        "lan",
    ]));
    let log = d.log();
    let compiled: Vec<&str> = log.lines().filter(|l| l.contains("compiled by ")).collect();
    assert_eq!(compiled.len(), 1, "{log}");
    assert!(
        compiled[0].contains("macvlan") && compiled[0].contains("berth"),
        "{}",
        compiled[0]
    );
    assert!(!log.contains("compiled in this process"), "{log}");
    assert!(
        loads(&log)
            .iter()
            .any(|(p, o)| p == "macvlan" && o == "Compiled"),
        "{log}"
    );
    let (n, tmp) = cached(&d);
    assert_eq!(
        (n, tmp),
        (3, false),
        "storage, bridge and macvlan compiled forms"
    );

    // The restarted daemon rebuilds the network from the cached plugin.
    d.restart();
    let log = d.log();
    assert_eq!(log.matches("compiled by ").count(), 1, "{log}");
    assert!(
        loads(&log)
            .iter()
            .any(|(p, o)| p == "macvlan" && o == "Cache"),
        "{log}"
    );
    ok(d.berth(&["network", "rm", "lan"]));
}

/// A storage plugin whose calls all block in the sandbox (the escape
/// fixture opening a FIFO it made, while its root holds `block-every-call`)
/// holds up neither the daemon's other requests nor its stop: the blocked
/// calls run off the runtime's workers and are interrupted at their deadline.
#[test]
fn plugin_calls_blocked_in_the_sandbox_hold_up_neither_the_api_nor_sigterm() {
    let wasm = berth_tests::daemon::host_fixture("escape");
    let config = format!(
        "storage-driver = \"escape\"\n[plugin.escape]\nkind = \"storage\"\nwasm = {:?}\ntimeout-secs = 30\n",
        wasm.to_string_lossy()
    );
    let mut d = Daemon::start_empty(&config);
    let root = d.root().join("plugins/escape");
    std::fs::write(root.join("block-every-call"), "").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("busybox.tar");
    berth_tests::cmd::host(
        "tar",
        &[
            "-cf",
            &tar.to_string_lossy(),
            "-C",
            &layout().join("oci").to_string_lossy(),
            ".",
        ],
    );
    let c = berth_tests::daemon::clients()[1].1;
    // More blocked calls than the daemon has worker threads (2).
    let mut loads: Vec<_> = (0..4)
        .map(|_| d.spawn_docker(c, &["load", "-i", &tar.to_string_lossy()]))
        .collect();
    berth_tests::poll::until(
        "the plugin to block on its FIFO",
        std::time::Duration::from_secs(60),
        || root.join("trap.fifo").exists(),
    );
    for _ in 0..3 {
        assert!(ok(d.docker(c, &["version", "--format", "{{.Server.Os}}"])) == "linux");
        d.docker(c, &["ps", "-a"]).assert_ok();
        d.docker(c, &["network", "ls"]).assert_ok();
    }
    assert!(
        loads.iter_mut().all(|l| !l.finished()),
        "the loads ended before the daemon was asked anything"
    );
    // SIGTERM while the calls are blocked: the daemon stops (and says so).
    d.terminate();
    for l in loads {
        assert!(l.wait().code != 0, "a load blocked by the plugin succeeded");
    }
}

/// The fetcher from berth.toml hoards header maps (host-side objects) in
/// every call, with a 64 MiB cap: each pull fails as out of memory, the
/// daemon stays small and answering while several run, and stops on
/// SIGTERM.
#[test]
fn host_side_objects_of_a_fetcher_count_against_its_memory_cap() {
    let wasm = berth_tests::daemon::host_fixture("fetch");
    let config = format!(
        "[plugin.registry]\nkind = \"fetcher\"\nwasm = {:?}\nmemory-limit-mib = 64\ntimeout-secs = 60\n",
        wasm.to_string_lossy()
    );
    let mut d = Daemon::start_with_config(&config);
    let c = berth_tests::daemon::clients()[1].1;
    let rss = |pid: u32| -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    let before = rss(d.pid());
    let mut pulls: Vec<_> = (0..3)
        .map(|i| d.spawn_docker(c, &["pull", &format!("127.0.0.1:5999/hoard-fields:{i}")]))
        .collect();
    assert_eq!(
        ok(d.docker(c, &["version", "--format", "{{.Server.Os}}"])),
        "linux"
    );
    d.docker(c, &["ps"]).assert_ok();
    let mut peak = 0;
    while !pulls.iter_mut().all(|p| p.finished()) {
        peak = peak.max(rss(d.pid()));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    for p in pulls {
        let out = p.wait();
        assert!(
            out.code != 0 && out.stderr.contains("memory"),
            "a hoarding pull: {out}"
        );
    }
    let grown = peak.saturating_sub(before);
    assert!(
        grown < 3 * 4 * (64 << 20),
        "the daemon grew by {grown} bytes for three calls capped at 64 MiB"
    );
    assert!(d.ping());
    d.terminate();
}
