//! `berth run` and the container lifecycle, observed from inside real containers: isolation
//! (pid 1, hostname, only `lo`, mounts, capabilities, seccomp, no_new_privs, masked paths),
//! limits (OOM kill, pids, CPU quota), image semantics (entrypoint, cmd, env, workdir, user,
//! whiteouts, exit statuses), signals, a terminal, detached containers (ps, logs, exec, stop,
//! kill, rm, a killed supervisor), the same probes under `docker run`, and the loop pull →
//! run → commit → push → pull into a fresh root → run. Root only (CI runs as root).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::client::{OCI_CONFIG, OCI_MANIFEST};
use crate::harness::{Berth, sha256};
use crate::real_clients::busybox;
use crate::runtime_pull::{E, Runtime, gzip, is_root, tar};

const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// busybox applets the tests call by name.
const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "id", "hostname", "ls", "sleep", "test", "grep", "env", "pwd", "head",
    "seq", "yes", "true", "false", "touch", "rm", "mkdir", "sort", "wc", "kill", "tr", "unshare",
    "stat", "chown",
];

/// Pushes a busybox image of two layers (the second deletes `/etc/doomed`) with an
/// entrypoint-less config; returns its name.
pub(crate) async fn push_busybox(b: &Berth, repo: &str, busybox: &Path) -> String {
    let bin = std::fs::read(busybox).expect("busybox");
    let mut entries = vec![
        E::Dir("bin/", 0o755),
        E::File("bin/busybox", &bin, 0o755, 0),
        E::Dir("etc/", 0o755),
        E::File(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
            0o644,
            0,
        ),
        E::File(
            "etc/group",
            b"root:x:0:\napp:x:1000:\nstaff:x:50:app\n",
            0o644,
            0,
        ),
        E::File("etc/doomed", b"deleted by the next layer", 0o644, 0),
        E::Dir("home/", 0o755),
        E::Dir("tmp/", 0o1777),
    ];
    let links: Vec<String> = APPLETS.iter().map(|a| format!("bin/{a}")).collect();
    for l in &links {
        entries.push(E::Hardlink(l, "bin/busybox"));
    }
    let base = tar(&entries);
    let top = tar(&[
        E::Dir("etc/", 0o755),
        E::File("etc/.wh.doomed", b"", 0o644, 0),
        E::Dir("srv/", 0o755),
    ]);
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for raw in [&base, &top] {
        descriptors.push(b.push_blob_typed(repo, &gzip(raw), GZIP).await.descriptor());
        diff_ids.push(sha256(raw));
    }
    let config = json!({
        "architecture": "amd64", "os": "linux",
        "config": {
            "Cmd": ["sh", "-c", "echo default-cmd"],
            "Env": ["PATH=/bin", "FROM_IMAGE=yes", "OVERRIDE=image"],
            "WorkingDir": "/srv",
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = b
        .push_blob_typed(
            repo,
            &serde_json::to_vec(&config).expect("json"),
            OCI_CONFIG,
        )
        .await;
    let manifest = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": config.descriptor(), "layers": descriptors,
    });
    b.push_manifest_json(repo, "1", OCI_MANIFEST, &manifest)
        .await;
    format!("{}/{repo}:1", b.host())
}

/// Runs berth with the runtime's environment: (exit status, stdout, stderr).
fn status(rt: &Runtime, args: &[&str]) -> (i32, String, String) {
    let out = command(rt, args).output().expect("berth");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn command(rt: &Runtime, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
    c.args(args).env_remove("RUST_LOG");
    for (k, v) in &rt.env {
        c.env(k, v);
    }
    c
}

/// `berth run --rm IMAGE sh -c SCRIPT` with extra flags; its stdout, asserting success.
fn sh(rt: &Runtime, flags: &[&str], image: &str, script: &str) -> String {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[image, "sh", "-c", script]);
    let (code, out, err) = status(rt, &args);
    assert_eq!(code, 0, "berth {args:?}: {out}\n{err}");
    out
}

/// Nothing of the container is left on the host: mounts, directory, cgroup.
fn assert_cleaned_up(rt: &Runtime, id: &str) {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!mounts.contains(id), "a mount of {id} is left:\n{mounts}");
    assert!(!rt.store().join("containers").join(id).exists());
    for controller in ["memory", "pids", "cpu"] {
        let cg = Path::new("/sys/fs/cgroup")
            .join(controller)
            .join("berth")
            .join(id);
        assert!(!cg.exists(), "{} is left", cg.display());
    }
}

/// Runs `berth ARGS` under a pseudo-terminal (script(1)), typing `input`; returns its status
/// and what the terminal showed.
fn in_terminal(rt: &Runtime, args: &str, input: &[u8]) -> (Option<i32>, String) {
    let inner = format!("{} {args}", env!("CARGO_BIN_EXE_berth"));
    let mut script = Command::new("script");
    script.args(["-qec", &inner, "/dev/null"]);
    for (k, v) in &rt.env {
        script.env(k, v);
    }
    let mut child = script
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("script");
    let mut stdin = child.stdin.take().expect("stdin");
    std::thread::sleep(Duration::from_secs(1));
    stdin.write_all(input).expect("type");
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn setup() -> Option<(Berth, Runtime, String)> {
    if !is_root() {
        return None;
    }
    let busybox = busybox()?;
    let b = Berth::start();
    let image = push_busybox(&b, "rt/busybox", &busybox).await;
    let rt = Runtime::new();
    rt.ok(&["pull", &image]);
    Some((b, rt, image))
}

#[tokio::test]
async fn containers_are_isolated_and_hardened_like_dockers() {
    let Some((_b, rt, image)) = setup().await else {
        return;
    };
    assert_eq!(
        sh(&rt, &[], &image, "echo $$"),
        "1\n",
        "pid 1 is the container's process"
    );
    assert_eq!(
        sh(
            &rt,
            &["--hostname", "box"],
            &image,
            "hostname; cat /etc/hostname"
        ),
        "box\nbox\n"
    );
    assert_eq!(
        sh(&rt, &[], &image, "ls /sys/class/net"),
        "lo\n",
        "only loopback"
    );
    // IFF_UP | IFF_LOOPBACK (| IFF_RUNNING, which the kernel reports for an up loopback).
    let flags = sh(&rt, &[], &image, "cat /sys/class/net/lo/flags");
    assert!(
        flags.trim() == "0x9" || flags.trim() == "0x49",
        "lo flags {flags}"
    );
    let status = sh(
        &rt,
        &[],
        &image,
        "grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status",
    );
    // Docker's default capability set is 0xa80425fb.
    assert!(status.contains("CapEff:\t00000000a80425fb"), "{status}");
    assert!(status.contains("CapBnd:\t00000000a80425fb"), "{status}");
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    assert!(status.contains("Seccomp:\t2"), "{status}");
    // Creating a user namespace needs no capability: only the seccomp profile refuses it. The
    // profile was compiled once, into ROOT/seccomp, and reused by every container since.
    sh(&rt, &[], &image, "! unshare -U true 2>/dev/null");
    let programs = std::fs::read_dir(rt.store().join("seccomp")).expect("seccomp cache");
    assert_eq!(
        programs.count(),
        1,
        "one compiled profile for all containers"
    );
    let mounts = sh(&rt, &[], &image, "cat /proc/mounts");
    for m in [
        " / overlay ",
        "/proc proc",
        "/dev/pts devpts",
        "/dev/shm tmpfs",
        "/sys sysfs ro",
        "/etc/hosts",
        "/etc/resolv.conf",
    ] {
        assert!(mounts.contains(m), "{m} missing from:\n{mounts}");
    }
    // Masked and read-only /proc paths; a denied syscall (seccomp and no CAP_SYS_ADMIN).
    assert_eq!(sh(&rt, &[], &image, "cat /proc/keys | wc -c"), "0\n");
    sh(&rt, &[], &image, "! echo 1 > /proc/sys/kernel/domainname");
    sh(&rt, &[], &image, "! hostname other 2>/dev/null");
    // The host's processes are invisible.
    let pids: usize = sh(&rt, &[], &image, "ls /proc | grep -c '^[0-9]'")
        .trim()
        .parse()
        .expect("count");
    assert!(pids <= 4, "{pids} processes visible: the host's leak in");
    // --network host shares the host's interfaces.
    let host_ifaces = std::fs::read_dir("/sys/class/net").expect("net").count();
    let seen = sh(
        &rt,
        &["--network", "host"],
        &image,
        "ls /sys/class/net | wc -l",
    );
    assert_eq!(seen.trim(), host_ifaces.to_string());
    // --read-only root, with a writable --tmpfs and a read-only volume.
    let vol = tempfile::tempdir().expect("vol");
    std::fs::write(vol.path().join("in.txt"), "from the host").expect("write");
    let v = format!("{}:/data:ro", vol.path().display());
    let out = sh(
        &rt,
        &["--read-only", "--tmpfs", "/scratch", "-v", &v],
        &image,
        "! touch /x 2>/dev/null && touch /scratch/ok && cat /data/in.txt && ! touch /data/no 2>/dev/null",
    );
    assert_eq!(out, "from the host");
}

#[tokio::test]
async fn limits_kill_on_memory_refuse_forks_and_set_the_cpu_quota() {
    let Some((_b, rt, image)) = setup().await else {
        return;
    };
    // 16 MiB, then a shell string of 64 MiB: the kernel's OOM killer ends it (128 + 9).
    let (code, _, _) = status(
        &rt,
        &[
            "run",
            "--rm",
            "--memory",
            "16m",
            &image,
            "sh",
            "-c",
            "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo ${#x}",
        ],
    );
    assert_eq!(code, 137, "the OOM killer must end the container");
    // Eight tasks at most: the shell and a few children, then fork fails.
    let (code, _, err) = status(
        &rt,
        &[
            "run",
            "--rm",
            "--pids-limit",
            "8",
            &image,
            "sh",
            "-c",
            "for i in $(seq 20); do sleep 2 & done; wait",
        ],
    );
    assert!(
        err.contains("fork") || err.contains("Resource temporarily unavailable"),
        "{code} {err}"
    );
    let id = rt
        .ok(&["run", "-d", "--cpus", "0.5", &image, "sleep", "30"])
        .trim()
        .to_owned();
    let quota = std::fs::read_to_string(format!("/sys/fs/cgroup/cpu/berth/{id}/cpu.cfs_quota_us"))
        .expect("the container's cpu cgroup");
    assert_eq!(quota.trim(), "50000");
    rt.ok(&["rm", "-f", &id]);
    assert_cleaned_up(&rt, &id);
}

#[tokio::test]
async fn the_image_config_and_options_combine_like_dockers() {
    let Some((_b, rt, image)) = setup().await else {
        return;
    };
    let (code, out, _) = status(&rt, &["run", "--rm", &image]);
    assert_eq!(
        (code, out.as_str()),
        (0, "default-cmd\n"),
        "the image's Cmd"
    );
    assert_eq!(
        sh(&rt, &[], &image, "pwd"),
        "/srv\n",
        "the image's WorkingDir"
    );
    assert_eq!(
        sh(&rt, &["-w", "/made/here"], &image, "pwd"),
        "/made/here\n"
    );
    let envfile = tempfile::NamedTempFile::new().expect("env file");
    std::fs::write(envfile.path(), "# comment\nFROM_FILE=1\nOVERRIDE=file\n").expect("env");
    let env = sh(
        &rt,
        &[
            "--env-file",
            envfile.path().to_str().expect("p"),
            "-e",
            "OVERRIDE=flag",
            "--hostname",
            "h",
        ],
        &image,
        "env | sort",
    );
    assert_eq!(
        env,
        "FROM_FILE=1\nFROM_IMAGE=yes\nHOME=/root\nHOSTNAME=h\nOVERRIDE=flag\nPATH=/bin\nPWD=/srv\nSHLVL=1\n"
    );
    assert_eq!(
        sh(&rt, &["-u", "app"], &image, "id"),
        // Supplementary groups are the groups listing the user (runc's rule).
        "uid=1000(app) gid=1000(app) groups=50(staff)\n"
    );
    assert_eq!(
        sh(&rt, &["-u", "4242:7"], &image, "id -u; id -g"),
        "4242\n7\n"
    );
    assert_eq!(
        sh(&rt, &[], &image, "test -e /etc/doomed || echo gone"),
        "gone\n",
        "whiteout"
    );
    let (code, out, _) = status(
        &rt,
        &["run", "--rm", "--entrypoint", "echo", &image, "a", "b"],
    );
    assert_eq!((code, out.as_str()), (0, "a b\n"));
    let (code, _, _) = status(&rt, &["run", "--rm", &image, "sh", "-c", "exit 42"]);
    assert_eq!(code, 42);
    let (code, _, err) = status(&rt, &["run", "--rm", &image, "no-such-command"]);
    assert_eq!(code, 127, "{err}");
    let (code, _, err) = status(&rt, &["run", "-d", &image, "no-such-command"]);
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("no-such-command"), "{err}");
    assert_eq!(
        rt.ok(&["ps", "-a", "-q"]),
        "",
        "nothing left of a run that failed"
    );
    let (code, _, err) = status(&rt, &["run", "--rm", "-u", "nobody", &image, "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("unable to find user nobody"), "{err}");
    let (code, _, err) = status(&rt, &["run", "--rm", "-v", "relative:/x", &image, "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("invalid volume"), "{err}");
    // Standard input with -i; a failed run leaves no container behind.
    let mut child = command(
        &rt,
        &["run", "--rm", "-i", &image, "sh", "-c", "tr a-z A-Z"],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .spawn()
    .expect("run -i");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"piped in\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "PIPED IN\n");
    assert_eq!(rt.ok(&["ps", "-a", "-q"]), "");
}

#[tokio::test]
async fn signals_are_forwarded_and_a_terminal_works() {
    let Some((_b, rt, image)) = setup().await else {
        return;
    };
    let mut child = command(
        &rt,
        &[
            "run",
            "--rm",
            &image,
            "sh",
            "-c",
            "trap 'echo got-term; exit 7' TERM; echo ready; while true; do sleep 0.1; done",
        ],
    )
    .stdout(Stdio::piped())
    .spawn()
    .expect("run");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = [0u8; 6];
    std::io::Read::read_exact(&mut stdout, &mut first).expect("ready");
    nix_kill(child.id(), "TERM");
    let code = child.wait().expect("wait").code();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).expect("rest");
    assert_eq!(code, Some(7), "the container's trap ran: {rest}");
    assert!(rest.contains("got-term"));

    // -it under a pseudo-terminal: a shell that sees a terminal.
    let (code, text) = in_terminal(
        &rt,
        &format!("run --rm -it {image} sh"),
        b"test -t 0 && echo tty-$((40+2)); tty; exit 5\n",
    );
    assert!(text.contains("tty-42"), "{text}");
    assert!(
        text.contains("/dev/pts/0") || text.contains("/dev/console"),
        "{text}"
    );
    assert_eq!(code, Some(5), "{text}");
}

fn nix_kill(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok);
}

#[tokio::test]
async fn detached_containers_live_on_and_are_stopped_and_removed_cleanly() {
    let Some((_b, rt, image)) = setup().await else {
        return;
    };
    let id = rt
        .ok(&[
            "run", "-d", "--name", "web", "-u", "app", &image, "sh", "-c",
            "echo started; echo oops >&2; trap 'echo bye; exit 3' TERM; while true; do sleep 0.1; done",
        ])
        .trim()
        .to_owned();
    assert_eq!(id.len(), 64);
    let ps = rt.ok(&["ps"]);
    assert!(ps.contains("web") && ps.contains("Up"), "{ps}");
    wait_for("the first output", || {
        rt.ok(&["logs", "web"]).contains("started")
    });
    let (code, out, err) = status(&rt, &["logs", "web"]);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (0, "started\n", "oops\n")
    );
    // exec joins the running container.
    assert_eq!(
        rt.ok(&["exec", "web", "cat", "/etc/hostname"]),
        format!("{}\n", &id[..12])
    );
    let (code, _, _) = status(&rt, &["exec", "web", "sh", "-c", "test $$ != 1 && exit 9"]);
    assert_eq!(code, 9);
    // exec runs as the container's user unless told otherwise.
    assert_eq!(rt.ok(&["exec", "web", "id", "-u"]), "1000\n");
    assert_eq!(rt.ok(&["exec", "-u", "0", "web", "id", "-u"]), "0\n");
    // -it: a terminal of its own (script(1) gives us one); the status is the command's.
    let (code, text) = in_terminal(&rt, "exec -it web sh", b"tty; echo tty-$((40+2)); exit 4\n");
    assert_eq!(code, Some(4), "{text}");
    assert!(
        text.contains("tty-42") && text.contains("/dev/pts/"),
        "{text}"
    );
    // An exec'd process is confined like the container's own: same seccomp profile.
    let status_line = rt.ok(&["exec", "web", "grep", "^Seccomp:", "/proc/self/status"]);
    assert_eq!(status_line, "Seccomp:\t2\n");
    let (code, _, _) = status(&rt, &["exec", "web", "unshare", "-U", "true"]);
    assert_ne!(code, 0, "unshare -U allowed in exec");
    // Names are unique.
    let (code, _, err) = status(&rt, &["run", "-d", "--name", "web", &image, "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("already in use"), "{err}");
    let (code, _, err) = status(&rt, &["rm", "web"]);
    assert_ne!(code, 0);
    assert!(err.contains("is running"), "{err}");
    // stop: the stop signal reaches the trap; the status is recorded.
    rt.ok(&["stop", "web"]);
    let ps = rt.ok(&["ps", "-a"]);
    assert!(ps.contains("Exited (3)"), "{ps}");
    // Columns line up under their headers, never running into each other.
    let header = ps.lines().next().expect("header");
    let line = ps.lines().find(|l| l.contains("Exited (3)")).expect("web");
    let column = |text: &str, word: &str| text.find(word).map(|i| text[..i].chars().count());
    assert_eq!(column(header, "NAMES"), column(line, "web"), "{ps}");
    assert!(line.contains("ago   web"), "{ps}");
    assert!(rt.ok(&["logs", "web"]).contains("bye"));
    let (code, _, _) = status(&rt, &["exec", "web", "true"]);
    assert_ne!(code, 0, "exec into a stopped container");
    rt.ok(&["rm", "web"]);
    assert_cleaned_up(&rt, &id);
    assert_eq!(rt.ok(&["ps", "-a", "-q"]), "");

    // kill; rm -f; --rm with -d; a supervisor killed with SIGKILL.
    let id = rt
        .ok(&["run", "-d", &image, "sleep", "60"])
        .trim()
        .to_owned();
    rt.ok(&["kill", &id[..8]]);
    wait_for("the kill", || rt.ok(&["ps", "-a"]).contains("Exited (137)"));
    rt.ok(&["rm", &id]);
    assert_cleaned_up(&rt, &id);
    let id = rt
        .ok(&["run", "-d", "--rm", &image, "sleep", "60"])
        .trim()
        .to_owned();
    rt.ok(&["stop", "-t", "1", &id]);
    wait_for("--rm to remove it", || {
        !rt.ok(&["ps", "-a", "-q"]).contains(&id[..12])
    });
    assert_cleaned_up(&rt, &id);
    let id = rt
        .ok(&["run", "-d", &image, "sleep", "60"])
        .trim()
        .to_owned();
    let supervisor = Command::new("pgrep")
        .args(["-f", &format!("container-supervise .*{id}")])
        .output()
        .expect("pgrep");
    let pid = String::from_utf8_lossy(&supervisor.stdout)
        .trim()
        .to_owned();
    assert!(!pid.is_empty(), "no supervisor for {id}");
    nix_kill(pid.parse().expect("pid"), "KILL");
    assert!(
        rt.ok(&["ps"]).contains(&id[..12]),
        "the container outlives its supervisor"
    );
    rt.ok(&["rm", "-f", &id]);
    assert_cleaned_up(&rt, &id);
    // An image in use cannot be removed.
    let id = rt
        .ok(&["run", "-d", &image, "sleep", "60"])
        .trim()
        .to_owned();
    let (code, _, err) = status(&rt, &["rmi", &image]);
    assert_ne!(code, 0);
    assert!(err.contains("used by container"), "{err}");
    rt.ok(&["rm", "-f", &id]);
}

#[tokio::test]
async fn commit_push_and_run_from_a_fresh_root_give_the_committed_content() {
    let Some((b, rt, image)) = setup().await else {
        return;
    };
    rt.ok(&[
        "run", "--name", "builder", &image, "sh", "-c",
        "mkdir -p /data && echo committed > /data/file && ln /data/file /data/hard && rm /etc/passwd",
    ]);
    let target = format!("{}/rt/committed:v1", b.host());
    rt.ok(&["commit", "-m", "add data", "builder", &target]);
    let pushed = rt.ok(&["push", &target]);
    // The base layers came from rt/busybox on the same registry: mounted, not uploaded; the
    // new layer and config are uploaded.
    assert!(pushed.contains("2 uploaded, 2 mounted"), "{pushed}");
    let fresh = Runtime::new();
    fresh.ok(&["pull", &target]);
    let out = sh(
        &fresh,
        &["-u", "0"],
        &target,
        "cat /data/file; test -e /etc/passwd || echo passwd-gone; test /data/file -ef /data/hard && echo linked",
    );
    assert_eq!(out, "committed\npasswd-gone\nlinked\n");
    let inspect: serde_json::Value =
        serde_json::from_str(&fresh.ok(&["inspect", &target])).expect("json");
    let history = inspect["config"]["history"].as_array().expect("history");
    assert_eq!(history.last().expect("entry")["comment"], "add data");
    assert_eq!(
        inspect["config"]["rootfs"]["diff_ids"]
            .as_array()
            .expect("ids")
            .len(),
        3
    );
}

#[tokio::test]
async fn a_user_namespace_makes_the_containers_root_an_unprivileged_host_user() {
    let Some((b, rt, image)) = setup().await else {
        return;
    };
    let map = ["--uidmap", "0:200000:65536"];
    let chmod = |mode| {
        let mut perms = std::fs::metadata(rt.root.path())
            .expect("root")
            .permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, mode);
        std::fs::set_permissions(rt.root.path(), perms).expect("chmod");
    };
    // A private store (mode 0700) is out of the mapped root's reach: refused before anything
    // starts, saying what to open up.
    chmod(0o700);
    let (code, _, err) = status(&rt, &["run", "--rm", map[0], map[1], &image, "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("chmod o+x"), "{err}");
    assert_eq!(
        rt.ok(&["ps", "-a", "-q"]),
        "",
        "nothing left of the refused run"
    );
    chmod(0o711);

    // Inside: root, owning the image's files (the shared layers, seen through an idmapped
    // mount), with its own sysfs and only lo.
    let inside = sh(
        &rt,
        &map,
        &image,
        "cat /proc/self/uid_map /proc/self/gid_map | tr -s ' '; id -u; stat -c %u:%g /bin/busybox /etc/passwd; touch /new && echo wrote; ls /sys/class/net",
    );
    assert_eq!(
        inside,
        " 0 200000 65536\n 0 200000 65536\n0\n0:0\n0:0\nwrote\nlo\n"
    );
    let (code, _, err) = status(
        &rt,
        &["run", "--rm", map[0], map[1], "-u", "70000", &image, "true"],
    );
    assert_eq!(code, 125);
    assert!(err.contains("not mapped"), "{err}");

    // Outside: an unprivileged host user, whose files land in the upper directory under
    // host IDs.
    let id = rt
        .ok(&[
            "run",
            "-d",
            "--name",
            "mapped",
            map[0],
            map[1],
            &image,
            "sh",
            "-c",
            "echo made > /made && chown 1000:50 /made && sleep 60",
        ])
        .trim()
        .to_owned();
    let upper = rt.store().join("containers").join(&id).join("upper");
    wait_for("the container's file", || {
        std::fs::metadata(upper.join("made"))
            .is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 201_000)
    });
    let made = std::fs::metadata(upper.join("made")).expect("made");
    assert_eq!(std::os::unix::fs::MetadataExt::gid(&made), 200_050);
    let record: serde_json::Value =
        serde_json::from_str(&rt.ok(&["inspect", "mapped"])).expect("json");
    let pid = record["state"]["pid"].as_i64().expect("running pid");
    let host_status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    assert!(
        host_status.contains("Uid:\t200000\t200000"),
        "{host_status}"
    );
    // exec joins the user namespace.
    assert_eq!(rt.ok(&["exec", "mapped", "id", "-u"]), "0\n");

    // Commit writes the container's IDs, not the host's: a fresh root without a user
    // namespace sees the owner the container set.
    let target = format!("{}/rt/mapped:v1", b.host());
    rt.ok(&["commit", "mapped", &target]);
    // It was frozen while its changes were read, and thawed after.
    assert_eq!(rt.ok(&["exec", "mapped", "echo", "thawed"]), "thawed\n");
    rt.ok(&["rm", "-f", "mapped"]);
    assert_cleaned_up(&rt, &id);
    let out = sh(&rt, &[], &target, "cat /made; stat -c %u:%g /made");
    assert_eq!(out, "made\n1000:50\n");
}

#[tokio::test]
async fn docker_and_berth_agree_on_the_same_image() {
    use crate::real_clients::{Docker, docker_build};
    if !is_root() {
        return;
    }
    let (Some(docker), Some(busybox)) = (Docker::get(), busybox()) else {
        return;
    };
    let b = Berth::start();
    let image = format!("{}/rt/compare:v1", b.host());
    docker_build(&docker, &busybox, "hello from docker", &image);
    docker.ok(&["push", &image]);
    let probe = "/bin/busybox env | /bin/busybox sort; /bin/busybox id; /bin/busybox pwd; /bin/busybox hostname; exit 3";
    // The same options for both runtimes; docker also needs its network turned off.
    let options = ["--rm", "--hostname", "probe", "-e", "X=1", "-w", "/tmp"];
    let command = [image.as_str(), "/bin/busybox", "sh", "-c", probe];
    let docker_args: Vec<&str> = ["run", "--network", "none"]
        .iter()
        .chain(&options)
        .chain(&command)
        .copied()
        .collect();
    let (docker_code, docker_out, _) = docker.run(&docker_args);
    let rt = Runtime::new();
    rt.ok(&["pull", &image]);
    let berth_args: Vec<&str> = ["run"]
        .iter()
        .chain(&options)
        .chain(&command)
        .copied()
        .collect();
    let (code, out, err) = status(&rt, &berth_args);
    assert_eq!(code, 3, "{err}");
    assert!(!docker_code, "docker's run must fail with 3 too");
    assert_eq!(out, docker_out, "docker and berth see different containers");
    // The image's own Cmd, as built by docker.
    let (code, out, _) = status(&rt, &["run", "--rm", &image]);
    assert_eq!(
        (code, out.as_str()),
        (0, "hello from docker\ndoomed-is-gone\n")
    );
}
