//! A real distribution image end to end: Debian bookworm minbase (built once
//! by tests/images/debian.sh with debootstrap + umoci; .ci/run builds it
//! before the tests), pushed to a local registry, pulled and run with both
//! storage drivers. Thousands of files, hard links, setuid binaries, group
//! ownership and a real package database must all come through.

use std::path::PathBuf;

use berth_tests::{Berth, Registry};

fn debian_layout() -> PathBuf {
    let cache = std::env::var_os("BERTH_DEBIAN_IMAGE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/berth-debian"));
    let layout = cache.join("oci");
    if !layout.join("index.json").exists() {
        panic!(
            "the Debian test image is missing at {}: run `bash tests/images/debian.sh` first (.ci/run does)",
            layout.display()
        );
    }
    layout
}

fn run(b: &Berth, image: &str, script: &str) -> String {
    let out = b.cmd(&["run", "--rm", image, "sh", "-c", script]);
    out.assert_ok();
    out.stdout
}

#[test]
fn a_debian_image_pulls_and_runs_with_both_drivers() {
    let layout = debian_layout();
    let reg = Registry::start();
    reg.push_layout(&layout, "latest", "debian", None);
    let image_latest = format!("{}/debian", reg.addr);
    for driver in ["overlay", "vfs"] {
        let b = Berth::new(&format!("storage-driver = \"{driver}\"\n"));
        b.cmd(&["pull", "-q", &image_latest]).assert_ok();

        let os = run(&b, &image_latest, "cat /etc/os-release");
        assert!(os.contains("bookworm"), "{driver}: {os}");

        // Under the default seccomp filter, ordinary tools work.
        let filtered = run(
            &b,
            &image_latest,
            "grep '^Seccomp:' /proc/self/status | tr -d ' \\t'; apt-get --version | head -n 1",
        );
        let lines: Vec<&str> = filtered.lines().collect();
        assert_eq!(lines.first(), Some(&"Seccomp:2"), "{driver}: {filtered}");
        assert!(
            lines.get(1).is_some_and(|l| l.starts_with("apt ")),
            "{driver}: {filtered}"
        );

        // setuid root binaries, group-owned directories, hard links.
        let meta = run(
            &b,
            &image_latest,
            "stat -c '%a %U' /usr/bin/passwd; stat -c '%G' /var/mail; \
             stat -c '%h %i' /usr/bin/perl /usr/bin/perl5.36.0",
        );
        let lines: Vec<&str> = meta.lines().collect();
        assert_eq!(lines.first(), Some(&"4755 root"), "{driver}: {meta}");
        assert_eq!(lines.get(1), Some(&"mail"), "{driver}: {meta}");
        // perl5.36.0 is a hard link to perl in the layer: one inode, two names.
        assert!(
            lines.len() == 4 && lines[2] == lines[3] && lines[2].starts_with("2 "),
            "{driver}: perl and perl5.36.0 should be one inode with two links: {meta}"
        );

        // The package database is whole: dpkg reads every package's lists.
        let pkgs = run(
            &b,
            &image_latest,
            "dpkg-query -W -f '${Package}\\n' | wc -l",
        );
        let n: usize = pkgs.trim().parse().unwrap_or(0);
        assert!(n > 50, "{driver}: only {n} packages listed: {pkgs}");
        let verify = b.cmd(&[
            "run",
            "--rm",
            &image_latest,
            "dpkg",
            "--verify",
            "coreutils",
            "bash",
        ]);
        verify.assert_ok();
        assert!(
            verify.stdout.trim().is_empty(),
            "{driver}: files differ from the package database:\n{verify}"
        );

        // A container's writes stay in its own layer.
        run(
            &b,
            &image_latest,
            "echo changed > /etc/motd; rm /usr/bin/yes",
        );
        let after = run(
            &b,
            &image_latest,
            "cat /etc/motd; test -x /usr/bin/yes && echo yes-ok",
        );
        assert!(!after.contains("changed"), "{driver}: {after}");
        assert!(after.contains("yes-ok"), "{driver}: {after}");
    }
}
