//! Storage accounting (`berth usage`, `/api/v1/usage`): bytes per repository and namespace,
//! each stored blob counted once.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::client::{OCI_CONFIG, OCI_MANIFEST, Pushed};
use crate::harness::{Berth, random_bytes};

/// Pushes an image of `layers` (already in `repo`) and a fresh config, tagged `tag`.
async fn image(b: &Berth, repo: &str, tag: &str, layers: &[Value]) -> (Pushed, usize) {
    let config = b
        .push_blob_typed(
            repo,
            format!(r#"{{"repository":"{repo}","tag":"{tag}"}}"#).as_bytes(),
            OCI_CONFIG,
        )
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

impl Berth {
    /// `berth scrub --json ARGS`: (success, report).
    fn scrub(&self, args: &[&str]) -> (bool, Value) {
        let mut all = vec!["scrub", "--json"];
        all.extend_from_slice(args);
        let (ok, out, err) = self.cli(&all, &[]);
        let report = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
        (ok, report)
    }

    /// The storage key holding exactly `data`.
    fn key_of(&self, data: &[u8]) -> String {
        self.stored_objects()
            .into_iter()
            .find(|k| self.read_object(k) == data)
            .expect("stored")
    }
}

fn problems(report: &Value) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = report
        .as_array()
        .unwrap_or_else(|| report["findings"].as_array().expect("findings"))
        .iter()
        .map(|f| {
            (
                f["problem"].as_str().expect("problem").to_owned(),
                f["digest"].as_str().expect("digest").to_owned(),
            )
        })
        .collect();
    found.sort();
    found
}

#[tokio::test]
async fn scrub_quarantines_damaged_blobs_resumes_and_a_push_repairs_them() {
    let b = Berth::start_with(&[("BERTH_GC_ENABLED", "false")]);
    let repo = "scrub/app";
    let (one, two) = (random_bytes(20_000, 11), random_bytes(5_000, 12));
    let l1 = b.push_blob(repo, &one).await;
    let l2 = b.push_blob(repo, &two).await;
    let (app, config) = image(&b, repo, "v1", &[l1.descriptor(), l2.descriptor()]).await;

    // A clean store, scrubbed in two passes: the second resumes where the first stopped.
    let (ok, first) = b.scrub(&["--limit", "2"]);
    assert!(ok, "{first}");
    assert_eq!(
        (
            &first["blobs_checked"],
            &first["manifests_checked"],
            &first["round_complete"]
        ),
        (&json!(2), &json!(0), &json!(false))
    );
    let (ok, second) = b.scrub(&[]);
    assert!(ok, "{second}");
    assert_eq!(
        (
            &second["blobs_checked"],
            &second["manifests_checked"],
            &second["round_complete"]
        ),
        (&json!(1), &json!(1), &json!(true))
    );
    assert_eq!(
        first["bytes_checked"].as_u64().unwrap() + second["bytes_checked"].as_u64().unwrap(),
        (one.len() + two.len() + config) as u64
    );

    // One layer's bytes rot (same size), the other's vanish.
    let mut rotten = one.clone();
    rotten[1000] ^= 0x55;
    let key_one = b.key_of(&one);
    b.write_object(&key_one, &rotten);
    b.delete_object(&b.key_of(&two));
    let (ok, report) = b.scrub(&["--restart"]);
    assert!(!ok, "a scrub that finds problems fails");
    assert_eq!(
        problems(&report),
        vec![
            ("corrupt".to_owned(), l1.digest.clone()),
            ("dangling_reference".to_owned(), app.digest.clone()),
            ("dangling_reference".to_owned(), app.digest.clone()),
            ("missing".to_owned(), l2.digest.clone()),
        ],
        "{report}"
    );
    let (ok, out, _) = b.cli(&["scrub", "--findings"], &[]);
    assert!(ok);
    assert!(
        out.contains("4 open problems") && out.contains("stored bytes hash to"),
        "{out}"
    );
    // Quarantined: never served, so clients push them again instead of pulling bad bytes.
    for d in [&l1.digest, &l2.digest] {
        let r = b.get(&format!("/v2/{repo}/blobs/{d}")).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{d} served");
    }
    // Nothing new to report on a second look.
    let (ok, again) = b.scrub(&["--restart"]);
    assert!(ok, "{again}");
    assert_eq!(again["findings"], json!([]));

    // Pushing the same content repairs both; the rotten copy goes with the next GC pass.
    b.push_blob(repo, &one).await;
    b.push_blob(repo, &two).await;
    for (d, data) in [(&l1.digest, &one), (&l2.digest, &two)] {
        let r = b.get(&format!("/v2/{repo}/blobs/{d}")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(&r.bytes().await.unwrap()[..], &data[..]);
    }
    b.gc(&[], &[]);
    assert!(
        !b.stored_objects().contains(&key_one),
        "the damaged copy is deleted"
    );
    let (ok, clean) = b.scrub(&["--restart"]);
    assert!(ok, "{clean}");
    assert_eq!(clean["round_complete"], true);
    let (ok, open) = b.scrub(&["--findings"]);
    assert!(ok);
    assert_eq!(open, json!([]), "repairs close the findings");
}

#[tokio::test]
async fn the_orphan_sweep_deletes_only_copies_nothing_claims() {
    let b = Berth::start_with(&[("BERTH_GC_ENABLED", "false")]);
    let repo = "orphans/app";
    let image = b.push_image(repo, "v1", 7, 2).await;
    // A copy whose upload died before it was recorded, and one named like an upload session
    // that is still open (its bytes may be about to be recorded).
    let stray = "data/0b6f1c2e-8c1d-4a5e-9f00-1234567890ab";
    b.write_object(stray, b"bytes nobody recorded");
    let session = b.start_upload(repo).await;
    let session_id = session
        .rsplit('/')
        .next()
        .expect("id")
        .split('?')
        .next()
        .expect("id")
        .to_owned();
    let claimed = format!("data/{session_id}");
    b.write_object(&claimed, b"an upload finishing");
    let before = b.stored_objects();

    // Young copies are never touched.
    let (ok, out, err) = b.cli(&["scrub", "--orphans", "--dry-run", "--json"], &[]);
    assert!(ok, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["orphans"],
        json!([])
    );
    let (ok, out, err) = b.cli(
        &[
            "scrub",
            "--orphans",
            "--older-than",
            "0",
            "--dry-run",
            "--json",
        ],
        &[],
    );
    assert!(ok, "{err}");
    let dry: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(dry["orphans"], json!([stray]), "{dry}");
    assert_eq!(dry["bytes"], b"bytes nobody recorded".len());
    assert_eq!(b.stored_objects(), before, "a dry run deletes nothing");

    let (ok, out, err) = b.cli(&["scrub", "--orphans", "--older-than", "0"], &[]);
    assert!(ok, "{err}");
    assert!(out.contains("1 of") && out.contains("deleted"), "{out}");
    let after = b.stored_objects();
    assert!(!after.iter().any(|k| k == stray));
    assert!(after.contains(&claimed), "the open session's copy stays");
    assert_eq!(after.len(), before.len() - 1);
    let pulled = b
        .get(&format!("/v2/{repo}/manifests/{}", image.digest))
        .await;
    assert_eq!(pulled.status(), StatusCode::OK);
    let (ok, clean) = b.scrub(&[]);
    assert!(ok, "{clean}");
}
