//! A seccomp profile (OCI `linux.seccomp`) compiled to the classic BPF program the kernel runs
//! on every system call, in Rust: no C library at build or run time.
//!
//! The program means what libseccomp 2.5 made of the same profile (the C library runc and youki
//! use, and berth used), and is laid out alike:
//!
//! ```text
//! ld  arch                         which ABI is calling (seccomp_data.arch)
//! jeq AUDIT_ARCH_X86_64 → block    one test per architecture of the profile (x86-64 and x32
//! jeq AUDIT_ARCH_I386   → block    share one audit value; the 0x40000000 bit tells them apart)
//! ret KILL_THREAD                  any other ABI ("bad arch", libseccomp's default)
//! block:
//!   ld  nr
//!   [no x32 rules: nr >= 0x40000000 and nr != -1 → ret KILL_THREAD]
//!   jeq nr(read)  → ret ALLOW                  one test per system call with a rule
//!   jeq nr(clone) → compare arguments; ret ALLOW if they match, else the default
//!   ret default                                (ERRNO(EPERM) for berth's profile)
//! ```
//!
//! Rules, as libseccomp applies them:
//! - Names are resolved per architecture; a name an architecture does not have is skipped for
//!   it (so `mmap2` only exists in the i386 block, `arch_prctl` only in the x86-64 one).
//! - A rule whose action is the default is redundant and skipped.
//! - A rule's comparisons must all hold (AND); a rule that compares one argument twice is split
//!   into one rule per comparison (OR), as runc and libcontainer do.
//! - Rules with arguments are tried first, in profile order; a rule without arguments is the
//!   system call's fallback (so `socketcall` allowed outright stays allowed outright).
//! - On 64-bit ABIs an argument is compared as 64 bits (high word, then low word); on 32-bit
//!   ABIs (i386, x32) as its low 32 bits, the value truncated alike.
//! - `SCMP_CMP_MASKED_EQ` holds when `arg & value == valueTwo & value` (OCI and runc: `value`
//!   is the mask, `valueTwo` the datum). berth's libseccomp code passed them the other way
//!   round (as libcontainer 0.7 does), which libseccomp compiled to allowing every `clone`,
//!   namespace flags included; that one rule is the only verdict that differs from the old
//!   program, checked for every system call number below 1100 of x86-64, x32 and i386 with a
//!   range of first arguments.
//!
//! What libseccomp did and this does not: on i386 it also turned a rule on a socket call
//! (`socket`, `accept4`...) or SysV IPC call into a rule on the multiplexers `socketcall` and
//! `ipc` with the call number as first argument. berth's profile allows both multiplexers
//! outright, as Docker's does, so its program is unchanged; a profile that denied them would
//! differ. Filter flags (`SECCOMP_FILTER_FLAG_LOG`, `..._SPEC_ALLOW`) are arguments of the
//! `seccomp(2)` call, not part of a program (the old code dropped them silently): they are
//! refused.

use std::collections::{BTreeMap, HashMap};

use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};
use seccompiler::sock_filter;

/// The kernel's limit on a program's length (`BPF_MAXINSNS`).
pub const MAX_INSTRUCTIONS: usize = 4096;

/// Why a profile cannot be compiled.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// The profile asks for something berth's compiler does not do.
    #[error("cannot compile the seccomp profile: {0}")]
    Unsupported(String),
    /// The program would be longer than the kernel accepts.
    #[error(
        "the seccomp program would have {0} instructions, more than the kernel's {MAX_INSTRUCTIONS}"
    )]
    TooLong(usize),
}

// Classic BPF opcodes (linux/filter.h, linux/bpf_common.h): class | size/op | source.
const LD_W_ABS: u16 = 0x20; // BPF_LD (0) | BPF_W (0) | BPF_ABS (0x20)
const ALU_AND_K: u16 = 0x54; // BPF_ALU (4) | BPF_AND (0x50) | BPF_K (0)
const JMP_JA: u16 = 0x05; // BPF_JMP (5) | BPF_JA (0)
const JMP_JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ (0x10) | BPF_K
const JMP_JGT_K: u16 = 0x25; // BPF_JMP | BPF_JGT (0x20) | BPF_K
const JMP_JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE (0x30) | BPF_K
const RET_K: u16 = 0x06; // BPF_RET (6) | BPF_K

// Offsets in `struct seccomp_data` (linux/seccomp.h): nr, arch, instruction_pointer, args[6].
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;
const DATA_ARGS: u32 = 16;

/// Bit 30 of a system call number marks the x32 ABI on x86-64 (`__X32_SYSCALL_BIT`).
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

// `AUDIT_ARCH_*` (linux/audit.h): the ELF machine, | 0x80000000 for 64-bit, | 0x40000000 for
// little-endian.
/// `AUDIT_ARCH_X86_64`, also reported for x32 system calls.
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// `AUDIT_ARCH_I386`.
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;

/// The action for a system call from an architecture the profile does not list, and for an
/// x32 number when the profile has no x32 rules: libseccomp's default (`SCMP_ACT_KILL`).
const BAD_ARCH: u32 = libc::SECCOMP_RET_KILL_THREAD;

/// One system call ABI the compiler knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
enum Abi {
    X86_64,
    X32,
    I386,
    Aarch64,
}

impl Abi {
    fn from_profile(arch: Arch) -> Result<Abi, CompileError> {
        Ok(match arch {
            Arch::ScmpArchNative => Abi::native()?,
            Arch::ScmpArchX86_64 => Abi::X86_64,
            Arch::ScmpArchX32 => Abi::X32,
            Arch::ScmpArchX86 => Abi::I386,
            Arch::ScmpArchAarch64 => Abi::Aarch64,
            other => {
                return Err(CompileError::Unsupported(format!(
                    "the architecture {other:?} is not supported"
                )));
            }
        })
    }

    /// The ABI berth itself runs on, always filtered (libseccomp adds it to every filter).
    fn native() -> Result<Abi, CompileError> {
        if cfg!(all(target_arch = "x86_64", target_pointer_width = "64")) {
            Ok(Abi::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Ok(Abi::Aarch64)
        } else {
            Err(CompileError::Unsupported(
                "berth filters system calls on x86-64 and aarch64 hosts".into(),
            ))
        }
    }

    fn audit_arch(self) -> u32 {
        match self {
            Abi::X86_64 | Abi::X32 => AUDIT_ARCH_X86_64,
            Abi::I386 => AUDIT_ARCH_I386,
            Abi::Aarch64 => AUDIT_ARCH_AARCH64,
        }
    }

    /// Whether arguments are 64 bits wide (x32 passes 32-bit values, as libseccomp treats it).
    fn wide(self) -> bool {
        !matches!(self, Abi::X32 | Abi::I386)
    }

    /// The system call numbers of this ABI by name: the kernel's tables as the `syscalls`
    /// crate packages them; x32's derived from x86-64's (see [`X32_OWN`]).
    fn table(self) -> HashMap<&'static str, u32> {
        fn table(calls: impl Iterator<Item = (&'static str, i32)>) -> HashMap<&'static str, u32> {
            calls
                .filter_map(|(name, nr)| Some((name, u32::try_from(nr).ok()?)))
                .collect()
        }
        use syscalls::{aarch64, x86, x86_64};
        match self {
            Abi::X86_64 => table(x86_64::Sysno::iter().map(|s| (s.name(), s.id()))),
            Abi::I386 => table(x86::Sysno::iter().map(|s| (s.name(), s.id()))),
            Abi::Aarch64 => table(aarch64::Sysno::iter().map(|s| (s.name(), s.id()))),
            Abi::X32 => {
                let mut table = Abi::X86_64.table();
                table.retain(|name, _| !X32_OWN.contains(name) && !X32_NONE.contains(name));
                for nr in table.values_mut() {
                    *nr |= X32_SYSCALL_BIT;
                }
                table.extend(
                    (512..)
                        .zip(X32_OWN)
                        .map(|(nr, name)| (name, X32_SYSCALL_BIT | nr)),
                );
                table
            }
        }
    }
}

/// x32 runs x86-64's system calls under x86-64's numbers with bit 30 set, except these, whose
/// arguments point to structures laid out differently for 32-bit pointers: they have numbers
/// of their own from 512 on, in this order (ABI "x32" in the kernel's
/// `arch/x86/entry/syscalls/syscall_64.tbl`); their x86-64 numbers are not x32 calls.
const X32_OWN: [&str; 36] = [
    "rt_sigaction",
    "rt_sigreturn",
    "ioctl",
    "readv",
    "writev",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "execve",
    "ptrace",
    "rt_sigpending",
    "rt_sigtimedwait",
    "rt_sigqueueinfo",
    "sigaltstack",
    "timer_create",
    "mq_notify",
    "kexec_load",
    "waitid",
    "set_robust_list",
    "get_robust_list",
    "vmsplice",
    "move_pages",
    "preadv",
    "pwritev",
    "rt_tgsigqueueinfo",
    "recvmmsg",
    "sendmmsg",
    "process_vm_readv",
    "process_vm_writev",
    "setsockopt",
    "getsockopt",
    "io_setup",
    "io_submit",
    "execveat",
    "preadv2",
    "pwritev2",
];

/// x86-64 calls that x32 does not have at all (ABI "64" without an x32 twin) among those
/// Docker's profile names; for any other such name the kernel answers `ENOSYS` on x32 anyway.
const X32_NONE: [&str; 5] = [
    "epoll_ctl_old",
    "epoll_wait_old",
    "get_thread_area",
    "set_thread_area",
    "map_shadow_stack",
];

/// One comparison of a system call argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
enum Compare {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    MaskedEq(u64),
}

/// `args[index] <op> value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
struct Condition {
    index: u32,
    op: Compare,
    value: u64,
}

/// A rule of one system call: its action when every condition holds.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
struct Arm {
    conditions: Vec<Condition>,
    action: u32,
}

/// A profile resolved to system call numbers: what the program is made of, and what the
/// per-host cache is keyed by (a change of the syscall tables changes the key too).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Resolved {
    default: u32,
    /// The rules of each architecture, by audit arch value.
    blocks: BTreeMap<u32, Block>,
}

/// The ABIs behind one audit arch value and their rules by system call number.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
struct Block {
    abis: Vec<Abi>,
    syscalls: BTreeMap<u32, Syscall>,
}

/// The rules of one system call, and whether its ABI has 64-bit arguments.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
struct Syscall {
    wide: bool,
    arms: Vec<Arm>,
}

/// Resolves the names of `profile` on each of its architectures (and the native one).
pub fn resolve(profile: &LinuxSeccomp) -> Result<Resolved, CompileError> {
    if let Some(flag) = profile.flags().iter().flatten().next() {
        return Err(CompileError::Unsupported(format!(
            "the filter flag {flag:?} is not supported"
        )));
    }
    let default = action(profile.default_action(), profile.default_errno_ret())?;
    let mut abis = vec![Abi::native()?];
    for arch in profile.architectures().iter().flatten() {
        let abi = Abi::from_profile(*arch)?;
        if !abis.contains(&abi) {
            abis.push(abi);
        }
    }
    let mut blocks: BTreeMap<u32, Block> = BTreeMap::new();
    for abi in &abis {
        blocks.entry(abi.audit_arch()).or_default().abis.push(*abi);
    }
    let tables: Vec<(Abi, HashMap<&str, u32>)> = abis.iter().map(|a| (*a, a.table())).collect();
    for rule in profile.syscalls().iter().flatten() {
        let rule_action = action(rule.action(), rule.errno_ret())?;
        if rule_action == default {
            continue;
        }
        let conditions: Vec<Condition> = rule
            .args()
            .iter()
            .flatten()
            .map(|a| Condition {
                index: a.index() as u32,
                op: match a.op() {
                    LinuxSeccompOperator::ScmpCmpNe => Compare::Ne,
                    LinuxSeccompOperator::ScmpCmpLt => Compare::Lt,
                    LinuxSeccompOperator::ScmpCmpLe => Compare::Le,
                    LinuxSeccompOperator::ScmpCmpEq => Compare::Eq,
                    LinuxSeccompOperator::ScmpCmpGe => Compare::Ge,
                    LinuxSeccompOperator::ScmpCmpGt => Compare::Gt,
                    // The mask is `value`, the datum `valueTwo` (runc's reading of the spec).
                    LinuxSeccompOperator::ScmpCmpMaskedEq => Compare::MaskedEq(a.value()),
                },
                value: match a.op() {
                    LinuxSeccompOperator::ScmpCmpMaskedEq => a.value_two().unwrap_or(0),
                    _ => a.value(),
                },
            })
            .collect();
        if let Some(c) = conditions.iter().find(|c| c.index > 5) {
            return Err(CompileError::Unsupported(format!(
                "argument {} does not exist (system calls have 6)",
                c.index
            )));
        }
        let mut indexes: Vec<u32> = conditions.iter().map(|c| c.index).collect();
        indexes.sort_unstable();
        let arms: Vec<Arm> = if indexes.windows(2).any(|w| w[0] == w[1]) {
            conditions
                .iter()
                .map(|c| Arm {
                    conditions: vec![*c],
                    action: rule_action,
                })
                .collect()
        } else {
            vec![Arm {
                conditions,
                action: rule_action,
            }]
        };
        for name in rule.names() {
            for (abi, table) in &tables {
                let Some(&nr) = table.get(name.as_str()) else {
                    continue;
                };
                let block = blocks.entry(abi.audit_arch()).or_default();
                block
                    .syscalls
                    .entry(nr)
                    .or_insert_with(|| Syscall {
                        wide: abi.wide(),
                        arms: Vec::new(),
                    })
                    .arms
                    .extend(arms.iter().cloned());
            }
        }
    }
    Ok(Resolved { default, blocks })
}

/// The program for a resolved profile.
pub fn emit(resolved: &Resolved) -> Result<Vec<sock_filter>, CompileError> {
    let bodies = resolved
        .blocks
        .values()
        .map(|b| block(b, resolved.default))
        .collect::<Result<Vec<_>, _>>()?;
    // Dispatch: `jeq arch, 0, 1; ja block` per architecture, then the bad-arch return.
    let dispatch_len = 2 * bodies.len() + 2;
    let mut program = vec![stmt(LD_W_ABS, DATA_ARCH)];
    let mut start = dispatch_len;
    for (i, (audit, body)) in resolved.blocks.keys().zip(&bodies).enumerate() {
        let ja_at = 2 + 2 * i;
        program.push(jump(JMP_JEQ_K, *audit, 0, 1));
        program.push(stmt(JMP_JA, offset(start - ja_at - 1)?));
        start += body.len();
    }
    program.push(stmt(RET_K, BAD_ARCH));
    for body in bodies {
        program.extend(body);
    }
    if program.len() > MAX_INSTRUCTIONS {
        return Err(CompileError::TooLong(program.len()));
    }
    Ok(program)
}

/// Resolves and emits `profile`.
pub fn compile(profile: &LinuxSeccomp) -> Result<Vec<sock_filter>, CompileError> {
    emit(&resolve(profile)?)
}

fn block(block: &Block, default: u32) -> Result<Vec<sock_filter>, CompileError> {
    let mut out = vec![stmt(LD_W_ABS, DATA_NR)];
    let x86_64 = block.abis.contains(&Abi::X86_64);
    let x32 = block.abis.contains(&Abi::X32);
    // x86-64 and x32 share AUDIT_ARCH_X86_64. Numbers of the ABI the profile does not list
    // are a bad arch (-1, a system call a tracer skipped, falls through to the default).
    if x86_64 != x32 {
        let (jt, jf) = if x86_64 { (0, 2) } else { (2, 0) };
        out.push(jump(JMP_JGE_K, X32_SYSCALL_BIT, jt, jf));
        out.push(jump(JMP_JEQ_K, u32::MAX, 1, 0));
        out.push(stmt(RET_K, BAD_ARCH));
    }
    for (nr, syscall) in &block.syscalls {
        let body = syscall_body(syscall, default)?;
        match u8::try_from(body.len()) {
            Ok(skip) => out.push(jump(JMP_JEQ_K, *nr, 0, skip)),
            Err(_) => {
                out.push(jump(JMP_JEQ_K, *nr, 1, 0));
                out.push(stmt(JMP_JA, offset(body.len())?));
            }
        }
        out.extend(body);
    }
    out.push(stmt(RET_K, default));
    Ok(out)
}

/// The rules of one system call: arms with conditions in order (a failed condition goes to
/// the next arm), then the first unconditional arm's action, or the default.
fn syscall_body(syscall: &Syscall, default: u32) -> Result<Vec<sock_filter>, CompileError> {
    let mut out = Vec::new();
    for arm in syscall.arms.iter().filter(|a| !a.conditions.is_empty()) {
        let checks: Vec<Vec<Step>> = arm
            .conditions
            .iter()
            .map(|c| condition(c, syscall.wide))
            .collect();
        let mut rest: usize = checks.iter().map(Vec::len).sum::<usize>() + 1;
        for steps in &checks {
            rest -= steps.len();
            out.extend(resolve_steps(steps, rest)?);
        }
        out.push(stmt(RET_K, arm.action));
    }
    let fallback = syscall
        .arms
        .iter()
        .find(|a| a.conditions.is_empty())
        .map_or(default, |a| a.action);
    out.push(stmt(RET_K, fallback));
    Ok(out)
}

/// Where a step of a comparison goes: on (the next step), past the comparison (it holds), or
/// to the next arm (it fails).
#[derive(Clone, Copy)]
enum To {
    Next,
    Holds,
    Fails,
}

enum Step {
    Load(u32),
    And(u32),
    Jump(u16, u32, To, To),
}

/// The steps testing one condition; `wide` compares 64 bits as libseccomp does, high word
/// first (an unsigned order: the high words decide unless equal).
fn condition(c: &Condition, wide: bool) -> Vec<Step> {
    use Step::{And, Jump, Load};
    use To::{Fails, Holds, Next};
    let lo_at = DATA_ARGS + 8 * c.index;
    // seccomp_data holds arguments in the host's byte order.
    let (lo_at, hi_at) = if cfg!(target_endian = "little") {
        (lo_at, lo_at + 4)
    } else {
        (lo_at + 4, lo_at)
    };
    let (value, mask) = match c.op {
        Compare::MaskedEq(mask) => (c.value & mask, mask),
        _ => (c.value, u64::MAX),
    };
    let (hi, lo) = ((value >> 32) as u32, value as u32);
    let (mask_hi, mask_lo) = ((mask >> 32) as u32, mask as u32);
    if !wide {
        return match c.op {
            Compare::Eq => vec![Load(lo_at), Jump(JMP_JEQ_K, lo, Next, Fails)],
            Compare::Ne => vec![Load(lo_at), Jump(JMP_JEQ_K, lo, Fails, Next)],
            Compare::Gt => vec![Load(lo_at), Jump(JMP_JGT_K, lo, Next, Fails)],
            Compare::Ge => vec![Load(lo_at), Jump(JMP_JGE_K, lo, Next, Fails)],
            Compare::Lt => vec![Load(lo_at), Jump(JMP_JGE_K, lo, Fails, Next)],
            Compare::Le => vec![Load(lo_at), Jump(JMP_JGT_K, lo, Fails, Next)],
            Compare::MaskedEq(_) => {
                vec![Load(lo_at), And(mask_lo), Jump(JMP_JEQ_K, lo, Next, Fails)]
            }
        };
    }
    match c.op {
        Compare::Eq => vec![
            Load(hi_at),
            Jump(JMP_JEQ_K, hi, Next, Fails),
            Load(lo_at),
            Jump(JMP_JEQ_K, lo, Next, Fails),
        ],
        Compare::Ne => vec![
            Load(hi_at),
            Jump(JMP_JEQ_K, hi, Next, Holds),
            Load(lo_at),
            Jump(JMP_JEQ_K, lo, Fails, Next),
        ],
        Compare::MaskedEq(_) => vec![
            Load(hi_at),
            And(mask_hi),
            Jump(JMP_JEQ_K, hi, Next, Fails),
            Load(lo_at),
            And(mask_lo),
            Jump(JMP_JEQ_K, lo, Next, Fails),
        ],
        // Greater: high words greater, or equal and low words greater.
        Compare::Gt | Compare::Ge => vec![
            Load(hi_at),
            Jump(JMP_JGT_K, hi, Holds, Next),
            Jump(JMP_JEQ_K, hi, Next, Fails),
            Load(lo_at),
            Jump(
                if c.op == Compare::Gt {
                    JMP_JGT_K
                } else {
                    JMP_JGE_K
                },
                lo,
                Next,
                Fails,
            ),
        ],
        // Less: not greater-or-equal (Lt), not greater (Le).
        Compare::Lt | Compare::Le => vec![
            Load(hi_at),
            Jump(JMP_JGT_K, hi, Fails, Next),
            Jump(JMP_JEQ_K, hi, Next, Holds),
            Load(lo_at),
            Jump(
                if c.op == Compare::Lt {
                    JMP_JGE_K
                } else {
                    JMP_JGT_K
                },
                lo,
                Fails,
                Next,
            ),
        ],
    }
}

/// Turns steps into instructions; `rest` is how many instructions follow the comparison up to
/// and including its arm's `ret` (a failed comparison lands just past that `ret`).
fn resolve_steps(steps: &[Step], rest: usize) -> Result<Vec<sock_filter>, CompileError> {
    let len = steps.len();
    let target = |at: usize, to: To| -> Result<u8, CompileError> {
        let skip = match to {
            To::Next => 0,
            To::Holds => len - at - 1,
            To::Fails => len - at - 1 + rest,
        };
        u8::try_from(skip).map_err(|_| {
            CompileError::Unsupported("a rule has too many argument comparisons".into())
        })
    };
    steps
        .iter()
        .enumerate()
        .map(|(at, step)| {
            Ok(match *step {
                Step::Load(offset) => stmt(LD_W_ABS, offset),
                Step::And(mask) => stmt(ALU_AND_K, mask),
                Step::Jump(code, k, t, f) => jump(code, k, target(at, t)?, target(at, f)?),
            })
        })
        .collect()
}

fn action(action: LinuxSeccompAction, errno: Option<u32>) -> Result<u32, CompileError> {
    let data = errno.unwrap_or(libc::EPERM as u32) & libc::SECCOMP_RET_DATA;
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            libc::SECCOMP_RET_KILL_THREAD
        }
        LinuxSeccompAction::ScmpActKillProcess => libc::SECCOMP_RET_KILL_PROCESS,
        LinuxSeccompAction::ScmpActTrap => libc::SECCOMP_RET_TRAP,
        LinuxSeccompAction::ScmpActErrno => libc::SECCOMP_RET_ERRNO | data,
        LinuxSeccompAction::ScmpActTrace => libc::SECCOMP_RET_TRACE | data,
        LinuxSeccompAction::ScmpActAllow => libc::SECCOMP_RET_ALLOW,
        LinuxSeccompAction::ScmpActLog => libc::SECCOMP_RET_LOG,
        LinuxSeccompAction::ScmpActNotify => {
            // A notify rule needs a supervisor holding the listener; berth has none.
            return Err(CompileError::Unsupported(
                "SCMP_ACT_NOTIFY is not supported".into(),
            ));
        }
    })
}

fn offset(n: usize) -> Result<u32, CompileError> {
    u32::try_from(n).map_err(|_| CompileError::TooLong(n))
}

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
    const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    const ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    const KILL: u32 = libc::SECCOMP_RET_KILL_THREAD;

    /// The kernel's reading of a program, for one system call.
    fn run(program: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_ne_bytes());
        data[4..8].copy_from_slice(&arch.to_ne_bytes());
        for (i, arg) in args.iter().enumerate() {
            let at = DATA_ARGS as usize + 8 * i;
            data[at..at + 8].copy_from_slice(&arg.to_ne_bytes());
        }
        let (mut a, mut pc) = (0u32, 0usize);
        loop {
            let i = &program[pc];
            pc += 1;
            let branch = |taken: bool| usize::from(if taken { i.jt } else { i.jf });
            match i.code {
                LD_W_ABS => {
                    let at = i.k as usize;
                    a = u32::from_ne_bytes(data[at..at + 4].try_into().expect("word"));
                }
                ALU_AND_K => a &= i.k,
                JMP_JA => pc += i.k as usize,
                JMP_JEQ_K => pc += branch(a == i.k),
                JMP_JGT_K => pc += branch(a > i.k),
                JMP_JGE_K => pc += branch(a >= i.k),
                RET_K => return i.k,
                other => panic!("unexpected opcode {other:#x} at {}", pc - 1),
            }
        }
    }

    fn default_program() -> Vec<sock_filter> {
        compile(&crate::seccomp::default_profile()).expect("compile")
    }

    fn profile(json: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(json).expect("profile")
    }

    fn nr(n: libc::c_long) -> u32 {
        n as u32
    }

    #[test]
    fn x86_64_calls_follow_the_profile() {
        let p = default_program();
        let call = |n, a0| run(&p, AUDIT_ARCH_X86_64, nr(n), [a0, 0, 0, 0, 0, 0]);
        assert!(p.len() <= MAX_INSTRUCTIONS, "{}", p.len());
        assert_eq!(call(libc::SYS_read, 0), ALLOW);
        assert_eq!(call(libc::SYS_arch_prctl, 0), ALLOW);
        for denied in [
            libc::SYS_mount,
            libc::SYS_unshare,
            libc::SYS_setns,
            libc::SYS_bpf,
            libc::SYS_reboot,
            libc::SYS_kexec_load,
            // Past the end of the table.
            1000,
        ] {
            assert_eq!(call(denied, 0), EPERM, "{denied}");
        }
        assert_eq!(call(libc::SYS_clone3, 0), ENOSYS);
        let sigchld = libc::SIGCHLD as u64;
        let thread =
            (libc::CLONE_VM | libc::CLONE_FS | libc::CLONE_FILES | libc::CLONE_THREAD) as u64;
        assert_eq!(call(libc::SYS_clone, sigchld), ALLOW);
        assert_eq!(call(libc::SYS_clone, thread), ALLOW);
        for flag in [
            libc::CLONE_NEWNS,
            libc::CLONE_NEWUTS,
            libc::CLONE_NEWIPC,
            libc::CLONE_NEWUSER,
            libc::CLONE_NEWPID,
            libc::CLONE_NEWNET,
            libc::CLONE_NEWCGROUP,
        ] {
            assert_eq!(
                call(libc::SYS_clone, flag as u64 | sigchld),
                EPERM,
                "{flag:#x}"
            );
        }
        for persona in [0, 0x8, 0x20000, 0x20008, 0xffff_ffff] {
            assert_eq!(call(libc::SYS_personality, persona), ALLOW, "{persona:#x}");
        }
        for persona in [0x4_0000, 0x1_0000_0008, 0xffff_ffff_ffff_ffff] {
            assert_eq!(call(libc::SYS_personality, persona), EPERM, "{persona:#x}");
        }
        assert_eq!(call(libc::SYS_socket, libc::AF_INET as u64), ALLOW);
        assert_eq!(call(libc::SYS_socket, libc::AF_VSOCK as u64), EPERM);
    }

    #[test]
    fn i386_calls_use_i386_numbers_and_32_bit_arguments() {
        let p = default_program();
        let call = |n: u32, a0| run(&p, AUDIT_ARCH_I386, n, [a0, 0, 0, 0, 0, 0]);
        // From the kernel's arch/x86/entry/syscalls/syscall_32.tbl.
        let (mmap2, socketcall, clone, socket, personality, mount, clone3) =
            (192, 102, 120, 359, 136, 21, 435);
        assert_eq!(call(mmap2, 0), ALLOW);
        assert_eq!(call(socketcall, 1), ALLOW);
        assert_eq!(call(mount, 0), EPERM);
        assert_eq!(call(clone3, 0), ENOSYS);
        assert_eq!(call(clone, libc::SIGCHLD as u64), ALLOW);
        assert_eq!(call(clone, libc::CLONE_NEWUSER as u64), EPERM);
        assert_eq!(call(socket, libc::AF_VSOCK as u64), EPERM);
        assert_eq!(call(socket, libc::AF_UNIX as u64), ALLOW);
        assert_eq!(call(personality, 0xffff_ffff), ALLOW);
        assert_eq!(call(personality, 0x4_0000), EPERM);
        // 158 is arch_prctl on x86-64 and sched_yield on i386.
        assert_eq!(call(158, 0), ALLOW, "sched_yield");
    }

    #[test]
    fn x32_numbers_follow_the_profile_only_when_it_lists_x32() {
        let p = default_program();
        let call = |n: u32| run(&p, AUDIT_ARCH_X86_64, n, [0; 6]);
        let x32 = |n: libc::c_long| X32_SYSCALL_BIT | nr(n);
        assert_eq!(call(x32(libc::SYS_getpid)), ALLOW);
        // x32's own rt_sigaction (512), not x86-64's (13).
        assert_eq!(call(X32_SYSCALL_BIT | 512), ALLOW);
        assert_eq!(call(x32(libc::SYS_mount)), EPERM);
        assert_eq!(call(X32_SYSCALL_BIT | 1000), EPERM);

        let mut json = serde_json::to_value(crate::seccomp::default_profile()).expect("json");
        json["architectures"] = serde_json::json!(["SCMP_ARCH_X86_64"]);
        let p = compile(&profile(json)).expect("compile");
        let call = |n: u32| run(&p, AUDIT_ARCH_X86_64, n, [0; 6]);
        assert_eq!(call(nr(libc::SYS_getpid)), ALLOW);
        assert_eq!(call(x32(libc::SYS_getpid)), KILL);
        assert_eq!(call(x32(libc::SYS_mount)), KILL);
        // -1: a call a tracer skipped, not an x32 one.
        assert_eq!(call(u32::MAX), EPERM);
        assert_eq!(
            run(&p, AUDIT_ARCH_I386, 20, [0; 6]),
            KILL,
            "i386 not listed"
        );
    }

    #[test]
    fn other_architectures_are_killed() {
        let p = default_program();
        // aarch64, arm, none.
        for arch in [AUDIT_ARCH_AARCH64, 0x4000_0028, 0] {
            assert_eq!(run(&p, arch, 0, [0; 6]), KILL, "{arch:#x}");
        }
    }

    /// Every operator against the plain meaning of its comparison, around the boundaries of
    /// both words, on a 64-bit and a 32-bit ABI.
    #[test]
    fn comparisons_mean_what_they_say() {
        let value: u64 = 0x0000_0005_8000_0000;
        let probes = [
            0,
            1,
            value - 1,
            value,
            value + 1,
            0x0000_0004_ffff_ffff,
            0x0000_0006_0000_0000,
            0x0000_0005_0000_0000,
            0x8000_0000,
            0x8000_0001,
            0x7fff_ffff,
            u64::MAX,
        ];
        let ops = [
            ("SCMP_CMP_EQ", 0u64),
            ("SCMP_CMP_NE", 0),
            ("SCMP_CMP_LT", 0),
            ("SCMP_CMP_LE", 0),
            ("SCMP_CMP_GT", 0),
            ("SCMP_CMP_GE", 0),
            ("SCMP_CMP_MASKED_EQ", 0x0000_0001_8000_0000),
        ];
        for (op, datum) in ops {
            let p = compile(&profile(serde_json::json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
                "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW",
                              "args": [{"index": 3, "value": value, "valueTwo": datum, "op": op}]}]
            })))
            .expect("compile");
            for (arch, getpid, wide) in
                [(AUDIT_ARCH_X86_64, 39, true), (AUDIT_ARCH_I386, 20, false)]
            {
                for arg in probes {
                    let (a, v, d) = if wide {
                        (arg, value, datum)
                    } else {
                        (arg & 0xffff_ffff, value & 0xffff_ffff, datum & 0xffff_ffff)
                    };
                    let holds = match op {
                        "SCMP_CMP_EQ" => a == v,
                        "SCMP_CMP_NE" => a != v,
                        "SCMP_CMP_LT" => a < v,
                        "SCMP_CMP_LE" => a <= v,
                        "SCMP_CMP_GT" => a > v,
                        "SCMP_CMP_GE" => a >= v,
                        _ => a & v == d & v,
                    };
                    let got = run(&p, arch, getpid, [0, 0, 0, arg, 0, 0]);
                    assert_eq!(
                        got == ALLOW,
                        holds,
                        "{op} arg {arg:#x} value {value:#x} datum {datum:#x} wide {wide}"
                    );
                }
            }
        }
    }

    #[test]
    fn conditional_rules_come_before_the_unconditional_one() {
        let p = compile(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5,
                 "args": [{"index": 0, "value": 7, "op": "SCMP_CMP_EQ"}]},
                // One argument compared twice: either comparison allows.
                {"names": ["getppid"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                          {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]},
                // Two arguments: both must hold.
                {"names": ["gettid"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                          {"index": 1, "value": 2, "op": "SCMP_CMP_EQ"}]},
                // The default action again: redundant, skipped.
                {"names": ["getuid"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["no_such_call"], "action": "SCMP_ACT_ALLOW"}
            ]
        })))
        .expect("compile");
        let call = |n, a0, a1| run(&p, AUDIT_ARCH_X86_64, nr(n), [a0, a1, 0, 0, 0, 0]);
        assert_eq!(call(libc::SYS_getpid, 7, 0), libc::SECCOMP_RET_ERRNO | 5);
        assert_eq!(call(libc::SYS_getpid, 8, 0), ALLOW);
        assert_eq!(call(libc::SYS_getppid, 1, 0), ALLOW);
        assert_eq!(call(libc::SYS_getppid, 2, 0), ALLOW);
        assert_eq!(call(libc::SYS_getppid, 3, 0), EPERM);
        assert_eq!(call(libc::SYS_gettid, 1, 2), ALLOW);
        assert_eq!(call(libc::SYS_gettid, 1, 3), EPERM);
        assert_eq!(call(libc::SYS_getuid, 0, 0), EPERM);
    }

    #[test]
    fn unsupported_profiles_are_refused() {
        for (key, value, message) in [
            (
                "defaultAction",
                serde_json::json!("SCMP_ACT_NOTIFY"),
                "NOTIFY",
            ),
            (
                "flags",
                serde_json::json!(["SECCOMP_FILTER_FLAG_LOG"]),
                "flag",
            ),
            (
                "architectures",
                serde_json::json!(["SCMP_ARCH_ARM"]),
                "architecture",
            ),
        ] {
            let mut json = serde_json::to_value(crate::seccomp::default_profile()).expect("json");
            json[key] = value;
            let e = compile(&profile(json)).expect_err(key);
            assert!(e.to_string().contains(message), "{e}");
        }
    }
}
