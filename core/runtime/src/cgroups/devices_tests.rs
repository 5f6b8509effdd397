//! Tests of device rules: validation, the v1 file format, and the generated BPF program checked
//! instruction by instruction and by running it in a tiny interpreter.

use super::*;
use oci_spec::runtime::LinuxDeviceCgroupBuilder;

fn rule(
    allow: bool,
    typ: LinuxDeviceType,
    major: i64,
    minor: i64,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .typ(typ)
        .access(access);
    if major >= 0 {
        b = b.major(major);
    }
    if minor >= 0 {
        b = b.minor(minor);
    }
    b.build().unwrap()
}

fn all(allow: bool) -> LinuxDeviceCgroup {
    LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .build()
        .unwrap()
}

/// Runs a device program the way the kernel would for one access request.
fn run(prog: &[Insn], kind: i32, major: u32, minor: u32, access: &str) -> u64 {
    let mut acc = 0u32;
    for c in access.chars() {
        acc |= match c {
            'm' => 1,
            'r' => 2,
            'w' => 4,
            _ => unreachable!(),
        };
    }
    let ctx = [(acc << 16) | kind as u32, major, minor];
    let mut r = [0u64; 11];
    let mut pc = 0usize;
    loop {
        let i = prog[pc];
        let (dst, src) = if cfg!(target_endian = "little") {
            ((i.regs & 0xf) as usize, (i.regs >> 4) as usize)
        } else {
            ((i.regs >> 4) as usize, (i.regs & 0xf) as usize)
        };
        pc += 1;
        let jump = |pc: usize| (pc as i64 + i64::from(i.off)) as usize;
        match i.code {
            op::LDX_W => {
                assert_eq!(src, 1, "only the context is read");
                r[dst] = u64::from(ctx[i.off as usize / 4]);
            }
            op::AND32_K => r[dst] = u64::from(r[dst] as u32 & i.imm as u32),
            op::RSH32_K => r[dst] = u64::from((r[dst] as u32) >> i.imm),
            op::MOV32_K => r[dst] = u64::from(i.imm as u32),
            op::MOV32_X => r[dst] = u64::from(r[src] as u32),
            op::JA => pc = jump(pc),
            op::JEQ_K if r[dst] == i.imm as i64 as u64 => pc = jump(pc),
            op::JNE_K if r[dst] != i.imm as i64 as u64 => pc = jump(pc),
            op::JEQ_K | op::JNE_K => {}
            op::EXIT => return r[0],
            c => panic!("unexpected opcode {c:#x}"),
        }
    }
}

fn compile(rules: &[LinuxDeviceCgroup]) -> Vec<Insn> {
    let (default_allow, rules) = normalize(rules).unwrap();
    program(default_allow, &rules)
}

#[test]
fn no_rules_denies_everything_in_two_instructions() {
    let p = compile(&[]);
    assert_eq!(
        p,
        vec![insn(op::MOV32_K, 0, 0, 0, 0), insn(op::EXIT, 0, 0, 0, 0)]
    );
    // A reset drops the rules before it.
    let p = compile(&[rule(true, LinuxDeviceType::C, 1, 3, "rwm"), all(false)]);
    assert_eq!(p.len(), 2);
    assert_eq!(compile(&[all(true)])[0].imm, 1);
}

#[test]
fn one_allow_rule_compiles_to_the_expected_instructions() {
    let p = compile(&[rule(true, LinuxDeviceType::C, 1, 3, "r")]);
    let i = insn;
    let want = vec![
        i(op::LDX_W, 2, 1, 0, 0),
        i(op::AND32_K, 2, 0, 0, 0xFFFF),
        i(op::LDX_W, 3, 1, 0, 0),
        i(op::RSH32_K, 3, 0, 0, 16),
        i(op::LDX_W, 4, 1, 4, 0),
        i(op::LDX_W, 5, 1, 8, 0),
        // mknod: no rule holds it, so a request for it is denied
        i(op::MOV32_X, 1, 3, 0, 0),
        i(op::AND32_K, 1, 0, 0, 1),
        i(op::JEQ_K, 1, 0, 2, 0),
        i(op::MOV32_K, 0, 0, 0, 0),
        i(op::EXIT, 0, 0, 0, 0),
        // read: c 1:3 allows it
        i(op::MOV32_X, 1, 3, 0, 0),
        i(op::AND32_K, 1, 0, 0, 2),
        i(op::JEQ_K, 1, 0, 6, 0),
        i(op::JNE_K, 2, 0, 3, DEV_CHAR),
        i(op::JNE_K, 4, 0, 2, 1),
        i(op::JNE_K, 5, 0, 1, 3),
        i(op::JA, 0, 0, 2, 0),
        i(op::MOV32_K, 0, 0, 0, 0),
        i(op::EXIT, 0, 0, 0, 0),
        // write: no rule
        i(op::MOV32_X, 1, 3, 0, 0),
        i(op::AND32_K, 1, 0, 0, 4),
        i(op::JEQ_K, 1, 0, 2, 0),
        i(op::MOV32_K, 0, 0, 0, 0),
        i(op::EXIT, 0, 0, 0, 0),
        i(op::MOV32_K, 0, 0, 0, 1),
        i(op::EXIT, 0, 0, 0, 0),
    ];
    assert_eq!(p, want);
    assert_eq!(run(&p, DEV_CHAR, 1, 3, "r"), 1);
    assert_eq!(run(&p, DEV_CHAR, 1, 3, "rw"), 0);
    assert_eq!(run(&p, DEV_CHAR, 1, 5, "r"), 0);
    assert_eq!(run(&p, DEV_BLOCK, 1, 3, "r"), 0);
}

#[test]
fn later_rules_win_per_access_bit() {
    let p = compile(&[
        rule(true, LinuxDeviceType::C, 1, 3, "rwm"),
        rule(false, LinuxDeviceType::C, 1, 3, "w"),
    ]);
    assert_eq!(run(&p, DEV_CHAR, 1, 3, "r"), 1);
    assert_eq!(run(&p, DEV_CHAR, 1, 3, "m"), 1);
    assert_eq!(run(&p, DEV_CHAR, 1, 3, "w"), 0);
    assert_eq!(run(&p, DEV_CHAR, 1, 3, "rw"), 0);

    let p = compile(&[
        rule(true, LinuxDeviceType::C, 1, 3, "r"),
        rule(false, LinuxDeviceType::C, 1, -1, "r"),
        rule(true, LinuxDeviceType::C, 1, 5, "r"),
    ]);
    assert_eq!(run(&p, DEV_CHAR, 1, 3, "r"), 0);
    assert_eq!(run(&p, DEV_CHAR, 1, 5, "r"), 1);
}

#[test]
fn allow_all_then_deny_one() {
    let p = compile(&[all(true), rule(false, LinuxDeviceType::C, 1, 3, "r")]);
    assert_eq!(run(&p, DEV_CHAR, 1, 3, "r"), 0);
    assert_eq!(run(&p, DEV_CHAR, 1, 3, "rw"), 0);
    assert_eq!(run(&p, DEV_CHAR, 1, 3, "w"), 1);
    assert_eq!(run(&p, DEV_CHAR, 1, 5, "rw"), 1);
    assert_eq!(run(&p, DEV_BLOCK, 8, 0, "rwm"), 1);
}

#[test]
fn wildcards_and_types() {
    let p = compile(&[
        rule(true, LinuxDeviceType::C, -1, -1, "m"),
        rule(true, LinuxDeviceType::B, 8, -1, "r"),
    ]);
    assert_eq!(run(&p, DEV_CHAR, 42, 7, "m"), 1);
    assert_eq!(run(&p, DEV_CHAR, 42, 7, "r"), 0);
    assert_eq!(run(&p, DEV_BLOCK, 8, 16, "r"), 1);
    assert_eq!(run(&p, DEV_BLOCK, 8, 16, "rw"), 0);
    assert_eq!(run(&p, DEV_BLOCK, 9, 0, "m"), 0);
}

#[test]
fn invalid_rules_are_refused_with_the_rule() {
    let err = normalize(&[rule(true, LinuxDeviceType::P, 1, 3, "r")]).unwrap_err();
    assert!(err.to_string().contains("p 1:3 r"), "{err}");
    assert!(normalize(&[rule(true, LinuxDeviceType::C, 1, 3, "rx")]).is_err());
    assert!(normalize(&[rule(true, LinuxDeviceType::C, 1 << 40, 3, "r")]).is_err());
}

#[test]
fn v1_denies_all_then_writes_rules_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    for f in ["devices.allow", "devices.deny"] {
        std::fs::write(tmp.path().join(f), "").unwrap();
    }
    apply_v1(tmp.path(), &[rule(true, LinuxDeviceType::C, 1, 3, "")]).unwrap();
    let read = |f: &str| std::fs::read_to_string(tmp.path().join(f)).unwrap();
    assert_eq!(read("devices.deny"), "a");
    assert_eq!(read("devices.allow"), "c 1:3 rwm");
    apply_v1(
        tmp.path(),
        &[all(true), rule(false, LinuxDeviceType::B, -1, -1, "mw")],
    )
    .unwrap();
    // One write per rule; a plain file shows a file's writes one after another.
    assert_eq!(read("devices.allow"), "a");
    assert_eq!(read("devices.deny"), "ab *:* wm");
}
