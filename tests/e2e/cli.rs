//! The command line: help texts and readable errors.

use std::process::Command;

/// Runs `berth` with `args` to completion: (success, stdout, stderr).
pub(crate) fn berth(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.args(args).env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run berth");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_explains_the_commands() {
    let (ok, out, _) = berth(&["--help"], &[]);
    assert!(ok);
    assert!(out.contains("serve"), "{out}");
    let (ok, out, _) = berth(&["serve", "--help"], &[]);
    assert!(ok);
    for flag in [
        "--listen",
        "--data-dir",
        "--config",
        "127.0.0.1:5000",
        "BERTH_",
    ] {
        assert!(out.contains(flag), "{flag} missing from:\n{out}");
    }
}

#[test]
fn bad_configuration_is_reported_readably() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[server]\nlisten = 5\n").unwrap();
    let (ok, _, err) = berth(&["serve", "--config", bad.to_str().unwrap()], &[]);
    assert!(!ok);
    assert!(
        err.contains("invalid configuration") && err.contains("bad.toml"),
        "{err}"
    );

    let (ok, _, err) = berth(&["serve", "--config", "/nonexistent/berth.toml"], &[]);
    assert!(!ok);
    assert!(err.contains("cannot read configuration file"), "{err}");

    let (ok, _, err) = berth(&["serve"], &[("BERTH_SERVER_NOPE", "1")]);
    assert!(!ok);
    assert!(err.contains("BERTH_SERVER_NOPE"), "{err}");

    let data = dir.path().join("d");
    let (ok, _, err) = berth(
        &["serve", "--data-dir", data.to_str().unwrap()],
        &[("BERTH_DATABASE_URL", "mysql://x")],
    );
    assert!(!ok);
    assert!(err.contains("unsupported database URL"), "{err}");
}

#[test]
fn a_port_in_use_is_reported() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = berth(
        &[
            "serve",
            "--listen",
            &addr,
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
        &[],
    );
    assert!(!ok);
    assert!(err.contains("cannot listen on"), "{err}");
}

#[test]
fn migrate_applies_the_schema_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let (ok, _, err) = berth(&["migrate", "--data-dir", data.to_str().unwrap()], &[]);
    assert!(ok, "{err}");
    assert!(err.contains("database schema is up to date"), "{err}");
    assert!(data.join("berth.db").is_file());
    // Twice is fine.
    let (ok, _, err) = berth(&["migrate", "--data-dir", data.to_str().unwrap()], &[]);
    assert!(ok, "{err}");
    let (ok, out, _) = berth(&["migrate", "--help"], &[]);
    assert!(ok && out.contains("migrations"), "{out}");
}
