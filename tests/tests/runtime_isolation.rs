//! Namespaces and the filesystem view: pid, uts, net (new and joined),
//! user, masked/read-only paths, read-only root, config mounts, sysctl.

use berth_tests::{require_path, Bundle, Container, NetNs, Runtime};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

#[test]
fn process_is_pid1_and_sees_only_its_own_processes() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("echo $$; ps");
    let c = Container::new(&rt, b);
    let out = c.run();
    out.assert_ok();
    let lines = out.lines();
    assert_eq!(lines[0], "1", "container init is not PID 1: {out}");
    let rows: Vec<&str> = lines[2..].to_vec();
    assert!(
        rows.len() <= 2,
        "ps shows processes beyond sh and ps: {out}"
    );
    assert!(
        rows.iter().any(|r| r.starts_with("1 ")),
        "ps does not show PID 1: {out}"
    );
    c.assert_no_leaks();
}

#[test]
fn hostname_is_set_and_host_hostname_unchanged() {
    let rt = Runtime::new();
    let before = nix::unistd::gethostname().expect("host hostname");
    let mut b = Bundle::new();
    let name = format!("box-{}", std::process::id());
    b.hostname(&name)
        .sh("hostname; cat /proc/sys/kernel/hostname");
    let c = Container::new(&rt, b);
    let out = c.run();
    out.assert_ok();
    assert_eq!(out.lines(), [name.as_str(), name.as_str()], "{out}");
    assert_eq!(
        nix::unistd::gethostname().expect("host hostname"),
        before,
        "host hostname changed"
    );
    c.assert_no_leaks();
}

#[test]
fn new_network_namespace_has_only_lo() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("ls /sys/class/net; echo ---; ip -o link");
    let c = Container::new(&rt, b);
    let out = c.run();
    out.assert_ok();
    let (sys, links) = out.stdout.split_once("---").expect("separator");
    assert_eq!(sys.split_whitespace().collect::<Vec<_>>(), ["lo"], "{out}");
    let names: Vec<&str> = links
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(str::trim)
        .collect();
    assert_eq!(names, ["lo"], "{out}");
    c.assert_no_leaks();
}

#[test]
fn host_files_are_not_reachable() {
    let rt = Runtime::new();
    let host_dir = tempfile::tempdir().expect("temp dir");
    let marker_name = format!("berth-marker-{}", std::process::id());
    let marker = host_dir.path().join(&marker_name);
    fs::write(&marker, "secret").expect("write marker");
    let mut b = Bundle::new();
    b.sh(&format!(
        "test -e {m} && echo visible || echo hidden; find / -xdev -name {marker_name}; echo end",
        m = marker.display()
    ));
    let c = Container::new(&rt, b);
    let out = c.run();
    out.assert_ok();
    assert_eq!(out.lines(), ["hidden", "end"], "host file reachable: {out}");
    c.assert_no_leaks();
}

#[test]
fn masked_paths_are_empty_and_readonly_paths_read_only() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    // Check every masked path this kernel has; at least one must have content on the host.
    let masked: Vec<String> = b.config()["linux"]["maskedPaths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .filter(|p| std::path::Path::new(p).exists())
        .collect();
    let host_has_content = masked.iter().any(|p| match fs::read_dir(p) {
        Ok(mut d) => d.next().is_some(),
        Err(_) => fs::read(p).map(|c| !c.is_empty()).unwrap_or(false),
    });
    assert!(
        host_has_content,
        "no masked path has content on this host: {masked:?}"
    );
    let mut script = String::new();
    for p in &masked {
        script += &format!(
            "if [ -d {p} ]; then echo {p}=$(ls -A {p} | wc -l); else echo {p}=$(cat {p} | wc -c); fi; "
        );
    }
    script += "echo x > /proc/sys/kernel/domainname 2>/dev/null && echo sys=writable || echo sys=denied; \
               grep -q '^[0-9]* [0-9]* [^ ]* [^ ]* /proc/sys [^ ]*ro' /proc/self/mountinfo && echo sysmount=ro";
    b.sh(&script);
    let c = Container::new(&rt, b);
    let out = c.run();
    out.assert_ok();
    let mut want: Vec<String> = masked.iter().map(|p| format!("{p}=0")).collect();
    want.extend(["sys=denied".to_string(), "sysmount=ro".to_string()]);
    assert_eq!(out.lines(), want, "{out}");
    c.assert_no_leaks();
}

#[test]
fn readonly_root_rejects_writes() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.readonly_root(true).sh("touch /newfile; echo rc=$?");
    let c = Container::new(&rt, b);
    let out = c.run();
    out.assert_ok();
    assert_eq!(out.lines(), ["rc=1"], "{out}");
    assert!(out.stderr.contains("Read-only file system"), "{out}");
    assert!(!c.bundle().rootfs().join("newfile").exists());
    c.assert_no_leaks();
}

#[test]
fn config_mounts_bind_rw_bind_ro_and_tmpfs() {
    let rt = Runtime::new();
    let rw = tempfile::tempdir().expect("temp dir");
    let ro = tempfile::tempdir().expect("temp dir");
    fs::write(rw.path().join("in.txt"), "from-host-rw\n").unwrap();
    fs::write(ro.path().join("in.txt"), "from-host-ro\n").unwrap();
    let mut b = Bundle::new();
    b.bind(rw.path(), "/mnt/rw", false)
        .bind(ro.path(), "/mnt/ro", true)
        .mount(
            "/scratch",
            "tmpfs",
            "tmpfs",
            &["nosuid", "nodev", "size=1m"],
        )
        .sh(
            "cat /mnt/rw/in.txt; echo from-container > /mnt/rw/out.txt; cat /mnt/ro/in.txt; \
             echo x > /mnt/ro/x 2>/dev/null && echo ro=writable || echo ro=denied; \
             grep -q ' /scratch .* - tmpfs ' /proc/self/mountinfo && echo scratch=tmpfs; \
             echo s > /scratch/f && cat /scratch/f",
        );
    let c = Container::new(&rt, b);
    let out = c.run();
    out.assert_ok();
    assert_eq!(
        out.lines(),
        [
            "from-host-rw",
            "from-host-ro",
            "ro=denied",
            "scratch=tmpfs",
            "s"
        ],
        "{out}"
    );
    assert_eq!(
        fs::read_to_string(rw.path().join("out.txt")).unwrap(),
        "from-container\n"
    );
    assert!(!ro.path().join("x").exists());
    assert!(
        !c.bundle().rootfs().join("scratch/f").exists(),
        "tmpfs write reached the rootfs"
    );
    c.assert_no_leaks();
}

#[test]
fn sysctl_applies_inside_the_network_namespace_only() {
    let rt = Runtime::new();
    let path = "/proc/sys/net/ipv4/ip_forward";
    let host_before = fs::read_to_string(path).unwrap().trim().to_string();
    let want = if host_before == "0" { "1" } else { "0" };
    let mut b = Bundle::new();
    b.sysctl("net.ipv4.ip_forward", want)
        .sh(&format!("cat {path}"));
    let c = Container::new(&rt, b);
    let out = c.run();
    out.assert_ok();
    assert_eq!(out.lines(), [want], "{out}");
    assert_eq!(
        fs::read_to_string(path).unwrap().trim(),
        host_before,
        "host sysctl changed"
    );
    c.assert_no_leaks();
}

#[test]
fn joins_an_existing_network_namespace_by_path() {
    let rt = Runtime::new();
    let ns = NetNs::new();
    ns.ip(&[
        "link", "add", "bt-veth0", "type", "veth", "peer", "name", "bt-veth1",
    ]);
    let ino = fs::metadata(ns.path()).expect("netns file").ino();
    let mut b = Bundle::new();
    b.namespace("network", Some(&ns.path()))
        .sh("readlink /proc/self/ns/net; ls /sys/class/net");
    let c = Container::new(&rt, b);
    let out = c.run();
    out.assert_ok();
    let lines = out.lines();
    assert_eq!(lines[0], format!("net:[{ino}]"), "{out}");
    assert!(lines[1..].contains(&"bt-veth0"), "{out}");
    c.assert_no_leaks();
    ns.ip(&["link", "show", "bt-veth0"]);
}

#[test]
fn user_namespace_maps_container_root_to_host_100000() {
    require_path("/proc/self/ns/user", "user namespaces");
    let rt = Runtime::new();
    let data = tempfile::tempdir().expect("temp dir");
    fs::set_permissions(data.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let mut b = Bundle::new();
    // The mapped root cannot create mount points in a rootfs owned by host root.
    fs::create_dir(b.rootfs().join("data")).unwrap();
    b.user_namespace(100000, 65536)
        .bind(data.path(), "/data", false)
        .sh("id -u; id -g; cat /proc/self/uid_map; touch /data/f");
    let c = Container::new(&rt, b);
    let out = c.run();
    out.assert_ok();
    let lines = out.lines();
    assert_eq!(lines[..2], ["0", "0"], "{out}");
    let map: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(map, ["0", "100000", "65536"], "{out}");
    let meta = fs::metadata(data.path().join("f")).expect("file created in the bind mount");
    assert_eq!(
        (meta.uid(), meta.gid()),
        (100000, 100000),
        "owner on the host"
    );
    c.assert_no_leaks();
}
