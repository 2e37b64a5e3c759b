//! The runtime's image commands against a berth registry started by the test: `berth pull`
//! (platform choice, parallel layers, resumption, credentials), the unpacked layers
//! (ownership, modes, links, devices, whiteouts), `images`, `inspect`, `tag`, `rmi`, and
//! hostile layers that must be refused without touching anything outside the store.
//! Unpacking preserves ownership and creates device nodes, so these tests need root (CI runs
//! as root; elsewhere they are skipped with a message).

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::cli::berth;
use crate::client::{OCI_CONFIG, OCI_INDEX, OCI_MANIFEST};
use crate::harness::{Berth, random_bytes, required, sha256};

const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

pub(crate) fn is_root() -> bool {
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if !root {
        assert!(!required(), "the runtime tests must run as root in CI");
        eprintln!("SKIPPED: the runtime tests need root");
    }
    root
}

/// One tar entry of a test layer.
pub(crate) enum E<'a> {
    Dir(&'a str, u32),
    File(&'a str, &'a [u8], u32, u64),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Char(&'a str, u32, u32),
    Fifo(&'a str),
    /// A regular file whose name is written raw, unchecked (for hostile layers).
    Raw(&'a str, &'a [u8]),
}

pub(crate) fn tar(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        let (path, data): (&str, &[u8]) = match e {
            E::Dir(p, mode) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                (p, b"")
            }
            E::File(p, data, mode, owner) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_uid(*owner);
                h.set_gid(*owner);
                (p, data)
            }
            E::Symlink(p, target) | E::Hardlink(p, target) => {
                h.set_entry_type(if matches!(e, E::Symlink(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                h.set_mode(0o777);
                let name = h.as_old_mut();
                name.linkname[..target.len()].copy_from_slice(target.as_bytes());
                (p, b"")
            }
            E::Char(p, major, minor) => {
                h.set_entry_type(tar::EntryType::Char);
                h.set_mode(0o666);
                h.set_device_major(*major).expect("major");
                h.set_device_minor(*minor).expect("minor");
                (p, b"")
            }
            E::Fifo(p) => {
                h.set_entry_type(tar::EntryType::Fifo);
                h.set_mode(0o644);
                (p, b"")
            }
            E::Raw(p, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                (p, data)
            }
        };
        let name = &mut h.as_old_mut().name;
        name.fill(0);
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, data).expect("append");
    }
    b.into_inner().expect("tar")
}

pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

/// Pushes an image of the given (uncompressed tar, media type) layers; returns the manifest
/// descriptor. `diff_ids` may be overridden to lie.
async fn push_image(
    b: &Berth,
    repo: &str,
    reference: &str,
    arch: &str,
    layers: &[(Vec<u8>, &'static str)],
    lie_about_diff_ids: bool,
) -> serde_json::Value {
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for (raw, media_type) in layers {
        let blob = match *media_type {
            ZSTD => zstd::encode_all(raw.as_slice(), 3).expect("zstd"),
            _ => gzip(raw),
        };
        descriptors.push(
            b.push_blob_typed(repo, &blob, media_type)
                .await
                .descriptor(),
        );
        diff_ids.push(if lie_about_diff_ids {
            sha256(b"something else")
        } else {
            sha256(raw)
        });
    }
    let config = json!({
        "architecture": arch, "os": "linux",
        "config": {"Cmd": ["/bin/tool"], "Env": ["A=1"]},
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
    let pushed = b
        .push_manifest_json(repo, reference, OCI_MANIFEST, &manifest)
        .await;
    let mut d = pushed.descriptor();
    d["platform"] = json!({"os": "linux", "architecture": arch});
    d
}

pub(crate) struct Runtime {
    pub(crate) root: tempfile::TempDir,
    pub(crate) env: Vec<(String, String)>,
}

impl Runtime {
    pub(crate) fn new() -> Runtime {
        let root = tempfile::tempdir().expect("root");
        let auth = root.path().join("auth/auth.json");
        Runtime {
            env: vec![
                (
                    "BERTH_ROOT".into(),
                    root.path().join("store").display().to_string(),
                ),
                ("BERTH_AUTH_FILE".into(), auth.display().to_string()),
                // Never Docker's own logins from the machine running the tests.
                (
                    "DOCKER_CONFIG".into(),
                    root.path().join("docker").display().to_string(),
                ),
            ],
            root,
        }
    }

    pub(crate) fn store(&self) -> PathBuf {
        self.root.path().join("store")
    }

    pub(crate) fn run(&self, args: &[&str]) -> (bool, String, String) {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        berth(args, &env)
    }

    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args);
        assert!(ok, "berth {args:?} failed:\n{out}\n{err}");
        out
    }

    fn layer_dirs(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.store().join("layers/sha256"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    }

    fn layer_with(&self, file: &str) -> PathBuf {
        self.layer_dirs()
            .into_iter()
            .find(|d| d.join(file).symlink_metadata().is_ok())
            .unwrap_or_else(|| panic!("no layer holds {file}"))
    }
}

#[tokio::test]
async fn pull_unpacks_layers_with_metadata_whiteouts_and_the_chosen_platform() {
    if !is_root() {
        return;
    }
    let b = Berth::start();
    let base = tar(&[
        E::Dir("etc/", 0o755),
        E::File("etc/app.conf", b"v1", 0o640, 1000),
        E::Dir("bin/", 0o755),
        E::File("bin/tool", b"#!/bin/sh\necho tool\n", 0o4755, 0),
        E::Symlink("bin/link", "tool"),
        E::Hardlink("bin/hard", "bin/tool"),
        E::Dir("dev/", 0o755),
        E::Char("dev/null2", 1, 3),
        E::Dir("run/", 0o755),
        E::Fifo("run/pipe"),
        E::Dir("data/", 0o700),
        E::File("data/old.txt", b"old", 0o644, 0),
        E::File("gone.txt", b"bye", 0o644, 0),
    ]);
    let top = tar(&[
        E::File(".wh.gone.txt", b"", 0o644, 0),
        E::Dir("data/", 0o700),
        E::File("data/.wh..wh..opq", b"", 0o644, 0),
        E::File("data/new.txt", b"new", 0o600, 33),
    ]);
    let amd = push_image(
        &b,
        "rt/app",
        "amd64",
        "amd64",
        &[(base.clone(), GZIP), (top, ZSTD)],
        false,
    )
    .await;
    let arm_layer = tar(&[E::File("arch.txt", b"arm64", 0o644, 0)]);
    let arm = push_image(&b, "rt/app", "arm64", "arm64", &[(arm_layer, GZIP)], false).await;
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [amd, arm]});
    b.push_manifest_json("rt/app", "1.0", OCI_INDEX, &index)
        .await;

    let rt = Runtime::new();
    let name = format!("{}/rt/app:1.0", b.host());
    let out = rt.ok(&["pull", "--platform", "linux/amd64", &name]);
    assert!(out.starts_with(&name), "{out}");
    assert_eq!(rt.layer_dirs().len(), 2);
    let lower = rt.layer_with("etc/app.conf");
    let meta = |p: &str| std::fs::symlink_metadata(lower.join(p)).expect(p);
    assert_eq!(
        std::fs::read(lower.join("etc/app.conf")).expect("file"),
        b"v1"
    );
    assert_eq!(meta("etc/app.conf").permissions().mode() & 0o7777, 0o640);
    assert_eq!(
        (meta("etc/app.conf").uid(), meta("etc/app.conf").gid()),
        (1000, 1000)
    );
    assert_eq!(
        meta("bin/tool").permissions().mode() & 0o7777,
        0o4755,
        "setuid kept"
    );
    assert_eq!(meta("bin/tool").mtime(), 1_700_000_000);
    assert_eq!(
        std::fs::read_link(lower.join("bin/link")).expect("link"),
        Path::new("tool")
    );
    assert_eq!(
        meta("bin/hard").ino(),
        meta("bin/tool").ino(),
        "hard link shares the inode"
    );
    assert!(meta("dev/null2").file_type().is_char_device());
    assert_eq!(meta("dev/null2").rdev(), nix_makedev(1, 3));
    assert!(meta("run/pipe").file_type().is_fifo());
    assert_eq!(meta("data").permissions().mode() & 0o7777, 0o700);
    let upper = rt.layer_with("data/new.txt");
    let whiteout = std::fs::symlink_metadata(upper.join("gone.txt")).expect("whiteout");
    assert!(
        whiteout.file_type().is_char_device() && whiteout.rdev() == 0,
        "overlay whiteout"
    );
    assert!(upper.join(".wh.gone.txt").symlink_metadata().is_err());
    assert_eq!(
        xattr::get(upper.join("data"), "trusted.overlay.opaque").expect("xattr"),
        Some(b"y".to_vec()),
        "opaque directory"
    );
    assert_eq!(
        std::fs::symlink_metadata(upper.join("data/new.txt"))
            .expect("new")
            .uid(),
        33
    );

    // The store lists, inspects, tags and removes; a second pull downloads nothing.
    let images = rt.ok(&["images"]);
    assert!(images.contains(&name), "{images}");
    // SIZE as docker prints it (`5.6kB`, `1.07MB`), under its header.
    let header = images.lines().next().expect("header");
    let line = images
        .lines()
        .find(|l| l.starts_with(&name))
        .expect("image");
    let size = line.split_whitespace().last().expect("size");
    assert_eq!(header.find("SIZE"), line.rfind(size), "{images}");
    let number = size.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    assert!(
        ["B", "kB", "MB"].contains(&&size[number.len()..]) && number.parse::<f64>().is_ok(),
        "{images}"
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&rt.ok(&["inspect", &name])).expect("json");
    assert_eq!(inspect["config"]["architecture"], "amd64");
    assert_eq!(
        inspect["image"]["layers"].as_array().expect("layers").len(),
        2
    );
    let (ok, _, err) = rt.run(&["pull", "--platform", "linux/amd64", &name]);
    assert!(ok && err.matches("already present").count() == 2, "{err}");
    let alias = format!("{}/rt/alias:x", b.host());
    rt.ok(&["tag", &name, &alias]);
    rt.ok(&["rmi", &name]);
    assert_eq!(rt.layer_dirs().len(), 2, "the alias still uses the layers");
    rt.ok(&["rmi", &alias]);
    assert!(rt.layer_dirs().is_empty(), "unused layers are removed");

    // On a terminal (script(1) provides one) each layer gets a bar, as with docker pull.
    let berth = env!("CARGO_BIN_EXE_berth");
    let inner = format!("{berth} pull --platform linux/amd64 {name}");
    let out = std::process::Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .envs(rt.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Downloading ["), "{text}");
    for layer in inspect["image"]["layers"].as_array().expect("layers") {
        let short = &layer.as_str().expect("digest")["sha256:".len()..][..12];
        assert!(text.contains(&format!("{short}: Pull complete")), "{text}");
    }
    let (ok, _, err) = rt.run(&["rmi", &alias]);
    assert!(!ok && err.contains("no such image"), "{err}");

    // The other platform, chosen by flag; a platform the index lacks is a readable error.
    rt.ok(&["pull", "--platform", "linux/arm64", &name]);
    assert_eq!(
        std::fs::read(rt.layer_with("arch.txt").join("arch.txt")).expect("arm"),
        b"arm64"
    );
    let (ok, _, err) = rt.run(&["pull", "--platform", "linux/s390x", &name]);
    assert!(
        !ok && err.contains("no image for platform linux/s390x"),
        "{err}"
    );
    assert!(err.contains("linux/amd64, linux/arm64"), "{err}");
}

fn nix_makedev(major: u64, minor: u64) -> u64 {
    ((major & 0xffff_f000) << 32)
        | ((major & 0x0000_0fff) << 8)
        | ((minor & 0xffff_ff00) << 12)
        | (minor & 0x0000_00ff)
}

#[tokio::test]
async fn hostile_layers_are_refused_and_nothing_outside_is_touched() {
    if !is_root() {
        return;
    }
    let b = Berth::start();
    let outside = tempfile::tempdir().expect("outside");
    let target = outside.path().display().to_string();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dotdot",
            tar(&[E::Raw("../../../escape.txt", b"x")]),
            "climbs out with `..`",
        ),
        (
            "absolute",
            tar(&[E::Raw("/tmp/absolute-escape.txt", b"x")]),
            "absolute path",
        ),
        (
            "symlink",
            tar(&[E::Symlink("link", &target), E::Raw("link/pwned.txt", b"x")]),
            "is a symlink",
        ),
        (
            "hardlink",
            tar(&[E::Hardlink("passwd", "../../../../etc/passwd")]),
            "climbs out with `..`",
        ),
    ];
    let rt = Runtime::new();
    for (tag, layer, reason) in cases {
        push_image(&b, "rt/hostile", tag, "amd64", &[(layer, GZIP)], false).await;
        let name = format!("{}/rt/hostile:{tag}", b.host());
        let (ok, _, err) = rt.run(&["pull", "--platform", "linux/amd64", &name]);
        assert!(!ok, "{tag}: a hostile layer was accepted");
        assert!(
            err.contains("refused") && err.contains(reason),
            "{tag}: {err}"
        );
        assert!(
            rt.layer_dirs().is_empty(),
            "{tag}: a refused layer was kept"
        );
    }
    assert_eq!(
        std::fs::read_dir(outside.path()).expect("outside").count(),
        0
    );
    assert!(!Path::new("/tmp/absolute-escape.txt").exists());
    let leftovers: Vec<_> = std::fs::read_dir(rt.store().join("tmp"))
        .expect("tmp")
        .flatten()
        .filter(|e| e.path().is_dir())
        .collect();
    assert!(leftovers.is_empty(), "partial layers left: {leftovers:?}");

    // A layer whose uncompressed content is not what the config says.
    let layer = tar(&[E::File("a.txt", b"a", 0o644, 0)]);
    push_image(&b, "rt/hostile", "lying", "amd64", &[(layer, GZIP)], true).await;
    let name = format!("{}/rt/hostile:lying", b.host());
    let (ok, _, err) = rt.run(&["pull", "--platform", "linux/amd64", &name]);
    assert!(
        !ok && err.contains("uncompressed layer") && err.contains("refused"),
        "{err}"
    );
    assert!(rt.layer_dirs().is_empty());
    let (ok, _, err) = rt.run(&["images"]);
    assert!(ok && !err.contains("lying"));
}

#[tokio::test]
async fn interrupted_downloads_resume_from_the_partial_file() {
    if !is_root() {
        return;
    }
    let b = Berth::start();
    let data = random_bytes(3 << 20, 7);
    let layer = tar(&[E::File("big.bin", &data, 0o644, 0)]);
    push_image(&b, "rt/big", "1", "amd64", &[(layer.clone(), GZIP)], false).await;
    let blob = gzip(&layer);
    let hex = sha256(&blob).trim_start_matches("sha256:").to_owned();
    let name = format!("{}/rt/big:1", b.host());
    let rt = Runtime::new();
    std::fs::create_dir_all(rt.store().join("tmp")).expect("tmp");
    let partial = rt.store().join(format!("tmp/partial-{hex}"));

    // A partial file with wrong bytes proves the pull continues from it: the digest fails.
    let mut wrong = blob[..blob.len() / 2].to_vec();
    wrong[10] ^= 0xff;
    std::fs::write(&partial, &wrong).expect("partial");
    let (ok, _, err) = rt.run(&["pull", "--platform", "linux/amd64", &name]);
    assert!(!ok && err.contains("refused"), "{err}");
    assert!(!partial.exists(), "a bad partial download is discarded");

    // With the right first half, the pull completes from there and verifies the whole.
    std::fs::write(&partial, &blob[..blob.len() / 2]).expect("partial");
    rt.ok(&["pull", "--platform", "linux/amd64", &name]);
    assert_eq!(
        std::fs::read(rt.layer_with("big.bin").join("big.bin")).expect("big"),
        data
    );
    assert!(!partial.exists());
}

#[tokio::test]
async fn pulls_log_in_with_berths_or_dockers_credentials() {
    if !is_root() {
        return;
    }
    let b = crate::ui::Hub::start(true).await.b;
    let layer = tar(&[E::File("secret.txt", b"s", 0o600, 0)]);
    push_image(&b, "acme/private", "1", "amd64", &[(layer, GZIP)], false).await;
    let name = format!("{}/acme/private:1", b.host());
    let rt = Runtime::new();
    let (ok, _, err) = rt.run(&["pull", "--platform", "linux/amd64", &name]);
    assert!(!ok && err.contains("cannot pull"), "{err}");

    let login = |password: &str| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_berth"));
        cmd.args(["login", "-u", "alice", "--password-stdin", &b.host()])
            .envs(rt.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("login");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{password}\n").as_bytes())
            .expect("password");
        child.wait_with_output().expect("login")
    };
    let refused = login("wrong-password");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("refused the credentials"));
    let accepted = login(crate::ui::ALICE_PASSWORD);
    assert!(
        accepted.status.success(),
        "{}",
        String::from_utf8_lossy(&accepted.stderr)
    );
    let file = rt.root.path().join("auth/auth.json");
    assert_eq!(
        std::fs::metadata(&file).expect("file").permissions().mode() & 0o777,
        0o600
    );
    assert!(
        !std::fs::read_to_string(&file)
            .expect("file")
            .contains(crate::ui::ALICE_PASSWORD)
    );
    rt.ok(&["pull", "--platform", "linux/amd64", &name]);
    rt.ok(&["logout", &b.host()]);
    rt.ok(&["rmi", &name]);

    // Docker's config.json works too.
    let docker_dir = rt.root.path().join("docker");
    std::fs::create_dir_all(&docker_dir).expect("docker dir");
    let auth = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("alice:{}", crate::ui::ALICE_PASSWORD),
    );
    std::fs::write(
        docker_dir.join("config.json"),
        json!({"auths": {b.host(): {"auth": auth}}}).to_string(),
    )
    .expect("docker config");
    rt.ok(&["pull", "--platform", "linux/amd64", &name]);
}

#[tokio::test]
async fn an_image_built_and_pushed_by_docker_pulls_and_unpacks() {
    use crate::real_clients::{Docker, busybox, docker_build};
    if !is_root() {
        return;
    }
    let (Some(docker), Some(busybox)) = (Docker::get(), busybox()) else {
        return;
    };
    let b = Berth::start();
    let image = format!("{}/rt/docker-built:v1", b.host());
    docker_build(&docker, &busybox, "hello from docker", &image);
    docker.ok(&["push", &image]);
    docker.ok(&["rmi", &image]);
    let rt = Runtime::new();
    rt.ok(&["pull", &image]);
    let bin = rt.layer_with("bin/busybox").join("bin/busybox");
    assert!(
        std::fs::metadata(&bin)
            .expect("busybox")
            .permissions()
            .mode()
            & 0o111
            != 0
    );
    let hello = rt.layer_with("hello.txt").join("hello.txt");
    assert_eq!(
        std::fs::read_to_string(hello).expect("hello"),
        "hello from docker\n"
    );
    // `RUN rm /etc/doomed.txt` became a whiteout in the last layer.
    let whiteout = rt
        .layer_dirs()
        .into_iter()
        .map(|d| d.join("etc/doomed.txt"))
        .filter_map(|p| std::fs::symlink_metadata(p).ok())
        .find(|m| m.file_type().is_char_device());
    assert!(
        whiteout.is_some_and(|m| m.rdev() == 0),
        "no whiteout for the deleted file"
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&rt.ok(&["inspect", &image])).expect("json");
    assert_eq!(
        inspect["config"]["rootfs"]["diff_ids"]
            .as_array()
            .expect("ids")
            .len(),
        4
    );
}
