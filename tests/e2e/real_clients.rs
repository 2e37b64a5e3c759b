//! Real clients against berth: Debian's docker (dockerd started by `tests/run`), skopeo and
//! containerd's `ctr`. In CI a missing tool or daemon fails the test; elsewhere it is skipped
//! with a message.

use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::client::{OCI_INDEX, OCI_MANIFEST, Pushed};
use crate::harness::{Berth, required, sha256, tool};

/// Runs a command, returning (success, stdout, stderr).
pub(crate) fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs a command that must succeed; returns its stdout.
pub(crate) fn ok(cmd: &mut Command) -> String {
    let shown = format!("{cmd:?}");
    let (success, out, err) = run(cmd);
    assert!(success, "{shown} failed:\nstdout:\n{out}\nstderr:\n{err}");
    out
}

/// A docker client bound to the test daemon, or `None` (skip) outside CI.
pub(crate) struct Docker {
    bin: PathBuf,
    host: String,
    config: tempfile::TempDir,
}

impl Docker {
    pub(crate) fn get() -> Option<Self> {
        let host = std::env::var("BERTH_TEST_DOCKER_HOST").ok();
        let bin = std::env::var_os("BERTH_TEST_DOCKER")
            .map(PathBuf::from)
            .or_else(|| tool("docker"));
        match (host, bin) {
            (Some(host), Some(bin)) => Some(Self {
                bin,
                host,
                config: tempfile::tempdir().expect("docker config dir"),
            }),
            (None, _) => {
                assert!(
                    !required(),
                    "BERTH_TEST_DOCKER_HOST is not set: run the suite through tests/run"
                );
                eprintln!("SKIPPED: no test dockerd (BERTH_TEST_DOCKER_HOST); run tests/run");
                None
            }
            (_, None) => None,
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.env("DOCKER_HOST", &self.host)
            .env("DOCKER_CONFIG", self.config.path())
            .env("DOCKER_BUILDKIT", "0")
            .args(args);
        c
    }

    pub(crate) fn ok(&self, args: &[&str]) -> String {
        ok(&mut self.cmd(args))
    }

    /// Runs docker; returns (success, stdout, stderr).
    pub(crate) fn run(&self, args: &[&str]) -> (bool, String, String) {
        run(&mut self.cmd(args))
    }

    /// `docker login` with the password on standard input.
    pub(crate) fn login(&self, host: &str, user: &str, password: &str) {
        use std::io::Write;
        let mut child = self
            .cmd(&["login", "--username", user, "--password-stdin", host])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(password.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "docker login {user}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

pub(crate) fn busybox() -> Option<PathBuf> {
    let path = PathBuf::from(
        std::env::var("BERTH_TEST_BUSYBOX").unwrap_or_else(|_| "/bin/busybox".into()),
    );
    if path.is_file() {
        return Some(path);
    }
    assert!(
        !required(),
        "busybox-static is required in CI ({} missing)",
        path.display()
    );
    eprintln!(
        "SKIPPED: {} not found (apt install busybox-static)",
        path.display()
    );
    None
}

/// A build context: a busybox root filesystem, and a file that a later layer deletes.
fn build_context(dir: &Path, busybox: &Path, greeting: &str) {
    std::fs::create_dir_all(dir.join("rootfs/bin")).unwrap();
    std::fs::copy(busybox, dir.join("rootfs/bin/busybox")).unwrap();
    std::fs::write(dir.join("hello.txt"), format!("{greeting}\n")).unwrap();
    std::fs::write(
        dir.join("doomed.txt"),
        "this file is deleted in a later layer\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        r#"FROM scratch
COPY rootfs/ /
COPY doomed.txt /etc/doomed.txt
COPY hello.txt /hello.txt
RUN ["/bin/busybox", "rm", "/etc/doomed.txt"]
CMD ["/bin/busybox", "sh", "-c", "/bin/busybox cat /hello.txt; /bin/busybox test -e /etc/doomed.txt && echo doomed-still-there || echo doomed-is-gone"]
"#,
    )
    .unwrap();
}

/// Builds the busybox image of [`build_context`] as `image` with the test dockerd.
pub(crate) fn docker_build(docker: &Docker, busybox: &Path, greeting: &str, image: &str) {
    let ctx = tempfile::tempdir().expect("build context");
    build_context(ctx.path(), busybox, greeting);
    docker.ok(&[
        "build",
        "--network",
        "none",
        "-t",
        image,
        ctx.path().to_str().expect("path"),
    ]);
}

/// Request body bytes received by upload endpoints, from berth's request log.
fn uploaded_bytes(b: &Berth) -> u64 {
    b.logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == "request")
        .filter(|v| {
            matches!(
                v["route"].as_str(),
                Some("upload_patch" | "upload_finish" | "upload_start")
            )
        })
        .filter_map(|v| v["bytes_in"].as_u64())
        .sum()
}

#[tokio::test]
async fn docker_push_pull_run_and_cross_repository_mount() {
    let (Some(docker), Some(busybox)) = (Docker::get(), busybox()) else {
        return;
    };
    let b = Berth::start();
    let image = format!("{}/test/busybox:v1", b.host());
    let copy = format!("{}/other/copy:v1", b.host());
    docker_build(&docker, &busybox, "hello from berth", &image);

    let out = docker.ok(&["push", &image]);
    let layers = out.lines().filter(|l| l.ends_with(": Pushed")).count();
    assert_eq!(layers, 4, "{out}");
    let sent_by_first_push = uploaded_bytes(&b);
    assert!(sent_by_first_push > 1_000_000, "busybox alone is over 1 MB");

    // The same image in a second repository: every layer is mounted, none re-sent. (Docker
    // re-sends only the small config blob, which it never mounts.)
    docker.ok(&["tag", &image, &copy]);
    let out = docker.ok(&["push", &copy]);
    let mounted = out
        .lines()
        .filter(|l| l.ends_with(": Mounted from test/busybox"))
        .count();
    assert_eq!(mounted, layers, "{out}");
    let sent_by_second_push = uploaded_bytes(&b) - sent_by_first_push;
    assert!(
        sent_by_second_push < 10_000,
        "second push sent {sent_by_second_push} bytes"
    );

    // Remove it locally, pull it back and run it.
    docker.ok(&["rmi", &image, &copy]);
    let (gone, _, _) = run(&mut docker.cmd(&["image", "inspect", &image]));
    assert!(!gone, "image still present locally");
    docker.ok(&["pull", &image]);
    let out = docker.ok(&["run", "--rm", "--network", "none", &image]);
    assert_eq!(out, "hello from berth\ndoomed-is-gone\n");
    docker.ok(&["pull", &copy]);
    docker.ok(&["rmi", &image, &copy]);
}

#[tokio::test]
async fn docker_manifest_create_annotate_push() {
    let (Some(docker), Some(busybox)) = (Docker::get(), busybox()) else {
        return;
    };
    let b = Berth::start();
    let mut pushed = Vec::new();
    for (tag, greeting) in [("amd64", "on amd64"), ("arm64", "on arm64")] {
        let image = format!("{}/multi/app:{tag}", b.host());
        docker_build(&docker, &busybox, greeting, &image);
        docker.ok(&["push", &image]);
        pushed.push(image);
    }
    let list = format!("{}/multi/app:latest", b.host());
    docker.ok(&[
        "manifest",
        "create",
        "--insecure",
        &list,
        &pushed[0],
        &pushed[1],
    ]);
    docker.ok(&[
        "manifest",
        "annotate",
        "--arch",
        "arm64",
        "--variant",
        "v8",
        &list,
        &pushed[1],
    ]);
    docker.ok(&["manifest", "push", "--insecure", &list]);

    let resp = b.get("/v2/multi/app/manifests/latest").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-type"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    let index: Value = resp.json().await.unwrap();
    let platforms: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["platform"]["architecture"].as_str().unwrap().to_owned(),
                m["platform"]["variant"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        platforms,
        [("amd64".into(), "".into()), ("arm64".into(), "v8".into())]
    );
    for m in index["manifests"].as_array().unwrap() {
        let child = b
            .get(&format!(
                "/v2/multi/app/manifests/{}",
                m["digest"].as_str().unwrap()
            ))
            .await;
        assert_eq!(child.status(), StatusCode::OK);
    }
    let out = docker.ok(&["manifest", "inspect", "--insecure", &list]);
    assert!(out.contains("arm64"), "{out}");
}

/// Builds a real gzip-compressed layer with one file, returning (tar.gz bytes, diff id).
fn layer_tarball(file: &str, content: &str) -> (Vec<u8>, String) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join(file), content).unwrap();
    let tar = dir.path().join("layer.tar");
    ok(Command::new("tar")
        .args(["--sort=name", "--mtime=@0", "--owner=0", "--group=0", "-cf"])
        .arg(&tar)
        .arg("-C")
        .arg(&root)
        .arg("."));
    let diff_id = sha256(&std::fs::read(&tar).unwrap());
    ok(Command::new("gzip").arg("-n").arg(&tar));
    (
        std::fs::read(dir.path().join("layer.tar.gz")).unwrap(),
        diff_id,
    )
}

/// Pushes a valid, unpackable two-platform OCI image (index of two manifests).
pub(crate) async fn push_multi_platform(b: &Berth, repo: &str, tag: &str) -> (Pushed, Vec<Pushed>) {
    let mut children = Vec::new();
    let mut descs = Vec::new();
    for arch in ["amd64", "arm64"] {
        let (layer, diff_id) = layer_tarball("arch.txt", arch);
        let layer = b
            .push_blob_typed(repo, &layer, "application/vnd.oci.image.layer.v1.tar+gzip")
            .await;
        let config = json!({
            "architecture": arch, "os": "linux",
            "config": { "Cmd": ["/bin/sh"] },
            "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        });
        let config = b
            .push_blob_typed(
                repo,
                &serde_json::to_vec(&config).unwrap(),
                "application/vnd.oci.image.config.v1+json",
            )
            .await;
        let manifest = json!({ "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config.descriptor(), "layers": [layer.descriptor()] });
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let child = b
            .push_manifest_json(repo, &sha256(&bytes), OCI_MANIFEST, &manifest)
            .await;
        let mut d = child.descriptor();
        d["platform"] = json!({ "architecture": arch, "os": "linux" });
        descs.push(d);
        children.push(child);
    }
    let index = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descs });
    (
        b.push_manifest_json(repo, tag, OCI_INDEX, &index).await,
        children,
    )
}

pub(crate) fn skopeo() -> Option<Command> {
    tool("skopeo").map(|bin| {
        let mut c = Command::new(bin);
        c.arg("--insecure-policy");
        c
    })
}

#[tokio::test]
async fn skopeo_copy_inspect_list_delete_and_oci_layouts() {
    let Some(_) = skopeo() else { return };
    let src = Berth::start();
    let dst = Berth::start();
    let (index, children) = push_multi_platform(&src, "src/multi", "v1").await;
    let from = format!("docker://{}/src/multi:v1", src.host());
    let to = format!("docker://{}/dst/multi:v1", dst.host());

    // Registry to registry, every platform, identical bytes.
    ok(skopeo().unwrap().args([
        "copy",
        "--all",
        "--preserve-digests",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &from,
        &to,
    ]));
    let resp = dst.get("/v2/dst/multi/manifests/v1").await;
    assert_eq!(
        resp.headers()["docker-content-digest"],
        index.digest.as_str()
    );
    assert_eq!(resp.bytes().await.unwrap().as_ref(), index.bytes.as_slice());
    for child in &children {
        let resp = dst
            .get(&format!("/v2/dst/multi/manifests/{}", child.digest))
            .await;
        assert_eq!(resp.bytes().await.unwrap().as_ref(), child.bytes.as_slice());
    }

    // inspect and list-tags.
    let out = ok(skopeo()
        .unwrap()
        .args(["inspect", "--tls-verify=false", &to]));
    let inspected: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(inspected["Digest"], index.digest.as_str());
    assert_eq!(
        inspected["Architecture"], "amd64",
        "the host's platform is resolved from the index"
    );
    let raw = ok(skopeo()
        .unwrap()
        .args(["inspect", "--raw", "--tls-verify=false", &to]));
    assert_eq!(raw.as_bytes(), index.bytes.as_slice());
    let out = ok(skopeo().unwrap().args([
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{}/dst/multi", dst.host()),
    ]));
    let tags: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(tags["Tags"], json!(["v1"]));

    // Out to an OCI layout and back in.
    let layout = tempfile::tempdir().unwrap();
    let oci = format!("oci:{}:v1", layout.path().join("img").display());
    ok(skopeo().unwrap().args([
        "copy",
        "--all",
        "--preserve-digests",
        "--src-tls-verify=false",
        &to,
        &oci,
    ]));
    let back = format!("docker://{}/from/layout:v1", dst.host());
    ok(skopeo().unwrap().args([
        "copy",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &oci,
        &back,
    ]));
    let resp = dst.head("/v2/from/layout/manifests/v1").await;
    assert_eq!(
        resp.headers()["docker-content-digest"],
        index.digest.as_str()
    );

    // delete removes the manifest by digest.
    ok(skopeo()
        .unwrap()
        .args(["delete", "--tls-verify=false", &to]));
    assert_eq!(
        dst.get("/v2/dst/multi/manifests/v1").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        dst.get(&format!("/v2/dst/multi/manifests/{}", index.digest))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn containerd_ctr_pulls_and_pushes() {
    let Some(ctr) = tool("ctr") else { return };
    let Ok(socket) = std::env::var("BERTH_TEST_CONTAINERD") else {
        assert!(
            !required(),
            "BERTH_TEST_CONTAINERD is not set: run the suite through tests/run"
        );
        eprintln!("SKIPPED: no test containerd (BERTH_TEST_CONTAINERD); run tests/run");
        return;
    };
    let b = Berth::start();
    let (index, _) = push_multi_platform(&b, "ctr/multi", "v1").await;
    let namespace = format!("berth-test-{}", b.addr.port());
    let ctr_cmd = |args: &[&str]| {
        let mut c = Command::new(&ctr);
        c.args(["--address", &socket, "--namespace", &namespace])
            .args(args);
        c
    };
    let image = format!("{}/ctr/multi:v1", b.host());
    ok(&mut ctr_cmd(&[
        "images",
        "pull",
        "--plain-http",
        "--all-platforms",
        &image,
    ]));
    let listed = ok(&mut ctr_cmd(&["images", "ls"]));
    assert!(
        listed.contains(&image) && listed.contains(&index.digest),
        "{listed}"
    );
    // And push back under another name.
    let pushed = format!("{}/ctr/pushed:v2", b.host());
    ok(&mut ctr_cmd(&["images", "tag", &image, &pushed]));
    ok(&mut ctr_cmd(&["images", "push", "--plain-http", &pushed]));
    let resp = b.head("/v2/ctr/pushed/manifests/v2").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["docker-content-digest"],
        index.digest.as_str()
    );
    ok(&mut ctr_cmd(&["images", "rm", &image, &pushed]));
}
