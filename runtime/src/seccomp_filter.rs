//! The seccomp profile compiled to a BPF program once per host, and loaded by the container's
//! init process as its last step before `execve`.
//!
//! libcontainer would compile `linux.seccomp` inside the init process of every container (with
//! libseccomp, a C library berth no longer needs). berth compiles the profile itself
//! ([`crate::seccomp_bpf`], pure Rust) once, keeps the program under `ROOT/seccomp/`, named by a
//! hash of everything the program depends on (the profile resolved to this build's system call
//! numbers, and the compiler's format), and leaves `linux.seccomp` out of the spec handed to
//! libcontainer. The [`SeccompExecutor`] loads the program where libcontainer would have: after
//! capabilities are dropped and the working directory is entered, right before the command is
//! executed. A program that cannot be loaded fails the start; the container never runs
//! unconfined.

use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use oci_spec::runtime::{LinuxSeccomp, Spec};
use seccompiler::sock_filter;
use sha2::{Digest, Sha256};

use crate::seccomp_bpf::{self, CompileError, MAX_INSTRUCTIONS};

/// The size of one `struct sock_filter`.
const INSTRUCTION_SIZE: usize = 8;

/// Changes whenever the compiler emits a different program for the same resolved profile, so
/// that programs cached by an older berth are not loaded.
const CODEGEN: &str = "berth-seccomp-bpf/1";

/// Why a profile could not be turned into a program.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// The profile cannot be compiled.
    #[error(transparent)]
    Compile(#[from] CompileError),
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
    /// A program as it is.
    pub(crate) fn new(program: Vec<sock_filter>) -> Filter {
        Filter {
            program: Arc::new(program),
        }
    }

    /// The number of BPF instructions.
    pub fn len(&self) -> usize {
        self.program.len()
    }

    /// Whether the program is empty (never true for a compiled profile).
    pub fn is_empty(&self) -> bool {
        self.program.is_empty()
    }

    /// Loads the program into the calling thread (after setting `no_new_privs`); it stays
    /// through `execve` and is inherited by every process the thread starts.
    pub fn apply(&self) -> Result<(), seccompiler::Error> {
        seccompiler::apply_filter(&self.program)
    }
}

/// The program for `profile`: read from `cache_dir` when it was compiled before on this host,
/// compiled (and stored there) otherwise.
pub fn load_or_compile(cache_dir: &Path, profile: &LinuxSeccomp) -> Result<Filter, FilterError> {
    let resolved = seccomp_bpf::resolve(profile)?;
    let path = cache_dir.join(format!("{}.bpf", cache_key(&resolved)));
    if let Ok(bytes) = fs::read(&path)
        && let Some(program) = parse(&bytes)
    {
        return Ok(Filter::new(program));
    }
    let program = seccomp_bpf::emit(&resolved)?;
    store(cache_dir, &path, &serialize(&program))?;
    Ok(Filter::new(program))
}

/// Everything the compiled program depends on, hashed: the profile with its names resolved to
/// this build's system call numbers, and the compiler's format.
fn cache_key(resolved: &seccomp_bpf::Resolved) -> String {
    let mut hash = Sha256::new();
    hash.update(CODEGEN.as_bytes());
    hash.update([0]);
    // Serializing plain structs and maps to JSON cannot fail.
    hash.update(serde_json::to_vec(resolved).unwrap_or_default());
    hex::encode(hash.finalize())
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

/// A program as the kernel reads it: `struct sock_filter`s in native byte order.
fn serialize(program: &[sock_filter]) -> Vec<u8> {
    program
        .iter()
        .flat_map(|i| {
            let mut b = [0u8; INSTRUCTION_SIZE];
            b[0..2].copy_from_slice(&i.code.to_ne_bytes());
            b[2] = i.jt;
            b[3] = i.jf;
            b[4..8].copy_from_slice(&i.k.to_ne_bytes());
            b
        })
        .collect()
}

/// Splits a stored program into instructions.
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
            filter.apply().map_err(|e| {
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
        let path = dir.path().join(format!(
            "{}.bpf",
            cache_key(&seccomp_bpf::resolve(&profile).expect("resolve"))
        ));
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
        let key = |p: &LinuxSeccomp| cache_key(&seccomp_bpf::resolve(p).expect("resolve"));
        assert_ne!(key(&profile), key(&other));
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
