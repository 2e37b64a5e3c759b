//! The default profile's program at work in real processes. Each test runs its own test binary
//! again as a child ([`child_under_the_filter`]), which loads the program into itself, as a
//! container's init does, and `exec`s perl, which keeps it. Perl's `syscall` makes any system
//! call with any arguments (a raw number, a flag word, an x32 number), without `unsafe` here;
//! the script prints what each call returned and the test reads it back.

use std::collections::BTreeMap;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus};

use crate::seccomp_bpf::X32_SYSCALL_BIT;
use crate::seccomp_filter::Filter;

const SCRIPT: &str = "BERTH_SECCOMP_PROBE_SCRIPT";
const ARCHES: &str = "BERTH_SECCOMP_PROBE_ARCHES";

/// Helpers for the scripts (after a new line: libtest's "test ... " line has none):
/// `call(NAME, NR, ARGS...)` prints `NAME ok` or `NAME errno=N`;
/// `fork_call(NAME, FLAGS)` is a raw `clone(FLAGS)` whose child leaves at once.
const PRELUDE: &str = r#"
use strict; use POSIX ();
$| = 1;
print "\n";
sub report { my ($name, $r) = @_; print "probe $name ", ($r == -1 ? "errno=" . ($! + 0) : "ok"), "\n"; }
sub call { my ($name, $nr, @args) = @_; $! = 0; report($name, syscall($nr, @args)); }
sub fork_call {
    my ($name, $nr, $flags) = @_;
    $! = 0;
    my $pid = syscall($nr, $flags, 0, 0, 0, 0);
    POSIX::_exit(0) if $pid == 0;
    report($name, $pid);
    waitpid($pid, 0) if $pid > 0;
}
"#;

/// Not a test by itself (it returns at once): the body of the child processes of the tests
/// below, which set [`SCRIPT`].
#[test]
fn child_under_the_filter() {
    let Ok(script) = std::env::var(SCRIPT) else {
        return;
    };
    let mut profile = serde_json::to_value(crate::seccomp::default_profile()).expect("json");
    if let Ok(arches) = std::env::var(ARCHES) {
        profile["architectures"] = arches.split(',').collect();
    }
    let profile = serde_json::from_value(profile).expect("profile");
    let program = crate::seccomp_bpf::compile(&profile).expect("compile");
    Filter::new(program).apply().expect("load the program");
    let e = Command::new("perl")
        .arg("-e")
        .arg(format!("{PRELUDE}\n{script}"))
        .exec();
    panic!("cannot run perl (Debian's perl-base): {e}");
}

/// What a script run under the filter printed, and how it ended.
struct Run {
    status: ExitStatus,
    results: BTreeMap<String, String>,
    output: String,
}

impl Run {
    fn result(&self, name: &str) -> &str {
        self.results
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no result for {name}:\n{}", self.output))
    }
}

/// Runs `script` in perl under the default profile (with `arches` instead of its architectures
/// when given).
fn under_the_filter(arches: Option<&str>, script: &str) -> Run {
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe);
    child
        .args([
            "--exact",
            "seccomp_processes::child_under_the_filter",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(SCRIPT, script);
    if let Some(arches) = arches {
        child.env(ARCHES, arches);
    }
    let out = child.output().expect("run the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let results = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("probe "))
        .filter_map(|l| l.split_once(' '))
        .map(|(name, result)| (name.to_owned(), result.to_owned()))
        .collect();
    Run {
        status: out.status,
        results,
        output: format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)),
    }
}

fn eperm() -> String {
    format!("errno={}", libc::EPERM)
}

#[test]
fn allowed_calls_succeed() {
    let run = under_the_filter(
        None,
        &format!(
            r#"
            open(my $f, "<", "/proc/self/status") or die;
            print "probe seccomp_mode ", (map {{ /^Seccomp:\s*(\d)/ ? $1 : () }} <$f>), "\n";
            call("getpid", {getpid});
            call("socket_inet", {socket}, {inet}, {stream}, 0);
            call("socket_unix", {socket}, {unix}, {stream}, 0);
            fork_call("clone_plain", {clone}, {sigchld});
            call("personality_query", {personality}, 0xffffffff);
            "#,
            getpid = libc::SYS_getpid,
            socket = libc::SYS_socket,
            inet = libc::AF_INET,
            unix = libc::AF_UNIX,
            stream = libc::SOCK_STREAM,
            clone = libc::SYS_clone,
            sigchld = libc::SIGCHLD,
            personality = libc::SYS_personality,
        ),
    );
    assert!(run.status.success(), "{}", run.output);
    assert_eq!(run.result("seccomp_mode"), "2", "the filter is loaded");
    for name in [
        "getpid",
        "socket_inet",
        "socket_unix",
        "clone_plain",
        "personality_query",
    ] {
        assert_eq!(run.result(name), "ok", "{name}:\n{}", run.output);
    }
}

#[test]
fn denied_calls_fail_with_eperm() {
    // Each of these fails differently without the filter (as root: EFAULT, success, EBADF,
    // EINVAL, EINVAL, ENOSYS), so EPERM is the filter's answer.
    let run = under_the_filter(
        None,
        &format!(
            r#"
            call("mount", {mount}, 0, 0, 0, 0, 0);
            call("unshare", {unshare}, {newuser});
            call("setns", {setns}, -1, 0);
            call("reboot", {reboot}, 0, 0, 0, 0);
            call("bpf", {bpf}, -1, 0, 0);
            call("beyond_the_table", 1000);
            "#,
            mount = libc::SYS_mount,
            unshare = libc::SYS_unshare,
            newuser = libc::CLONE_NEWUSER,
            setns = libc::SYS_setns,
            reboot = libc::SYS_reboot,
            bpf = libc::SYS_bpf,
        ),
    );
    assert!(run.status.success(), "{}", run.output);
    for name in [
        "mount",
        "unshare",
        "setns",
        "reboot",
        "bpf",
        "beyond_the_table",
    ] {
        assert_eq!(run.result(name), eperm(), "{name}:\n{}", run.output);
    }
}

#[test]
fn clone_with_a_namespace_flag_is_refused() {
    let flags = [
        ("newns", libc::CLONE_NEWNS),
        ("newuts", libc::CLONE_NEWUTS),
        ("newipc", libc::CLONE_NEWIPC),
        ("newuser", libc::CLONE_NEWUSER),
        ("newpid", libc::CLONE_NEWPID),
        ("newnet", libc::CLONE_NEWNET),
        ("newcgroup", libc::CLONE_NEWCGROUP),
    ];
    let mut script = format!(
        "fork_call('plain', {}, {});\n",
        libc::SYS_clone,
        libc::SIGCHLD
    );
    for (name, flag) in flags {
        script += &format!(
            "fork_call('{name}', {}, {});\n",
            libc::SYS_clone,
            flag | libc::SIGCHLD
        );
    }
    let run = under_the_filter(None, &script);
    assert!(run.status.success(), "{}", run.output);
    assert_eq!(run.result("plain"), "ok", "{}", run.output);
    for (name, _) in flags {
        assert_eq!(run.result(name), eperm(), "{name}:\n{}", run.output);
    }
}

#[test]
fn clone3_answers_enosys() {
    // Without the filter clone3(NULL, 0) is EINVAL.
    let run = under_the_filter(
        None,
        &format!("call('clone3', {}, 0, 0);", libc::SYS_clone3),
    );
    assert_eq!(
        run.result("clone3"),
        format!("errno={}", libc::ENOSYS),
        "{}",
        run.output
    );
}

#[test]
fn personality_accepts_only_dockers_values() {
    let allowed = [0x0u64, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];
    // ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, a value beyond 32 bits.
    let refused = [0x4_0000u64, 0x40_0000, 0x1_0000_0008];
    let nr = libc::SYS_personality;
    let mut script = String::new();
    for v in allowed {
        script += &format!("call('allowed_{v:#x}', {nr}, {v:#x});\n");
    }
    for v in refused {
        script += &format!("call('refused_{v:#x}', {nr}, {v:#x});\n");
    }
    script += &format!("call('reset', {nr}, 0);\n");
    let run = under_the_filter(None, &script);
    assert!(run.status.success(), "{}", run.output);
    for v in allowed {
        assert_eq!(
            run.result(&format!("allowed_{v:#x}")),
            "ok",
            "{}",
            run.output
        );
    }
    for v in refused {
        assert_eq!(
            run.result(&format!("refused_{v:#x}")),
            eperm(),
            "{}",
            run.output
        );
    }
}

#[test]
fn vsock_sockets_are_refused() {
    let run = under_the_filter(
        None,
        &format!(
            "call('vsock', {socket}, {vsock}, {stream}, 0);\n\
             call('inet6', {socket}, {inet6}, {stream}, 0);",
            socket = libc::SYS_socket,
            vsock = libc::AF_VSOCK,
            inet6 = libc::AF_INET6,
            stream = libc::SOCK_STREAM,
        ),
    );
    assert_eq!(run.result("vsock"), eperm(), "{}", run.output);
    assert_eq!(run.result("inet6"), "ok", "{}", run.output);
}

#[test]
fn x32_calls_follow_the_x32_rules() {
    // The profile lists x32: an allowed x32 call passes the filter and the kernel answers it
    // (ENOSYS where x32 is disabled, as in Debian's kernels); a denied one is EPERM.
    let x32 = |nr: libc::c_long| X32_SYSCALL_BIT as libc::c_long | nr;
    let run = under_the_filter(
        None,
        &format!(
            "call('getpid', {});\ncall('mount', {}, 0, 0, 0, 0, 0);\ncall('unknown', {});",
            x32(libc::SYS_getpid),
            x32(libc::SYS_mount),
            x32(1000),
        ),
    );
    assert!(run.status.success(), "{}", run.output);
    let getpid = run.result("getpid");
    assert!(
        getpid == "ok" || getpid == format!("errno={}", libc::ENOSYS),
        "{}",
        run.output
    );
    assert_eq!(run.result("mount"), eperm(), "{}", run.output);
    assert_eq!(run.result("unknown"), eperm(), "{}", run.output);
}

#[test]
fn the_architecture_check_kills_calls_of_an_abi_the_profile_does_not_list() {
    // x86-64 only: an x32 number (x86-64's audit arch, bit 30 set) is a foreign ABI.
    let x32_getpid = X32_SYSCALL_BIT as libc::c_long | libc::SYS_getpid;
    let run = under_the_filter(
        Some("SCMP_ARCH_X86_64"),
        &format!(
            "call('before', {});\ncall('x32', {x32_getpid});\ncall('after', {});",
            libc::SYS_getpid,
            libc::SYS_getpid,
        ),
    );
    assert_eq!(run.result("before"), "ok", "{}", run.output);
    assert_eq!(
        run.status.signal(),
        Some(libc::SIGSYS),
        "killed by the filter: {}",
        run.output
    );
    assert!(!run.results.contains_key("x32") && !run.results.contains_key("after"));
}
