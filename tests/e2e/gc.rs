//! Online garbage collection (`berth gc`, and passes inside `serve`), on the backend
//! `BERTH_TEST_BACKEND` selects: what nothing references goes, with its bytes; tagged images,
//! index children and referrers stay while something keeps them; a dry run lists exactly what
//! the real pass removes; passes racing pushes, mounts, tag moves and deletes never break an
//! image that is tagged at the end.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::client::{OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, Pushed};
use crate::harness::{Backend, Berth, backend, random_bytes};

impl Berth {
    /// Runs `berth gc --json ARGS` on this server's database and storage; returns the report.
    pub fn gc(&self, args: &[&str], env: &[(&str, &str)]) -> Value {
        let mut all = vec!["gc", "--json"];
        all.extend_from_slice(args);
        let (ok, out, err) = self.cli(&all, env);
        assert!(ok, "berth gc {args:?}: {err}");
        serde_json::from_str(&out).expect("the report is JSON")
    }

    /// A dry run, then the real pass, which must remove exactly what the dry run listed.
    fn gc_checked(&self, env: &[(&str, &str)]) -> Value {
        let mut dry = self.gc(&["--review-delay", "0", "--dry-run"], env);
        let real = self.gc(&["--review-delay", "0"], env);
        assert_eq!(dry["dry_run"], true);
        dry["dry_run"] = json!(false);
        assert_eq!(dry, real, "the dry run differs from the pass");
        real
    }

    /// Whether the image `reference` pulls completely: its manifest, and every blob and child
    /// it names.
    pub(crate) async fn pulls(&self, repo: &str, reference: &str) -> bool {
        let resp = self
            .http
            .get(self.url(&format!("/v2/{repo}/manifests/{reference}")))
            .header("accept", format!("{OCI_MANIFEST}, {OCI_INDEX}"))
            .send()
            .await
            .expect("get manifest");
        if resp.status() != StatusCode::OK {
            return false;
        }
        let manifest: Value = resp.json().await.expect("json");
        for child in manifest["manifests"].as_array().into_iter().flatten() {
            let digest = child["digest"].as_str().expect("digest");
            if !Box::pin(self.pulls(repo, digest)).await {
                return false;
            }
        }
        let blobs = manifest["layers"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(std::iter::once(&manifest["config"]).filter(|c| c.is_object()));
        for blob in blobs {
            let digest = blob["digest"].as_str().expect("digest");
            let resp = self.get(&format!("/v2/{repo}/blobs/{digest}")).await;
            if resp.status() != StatusCode::OK {
                return false;
            }
            let bytes = resp.bytes().await.expect("blob");
            if crate::harness::sha256(&bytes) != digest {
                return false;
            }
        }
        true
    }
}

fn digests(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .expect("list")
        .iter()
        .map(|e| e["digest"].as_str().expect("digest").to_owned())
        .collect()
}

/// An image of `layers` fresh layers plus the `shared` ones, pushed by digest.
async fn image(b: &Berth, repo: &str, seed: u64, shared: &[Value]) -> (Pushed, Vec<String>) {
    let config = b
        .push_blob_typed(repo, format!(r#"{{"seed":{seed}}}"#).as_bytes(), OCI_CONFIG)
        .await;
    let own = b.push_blob(repo, &random_bytes(3000, seed)).await;
    let mut layers = shared.to_vec();
    layers.push(own.descriptor());
    let manifest = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": config.descriptor(), "layers": layers,
    });
    let pushed = by_digest(b, repo, &manifest).await;
    (pushed, vec![config.digest, own.digest])
}

/// Pushes an OCI manifest under its own digest (untagged).
async fn by_digest(b: &Berth, repo: &str, manifest: &Value) -> Pushed {
    let digest = crate::harness::sha256(&serde_json::to_vec(manifest).expect("json"));
    b.push_manifest_json(repo, &digest, OCI_MANIFEST, manifest)
        .await
}

#[tokio::test]
async fn gc_removes_what_nothing_references_and_keeps_the_rest() {
    // Tag history would keep the index after its tag is deleted (see tag_history.rs).
    let b = Berth::start_with(&[
        ("BERTH_GC_ENABLED", "false"),
        ("BERTH_GC_TAG_HISTORY_SECS", "0"),
    ]);
    let repo = "gc/app";
    let shared = b.push_blob(repo, &random_bytes(5000, 1)).await;
    let (a, a_blobs) = image(&b, repo, 10, &[shared.descriptor()]).await;
    let (bee, b_blobs) = image(&b, repo, 20, &[shared.descriptor()]).await;
    for (m, tag) in [(&a, "a"), (&bee, "b")] {
        let r = b.put_manifest(repo, tag, OCI_MANIFEST, &m.bytes).await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    // An index of two platforms (children pushed by digest, untagged), tagged.
    let (c1, _) = image(&b, repo, 30, &[]).await;
    let (c2, _) = image(&b, repo, 31, &[]).await;
    let index = json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [c1.descriptor(), c2.descriptor()],
    });
    b.push_manifest_json(repo, "multi", OCI_INDEX, &index).await;
    // A referrer (a signature, say) of image a, and an untagged image.
    let sig_config = b
        .push_blob_typed(repo, b"{}", "application/vnd.oci.empty.v1+json")
        .await;
    let sig_layer = b.push_blob(repo, b"signature").await;
    let referrer = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.signature",
        "config": sig_config.descriptor(), "layers": [sig_layer.descriptor()],
        "subject": a.descriptor(),
    });
    let sig = by_digest(&b, repo, &referrer).await;
    let (untagged, untagged_blobs) = image(&b, repo, 40, &[]).await;
    // An upload no manifest ever used, and a blob mounted into a second repository.
    let stray = b.push_blob(repo, &random_bytes(7000, 50)).await;
    let mounted = b
        .http
        .post(b.url(&format!(
            "/v2/gc/other/blobs/uploads/?mount={}&from={repo}",
            shared.digest
        )))
        .send()
        .await
        .expect("mount");
    assert_eq!(mounted.status(), StatusCode::CREATED);
    // Image b goes.
    let del = b
        .delete(&format!("/v2/{repo}/manifests/{}", bee.digest))
        .await;
    assert_eq!(del.status(), StatusCode::ACCEPTED);
    let objects_before = b.stored_objects().len();

    // Nothing is due while the review delay (a day by default) runs.
    let report = b.gc(&["--dry-run"], &[]);
    assert_eq!(report["blobs"], json!([]), "{report}");

    // Judged now: b's own blobs and the stray upload go; the shared layer (image a uses it,
    // and the mount alone would not keep it), untagged images, index children and the
    // referrer stay.
    let report = b.gc_checked(&[]);
    let gone = digests(&report["blobs"]);
    let mut expected: BTreeSet<String> = b_blobs.iter().cloned().collect();
    expected.insert(stray.digest.clone());
    assert_eq!(gone, expected, "{report}");
    assert_eq!(report["manifests"], json!([]), "{report}");
    let freed: u64 = report["blobs"]
        .as_array()
        .expect("blobs")
        .iter()
        .map(|b| b["size"].as_u64().expect("size"))
        .sum();
    assert_eq!(report["bytes_freed"], freed);
    assert_eq!(b.stored_objects().len(), objects_before - expected.len());
    for d in &expected {
        let r = b.head(&format!("/v2/{repo}/blobs/{d}")).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{d} still served");
    }
    for reference in ["a", "multi", untagged.digest.as_str(), sig.digest.as_str()] {
        assert!(
            b.pulls(repo, reference).await,
            "{reference} no longer pulls"
        );
    }
    let other = b
        .head(&format!("/v2/gc/other/blobs/{}", shared.digest))
        .await;
    assert_eq!(other.status(), StatusCode::OK);
    // A second pass has nothing left to do.
    assert_eq!(b.gc_checked(&[])["blobs"], json!([]));

    // Image a goes: its referrer follows in the next pass, then the referrer's blobs and the
    // layers nobody uses any more, the shared one included (the mount does not keep it).
    let del = b
        .delete(&format!("/v2/{repo}/manifests/{}", a.digest))
        .await;
    assert_eq!(del.status(), StatusCode::ACCEPTED);
    let first = b.gc_checked(&[]);
    let mut expected: BTreeSet<String> = a_blobs.iter().cloned().collect();
    expected.insert(shared.digest.clone());
    assert_eq!(digests(&first["blobs"]), expected, "{first}");
    assert_eq!(
        digests(&first["manifests"]),
        BTreeSet::from([sig.digest.clone()])
    );
    let second = b.gc_checked(&[]);
    assert_eq!(
        digests(&second["blobs"]),
        BTreeSet::from([sig_config.digest.clone(), sig_layer.digest.clone()])
    );
    let mounted_gone = b
        .head(&format!("/v2/gc/other/blobs/{}", shared.digest))
        .await;
    assert_eq!(mounted_gone.status(), StatusCode::NOT_FOUND);

    // Collecting untagged manifests: the untagged image goes, then its blobs; the index
    // keeps its children while it is tagged, and they follow it once it is gone.
    let untagged_policy = [("BERTH_GC_COLLECT_UNTAGGED", "true")];
    // (Served now, so a server that caches it has it cached.)
    assert!(b.pulls(repo, &untagged.digest).await);
    // The default policy kept them, so their reviews were done with: requeue once.
    let requeued = b.gc(
        &["--requeue", "--dry-run", "--review-delay", "0"],
        &untagged_policy,
    );
    assert_eq!(
        digests(&requeued["manifests"]),
        BTreeSet::from([untagged.digest.clone()])
    );
    let pass = b.gc_checked(&untagged_policy);
    assert_eq!(
        digests(&pass["manifests"]),
        BTreeSet::from([untagged.digest.clone()])
    );
    // The server pulled it earlier (and may cache it): it sees the other process's removal.
    let gone = b
        .get(&format!("/v2/{repo}/manifests/{}", untagged.digest))
        .await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    let pass = b.gc_checked(&untagged_policy);
    assert_eq!(
        digests(&pass["blobs"]),
        untagged_blobs.iter().cloned().collect()
    );
    assert!(b.pulls(repo, "multi").await);
    let del = b.delete(&format!("/v2/{repo}/manifests/multi")).await;
    assert_eq!(del.status(), StatusCode::ACCEPTED, "delete the tag");
    let pass = b.gc_checked(&untagged_policy);
    assert_eq!(
        pass["manifests"].as_array().expect("m").len(),
        1,
        "the index"
    );
    let pass = b.gc_checked(&untagged_policy);
    assert_eq!(
        digests(&pass["manifests"]),
        BTreeSet::from([c1.digest.clone(), c2.digest.clone()])
    );
    let pass = b.gc_checked(&untagged_policy);
    assert_eq!(pass["blobs"].as_array().expect("b").len(), 4, "{pass}");
    assert_eq!(
        b.gc_checked(&untagged_policy),
        json!({
            "dry_run": false, "blobs": [], "manifests": [], "bytes_freed": 0
        })
    );
    assert!(b.stored_objects().is_empty(), "{:?}", b.stored_objects());
}

/// Pushes run while passes judge everything at once (review delay 0, the harshest setting):
/// a push may fail (a layer it uploaded went before its manifest arrived) and is retried, as
/// docker retries; at the end every tagged image pulls completely and nothing unreferenced
/// is left.
#[tokio::test]
async fn gc_racing_pushes_mounts_tag_moves_and_deletes_never_breaks_a_tagged_image() {
    let env = [
        ("BERTH_GC_ENABLED", "true"),
        ("BERTH_GC_INTERVAL_SECS", "1"),
        ("BERTH_GC_REVIEW_DELAY_SECS", "0"),
        ("BERTH_GC_TAG_HISTORY_SECS", "0"),
    ];
    // On PostgreSQL and S3, two replicas share the database and the bucket, and both
    // collect; the workers push through either.
    let dir = tempfile::tempdir().expect("dir");
    let replicas = if backend() == Backend::PostgresS3 {
        2
    } else {
        1
    };
    let servers: Vec<std::sync::Arc<Berth>> = (0..replicas)
        .map(|_| std::sync::Arc::new(Berth::start_in(&dir.path().join("data"), &env)))
        .collect();
    let b = servers[0].clone();
    let shared = b.push_blob("race/base", &random_bytes(4000, 7)).await;
    let mut workers = Vec::new();
    for w in 0..4u64 {
        let b = servers[w as usize % servers.len()].clone();
        let shared = shared.clone();
        workers.push(tokio::spawn(async move {
            let repo = format!("race/r{w}");
            for round in 0..24u64 {
                let seed = w * 1000 + round;
                // Mount the shared layer, push a config and a layer, then the manifest;
                // everything is re-sent when a pass took a piece first.
                for _attempt in 0..20 {
                    let mount = b
                        .http
                        .post(b.url(&format!(
                            "/v2/{repo}/blobs/uploads/?mount={}&from=race/base",
                            shared.digest
                        )))
                        .send()
                        .await
                        .expect("mount");
                    if mount.status() != StatusCode::CREATED {
                        // The base's link is gone too: upload it again.
                        b.push_blob(&repo, &random_bytes(4000, 7)).await;
                    }
                    let config = b
                        .push_blob_typed(&repo, format!(r#"{{"s":{seed}}}"#).as_bytes(), OCI_CONFIG)
                        .await;
                    let own = b.push_blob(&repo, &random_bytes(2000, seed)).await;
                    let manifest = serde_json::to_vec(&json!({
                        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                        "config": config.descriptor(),
                        "layers": [shared.descriptor(), own.descriptor()],
                    }))
                    .expect("json");
                    let tag = format!("t{}", round % 3);
                    let put = b.put_manifest(&repo, &tag, OCI_MANIFEST, &manifest).await;
                    if put.status() == StatusCode::CREATED {
                        break;
                    }
                    assert_eq!(put.status(), StatusCode::BAD_REQUEST, "only a missing blob");
                }
                if round % 4 == 3 {
                    let del = b
                        .delete(&format!("/v2/{repo}/manifests/t{}", round % 3))
                        .await;
                    assert_eq!(del.status(), StatusCode::ACCEPTED);
                }
                tokio::time::sleep(Duration::from_millis(20 * (seed % 5))).await;
            }
        }));
    }
    // On-demand passes race the server's own until the pushes are done.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let runner = {
        let (b, done) = (b.clone(), done.clone());
        tokio::task::spawn_blocking(move || {
            let mut passes = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) || passes < 3 {
                b.gc(&["--review-delay", "0"], &[]);
                passes += 1;
            }
            passes
        })
    };
    for w in workers {
        w.await.expect("worker");
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let passes = runner.await.expect("gc runner");
    assert!(passes >= 3);
    // Every tag left pulls completely.
    let mut tagged = 0;
    for w in 0..4u64 {
        let repo = format!("race/r{w}");
        let tags: Value = b
            .get(&format!("/v2/{repo}/tags/list"))
            .await
            .json()
            .await
            .expect("tags");
        for tag in tags["tags"].as_array().into_iter().flatten() {
            let tag = tag.as_str().expect("tag");
            for server in &servers {
                assert!(server.pulls(&repo, tag).await, "{repo}:{tag} is broken");
            }
            tagged += 1;
        }
    }
    assert!(tagged >= 4, "{tagged} tags left");
    // Quiet now: one more pass leaves only what the tags use, and a second finds nothing.
    b.gc(&["--review-delay", "0"], &[]);
    assert_eq!(
        b.gc(&["--review-delay", "0", "--dry-run"], &[])["blobs"],
        json!([])
    );
}
