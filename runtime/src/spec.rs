//! The OCI runtime spec (`config.json`) of a container, with Docker's defaults: new pid,
//! mount, uts, ipc, cgroup and network namespaces; Docker's capability set; masked and
//! read-only `/proc` paths; `no_new_privs`; the default seccomp profile; `/proc`, `/sys`,
//! `/dev`, `/dev/pts`, `/dev/shm`, `/dev/mqueue` and the three `/etc` files bind-mounted from
//! the container's directory. Building it is pure: the same inputs give the same spec, and it
//! is tested without root.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use crate::idmap::IdMap;
use crate::process::ProcessPlan;
use crate::user::User;

/// Docker's default capability set (`moby/oci/caps/defaults.go`).
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Paths hidden from the container (Docker's list): kernel memory, keys, timers, firmware.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths the container may read but not write (Docker's list).
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// A `-v SRC:DST[:ro|rw]` bind mount.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Volume {
    /// Host path (absolute, existing).
    pub source: PathBuf,
    /// Path in the container (absolute).
    pub destination: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// Why a mount option is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MountError {
    /// Not `SRC:DST[:ro|rw]` with absolute paths.
    #[error(
        "invalid volume {0:?}: expected /host/path:/container/path[:ro|rw] (named volumes are not supported)"
    )]
    Volume(String),
    /// A `--tmpfs` that is not an absolute path.
    #[error("invalid --tmpfs {0:?}: expected an absolute path in the container")]
    Tmpfs(String),
}

/// Parses `-v`. The source must exist (Docker would create it; a typo should not silently
/// make an empty directory on the host).
pub fn parse_volume(s: &str) -> Result<Volume, MountError> {
    let bad = || MountError::Volume(s.to_owned());
    let parts: Vec<&str> = s.split(':').collect();
    let (source, destination, read_only) = match parts.as_slice() {
        [src, dst] => (*src, *dst, false),
        [src, dst, "ro"] => (*src, *dst, true),
        [src, dst, "rw"] => (*src, *dst, false),
        _ => return Err(bad()),
    };
    if !source.starts_with('/') || !destination.starts_with('/') || destination == "/" {
        return Err(bad());
    }
    let source = std::fs::canonicalize(source).map_err(|_| bad())?;
    Ok(Volume {
        source,
        destination: destination.to_owned(),
        read_only,
    })
}

/// Parses `--tmpfs DST`.
pub fn parse_tmpfs(s: &str) -> Result<String, MountError> {
    if s.starts_with('/') && s != "/" && !s.contains(':') {
        Ok(s.to_owned())
    } else {
        Err(MountError::Tmpfs(s.to_owned()))
    }
}

/// Resource limits (`--memory`, `--cpus`, `--pids-limit`).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Memory limit in bytes (swap included: no swap beyond it).
    pub memory: Option<i64>,
    /// CPUs, as a CFS quota over a 100 ms period.
    pub cpus: Option<f64>,
    /// Maximum number of tasks.
    pub pids: Option<i64>,
}

/// Parses a size like `512m`, `1g`, `64k`, `1048576`.
pub fn parse_size(s: &str) -> Option<i64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (digits, unit) = match s.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&s[..i], c),
        _ => (s, ' '),
    };
    let n: i64 = digits.parse().ok().filter(|n| *n > 0)?;
    let shift = match unit {
        ' ' => 0,
        'k' => 10,
        'm' => 20,
        'g' => 30,
        't' => 40,
        _ => return None,
    };
    n.checked_mul(1i64 << shift)
}

/// Everything the spec is made from.
#[derive(Debug)]
pub struct SpecInput<'a> {
    /// The mounted overlay (the bundle's rootfs).
    pub rootfs: &'a Path,
    /// `--read-only`.
    pub read_only: bool,
    /// The container's hostname.
    pub hostname: &'a str,
    /// The process.
    pub process: &'a ProcessPlan,
    /// Its user.
    pub user: &'a User,
    /// `-t`.
    pub tty: bool,
    /// The directory holding `hostname`, `hosts` and `resolv.conf` for the container.
    pub etc: &'a Path,
    /// A network namespace of its own (`--network none`); `false` shares the host's.
    pub own_network: bool,
    /// A user namespace with these mappings (`None`: the host's).
    pub userns: Option<&'a IdMap>,
    /// `-v` mounts.
    pub volumes: &'a [Volume],
    /// `--tmpfs` mounts.
    pub tmpfs: &'a [String],
    /// Limits.
    pub limits: Limits,
    /// The cgroup path, relative to each hierarchy's root.
    pub cgroup: &'a str,
}

fn mount(destination: &str, kind: &str, source: &str, options: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "destination": destination, "type": kind, "source": source, "options": options
    })
}

/// Builds the spec.
pub fn build(input: &SpecInput<'_>) -> Result<Spec, serde_json::Error> {
    let etc = |f: &str| input.etc.join(f).to_string_lossy().into_owned();
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        if input.userns.is_some() && !input.own_network {
            // sysfs can only be mounted by the user namespace owning the network namespace;
            // a container in its own user namespace but the host's network gets the host's
            // /sys, read-only (as runc does).
            mount(
                "/sys",
                "bind",
                "/sys",
                &["rbind", "nosuid", "noexec", "nodev", "ro"],
            )
        } else {
            mount(
                "/sys",
                "sysfs",
                "sysfs",
                &["nosuid", "noexec", "nodev", "ro"],
            )
        },
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"],
        ),
    ];
    for file in ["resolv.conf", "hostname", "hosts"] {
        mounts.push(mount(
            &format!("/etc/{file}"),
            "bind",
            &etc(file),
            &["rbind", "rprivate"],
        ));
    }
    for v in input.volumes {
        let mode = if v.read_only { "ro" } else { "rw" };
        mounts.push(mount(
            &v.destination,
            "bind",
            &v.source.to_string_lossy(),
            &["rbind", "rprivate", mode],
        ));
    }
    for t in input.tmpfs {
        mounts.push(mount(t, "tmpfs", "tmpfs", &["nosuid", "nodev", "noexec"]));
    }

    let mut namespaces = vec![
        serde_json::json!({"type": "pid"}),
        serde_json::json!({"type": "ipc"}),
        serde_json::json!({"type": "uts"}),
        serde_json::json!({"type": "mount"}),
        serde_json::json!({"type": "cgroup"}),
    ];
    if input.own_network {
        namespaces.push(serde_json::json!({"type": "network"}));
    }
    if input.userns.is_some() {
        namespaces.push(serde_json::json!({"type": "user"}));
    }

    let mut resources = serde_json::json!({
        "devices": [{"allow": false, "access": "rwm"}],
    });
    if let Some(memory) = input.limits.memory {
        resources["memory"] = serde_json::json!({"limit": memory, "swap": memory});
    }
    if let Some(cpus) = input.limits.cpus {
        let period: u64 = 100_000;
        resources["cpu"] =
            serde_json::json!({"quota": (cpus * period as f64).round() as i64, "period": period});
    }
    if let Some(pids) = input.limits.pids {
        resources["pids"] = serde_json::json!({"limit": pids});
    }

    let mut process = serde_json::json!({
        "terminal": input.tty,
        "user": {
            "uid": input.user.uid,
            "gid": input.user.gid,
            "additionalGids": input.user.additional_gids,
        },
        "args": input.process.args,
        "env": input.process.env,
        "cwd": input.process.cwd,
        "capabilities": {
            "bounding": DEFAULT_CAPABILITIES,
            "effective": DEFAULT_CAPABILITIES,
            "permitted": DEFAULT_CAPABILITIES,
        },
        "noNewPrivileges": true,
    });
    if input.user.uid != 0 {
        // A non-root process keeps no capabilities (the kernel would drop them at exec).
        process["capabilities"]["effective"] = serde_json::json!([]);
        process["capabilities"]["permitted"] = serde_json::json!([]);
    }

    let mut spec = serde_json::json!({
        "ociVersion": "1.0.2",
        "root": {"path": input.rootfs, "readonly": input.read_only},
        "hostname": input.hostname,
        "process": process,
        "mounts": mounts,
        "linux": {
            "namespaces": namespaces,
            "cgroupsPath": input.cgroup,
            "resources": resources,
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS,
            "seccomp": crate::seccomp::default_profile(),
            "rootfsPropagation": "private",
        },
    });
    if let Some(map) = input.userns {
        spec["linux"]["uidMappings"] = map.spec_mappings(false);
        spec["linux"]["gidMappings"] = map.spec_mappings(true);
    }
    serde_json::from_value(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> ProcessPlan {
        ProcessPlan {
            args: vec!["sh".into()],
            entrypoint: vec![],
            cmd: vec!["sh".into()],
            env: vec!["PATH=/bin".into()],
            cwd: "/".into(),
            user: String::new(),
            stop_signal: "SIGTERM".into(),
        }
    }

    #[test]
    fn the_spec_has_dockers_defaults_and_the_options() {
        let process = plan();
        let user = User {
            uid: 0,
            gid: 0,
            additional_gids: vec![10],
            home: "/root".into(),
        };
        let volumes = [Volume {
            source: "/srv/data".into(),
            destination: "/data".into(),
            read_only: true,
        }];
        let tmpfs = ["/scratch".to_owned()];
        let spec = build(&SpecInput {
            rootfs: Path::new("/c/rootfs"),
            read_only: true,
            hostname: "box",
            process: &process,
            user: &user,
            tty: false,
            etc: Path::new("/c/etc"),
            own_network: true,
            userns: None,
            volumes: &volumes,
            tmpfs: &tmpfs,
            limits: Limits {
                memory: Some(64 << 20),
                cpus: Some(0.5),
                pids: Some(20),
            },
            cgroup: "/berth/abc",
        })
        .expect("spec");
        let json = serde_json::to_value(&spec).expect("json");
        assert_eq!(json["root"]["readonly"], true);
        assert_eq!(json["hostname"], "box");
        assert_eq!(json["process"]["noNewPrivileges"], true);
        assert_eq!(
            json["process"]["capabilities"]["bounding"]
                .as_array()
                .expect("caps")
                .len(),
            14
        );
        let ns = json["linux"]["namespaces"].as_array().expect("ns");
        assert!(
            ns.iter()
                .any(|n| n["type"] == "network" && n.get("path").is_none())
        );
        assert_eq!(json["linux"]["resources"]["memory"]["limit"], 64 << 20);
        assert_eq!(json["linux"]["resources"]["cpu"]["quota"], 50_000);
        assert_eq!(json["linux"]["resources"]["pids"]["limit"], 20);
        assert_eq!(json["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
        let mounts = json["mounts"].as_array().expect("mounts");
        let data = mounts
            .iter()
            .find(|m| m["destination"] == "/data")
            .expect("volume");
        assert!(
            data["options"]
                .as_array()
                .expect("o")
                .contains(&"ro".into())
        );
        assert!(
            mounts
                .iter()
                .any(|m| m["destination"] == "/etc/hosts" && m["source"] == "/c/etc/hosts")
        );
        assert!(mounts.iter().any(|m| m["destination"] == "/scratch"));
    }

    #[test]
    fn sizes_volumes_and_tmpfs_parse_or_are_refused() {
        assert_eq!(parse_size("512m"), Some(512 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("64kb"), Some(64 << 10));
        assert_eq!(parse_size("1000"), Some(1000));
        for bad in ["", "m", "-1m", "1x", "0"] {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
        assert!(parse_volume("/tmp:/data:ro").expect("volume").read_only);
        for bad in [
            "named:/data",
            "/tmp:data",
            "/tmp",
            "/tmp:/d:rx",
            "/does/not/exist:/d",
        ] {
            assert!(parse_volume(bad).is_err(), "{bad:?}");
        }
        assert!(parse_tmpfs("/run").is_ok());
        assert!(parse_tmpfs("run").is_err());
    }
}
