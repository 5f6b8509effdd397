//! berth's default seccomp profile decides as docker's does where docker's
//! and the containers project's (Debian's golang-github-containers-common
//! `seccomp.json`, podman's) agree: the three profiles as the engines hand
//! them to the runtime (the bundles' config.json of a running container,
//! resolved for docker's default capabilities) are compiled to BPF and run
//! on every syscall number of this architecture with a few argument sets.
//! A profile file in docker's format is resolved by berth as dockerd
//! resolves it (the containers profile, through `--security-opt`).

use std::collections::BTreeMap;

use berth_tests::daemon::{clients, Daemon, IMAGE};
use berth_tests::dockerd::Dockerd;
use oci_spec::runtime::LinuxSeccomp;

const CONTAINERS_PROFILE: &str = "/usr/share/containers/seccomp.json";

/// Where berth's model, docker 28's default profile, is newer than both
/// Debian's dockerd (20.10) and containers-common (0.50), which agree
/// there: calls the kernel gained after those profiles were written (they
/// answer ENOSYS to calls newer than all they name) and that docker 28
/// names — allowed, or, for `set_mempolicy_home_node`, only with
/// CAP_SYS_NICE — and AF_VSOCK sockets, refused by docker since 23.0.
/// (call, first argument or any, berth's decision): checked as well.
const NEWER_IN_DOCKER_28: &[(&str, Option<u64>, Decision)] = &[
    ("cachestat", None, Decision::Allow),
    ("fchmodat2", None, Decision::Allow),
    ("futex_requeue", None, Decision::Allow),
    ("futex_wait", None, Decision::Allow),
    ("futex_wake", None, Decision::Allow),
    ("map_shadow_stack", None, Decision::Allow),
    (
        "set_mempolicy_home_node",
        None,
        Decision::Errno(libc::EPERM as u32),
    ),
    ("socket", Some(40), Decision::Errno(libc::EPERM as u32)),
];

/// What a filter answers to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Decision {
    Allow,
    Errno(u32),
    Other(u32),
}

/// Runs a classic BPF seccomp program on `data` (the kernel's
/// `struct seccomp_data`, native endian): the subset of BPF a filter may
/// use (the kernel's seccomp checker admits no more).
fn run_bpf(prog: &[libc::sock_filter], data: &[u8; 64]) -> u32 {
    let word = |off: u32| {
        let o = off as usize;
        u32::from_ne_bytes(
            data[o..o + 4]
                .try_into()
                .expect("aligned load in seccomp_data"),
        )
    };
    let (mut a, mut x, mut mem) = (0u32, 0u32, [0u32; 16]);
    let mut pc = 0usize;
    loop {
        let i = prog.get(pc).expect("the program ran off its end");
        pc += 1;
        let k = i.k;
        let jump = |cond: bool| if cond { i.jt as usize } else { i.jf as usize };
        match i.code {
            0x20 => a = word(k),            // ld [k]
            0x00 => a = k,                  // ld #k
            0x01 => x = k,                  // ldx #k
            0x60 => a = mem[k as usize],    // ld M[k]
            0x61 => x = mem[k as usize],    // ldx M[k]
            0x02 => mem[k as usize] = a,    // st M[k]
            0x03 => mem[k as usize] = x,    // stx M[k]
            0x04 => a = a.wrapping_add(k),  // add #k
            0x14 => a = a.wrapping_sub(k),  // sub #k
            0x44 => a |= k,                 // or #k
            0x54 => a &= k,                 // and #k
            0x64 => a = a.wrapping_shl(k),  // lsh #k
            0x74 => a = a.wrapping_shr(k),  // rsh #k
            0x84 => a = a.wrapping_neg(),   // neg
            0x07 => x = a,                  // tax
            0x87 => a = x,                  // txa
            0x05 => pc += k as usize,       // ja
            0x15 => pc += jump(a == k),     // jeq #k
            0x25 => pc += jump(a > k),      // jgt #k
            0x35 => pc += jump(a >= k),     // jge #k
            0x45 => pc += jump(a & k != 0), // jset #k
            0x1d => pc += jump(a == x),     // jeq x
            0x2d => pc += jump(a > x),      // jgt x
            0x3d => pc += jump(a >= x),     // jge x
            0x4d => pc += jump(a & x != 0), // jset x
            0x06 => return k,               // ret #k
            0x16 => return a,               // ret a
            op => panic!(
                "BPF instruction {op:#x} at {} is not in the interpreter",
                pc - 1
            ),
        }
    }
}

fn decision(ret: u32) -> Decision {
    match ret & 0xffff_0000 {
        0x7fff_0000 => Decision::Allow,
        0x0005_0000 => Decision::Errno(ret & 0xffff),
        other => Decision::Other(other),
    }
}

/// The kernel's AUDIT_ARCH_ of this machine.
fn audit_arch() -> u32 {
    match std::env::consts::ARCH {
        "x86_64" => 0xc000_003e,
        "aarch64" => 0xc000_00b7,
        other => panic!("no AUDIT_ARCH known for {other}: add it to this test"),
    }
}

/// Argument sets each call is tried with: none, namespace flags
/// (clone/unshare), AF_VSOCK, AF_NETLINK with NETLINK_AUDIT, personality's
/// values and a value no rule names.
const ARGS: &[[u64; 3]] = &[
    [0, 0, 0],
    [0x1000_0000, 0, 0],
    [0x4000_0000, 0, 0],
    [0x0002_0000, 0, 0],
    [40, 1, 0],
    [16, 3, 9],
    [8, 0, 0],
    [0xffff_ffff, 0, 0],
    [0x0bad_cafe, 0x0bad_cafe, 0x0bad_cafe],
];

/// What a profile decides for every (syscall number, argument set).
fn decisions(profile: &serde_json::Value) -> BTreeMap<(u32, usize), Decision> {
    let oci: LinuxSeccomp =
        serde_json::from_value(profile.clone()).expect("the bundle's seccomp is OCI's");
    let compiled = berth_runtime::seccomp::compile(&oci).expect("compiling the profile");
    let mut out = BTreeMap::new();
    for nr in 0..1024u32 {
        for (i, args) in ARGS.iter().enumerate() {
            let mut data = [0u8; 64];
            data[0..4].copy_from_slice(&nr.to_ne_bytes());
            data[4..8].copy_from_slice(&audit_arch().to_ne_bytes());
            for (j, v) in args.iter().enumerate() {
                data[16 + 8 * j..24 + 8 * j].copy_from_slice(&v.to_ne_bytes());
            }
            out.insert((nr, i), decision(run_bpf(&compiled.program, &data)));
        }
    }
    out
}

fn name(nr: u32) -> String {
    libseccomp::ScmpSyscall::from(nr as i32)
        .get_name()
        .unwrap_or_else(|_| format!("#{nr}"))
}

/// The seccomp section of a running container's spec.
fn seccomp_of(spec: &serde_json::Value, who: &str) -> serde_json::Value {
    let s = spec["linux"]["seccomp"].clone();
    assert!(
        s.is_object(),
        "{who}'s container has no seccomp profile: {spec}"
    );
    s
}

#[test]
fn berth_decides_as_docker_where_docker_and_the_containers_profile_agree() {
    assert!(
        std::path::Path::new(CONTAINERS_PROFILE).exists(),
        "{CONTAINERS_PROFILE} is missing: install golang-github-containers-common (.ci/run does)"
    );
    let d = Daemon::start();
    let reference = Dockerd::start();
    let c = clients()[1].1;
    reference.load_from(&d, IMAGE);
    let containers_file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(CONTAINERS_PROFILE).unwrap()).unwrap();
    let opt = format!("seccomp={CONTAINERS_PROFILE}");
    let mut profiles = BTreeMap::new();
    for (label, extra) in [("default", None), ("containers", Some(opt.as_str()))] {
        let mut args = vec!["run", "-d", "--network", "none"];
        if let Some(o) = extra {
            args.extend(["--security-opt", o]);
        }
        args.extend([IMAGE, "sleep", "300"]);
        let ours = berth_tests::ok(d.docker(c, &args));
        let theirs = berth_tests::ok(reference.docker(&args));
        let spec: serde_json::Value = serde_json::from_slice(
            &std::fs::read(d.root().join("containers").join(&ours).join("config.json"))
                .expect("berth's bundle config.json"),
        )
        .unwrap();
        profiles.insert(("berth", label), decisions(&seccomp_of(&spec, "berth")));
        let mut theirs_profile = seccomp_of(&reference.bundle_config(&theirs), "dockerd");
        if extra.is_some() && theirs_profile["defaultErrnoRet"].is_null() {
            // dockerd 20.10 drops the file's defaultErrnoRet (the field is
            // newer than it; docker 23 on passes it): put it back.
            theirs_profile["defaultErrnoRet"] = containers_file["defaultErrnoRet"].clone();
        }
        profiles.insert(("docker", label), decisions(&theirs_profile));
        d.docker(c, &["rm", "-f", &ours]).assert_ok();
        reference.docker(&["rm", "-f", &theirs]).assert_ok();
    }

    // Where docker's default and the containers profile agree, berth's
    // default decides the same.
    let (docker, containers) = (
        &profiles[&("docker", "default")],
        &profiles[&("docker", "containers")],
    );
    let berth = &profiles[&("berth", "default")];
    let mut agreed = 0;
    let mut differ = Vec::new();
    for (key, want) in docker {
        if containers[key] != *want {
            continue;
        }
        agreed += 1;
        let newer = NEWER_IN_DOCKER_28
            .iter()
            .find(|(call, arg, _)| name(key.0) == *call && arg.is_none_or(|a| a == ARGS[key.1][0]));
        let want = newer.map_or(want, |(_, _, d)| d);
        if berth[key] != *want {
            differ.push(format!(
                "{} with args {:x?}: berth should answer {:?}, it answers {:?}",
                name(key.0),
                ARGS[key.1],
                want,
                berth[key]
            ));
        }
    }
    assert!(
        agreed > 300 * ARGS.len(),
        "docker's and the containers profile agree on only {agreed} decisions: \
         did a bundle lose its profile?"
    );
    assert!(
        differ.is_empty(),
        "berth's default differs:\n{}",
        differ.join("\n")
    );
    // Spot checks of the table itself: the calls the issue names.
    for call in [
        "keyctl",
        "bpf",
        "unshare",
        "mount",
        "perf_event_open",
        "userfaultfd",
    ] {
        let nr = libseccomp::ScmpSyscall::from_name(call)
            .unwrap()
            .as_raw_syscall() as u32;
        assert_eq!(
            berth[&(nr, 0)],
            Decision::Errno(libc::EPERM as u32),
            "{call}"
        );
    }
    let read = libseccomp::ScmpSyscall::from_name("read")
        .unwrap()
        .as_raw_syscall() as u32;
    assert_eq!(berth[&(read, 0)], Decision::Allow);

    // The containers profile, given in docker's format, is resolved by
    // berth as dockerd resolves it.
    let ours = &profiles[&("berth", "containers")];
    let differ: Vec<String> = containers
        .iter()
        .filter(|(k, v)| ours[*k] != **v)
        .map(|(k, v)| {
            format!(
                "{} with args {:x?}: dockerd {v:?}, berth {:?}",
                name(k.0),
                ARGS[k.1],
                ours[k]
            )
        })
        .collect();
    assert!(
        differ.is_empty(),
        "berth resolves {CONTAINERS_PROFILE} otherwise than dockerd:\n{}",
        differ.join("\n")
    );
}
