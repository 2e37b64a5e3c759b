//! The hub inventories pushed images in the background (`[scan] enabled`): the packages of
//! real package databases with whiteouts applied, read through the JSON API; the SBOM as an
//! OCI referrer beside a client's own; every platform of an index; hostile layers; several
//! replicas sharing the queue.

use std::io::Write;
use std::time::{Duration, Instant};

use berth_scan::inventory::{Inventory, Limits, default_cataloguers};
use serde_json::{Value, json};

use crate::client::{OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, Pushed};
use crate::harness::{Backend, Berth, backend, required};

const CYCLONEDX: &str = "application/vnd.cyclonedx+json";

/// Scanning on, workers looking for jobs often.
const SCAN: [(&str, &str); 2] = [
    ("BERTH_SCAN_ENABLED", "true"),
    ("BERTH_SCAN_POLL_INTERVAL_MS", "100"),
];

/// An image's layers: media type and bytes.
type Layers = Vec<(&'static str, Vec<u8>)>;

/// An entry of a test layer.
enum Entry<'a> {
    File(&'a str, Vec<u8>),
    /// A file of this many zero bytes, never held in memory.
    Zeros(&'a str, u64),
    Symlink(&'a str, &'a str),
}

/// A gzip-compressed tar layer of `entries`.
///
/// At the best level, not the fastest: what the fast level does is up to flate2's backend
/// (miniz_oxide's level 1 packs 128 MiB of zeros into 0.6 MB, zlib-rs's fixed-code level 1
/// into 1.3 MB), while every backend's best level uses the longest matches deflate has, so
/// the tar bomb below is within a few percent of deflate's limit (about 1:1030) whichever
/// backend the workspace's features select.
fn layer(entries: &[Entry<'_>]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut tar = tar::Builder::new(gz);
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        match entry {
            Entry::File(path, data) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(data.len() as u64);
                tar.append_data(&mut header, path, data.as_slice()).unwrap();
            }
            Entry::Zeros(path, size) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(*size);
                tar.append_data(
                    &mut header,
                    path,
                    std::io::Read::take(std::io::repeat(0), *size),
                )
                .unwrap();
            }
            Entry::Symlink(path, target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                tar.append_link(&mut header, path, target).unwrap();
            }
        }
    }
    tar.into_inner().unwrap().finish().unwrap()
}

/// Pushes an image of `layers` (with their media types) as `repo:tag`.
async fn push_image(
    b: &Berth,
    repo: &str,
    tag: &str,
    layers: &[(&'static str, Vec<u8>)],
) -> Pushed {
    let config = b
        .push_blob_typed(repo, format!(r#"{{"tag":"{tag}"}}"#).as_bytes(), OCI_CONFIG)
        .await;
    let mut descriptors = Vec::new();
    for (media_type, data) in layers {
        descriptors.push(b.push_blob_typed(repo, data, media_type).await.descriptor());
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": descriptors,
    });
    b.push_manifest_json(repo, tag, OCI_MANIFEST, &manifest)
        .await
}

/// The inventory of `repo@digest` once it is no longer pending.
async fn inventory(b: &Berth, repo: &str, digest: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let resp = b
            .get(&format!("/api/v1/sbom/{repo}?reference={digest}"))
            .await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        if body["status"] != "pending" {
            return body;
        }
        assert!(Instant::now() < deadline, "still pending: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `(type, name, version)` of each package of an API answer.
fn packages(body: &Value) -> Vec<(String, String, String)> {
    body["packages"]
        .as_array()
        .unwrap_or_else(|| panic!("no packages in {body}"))
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap().to_owned();
            (s("type"), s("name"), s("version"))
        })
        .collect()
}

/// The referrers of `repo@digest`.
async fn referrers(b: &Berth, repo: &str, digest: &str) -> Vec<Value> {
    let body: Value = b
        .get(&format!("/v2/{repo}/referrers/{digest}"))
        .await
        .json()
        .await
        .unwrap();
    body["manifests"].as_array().unwrap().clone()
}

fn berths_own(referrer: &Value) -> bool {
    referrer["annotations"]["dev.berth.sbom.generator"] == "berth"
}

const VALIDATE_CYCLONEDX: &str = r#"
import sys
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1], encoding="utf-8").read())
if error is not None:
    print(error)
    sys.exit(1)
"#;

/// Validates a CycloneDX document with the CycloneDX project's library, if installed (under
/// CI=true it must be).
fn validate_cyclonedx(document: &[u8]) {
    let present = std::process::Command::new("python3")
        .args(["-c", "import cyclonedx.validation.json, jsonschema"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        assert!(
            !required(),
            "cyclonedx-python-lib[json-validation] is missing (CI=true)"
        );
        eprintln!("SKIPPED: the CycloneDX validation (cyclonedx-python-lib is not installed)");
        return;
    }
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(document).unwrap();
    let out = std::process::Command::new("python3")
        .args(["-c", VALIDATE_CYCLONEDX])
        .arg(file.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "not valid CycloneDX 1.6: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn dist_info(name: &str, version: &str) -> Vec<u8> {
    format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n").into_bytes()
}

#[tokio::test]
async fn scan_hub_inventories_real_databases_applies_whiteouts_and_attaches_the_sbom() {
    let b = Berth::start_with(&SCAN);
    let root = env!("CARGO_MANIFEST_DIR");
    let base = layer(&[
        Entry::File("etc/os-release", read("/etc/os-release")),
        Entry::File("var/lib/dpkg/status", read("/var/lib/dpkg/status")),
        Entry::File("app/Cargo.lock", read(&format!("{root}/Cargo.lock"))),
        Entry::File(
            "web/package-lock.json",
            read(&format!("{root}/tests/e2e/sigstore_js/package-lock.json")),
        ),
        Entry::File(
            "usr/lib/python3/dist-packages/doomed-1.0.dist-info/METADATA",
            dist_info("doomed", "1.0"),
        ),
        Entry::File(
            "usr/lib/python3/dist-packages/kept-2.0.dist-info/METADATA",
            dist_info("kept", "2.0"),
        ),
    ]);
    // The next layer deletes the doomed distribution (an OCI whiteout of its directory).
    let upper = layer(&[Entry::File(
        "usr/lib/python3/dist-packages/.wh.doomed-1.0.dist-info",
        Vec::new(),
    )]);
    let layers = [(OCI_LAYER, base), (OCI_LAYER, upper)];
    let image = push_image(&b, "scan/app", "v1", &layers).await;
    let body = inventory(&b, "scan/app", &image.digest).await;
    assert_eq!(body["status"], "done", "{body}");
    assert_eq!(body["problems"], json!([]), "{body}");

    // Exactly what berth-scan finds in the same layers, read here without the hub.
    let expected = Inventory::from_layers(
        layers.iter().map(|(t, d)| (*t, d.as_slice())),
        &default_cataloguers(),
        Limits::default(),
    );
    let want: Vec<(String, String, String)> = expected
        .packages
        .iter()
        .map(|p| {
            let kind = serde_json::to_value(p.kind).unwrap();
            (
                kind.as_str().unwrap().to_owned(),
                p.name.clone(),
                p.version.clone(),
            )
        })
        .collect();
    let got = packages(&body);
    assert_eq!(got, want);
    let has = |kind: &str, name: &str| got.iter().any(|(k, n, _)| k == kind && n == name);
    assert!(has("dpkg", "dpkg"), "this machine's dpkg status is listed");
    assert!(
        has("cargo", "serde"),
        "the repository's Cargo.lock is listed"
    );
    assert!(
        has("npm", "@sigstore/sign"),
        "the package-lock.json is listed"
    );
    assert!(has("pypi", "kept"));
    assert!(!has("pypi", "doomed"), "a whiteouted package is not listed");
    assert_eq!(body["os"]["id"], expected.os.as_ref().unwrap().id.as_str());
    let dpkg = got.iter().filter(|(k, _, _)| k == "dpkg").count();
    assert!(dpkg > 50, "only {dpkg} dpkg packages");

    // The SBOM is a referrer of the image, as oras discover lists them.
    let found = referrers(&b, "scan/app", &image.digest).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["artifactType"], CYCLONEDX);
    assert!(berths_own(&found[0]), "{found:?}");
    assert_eq!(body["sbom"], found[0]["digest"]);
    let referrer: Value = b
        .get(&format!(
            "/v2/scan/app/manifests/{}",
            found[0]["digest"].as_str().unwrap()
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(referrer["subject"]["digest"], image.digest.as_str());
    assert!(referrer["annotations"]["org.opencontainers.image.created"].is_string());
    let layer = &referrer["layers"][0];
    assert_eq!(layer["mediaType"], CYCLONEDX);
    let document = b
        .get(&format!(
            "/v2/scan/app/blobs/{}",
            layer["digest"].as_str().unwrap()
        ))
        .await
        .bytes()
        .await
        .unwrap();
    validate_cyclonedx(&document);
    let document: Value = serde_json::from_slice(&document).unwrap();
    // One component per package, beside the operating system's.
    let components = document["components"].as_array().unwrap();
    let libraries = components
        .iter()
        .filter(|c| c["type"] != "operating-system");
    assert_eq!(libraries.count(), got.len());

    // Pushing the SBOM queued no job of its own, and the metrics count the one job.
    let metrics = b.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("berth_scan_jobs{status=\"done\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("berth_scan_jobs{status=\"queued\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("berth_scan_jobs_ended_total{outcome=\"done\"} 1"),
        "{metrics}"
    );
    // A re-push of the same image queues nothing new.
    let again: Value = serde_json::from_slice(&image.bytes).unwrap();
    b.push_manifest_json("scan/app", "v2", OCI_MANIFEST, &again)
        .await;
    let body = inventory(&b, "scan/app", "v2").await;
    assert_eq!(
        (body["status"].as_str(), body["attempts"].as_u64()),
        (Some("done"), Some(1))
    );
}

#[tokio::test]
async fn scan_hub_inventories_each_platform_and_keeps_a_clients_sbom() {
    let b = Berth::start_with(&SCAN);
    let amd = push_image(
        &b,
        "scan/multi",
        "amd64",
        &[(
            OCI_LAYER,
            layer(&[Entry::File(
                "a/dist-packages/amd-1.0.dist-info/METADATA",
                dist_info("amd", "1.0"),
            )]),
        )],
    )
    .await;
    let arm = push_image(
        &b,
        "scan/multi",
        "arm64",
        &[(
            OCI_LAYER,
            layer(&[Entry::File(
                "a/dist-packages/arm-2.0.dist-info/METADATA",
                dist_info("arm", "2.0"),
            )]),
        )],
    )
    .await;
    // The client's own SBOM of the amd64 image.
    let empty = b
        .push_blob_typed("scan/multi", b"{}", "application/vnd.oci.empty.v1+json")
        .await;
    let document = b
        .push_blob_typed(
            "scan/multi",
            br#"{"bomFormat":"CycloneDX","specVersion":"1.6","version":1}"#,
            CYCLONEDX,
        )
        .await;
    let client_sbom = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": CYCLONEDX,
        "config": empty.descriptor(),
        "layers": [document.descriptor()],
        "subject": amd.descriptor(),
    });
    let bytes = serde_json::to_vec(&client_sbom).unwrap();
    let client_sbom = b
        .push_manifest_json(
            "scan/multi",
            &crate::harness::sha256(&bytes),
            OCI_MANIFEST,
            &client_sbom,
        )
        .await;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": amd.digest, "size": amd.size,
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": arm.digest, "size": arm.size,
             "platform": {"architecture": "arm64", "os": "linux"}},
        ],
    });
    let index = b
        .push_manifest_json("scan/multi", "v1", OCI_INDEX, &index)
        .await;
    for (image, name) in [(&amd, "amd"), (&arm, "arm")] {
        let body = inventory(&b, "scan/multi", &image.digest).await;
        assert_eq!(body["status"], "done");
        let version = if name == "amd" { "1.0" } else { "2.0" };
        assert_eq!(
            packages(&body),
            [("pypi".to_owned(), name.to_owned(), version.to_owned())]
        );
    }
    // The client's SBOM stays, berth's is beside it; the arm64 image has berth's alone.
    let found = referrers(&b, "scan/multi", &amd.digest).await;
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found
            .iter()
            .any(|r| r["digest"] == client_sbom.digest.as_str() && !berths_own(r))
    );
    assert!(
        found
            .iter()
            .any(|r| berths_own(r) && r["artifactType"] == CYCLONEDX)
    );
    let found = referrers(&b, "scan/multi", &arm.digest).await;
    assert_eq!(found.len(), 1, "{found:?}");
    let body = inventory(&b, "scan/multi", &index.digest).await;
    assert_eq!(
        body["status"], "not_scanned",
        "an index has no inventory of its own"
    );
}

#[tokio::test]
async fn scan_hub_survives_hostile_layers_and_goes_on() {
    // A small bound on unpacked bytes, so the bomb below is cheap to make.
    let b = Berth::start_with(&[SCAN[0], SCAN[1], ("BERTH_SCAN_MAX_UNPACKED_MIB", "32")]);
    // 128 MiB of zeros in one file: about 130 KB gzipped (a ratio of 1:1000).
    let bomb = layer(&[Entry::Zeros("zeros", 128 << 20)]);
    assert!(bomb.len() < 1 << 20, "the bomb is {} bytes", bomb.len());
    let loops = layer(&[
        Entry::Symlink("etc/os-release", "/etc/os-release"),
        Entry::Symlink("loop/a", "b"),
        Entry::Symlink("loop/b", "a"),
        Entry::Symlink("var/lib/dpkg/status", "/var/lib/dpkg/status.d/x"),
        Entry::Symlink("var/lib/dpkg/status.d/x", "/var/lib/dpkg/status"),
    ]);
    // One 1 MiB line: past any sane dpkg status line.
    let mut absurd = b"Package: ".to_vec();
    absurd.extend(std::iter::repeat_n(b'a', 1 << 20));
    absurd.extend(b"\nStatus: install ok installed\nVersion: 1\n\n");
    let absurd = layer(&[Entry::File("var/lib/dpkg/status", absurd)]);
    let sane = layer(&[Entry::File(
        "x/dist-packages/sane-1.0.dist-info/METADATA",
        dist_info("sane", "1.0"),
    )]);
    let cases: [(&str, Layers, &str); 4] = [
        ("bomb", vec![(OCI_LAYER, bomb)], "bytes"),
        ("loops", vec![(OCI_LAYER, loops)], ""),
        ("absurd", vec![(OCI_LAYER, absurd)], "dpkg"),
        (
            "encrypted",
            vec![(
                "application/vnd.oci.image.layer.v1.tar+gzip+encrypted",
                sane.clone(),
            )],
            "encrypted",
        ),
    ];
    let mut pushed = Vec::new();
    for (tag, layers, _) in &cases {
        pushed.push(push_image(&b, "scan/hostile", tag, layers).await);
    }
    let after = push_image(&b, "scan/hostile", "sane", &[(OCI_LAYER, sane)]).await;
    for ((tag, _, reason), image) in cases.iter().zip(&pushed) {
        let body = inventory(&b, "scan/hostile", &image.digest).await;
        assert!(
            body["status"] == "done" || body["status"] == "failed",
            "{tag}: {body}"
        );
        assert_eq!(body["packages"], json!([]), "{tag}: no finding: {body}");
        let said = format!("{}{}", body["problems"], body["reason"]);
        assert!(
            said.contains(reason),
            "{tag}: the reason names {reason:?}: {body}"
        );
        if !reason.is_empty() {
            assert_ne!(body["problems"], json!([]), "{tag}: {body}");
        }
    }
    let body = inventory(&b, "scan/hostile", &after.digest).await;
    assert_eq!(body["status"], "done");
    assert_eq!(
        packages(&body),
        [("pypi".to_owned(), "sane".to_owned(), "1.0".to_owned())]
    );
}

#[tokio::test]
async fn scan_hub_replicas_share_the_queue_and_do_each_job_once() {
    if backend() != Backend::PostgresS3 {
        if !required() {
            eprintln!(
                "SKIPPED: replica tests need BERTH_TEST_BACKEND=postgres-s3 (tests/run sets it)"
            );
        }
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shared");
    let env = [SCAN[0], SCAN[1], ("BERTH_SCAN_WORKERS", "2")];
    let r: Vec<Berth> = (0..2).map(|_| Berth::start_in(&dir, &env)).collect();
    let mut images = Vec::new();
    for i in 0..8 {
        let name = format!("pkg{i}");
        let data = layer(&[Entry::File(
            &format!("x/dist-packages/{name}-1.0.dist-info/METADATA"),
            dist_info(&name, "1.0"),
        )]);
        images.push(
            push_image(
                &r[i % 2],
                "scan/shared",
                &format!("v{i}"),
                &[(OCI_LAYER, data)],
            )
            .await,
        );
    }
    for (i, image) in images.iter().enumerate() {
        let body = inventory(&r[(i + 1) % 2], "scan/shared", &image.digest).await;
        assert_eq!(body["status"], "done", "{body}");
        assert_eq!(body["attempts"], 1, "{body}");
        assert_eq!(packages(&body)[0].1, format!("pkg{i}"));
        let found = referrers(&r[0], "scan/shared", &image.digest).await;
        assert_eq!(found.len(), 1, "one SBOM per image: {found:?}");
    }
    let done: usize = r
        .iter()
        .map(|b| b.logs().matches("image inventoried").count())
        .sum();
    assert_eq!(done, images.len(), "each job done once over both replicas");
}

#[tokio::test]
async fn scan_hub_gives_a_job_back_on_sigterm_and_a_restart_finishes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let env = [SCAN[0], SCAN[1], ("BERTH_SCAN_MAX_UNPACKED_MIB", "65536")];
    let mut b = Berth::start_in(&dir, &env);
    // Gigabytes of zeros to walk: the job is still running when the server is stopped.
    let slow = layer(&[
        Entry::Zeros("big", 3 << 30),
        Entry::File(
            "x/dist-packages/slow-1.0.dist-info/METADATA",
            dist_info("slow", "1.0"),
        ),
    ]);
    let image = push_image(&b, "scan/slow", "v1", &[(OCI_LAYER, slow)]).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body: Value = b
            .get(&format!(
                "/api/v1/sbom/scan/slow?reference={}",
                image.digest
            ))
            .await
            .json()
            .await
            .unwrap();
        if body["job"] == "running" {
            break;
        }
        assert_eq!(body["job"], "queued", "{body}");
        assert!(Instant::now() < deadline, "never claimed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stopped = b.terminate(Duration::from_secs(30));
    assert!(stopped, "stops on SIGTERM with status 0: {}", b.logs());
    assert!(
        b.logs().contains("scan job given back to the queue"),
        "{}",
        b.logs()
    );
    let b = Berth::start_in(&dir, &env);
    let body = inventory(&b, "scan/slow", &image.digest).await;
    assert_eq!(body["status"], "done", "{body}");
    assert_eq!(
        body["attempts"], 1,
        "the interrupted claim is not counted: {body}"
    );
    assert_eq!(
        packages(&body),
        [("pypi".to_owned(), "slow".to_owned(), "1.0".to_owned())]
    );
}
