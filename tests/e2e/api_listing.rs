//! Tag lists, the catalog and referrers, with pagination.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::client::{OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, expect_error};
use crate::harness::{Berth, sha256};

fn next_link(resp: &reqwest::Response) -> Option<String> {
    let link = resp.headers().get("link")?.to_str().ok()?;
    assert!(link.ends_with(r#">; rel="next""#), "{link}");
    Some(link[1..link.find('>').unwrap()].to_owned())
}

#[tokio::test]
async fn tags_are_sorted_and_paginated() {
    let b = Berth::start();
    let img = b.push_image("app", "seed", 1, 1).await;
    let names = ["b", "A", "a", "_x", "1.0", "10", "2", "latest", "Z-9"];
    for t in names {
        let resp = b.put_manifest("app", t, OCI_MANIFEST, &img.bytes).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
    let mut expected: Vec<&str> = names.iter().copied().chain(["seed"]).collect();
    expected.sort(); // Byte order, as Go's sort.Strings.

    let all: Value = b.get("/v2/app/tags/list").await.json().await.unwrap();
    assert_eq!(all, json!({ "name": "app", "tags": expected }));

    // Walk the pages with n=3 by following Link.
    let mut seen = Vec::new();
    let mut url = "/v2/app/tags/list?n=3".to_owned();
    loop {
        let resp = b.get(&url).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let next = next_link(&resp);
        let page: Value = resp.json().await.unwrap();
        let tags: Vec<String> = serde_json::from_value(page["tags"].clone()).unwrap();
        assert!(tags.len() <= 3);
        if next.is_some() {
            assert_eq!(tags.len(), 3, "a page followed by a Link is full");
        }
        seen.extend(tags);
        match next {
            Some(n) => url = n,
            None => break,
        }
    }
    assert_eq!(seen, expected);

    // last alone, and n=0.
    let page: Value = b
        .get("/v2/app/tags/list?last=a")
        .await
        .json()
        .await
        .unwrap();
    let after: Vec<&str> = expected.iter().copied().filter(|t| *t > "a").collect();
    assert_eq!(page["tags"], json!(after));
    let resp = b.get("/v2/app/tags/list?n=0").await;
    assert!(resp.headers().get("link").is_none());
    let page: Value = resp.json().await.unwrap();
    assert_eq!(page["tags"], json!([]));
    // Exactly n left: no Link.
    let resp = b
        .get(&format!(
            "/v2/app/tags/list?n=2&last={}",
            expected[expected.len() - 3]
        ))
        .await;
    assert!(resp.headers().get("link").is_none());
    expect_error(
        b.get("/v2/app/tags/list?n=-1").await,
        StatusCode::BAD_REQUEST,
        "UNSUPPORTED",
    )
    .await;
    expect_error(
        b.get("/v2/ghost/tags/list").await,
        StatusCode::NOT_FOUND,
        "NAME_UNKNOWN",
    )
    .await;
}

#[tokio::test]
async fn a_repository_with_blobs_only_has_an_empty_tag_list() {
    let b = Berth::start();
    b.push_blob("app", b"x").await;
    let page: Value = b.get("/v2/app/tags/list").await.json().await.unwrap();
    assert_eq!(page, json!({ "name": "app", "tags": [] }));
}

#[tokio::test]
async fn catalog_lists_repositories_in_order_with_pagination() {
    let b = Berth::start();
    let repos = [
        "zeta",
        "alpha/one",
        "alpha",
        "alpha/two/deep",
        "beta-1",
        "b",
    ];
    for (i, r) in repos.iter().enumerate() {
        b.push_image(r, "v1", i as u64, 1).await;
    }
    let mut expected = repos.to_vec();
    expected.sort();
    let all: Value = b.get("/v2/_catalog").await.json().await.unwrap();
    assert_eq!(all, json!({ "repositories": expected }));
    let resp = b.get("/v2/_catalog?n=4").await;
    let next = next_link(&resp).expect("link");
    assert_eq!(
        next,
        format!("/v2/_catalog?n=4&last={}", expected[3].replace('/', "%2F"))
    );
    let first: Value = resp.json().await.unwrap();
    assert_eq!(first["repositories"], json!(expected[..4]));
    let second: Value = b.get(&next).await.json().await.unwrap();
    assert_eq!(second["repositories"], json!(expected[4..]));
}

#[tokio::test]
async fn referrers_list_filter_and_paginate() {
    let b = Berth::start_with(&[("BERTH_SERVER_REFERRERS_PAGE_SIZE", "2")]);
    let subject = b.push_image("app", "v1", 1, 1).await;
    let empty = b
        .push_blob_typed("app", b"{}", "application/vnd.oci.empty.v1+json")
        .await;
    let custom_config = b
        .push_blob_typed("app", b"{\"c\":1}", "application/vnd.example.config")
        .await;
    let mut pushed = Vec::new();
    // Two signatures, one SBOM, one artifact typed by its config, one index referrer.
    for (i, artifact_type) in [
        "application/vnd.example.sig",
        "application/vnd.example.sig",
        "application/vnd.example.sbom",
    ]
    .iter()
    .enumerate()
    {
        let m = json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
            "config": empty.descriptor(), "layers": [empty.descriptor()],
            "subject": subject.descriptor(), "annotations": { "n": i.to_string() },
        });
        let bytes = serde_json::to_vec(&m).unwrap();
        pushed.push(
            b.push_manifest_json("app", &sha256(&bytes), OCI_MANIFEST, &m)
                .await,
        );
    }
    let by_config = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": custom_config.descriptor(), "layers": [], "subject": subject.descriptor(),
    });
    let bytes = serde_json::to_vec(&by_config).unwrap();
    pushed.push(
        b.push_manifest_json("app", &sha256(&bytes), OCI_MANIFEST, &by_config)
            .await,
    );
    let index = json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [pushed[0].descriptor()],
        "subject": subject.descriptor(), "annotations": { "kind": "bundle" },
    });
    let bytes = serde_json::to_vec(&index).unwrap();
    pushed.push(
        b.push_manifest_json("app", &sha256(&bytes), OCI_INDEX, &index)
            .await,
    );
    // A manifest without subject is not a referrer.
    b.push_image("app", "v2", 2, 1).await;

    // Walk all pages.
    let mut all = Vec::new();
    let mut url = format!("/v2/app/referrers/{}", subject.digest);
    loop {
        let resp = b.get(&url).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], OCI_INDEX);
        assert!(resp.headers().get("oci-filters-applied").is_none());
        let next = next_link(&resp);
        let page: Value = resp.json().await.unwrap();
        assert_eq!(page["schemaVersion"], 2);
        assert_eq!(page["mediaType"], OCI_INDEX);
        all.extend(page["manifests"].as_array().unwrap().clone());
        match next {
            Some(n) => url = n,
            None => break,
        }
    }
    assert_eq!(all.len(), 5);
    let find = |digest: &str| {
        all.iter()
            .find(|d| d["digest"] == digest)
            .unwrap_or_else(|| panic!("{digest} missing"))
    };
    let sig = find(&pushed[0].digest);
    assert_eq!(sig["artifactType"], "application/vnd.example.sig");
    assert_eq!(sig["mediaType"], OCI_MANIFEST);
    assert_eq!(sig["size"], pushed[0].size);
    assert_eq!(sig["annotations"], json!({ "n": "0" }));
    assert_eq!(
        find(&pushed[3].digest)["artifactType"],
        "application/vnd.example.config"
    );
    assert!(find(&pushed[3].digest).get("annotations").is_none());
    let idx = find(&pushed[4].digest);
    assert!(idx.get("artifactType").is_none(), "{idx}");
    assert_eq!(idx["mediaType"], OCI_INDEX);

    // Filter by artifactType.
    let resp = b
        .get(&format!(
            "/v2/app/referrers/{}?artifactType=application/vnd.example.sig",
            subject.digest
        ))
        .await;
    assert_eq!(resp.headers()["oci-filters-applied"], "artifactType");
    let page: Value = resp.json().await.unwrap();
    let got = page["manifests"].as_array().unwrap();
    assert_eq!(got.len(), 2);
    assert!(
        got.iter()
            .all(|d| d["artifactType"] == "application/vnd.example.sig")
    );

    // No referrers, unknown repository: still 200 with an empty index.
    for path in [
        format!("/v2/app/referrers/{}", sha256(b"none")),
        format!("/v2/ghost/referrers/{}", subject.digest),
    ] {
        let resp = b.get(&path).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let page: Value = resp.json().await.unwrap();
        assert_eq!(page["manifests"], json!([]));
    }
    expect_error(
        b.get("/v2/app/referrers/sha256:short").await,
        StatusCode::BAD_REQUEST,
        "DIGEST_INVALID",
    )
    .await;

    // Deleting a referrer removes it from the list.
    b.delete(&format!("/v2/app/manifests/{}", pushed[2].digest))
        .await;
    let resp = b
        .get(&format!(
            "/v2/app/referrers/{}?artifactType=application/vnd.example.sbom",
            subject.digest
        ))
        .await;
    let page: Value = resp.json().await.unwrap();
    assert_eq!(page["manifests"], json!([]));
    let _ = OCI_CONFIG;
}
