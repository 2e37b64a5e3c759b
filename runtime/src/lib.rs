//! berth's container runtime: images pulled from any registry into a local content store,
//! each layer unpacked once and shared; containers run from them with libcontainer on an
//! overlayfs root, isolated by namespaces and limited by cgroups.
//!
//! Modules, each depending only on those above it:
//!
//! ```text
//! unpack        path-safe layer extraction with OCI whiteouts as overlayfs whiteouts
//! store         the root directory: verified blobs, unpacked layers, the image index
//! credentials   registry logins (berth's file, then Docker's config.json)
//! pull          choose the platform, download in parallel with resumption, verify, unpack
//! user          -u and the image's User against the image's passwd and group files
//! idmap         --uidmap/--gidmap: user namespace mappings, both ways
//! process       entrypoint, cmd, environment, working directory: Docker's rules
//! seccomp       the default seccomp profile (Docker's policy)
//! seccomp_bpf   a seccomp profile compiled to a BPF program, in Rust
//! seccomp_filter  the profile compiled to BPF once per host, loaded just before exec
//! spec          the OCI runtime spec of a container, with Docker's hardening
//! cgroup_prearm the kernel's wait before the first cgroup migration, started early
//! host          overlay mounts and network namespaces (a trait, with a recording fake)
//! containers    container records and state on disk
//! logs          the framed output log
//! terminal      console socket, raw mode, window size
//! run           create and start a container
//! supervise     the container's parent: output, signals, exit status
//! lifecycle     run attached or detached, stop, kill, rm, exec
//! commit        a container's changes as a new layer and image
//! push          upload missing blobs (or mount them), then the manifest
//! ```

pub mod cgroup_prearm;
pub mod commit;
pub mod containers;
pub mod credentials;
pub mod host;
pub mod idmap;
pub mod lifecycle;
pub mod logs;
pub mod process;
pub mod pull;
pub mod push;
pub mod run;
pub mod seccomp;
pub mod seccomp_bpf;
pub mod seccomp_filter;
#[cfg(all(test, target_arch = "x86_64"))]
mod seccomp_processes;
pub mod sign;
pub mod spec;
pub mod store;
pub mod supervise;
pub mod terminal;
pub mod unpack;
pub mod user;
pub mod verify;
pub mod vuln_check;

pub use oci_client::Reference;
pub use oci_client::secrets::RegistryAuth;
