//! The seccomp profile compiled to a BPF program once per host, and loaded by the container's
//! init process as its last step before `execve`.
//!
//! libcontainer compiles `linux.seccomp` with libseccomp inside the init process of every
//! container, which was about a quarter of `berth run`'s CPU time. berth compiles the profile
//! with the same library once, keeps the program under `ROOT/seccomp/`, named by a hash of
//! everything the compilation depends on (the profile, the libseccomp version, the kernel), and
//! leaves `linux.seccomp` out of the spec handed to libcontainer. The [`SeccompExecutor`] loads
//! the program where libcontainer would have: after capabilities are dropped and the working
//! directory is entered, right before the command is executed. A program that cannot be loaded
//! fails the start; the container never runs unconfined.

use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
    ScmpVersion,
};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator, Spec,
};
use seccompiler::sock_filter;
use sha2::{Digest, Sha256};

/// The kernel's limit on a seccomp program's length (`BPF_MAXINSNS`).
const MAX_INSTRUCTIONS: usize = 4096;
/// The size of one `struct sock_filter`.
const INSTRUCTION_SIZE: usize = 8;

/// Why a profile could not be turned into a program.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// libseccomp refused the profile.
    #[error("cannot compile the seccomp profile: {0}")]
    Compile(String),
    /// The cache directory or file could not be used.
    #[error("cannot store the compiled seccomp profile in {path}: {source}")]
    Cache {
        /// The file or directory.
        path: String,
        /// The cause.
        source: io::Error,
    },
}

/// A compiled seccomp program, cheap to clone into the container's init process.
#[derive(Clone, Debug)]
pub struct Filter {
    program: Arc<Vec<sock_filter>>,
}

impl Filter {
    /// The number of BPF instructions.
    pub fn len(&self) -> usize {
        self.program.len()
    }

    /// Whether the program is empty (never true for a compiled profile).
    pub fn is_empty(&self) -> bool {
        self.program.is_empty()
    }
}

/// The program for `profile`: read from `cache_dir` when it was compiled before on this host,
/// compiled with libseccomp (and stored there) otherwise.
pub fn load_or_compile(cache_dir: &Path, profile: &LinuxSeccomp) -> Result<Filter, FilterError> {
    let path = cache_dir.join(format!("{}.bpf", cache_key(profile)?));
    if let Ok(bytes) = fs::read(&path)
        && let Some(program) = parse(&bytes)
    {
        return Ok(Filter {
            program: Arc::new(program),
        });
    }
    let bytes = compile(profile)?;
    let program = parse(&bytes).ok_or_else(|| {
        FilterError::Compile(format!(
            "libseccomp produced {} bytes, not a program of 1 to {MAX_INSTRUCTIONS} instructions",
            bytes.len()
        ))
    })?;
    store(cache_dir, &path, &bytes)?;
    Ok(Filter {
        program: Arc::new(program),
    })
}

/// Everything the compiled program depends on, hashed: the profile, the libseccomp version
/// (its code generation) and the kernel release (libseccomp probes the kernel's API level).
fn cache_key(profile: &LinuxSeccomp) -> Result<String, FilterError> {
    let json = serde_json::to_vec(profile).map_err(|e| FilterError::Compile(e.to_string()))?;
    let version = ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .map_err(|e| FilterError::Compile(e.to_string()))?;
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut hash = Sha256::new();
    for part in [&json[..], version.as_bytes(), kernel.trim().as_bytes()] {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part);
    }
    Ok(hex::encode(hash.finalize()))
}

/// Writes the program atomically: a reader sees the whole program or none.
fn store(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), FilterError> {
    let cache_err = |p: &Path| {
        let path = p.display().to_string();
        move |source| FilterError::Cache { path, source }
    };
    fs::create_dir_all(dir).map_err(cache_err(dir))?;
    let tmp = dir.join(format!(".{}.{}", std::process::id(), random_suffix()));
    let write = || -> io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        cache_err(path)(e)
    })
}

fn random_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(0u8)
}

/// Splits libseccomp's output into instructions (native byte order, as the kernel reads them).
fn parse(bytes: &[u8]) -> Option<Vec<sock_filter>> {
    if bytes.is_empty()
        || !bytes.len().is_multiple_of(INSTRUCTION_SIZE)
        || bytes.len() / INSTRUCTION_SIZE > MAX_INSTRUCTIONS
    {
        return None;
    }
    Some(
        bytes
            .chunks_exact(INSTRUCTION_SIZE)
            .map(|i| sock_filter {
                code: u16::from_ne_bytes([i[0], i[1]]),
                jt: i[2],
                jf: i[3],
                k: u32::from_ne_bytes([i[4], i[5], i[6], i[7]]),
            })
            .collect(),
    )
}

/// Compiles `profile` as libcontainer would: the same actions, architectures, flags and
/// argument rules; names this libseccomp does not know are skipped, rules with the default
/// action are redundant and skipped too.
fn compile(profile: &LinuxSeccomp) -> Result<Vec<u8>, FilterError> {
    let err = |e: libseccomp::error::SeccompError| FilterError::Compile(e.to_string());
    let default = action(profile.default_action(), profile.default_errno_ret())?;
    let mut ctx = ScmpFilterContext::new(default).map_err(err)?;
    for flag in profile.flags().iter().flatten() {
        match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => ctx.set_ctl_log(true),
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => ctx.set_ctl_ssb(true),
            other => {
                return Err(FilterError::Compile(format!(
                    "the filter flag {other:?} is not supported"
                )));
            }
        }
        .map_err(err)?;
    }
    for arch in profile.architectures().iter().flatten() {
        ctx.add_arch(scmp_arch(*arch)?).map_err(err)?;
    }
    for rule in profile.syscalls().iter().flatten() {
        let rule_action = action(rule.action(), rule.errno_ret())?;
        if rule_action == default {
            continue;
        }
        let comparators: Vec<ScmpArgCompare> = rule
            .args()
            .iter()
            .flatten()
            .map(|a| ScmpArgCompare::new(a.index() as u32, op(a.op(), a.value_two()), a.value()))
            .collect();
        let mut indexes: Vec<u32> = rule
            .args()
            .iter()
            .flatten()
            .map(|a| a.index() as u32)
            .collect();
        indexes.sort_unstable();
        let repeated = indexes.windows(2).any(|w| w[0] == w[1]);
        for name in rule.names() {
            let Ok(syscall) = ScmpSyscall::from_name(name) else {
                continue;
            };
            if comparators.is_empty() {
                ctx.add_rule(rule_action, syscall).map_err(err)?;
            } else if repeated {
                // One argument compared twice: libseccomp wants one rule per comparison (runc
                // and libcontainer do the same).
                for c in &comparators {
                    ctx.add_rule_conditional(rule_action, syscall, std::slice::from_ref(c))
                        .map_err(err)?;
                }
            } else {
                ctx.add_rule_conditional(rule_action, syscall, &comparators)
                    .map_err(err)?;
            }
        }
    }
    let mut out = tempfile_in_memory()?;
    ctx.export_bpf(&out).map_err(err)?;
    read_back(&mut out)
}

/// An anonymous file for libseccomp to write the program into (it only writes to a descriptor
/// in the version Debian ships).
fn tempfile_in_memory() -> Result<fs::File, FilterError> {
    let fd = rustix::fs::memfd_create("berth-seccomp", rustix::fs::MemfdFlags::CLOEXEC).map_err(
        |e| FilterError::Cache {
            path: "memfd".into(),
            source: e.into(),
        },
    )?;
    Ok(fs::File::from(fd))
}

fn read_back(f: &mut fs::File) -> Result<Vec<u8>, FilterError> {
    use std::io::{Read, Seek, SeekFrom};
    let mut bytes = Vec::new();
    f.seek(SeekFrom::Start(0))
        .and_then(|_| f.read_to_end(&mut bytes))
        .map_err(|source| FilterError::Cache {
            path: "memfd".into(),
            source,
        })?;
    Ok(bytes)
}

fn action(action: LinuxSeccompAction, errno: Option<u32>) -> Result<ScmpAction, FilterError> {
    let errno = errno.map(|e| e as i32).unwrap_or(libc::EPERM);
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(errno as u16),
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActNotify => {
            // A notify rule needs a supervisor holding the listener; berth has none.
            return Err(FilterError::Compile(
                "SCMP_ACT_NOTIFY is not supported".into(),
            ));
        }
    })
}

fn op(op: LinuxSeccompOperator, value_two: Option<u64>) -> ScmpCompareOp {
    match op {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(value_two.unwrap_or(0)),
    }
}

fn scmp_arch(arch: Arch) -> Result<ScmpArch, FilterError> {
    Ok(match arch {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        other => {
            return Err(FilterError::Compile(format!(
                "the architecture {other:?} is not supported"
            )));
        }
    })
}

/// Runs the container's command after loading the seccomp program (if any); otherwise
/// libcontainer's own executor (`execvp` with the spec's `PATH`).
#[derive(Clone, Debug)]
pub struct SeccompExecutor {
    filter: Option<Filter>,
}

impl SeccompExecutor {
    /// An executor loading `filter` before the command runs.
    pub fn new(filter: Option<Filter>) -> SeccompExecutor {
        SeccompExecutor { filter }
    }
}

impl Executor for SeccompExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        if let Some(filter) = &self.filter {
            seccompiler::apply_filter(&filter.program).map_err(|e| {
                ExecutorError::Other(format!("cannot load the seccomp profile: {e}"))
            })?;
        }
        DefaultExecutor {}.exec(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        DefaultExecutor {}.validate(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_profile_compiles_once_and_is_read_back_from_the_cache() {
        let dir = tempfile::tempdir().expect("dir");
        let profile = crate::seccomp::default_profile();
        let first = load_or_compile(dir.path(), &profile).expect("compile");
        assert!(
            first.len() > 100 && first.len() <= MAX_INSTRUCTIONS,
            "{}",
            first.len()
        );
        let files: Vec<_> = fs::read_dir(dir.path()).expect("ls").flatten().collect();
        assert_eq!(files.len(), 1, "one program, no temporary files left");
        let cached = fs::read(files[0].path()).expect("read");
        assert_eq!(cached.len(), first.len() * INSTRUCTION_SIZE);
        let second = load_or_compile(dir.path(), &profile).expect("cached");
        assert_eq!(second.program, first.program);
    }

    #[test]
    fn a_damaged_cache_file_is_replaced_not_loaded() {
        let dir = tempfile::tempdir().expect("dir");
        let profile = crate::seccomp::default_profile();
        let good = load_or_compile(dir.path(), &profile).expect("compile");
        let path = dir
            .path()
            .join(format!("{}.bpf", cache_key(&profile).expect("key")));
        fs::write(&path, b"truncated").expect("damage");
        let again = load_or_compile(dir.path(), &profile).expect("recompile");
        assert_eq!(again.program, good.program);
        assert_eq!(
            fs::read(&path).expect("read").len(),
            good.len() * INSTRUCTION_SIZE
        );
    }

    #[test]
    fn a_different_profile_gets_a_different_program() {
        let dir = tempfile::tempdir().expect("dir");
        let profile = crate::seccomp::default_profile();
        let mut json = serde_json::to_value(&profile).expect("json");
        json["defaultAction"] = "SCMP_ACT_KILL_PROCESS".into();
        let other: LinuxSeccomp = serde_json::from_value(json).expect("profile");
        assert_ne!(cache_key(&profile).unwrap(), cache_key(&other).unwrap());
        let a = load_or_compile(dir.path(), &profile).expect("a");
        let b = load_or_compile(dir.path(), &other).expect("b");
        assert_ne!(a.program, b.program);
    }

    #[test]
    fn programs_are_split_into_whole_instructions_within_the_kernel_limit() {
        assert!(parse(&[]).is_none());
        assert!(parse(&[0; 12]).is_none());
        assert!(parse(&vec![0; (MAX_INSTRUCTIONS + 1) * INSTRUCTION_SIZE]).is_none());
        let one = parse(&[0x06, 0x00, 1, 2, 0x00, 0x00, 0xff, 0x7f]).expect("one");
        assert_eq!(
            one,
            vec![sock_filter {
                code: 0x0006,
                jt: 1,
                jf: 2,
                k: 0x7fff_0000
            }]
        );
    }

    #[test]
    fn notify_rules_are_refused() {
        let mut json = serde_json::to_value(crate::seccomp::default_profile()).expect("json");
        json["syscalls"][0]["action"] = "SCMP_ACT_NOTIFY".into();
        let profile: LinuxSeccomp = serde_json::from_value(json).expect("profile");
        let dir = tempfile::tempdir().expect("dir");
        let e = load_or_compile(dir.path(), &profile).expect_err("notify");
        assert!(e.to_string().contains("NOTIFY"), "{e}");
    }
}
