//! Device access rules: OCI `linux.resources.devices` checked once, then written to the v1
//! `devices` controller or compiled into a BPF_PROG_TYPE_CGROUP_DEVICE program for a cgroup2
//! directory (pure v2, or the unified mount in hybrid mode).
//!
//! Semantics, identical on both paths: everything starts denied; rules apply in order; a rule of
//! type `a` (all devices) resets the default to its allow/deny and drops earlier rules; for each
//! access bit a request asks for (m, r, w) the last rule that matches the device and holds that
//! bit decides, and the request passes only if every bit is allowed.

use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::{bpf, CgroupError};

const ACC_MKNOD: u8 = 1;
const ACC_READ: u8 = 2;
const ACC_WRITE: u8 = 4;
const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;
/// `BPF_DEVCG_DEV_BLOCK` and `BPF_DEVCG_DEV_CHAR` from the kernel's uapi/linux/bpf.h.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

/// A validated device rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rule {
    allow: bool,
    /// `None` for type `a`; otherwise DEV_BLOCK or DEV_CHAR.
    kind: Option<i32>,
    major: Option<i32>,
    minor: Option<i32>,
    access: u8,
}

impl Rule {
    fn parse(d: &LinuxDeviceCgroup) -> Result<Rule, CgroupError> {
        let bad = |reason: &str| CgroupError::DeviceRule {
            rule: d.to_string(),
            reason: reason.to_string(),
        };
        let kind = match d.typ().unwrap_or_default() {
            LinuxDeviceType::A => None,
            LinuxDeviceType::B => Some(DEV_BLOCK),
            LinuxDeviceType::C => Some(DEV_CHAR),
            LinuxDeviceType::U | LinuxDeviceType::P => {
                return Err(bad("cgroups only control types a, b and c"))
            }
        };
        let number = |n: Option<i64>| match n {
            None => Ok(None),
            Some(n) if n < 0 => Ok(None),
            Some(n) => i32::try_from(n)
                .map(Some)
                .map_err(|_| bad("device number out of range")),
        };
        let mut access = 0;
        for c in d.access().as_deref().unwrap_or("").chars() {
            access |= match c {
                'm' => ACC_MKNOD,
                'r' => ACC_READ,
                'w' => ACC_WRITE,
                _ => return Err(bad("access must be made of r, w and m")),
            };
        }
        Ok(Rule {
            allow: d.allow(),
            kind,
            major: number(d.major())?,
            minor: number(d.minor())?,
            access: if access == 0 { ACC_ALL } else { access },
        })
    }

    /// The rule as the v1 `devices.allow`/`devices.deny` files take it.
    fn v1_line(&self) -> String {
        let num = |n: Option<i32>| n.map_or("*".to_string(), |n| n.to_string());
        let kind = match self.kind {
            // The kernel reads nothing after an `a`.
            None => return "a".to_string(),
            Some(DEV_BLOCK) => "b",
            Some(_) => "c",
        };
        let mut access = String::new();
        for (bit, c) in [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')] {
            if self.access & bit != 0 {
                access.push(c);
            }
        }
        format!("{kind} {}:{} {access}", num(self.major), num(self.minor))
    }
}

/// Validates every rule; returns the default verdict and the rules that follow the last reset.
pub(crate) fn normalize(rules: &[LinuxDeviceCgroup]) -> Result<(bool, Vec<Rule>), CgroupError> {
    let mut default_allow = false;
    let mut out = Vec::new();
    for d in rules {
        let rule = Rule::parse(d)?;
        if rule.kind.is_none() {
            default_allow = rule.allow;
            out.clear();
        } else {
            out.push(rule);
        }
    }
    Ok((default_allow, out))
}

/// Applies the rules to a v1 `devices` cgroup: deny everything, then each rule in order.
/// `devices.allow` and `devices.deny` are opened once each: the kernel takes
/// every write(2) as one rule.
pub(crate) fn apply_v1(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<(), CgroupError> {
    use std::io::Write;
    let parsed = rules
        .iter()
        .map(Rule::parse)
        .collect::<Result<Vec<_>, _>>()?;
    let open = |name: &str| -> Result<std::fs::File, CgroupError> {
        let path = dir.join(name);
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::NotFound => CgroupError::MissingFile {
                    setting: "devices".into(),
                    path,
                },
                _ => CgroupError::Write {
                    path,
                    value: String::new(),
                    source,
                },
            })
    };
    let (mut allow, mut deny) = (open("devices.allow")?, open("devices.deny")?);
    let lines = std::iter::once((false, "a".to_string()))
        .chain(parsed.iter().map(|r| (r.allow, r.v1_line())));
    for (is_allow, line) in lines {
        let (f, name) = if is_allow {
            (&mut allow, "devices.allow")
        } else {
            (&mut deny, "devices.deny")
        };
        tracing::trace!(file = name, line, "cgroup devices rule");
        f.write_all(line.as_bytes())
            .map_err(|source| CgroupError::Write {
                path: dir.join(name),
                value: line,
                source,
            })?;
    }
    Ok(())
}

/// Compiles the rules and attaches the program to the cgroup2 directory `dir`, replacing the
/// device programs attached there before. Works on a pure v2 host and on the unified mount of a
/// hybrid host.
pub fn attach_device_filter(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<(), CgroupError> {
    let (default_allow, rules) = normalize(rules)?;
    let prog = program(default_allow, &rules);
    bpf::replace_device_program(dir, &prog)
}

/// One eBPF instruction, laid out as the kernel's `struct bpf_insn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct Insn {
    /// Opcode.
    pub(crate) code: u8,
    /// Destination register in the low nibble, source register in the high nibble (x86 and
    /// other little-endian layouts; swapped on big-endian).
    pub(crate) regs: u8,
    /// Jump offset or memory offset.
    pub(crate) off: i16,
    /// Immediate operand.
    pub(crate) imm: i32,
}

pub(crate) mod op {
    pub(crate) const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
    pub(crate) const AND32_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
    pub(crate) const RSH32_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
    pub(crate) const MOV32_K: u8 = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
    pub(crate) const MOV32_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
    pub(crate) const JA: u8 = 0x05; // BPF_JMP | BPF_JA
    pub(crate) const JEQ_K: u8 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    pub(crate) const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
    pub(crate) const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    let regs = if cfg!(target_endian = "little") {
        dst | (src << 4)
    } else {
        (dst << 4) | src
    };
    Insn {
        code,
        regs,
        off,
        imm,
    }
}

/// A program under construction whose jumps name labels, resolved by `finish`.
#[derive(Default)]
struct Asm {
    insns: Vec<Insn>,
    /// (index of a jump instruction, label it targets)
    fixups: Vec<(usize, usize)>,
    labels: Vec<Option<usize>>,
}

impl Asm {
    fn push(&mut self, i: Insn) {
        self.insns.push(i);
    }
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }
    fn bind(&mut self, label: usize) {
        self.labels[label] = Some(self.insns.len());
    }
    fn jump(&mut self, code: u8, dst: u8, imm: i32, label: usize) {
        self.fixups.push((self.insns.len(), label));
        self.push(insn(code, dst, 0, 0, imm));
    }
    fn ret(&mut self, verdict: bool) {
        self.push(insn(op::MOV32_K, 0, 0, 0, i32::from(verdict)));
        self.push(insn(op::EXIT, 0, 0, 0, 0));
    }
    fn finish(mut self) -> Vec<Insn> {
        for (at, label) in self.fixups {
            let target = self.labels[label].expect("every label is bound");
            self.insns[at].off = (target - at - 1) as i16;
        }
        self.insns
    }
}

/// Builds the device-filter program (returns 1 to allow, 0 to deny). Registers after the
/// prologue: r2 = device type, r3 = requested access bits, r4 = major, r5 = minor (from the
/// kernel's `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`).
pub(crate) fn program(default_allow: bool, rules: &[Rule]) -> Vec<Insn> {
    let mut a = Asm::default();
    if rules.is_empty() {
        a.ret(default_allow);
        return a.finish();
    }
    a.push(insn(op::LDX_W, 2, 1, 0, 0));
    a.push(insn(op::AND32_K, 2, 0, 0, 0xFFFF));
    a.push(insn(op::LDX_W, 3, 1, 0, 0));
    a.push(insn(op::RSH32_K, 3, 0, 0, 16));
    a.push(insn(op::LDX_W, 4, 1, 4, 0));
    a.push(insn(op::LDX_W, 5, 1, 8, 0));
    for bit in [ACC_MKNOD, ACC_READ, ACC_WRITE] {
        let next_bit = a.label();
        // Skip this section when the request does not ask for `bit`.
        a.push(insn(op::MOV32_X, 1, 3, 0, 0));
        a.push(insn(op::AND32_K, 1, 0, 0, i32::from(bit)));
        a.jump(op::JEQ_K, 1, 0, next_bit);
        for rule in rules.iter().rev().filter(|r| r.access & bit != 0) {
            let next_rule = a.label();
            if let Some(kind) = rule.kind {
                a.jump(op::JNE_K, 2, kind, next_rule);
            }
            if let Some(major) = rule.major {
                a.jump(op::JNE_K, 4, major, next_rule);
            }
            if let Some(minor) = rule.minor {
                a.jump(op::JNE_K, 5, minor, next_rule);
            }
            if rule.allow {
                a.jump(op::JA, 0, 0, next_bit);
            } else {
                a.ret(false);
            }
            a.bind(next_rule);
        }
        if !default_allow {
            a.ret(false);
        }
        a.bind(next_bit);
    }
    a.ret(true);
    a.finish()
}

#[cfg(test)]
#[path = "devices_tests.rs"]
mod tests;
