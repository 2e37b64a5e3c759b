//! Storage accounting (`berth usage`, `/api/v1/usage`): bytes per repository and namespace,
//! each stored blob counted once.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::client::{OCI_CONFIG, OCI_MANIFEST, Pushed};
use crate::harness::{Berth, random_bytes};

/// Pushes an image of `layers` (already in `repo`) and a fresh config, tagged `tag`.
async fn image(b: &Berth, repo: &str, tag: &str, layers: &[Value]) -> (Pushed, usize) {
    let config = b
        .push_blob_typed(repo, format!(r#"{{"repository":"{repo}","tag":"{tag}"}}"#).as_bytes(), OCI_CONFIG)
        .await;
    let manifest = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": config.descriptor(), "layers": layers,
    });
    (
        b.push_manifest_json(repo, tag, OCI_MANIFEST, &manifest)
            .await,
        config.size,
    )
}

async fn usage_api(b: &Berth, scope: &str) -> (StatusCode, Value) {
    let resp = b.get(&format!("/api/v1/usage{scope}")).await;
    let status = resp.status();
    (status, resp.json().await.expect("JSON"))
}

#[tokio::test]
async fn usage_counts_each_stored_blob_once_per_repository_and_namespace() {
    let b = Berth::start_with(&[("BERTH_GC_ENABLED", "false")]);
    let shared = b.push_blob("acme/a", &random_bytes(10_000, 1)).await;
    let own_a = b.push_blob("acme/a", &random_bytes(2_000, 2)).await;
    let (ma, ca) = image(
        &b,
        "acme/a",
        "v1",
        &[shared.descriptor(), own_a.descriptor()],
    )
    .await;
    // The shared layer again, in a second image of the same repository.
    let (ma2, ca2) = image(&b, "acme/a", "v2", &[shared.descriptor()]).await;
    // Mounted into acme/b; the same bytes pushed again into other/c are still one blob.
    let mount = b
        .http
        .post(b.url(&format!(
            "/v2/acme/b/blobs/uploads/?mount={}&from=acme/a",
            shared.digest
        )))
        .send()
        .await
        .expect("mount");
    assert_eq!(mount.status(), StatusCode::CREATED);
    let own_b = b.push_blob("acme/b", &random_bytes(3_000, 3)).await;
    let (mb, cb) = image(
        &b,
        "acme/b",
        "v1",
        &[shared.descriptor(), own_b.descriptor()],
    )
    .await;
    b.push_blob("other/c", &random_bytes(10_000, 1)).await;
    let (mc, cc) = image(&b, "other/c", "v1", &[shared.descriptor()]).await;
    // A sibling whose name only starts like acme/a.
    let (mab, cab) = image(&b, "acme/ab", "v1", &[]).await;

    let (status, a) = usage_api(&b, "/acme/a").await;
    assert_eq!(status, StatusCode::OK, "{a}");
    let a_blobs = shared.size + own_a.size + ca + ca2;
    assert_eq!(
        a["repositories"],
        json!([{
            "repository": "acme/a", "blobs": 4, "blob_bytes": a_blobs,
            "exclusive_bytes": own_a.size + ca + ca2,
            "manifests": 2, "manifest_bytes": ma.size + ma2.size,
        }])
    );
    assert_eq!(
        a["total"],
        json!({"repositories": 1, "blobs": 4, "blob_bytes": a_blobs, "manifests": 2,
               "manifest_bytes": ma.size + ma2.size})
    );

    let (status, acme) = usage_api(&b, "/acme").await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = acme["repositories"]
        .as_array()
        .expect("list")
        .iter()
        .map(|r| r["repository"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["acme/a", "acme/ab", "acme/b"]);
    assert_eq!(
        acme["repositories"][2]["blob_bytes"],
        shared.size + own_b.size + cb
    );
    assert_eq!(acme["repositories"][2]["exclusive_bytes"], own_b.size + cb);
    assert_eq!(
        acme["total"]["blob_bytes"],
        a_blobs + cab + own_b.size + cb,
        "the shared layer counts once"
    );
    assert_eq!(
        acme["total"]["manifest_bytes"],
        ma.size + ma2.size + mab.size + mb.size
    );

    let (_, all) = usage_api(&b, "").await;
    assert_eq!(all["scope"], Value::Null);
    assert_eq!(all["total"]["repositories"], 4);
    assert_eq!(
        all["total"]["blob_bytes"],
        a_blobs + cab + own_b.size + cb + cc,
        "other/c's copy of the shared layer is the same blob"
    );
    let stored: usize = b.stored_objects().len();
    assert_eq!(all["total"]["blobs"], 8);
    assert!(stored >= 8, "{stored}");

    let (status, _) = usage_api(&b, "/nobody").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = usage_api(&b, "/Bad..Name").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // The CLI says the same.
    let (ok, out, err) = b.cli(&["usage", "acme", "--json"], &[]);
    assert!(ok, "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).expect("json"), acme);
    let (ok, out, err) = b.cli(&["usage", "acme"], &[]);
    assert!(ok, "{err}");
    assert!(out.contains("acme: 3 repositories"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("acme/ab ")), "{out}");
    let (ok, _, err) = b.cli(&["usage", "nobody"], &[]);
    assert!(!ok && err.contains("nobody"), "{err}");
    let _ = mc;
}
