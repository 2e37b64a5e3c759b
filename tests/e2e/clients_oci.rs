//! More real clients against berth: podman and buildah (each test gives them a storage root of
//! its own), umoci on OCI layouts that skopeo copies in and out, and the oras Python client
//! (PyPI `oras`) pushing and pulling helm charts and cosign signatures with the media types,
//! tags and annotations helm and cosign use. In CI a missing tool fails the test; elsewhere it
//! is skipped with a message.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::client::{DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use crate::harness::{Berth, required, sha256, tool};
use crate::real_clients::{busybox, ok, push_multi_platform, skopeo};

/// podman and buildah sharing a storage of their own (vfs driver, under a temporary
/// directory), so tests share no images and leave nothing in the host's storage.
struct Containers {
    podman: PathBuf,
    buildah: PathBuf,
    dir: tempfile::TempDir,
}

impl Containers {
    fn get() -> Option<Self> {
        Some(Self {
            podman: tool("podman")?,
            buildah: tool("buildah")?,
            dir: tempfile::tempdir().expect("storage dir"),
        })
    }

    fn cmd(&self, bin: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(bin);
        c.arg("--root")
            .arg(self.dir.path().join("root"))
            .arg("--runroot")
            .arg(self.dir.path().join("run"))
            .args(["--storage-driver", "vfs"])
            .args(args);
        c
    }

    fn podman(&self, args: &[&str]) -> String {
        ok(&mut self.cmd(&self.podman, args))
    }

    fn buildah(&self, args: &[&str]) -> String {
        ok(&mut self.cmd(&self.buildah, args))
    }

    /// Where `--digestfile` writes go.
    fn file(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.file(name)).expect("digest file")
    }
}

/// The manifest `reference` of `repo` as berth serves it: (content type, digest, JSON).
async fn served(b: &Berth, repo: &str, reference: &str) -> (String, String, Value) {
    let resp = b
        .http
        .get(b.url(&format!("/v2/{repo}/manifests/{reference}")))
        .header(
            "accept",
            format!("{OCI_MANIFEST}, {OCI_INDEX}, {DOCKER_MANIFEST}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{repo}:{reference}");
    let header = |name: &str| resp.headers()[name].to_str().unwrap().to_owned();
    let (content_type, digest) = (header("content-type"), header("docker-content-digest"));
    let body = resp.bytes().await.unwrap();
    assert_eq!(sha256(&body), digest);
    (content_type, digest, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn buildah_builds_and_podman_pushes_pulls_and_pushes_manifest_lists() {
    let (Some(builder), Some(busybox)) = (Containers::get(), busybox()) else {
        return;
    };
    let b = Berth::start();
    let host = b.host();
    let busybox = busybox.display().to_string();

    // buildah: an image from scratch, pushed as OCI.
    let container = builder.buildah(&["from", "scratch"]);
    let container = container.trim();
    builder.buildah(&["copy", container, &busybox, "/bin/busybox"]);
    builder.buildah(&[
        "config",
        "--cmd",
        r#"["/bin/busybox","echo","hello"]"#,
        "--env",
        "GREETING=from buildah",
        container,
    ]);
    builder.buildah(&["commit", "--format", "oci", container, "localhost/bb:v1"]);
    let oci = format!("{host}/pm/busybox:oci");
    builder.buildah(&[
        "push",
        "--tls-verify=false",
        "--digestfile",
        &builder.file("oci.digest"),
        "localhost/bb:v1",
        &format!("docker://{oci}"),
    ]);
    let (media_type, digest, manifest) = served(&b, "pm/busybox", "oci").await;
    assert_eq!(
        (media_type.as_str(), digest),
        (OCI_MANIFEST, builder.read("oci.digest"))
    );
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 1);

    // podman: the same image as Docker schema 2 to another repository.
    let docker = format!("{host}/pm/docker:v1");
    builder.podman(&[
        "push",
        "--tls-verify=false",
        "--format",
        "v2s2",
        "--digestfile",
        &builder.file("docker.digest"),
        "localhost/bb:v1",
        &format!("docker://{docker}"),
    ]);
    let (media_type, digest, _) = served(&b, "pm/docker", "v1").await;
    assert_eq!(
        (media_type.as_str(), digest),
        (DOCKER_MANIFEST, builder.read("docker.digest"))
    );

    // A fresh storage pulls both back: same digests, same configuration. (Both name one
    // image, so its digests list both.)
    let puller = Containers::get().unwrap();
    for (image, digest) in [(&oci, "oci.digest"), (&docker, "docker.digest")] {
        puller.podman(&["pull", "--tls-verify=false", image]);
        let inspected = puller.podman(&[
            "image",
            "inspect",
            "--format",
            "{{.RepoDigests}} {{.Config.Cmd}} {{.Config.Env}}",
            image,
        ]);
        let (repo, _) = image.rsplit_once(':').unwrap();
        let pinned = format!("{repo}@{}", builder.read(digest));
        assert!(
            inspected.contains(&pinned)
                && inspected
                    .trim_end()
                    .ends_with("[/bin/busybox echo hello] [GREETING=from buildah]"),
            "{pinned} in {inspected}"
        );
    }

    // A manifest list of both, pushed with every image it names.
    let list = format!("{host}/pm/list:v1");
    puller.podman(&["manifest", "create", &list]);
    puller.podman(&[
        "manifest",
        "add",
        "--tls-verify=false",
        &list,
        &format!("docker://{oci}"),
    ]);
    puller.podman(&[
        "manifest",
        "add",
        "--tls-verify=false",
        "--arch",
        "arm64",
        "--variant",
        "v8",
        &list,
        &format!("docker://{docker}"),
    ]);
    puller.podman(&[
        "manifest",
        "push",
        "--all",
        "--tls-verify=false",
        "--digestfile",
        &puller.file("list.digest"),
        &list,
        &format!("docker://{list}"),
    ]);
    let (media_type, digest, index) = served(&b, "pm/list", "v1").await;
    assert_eq!(
        (media_type.as_str(), digest),
        (OCI_INDEX, puller.read("list.digest"))
    );
    let children: Vec<(&str, &str)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["platform"]["architecture"].as_str().unwrap(),
                m["digest"].as_str().unwrap(),
            )
        })
        .collect();
    let (oci_digest, docker_digest) = (builder.read("oci.digest"), builder.read("docker.digest"));
    assert_eq!(
        children,
        [
            ("amd64", oci_digest.as_str()),
            ("arm64", docker_digest.as_str())
        ]
    );
    for (_, child) in children {
        let resp = b.head(&format!("/v2/pm/list/manifests/{child}")).await;
        assert_eq!(
            resp.status(),
            StatusCode::OK,
            "{child} pushed with the list"
        );
    }
    // Another storage pulls the arm64 image through the list.
    let arm = Containers::get().unwrap();
    arm.podman(&[
        "pull",
        "--tls-verify=false",
        "--arch",
        "arm64",
        "--variant",
        "v8",
        &list,
    ]);
    let inspected = arm.podman(&["image", "inspect", "--format", "{{.RepoDigests}}", &list]);
    let repo = format!("{host}/pm/list");
    for digest in [puller.read("list.digest"), docker_digest] {
        assert!(
            inspected.contains(&format!("{repo}@{digest}")),
            "{digest} in {inspected}"
        );
    }
}

fn umoci() -> Option<PathBuf> {
    tool("umoci")
}

#[tokio::test]
async fn umoci_unpacks_and_repacks_images_copied_through_oci_layouts() {
    let (Some(umoci), Some(_)) = (umoci(), skopeo()) else {
        return;
    };
    let b = Berth::start();
    push_multi_platform(&b, "layout/src", "v1").await;
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout").display().to_string();
    let bundle = |name: &str| dir.path().join(name);
    let skopeo_copy = |from: &str, to: &str| {
        ok(skopeo().unwrap().args([
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--preserve-digests",
            from,
            to,
        ]))
    };

    // berth -> layout -> umoci unpack: the host's platform, file by file.
    skopeo_copy(
        &format!("docker://{}/layout/src:v1", b.host()),
        &format!("oci:{layout}:v1"),
    );
    ok(Command::new(&umoci)
        .args(["unpack", "--image", &format!("{layout}:v1")])
        .arg(bundle("v1")));
    assert_eq!(
        std::fs::read_to_string(bundle("v1/rootfs/arch.txt")).unwrap(),
        "amd64"
    );

    // Change the root filesystem (a new file, a deleted one) and the configuration, repack.
    std::fs::write(bundle("v1/rootfs/hello.txt"), "repacked by umoci\n").unwrap();
    std::fs::remove_file(bundle("v1/rootfs/arch.txt")).unwrap();
    ok(Command::new(&umoci)
        .args(["repack", "--image", &format!("{layout}:v2")])
        .arg(bundle("v1")));
    ok(Command::new(&umoci).args([
        "config",
        "--image",
        &format!("{layout}:v2"),
        "--config.env",
        "REPACKED=yes",
    ]));
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("layout/index.json")).unwrap())
            .unwrap();
    let v2 = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == "v2")
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_owned();

    // layout -> berth keeps umoci's bytes; berth -> a fresh layout unpacks to the change.
    skopeo_copy(
        &format!("oci:{layout}:v2"),
        &format!("docker://{}/layout/repacked:v2", b.host()),
    );
    let (_, digest, manifest) = served(&b, "layout/repacked", "v2").await;
    assert_eq!(digest, v2);
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 2);
    let fresh = dir.path().join("fresh").display().to_string();
    skopeo_copy(
        &format!("docker://{}/layout/repacked:v2", b.host()),
        &format!("oci:{fresh}:v2"),
    );
    ok(Command::new(&umoci)
        .args(["unpack", "--image", &format!("{fresh}:v2")])
        .arg(bundle("v2")));
    assert_eq!(
        std::fs::read_to_string(bundle("v2/rootfs/hello.txt")).unwrap(),
        "repacked by umoci\n"
    );
    assert!(
        !bundle("v2/rootfs/arch.txt").exists(),
        "the whiteout applies"
    );
    let config: Value =
        serde_json::from_slice(&std::fs::read(bundle("v2/config.json")).unwrap()).unwrap();
    assert!(
        config["process"]["env"]
            .as_array()
            .unwrap()
            .contains(&json!("REPACKED=yes")),
        "{config}"
    );
}

/// The oras Python client, called through `oras_call.py`.
pub(crate) struct Oras {
    python: PathBuf,
}

impl Oras {
    pub(crate) fn get() -> Option<Self> {
        let python = tool("python3")?;
        let (found, _, err) =
            crate::real_clients::run(Command::new(&python).args(["-c", "import oras"]));
        if !found {
            assert!(
                !required(),
                "the oras Python client is required in CI (pip install oras): {err}"
            );
            eprintln!("SKIPPED: the oras Python client is not installed (pip install oras)");
            return None;
        }
        Some(Self { python })
    }

    /// Calls `OrasClient.method(**kwargs)` in `dir` (oras pushes files relative to it).
    pub(crate) fn call(&self, dir: &Path, method: &str, kwargs: &Value) -> Value {
        let out = ok(Command::new(&self.python)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/e2e/oras_call.py"
            ))
            .arg(method)
            .arg(kwargs.to_string())
            .current_dir(dir));
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    /// Pushes, asserting `201 Created`; returns the manifest digest.
    fn push(&self, dir: &Path, kwargs: &Value) -> String {
        let pushed = self.call(dir, "push", kwargs);
        assert_eq!(pushed["status"], 201, "{pushed}");
        pushed["digest"].as_str().unwrap().to_owned()
    }
}

const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
const HELM_CHART: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
const COSIGN_SIMPLESIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const COSIGN_SIGNATURE: &str = "dev.cosignproject.cosign/signature";
const COSIGN_ARTIFACT: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";

/// A helm chart as `helm package` lays it out: `demo-0.1.0.tgz` holding `demo/Chart.yaml`,
/// `values.yaml` and a template; and its `Chart.yaml` as JSON, which helm pushes as the config.
fn helm_chart(dir: &Path) -> (String, String) {
    let chart = dir.join("src/demo");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: demo\nversion: 0.1.0\nappVersion: \"1.0\"\ndescription: A chart pushed to berth\ntype: application\n",
    )
    .unwrap();
    std::fs::write(chart.join("values.yaml"), "replicas: 2\n").unwrap();
    std::fs::write(
        chart.join("templates/configmap.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  replicas: \"{{ .Values.replicas }}\"\n",
    )
    .unwrap();
    ok(Command::new("tar")
        .args([
            "--sort=name",
            "--mtime=@0",
            "--owner=0",
            "--group=0",
            "-czf",
        ])
        .arg(dir.join("demo-0.1.0.tgz"))
        .arg("-C")
        .arg(dir.join("src"))
        .arg("demo"));
    let config = json!({
        "name": "demo", "version": "0.1.0", "appVersion": "1.0", "apiVersion": "v2",
        "description": "A chart pushed to berth", "type": "application",
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    ("demo-0.1.0.tgz".into(), "config.json".into())
}

#[tokio::test]
async fn oras_pushes_and_pulls_a_helm_chart_byte_for_byte() {
    let Some(oras) = Oras::get() else { return };
    let b = Berth::start();
    let dir = tempfile::tempdir().unwrap();
    let (chart, config) = helm_chart(dir.path());
    // helm tags a chart with its version and annotates the manifest from Chart.yaml.
    let target = format!("{}/charts/demo:0.1.0", b.host());
    let digest = oras.push(
        dir.path(),
        &json!({
            "target": target,
            "files": [format!("{chart}:{HELM_CHART}")],
            "manifest_config": format!("{config}:{HELM_CONFIG}"),
            "manifest_annotations": {
                "org.opencontainers.image.title": "demo",
                "org.opencontainers.image.version": "0.1.0",
                "org.opencontainers.image.description": "A chart pushed to berth",
            },
        }),
    );

    let (media_type, served_digest, manifest) = served(&b, "charts/demo", "0.1.0").await;
    assert_eq!((media_type.as_str(), served_digest), (OCI_MANIFEST, digest));
    assert_eq!(manifest["config"]["mediaType"], HELM_CONFIG);
    assert_eq!(manifest["layers"][0]["mediaType"], HELM_CHART);
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.version"],
        "0.1.0"
    );
    let config_blob = b
        .get(&format!(
            "/v2/charts/demo/blobs/{}",
            manifest["config"]["digest"].as_str().unwrap()
        ))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        config_blob.as_ref(),
        std::fs::read(dir.path().join(&config)).unwrap()
    );

    // Pulled back, accepting only what helm accepts: the same bytes.
    let fetched = oras.call(
        dir.path(),
        "get_manifest",
        &json!({ "container": target, "allowed_media_type": [OCI_MANIFEST] }),
    );
    assert_eq!(fetched, manifest);
    let out = dir.path().join("pulled");
    let files = oras.call(
        dir.path(),
        "pull",
        &json!({ "target": target, "outdir": out }),
    );
    assert_eq!(files, json!([out.join(&chart)]));
    assert_eq!(
        std::fs::read(out.join(&chart)).unwrap(),
        std::fs::read(dir.path().join(&chart)).unwrap()
    );
    let tags: Value = b
        .get("/v2/charts/demo/tags/list")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tags["tags"], json!(["0.1.0"]));
}

/// Runs openssl in `dir`.
fn openssl(dir: &Path, args: &[&str]) -> String {
    ok(Command::new("openssl").args(args).current_dir(dir))
}

#[tokio::test]
async fn oras_pushes_cosign_signatures_that_verify_after_the_round_trip() {
    let Some(oras) = Oras::get() else { return };
    if tool("openssl").is_none() {
        return;
    }
    let b = Berth::start();
    let dir = tempfile::tempdir().unwrap();
    let image = b.push_image("signed/app", "v1", 1, 2).await;
    let hex = image.digest.trim_start_matches("sha256:");

    // What `cosign sign` stores: a simple-signing payload naming the image digest, signed
    // with an ECDSA P-256 key, the signature in the layer's annotation, under the tag
    // `sha256-<hex>.sig` beside the image.
    let payload = json!({
        "critical": {
            "identity": { "docker-reference": format!("{}/signed/app", b.host()) },
            "image": { "docker-manifest-digest": image.digest },
            "type": "cosign container image signature",
        },
        "optional": null,
    });
    std::fs::write(dir.path().join("payload.json"), payload.to_string()).unwrap();
    openssl(
        dir.path(),
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "key.pem",
        ],
    );
    openssl(
        dir.path(),
        &["ec", "-in", "key.pem", "-pubout", "-out", "pub.pem"],
    );
    openssl(
        dir.path(),
        &[
            "dgst",
            "-sha256",
            "-sign",
            "key.pem",
            "-out",
            "payload.sig",
            "payload.json",
        ],
    );
    let signature = base64::engine::general_purpose::STANDARD
        .encode(std::fs::read(dir.path().join("payload.sig")).unwrap());
    std::fs::write(
        dir.path().join("annotations.json"),
        json!({ "payload.json": { COSIGN_SIGNATURE: signature } }).to_string(),
    )
    .unwrap();
    let sig_tag = format!("sha256-{hex}.sig");
    let sig_target = format!("{}/signed/app:{sig_tag}", b.host());
    let digest = oras.push(
        dir.path(),
        &json!({
            "target": sig_target,
            "files": [format!("payload.json:{COSIGN_SIMPLESIGNING}")],
            "annotation_file": "annotations.json",
        }),
    );

    // What `cosign verify` does: find the signature tag from the image digest, read the
    // signature annotation and the payload, check both.
    let resp = b.head("/v2/signed/app/manifests/v1").await;
    let resolved = resp.headers()["docker-content-digest"].to_str().unwrap();
    assert_eq!(resolved, image.digest);
    let manifest = oras.call(
        dir.path(),
        "get_manifest",
        &json!({ "container": format!("{}/signed/app:sha256-{}.sig", b.host(), resolved.trim_start_matches("sha256:")) }),
    );
    let layer = &manifest["layers"][0];
    assert_eq!(layer["mediaType"], COSIGN_SIMPLESIGNING);
    let out = dir.path().join("pulled");
    oras.call(
        dir.path(),
        "pull",
        &json!({ "target": sig_target, "outdir": out }),
    );
    let pulled: Value =
        serde_json::from_slice(&std::fs::read(out.join("payload.json")).unwrap()).unwrap();
    assert_eq!(
        pulled["critical"]["image"]["docker-manifest-digest"],
        image.digest
    );
    let sig = base64::engine::general_purpose::STANDARD
        .decode(layer["annotations"][COSIGN_SIGNATURE].as_str().unwrap())
        .unwrap();
    std::fs::write(out.join("payload.sig"), sig).unwrap();
    let verified = openssl(
        &out,
        &[
            "dgst",
            "-sha256",
            "-verify",
            dir.path().join("pub.pem").to_str().unwrap(),
            "-signature",
            "payload.sig",
            "payload.json",
        ],
    );
    assert_eq!(verified.trim(), "Verified OK");
    let (_, served_digest, _) = served(&b, "signed/app", &sig_tag).await;
    assert_eq!(served_digest, digest);

    // cosign's OCI 1.1 mode: the signature names the image as its subject and is found
    // through the referrers API by its artifact type. oras-py cannot set `artifactType`, so
    // the type is the config's media type, which the referrers API reports in its place.
    std::fs::write(dir.path().join("empty.json"), "{}").unwrap();
    let attached = oras.push(
        dir.path(),
        &json!({
            "target": format!("{}/signed/app:attached", b.host()),
            "files": [format!("payload.json:{COSIGN_SIMPLESIGNING}")],
            "manifest_config": format!("empty.json:{COSIGN_ARTIFACT}"),
            "annotation_file": "annotations.json",
            "subject": { "mediaType": OCI_MANIFEST, "digest": image.digest, "size": image.size },
        }),
    );
    let referrers: Value = b
        .get(&format!(
            "/v2/signed/app/referrers/{}?artifactType={}",
            image.digest,
            COSIGN_ARTIFACT.replace('+', "%2B")
        ))
        .await
        .json()
        .await
        .unwrap();
    let found: Vec<(&str, &str)> = referrers["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["digest"].as_str().unwrap(),
                m["artifactType"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(found, [(attached.as_str(), COSIGN_ARTIFACT)], "{referrers}");
}
