//! Manifests and tags.

use reqwest::StatusCode;
use serde_json::json;

use crate::client::{
    DOCKER_LIST, DOCKER_MANIFEST, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, expect_error,
};
use crate::harness::{Berth, random_bytes, sha256};

#[tokio::test]
async fn push_and_pull_by_tag_and_digest_with_exact_bytes() {
    let b = Berth::start();
    let config = b.push_blob_typed("app", b"{}", OCI_CONFIG).await;
    let layer = b.push_blob("app", &random_bytes(100, 1)).await;
    // Unusual but valid formatting must survive byte for byte.
    let text = format!(
        "{{\n  \"schemaVersion\": 2,\n  \"mediaType\": \"{OCI_MANIFEST}\",\n  \"config\": {},\n  \"layers\": [ {} ],\n  \"annotations\": {{ \"z\": \"1\", \"a\": \"2\" }}\n}}\n",
        config.descriptor(),
        layer.descriptor()
    );
    let digest = sha256(text.as_bytes());
    let resp = b
        .put_manifest("app", "v1", OCI_MANIFEST, text.as_bytes())
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(
        resp.headers()["location"],
        format!("/v2/app/manifests/{digest}").as_str()
    );
    assert_eq!(resp.headers()["docker-content-digest"], digest.as_str());
    assert!(resp.headers().get("oci-subject").is_none());

    for reference in ["v1", digest.as_str()] {
        let resp = b.get(&format!("/v2/app/manifests/{reference}")).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], OCI_MANIFEST);
        assert_eq!(resp.headers()["docker-content-digest"], digest.as_str());
        assert_eq!(
            resp.headers()["content-length"],
            text.len().to_string().as_str()
        );
        assert_eq!(resp.text().await.unwrap(), text);
        let head = b.head(&format!("/v2/app/manifests/{reference}")).await;
        assert_eq!(head.status(), StatusCode::OK);
        assert_eq!(
            head.headers()["content-length"],
            text.len().to_string().as_str()
        );
        assert_eq!(head.headers()["docker-content-digest"], digest.as_str());
        assert_eq!(head.headers()["content-type"], OCI_MANIFEST);
    }
    // Pushing by digest works and must match.
    let resp = b
        .put_manifest("app", &digest, OCI_MANIFEST, text.as_bytes())
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = b
        .put_manifest("app", &sha256(b"other"), OCI_MANIFEST, text.as_bytes())
        .await;
    expect_error(resp, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
}

#[tokio::test]
async fn unknown_manifests_and_repositories() {
    let b = Berth::start();
    b.push_image("app", "v1", 1, 1).await;
    expect_error(
        b.get("/v2/app/manifests/nope").await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    )
    .await;
    expect_error(
        b.get(&format!("/v2/app/manifests/{}", sha256(b"x"))).await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    )
    .await;
    expect_error(
        b.get("/v2/ghost/manifests/v1").await,
        StatusCode::NOT_FOUND,
        "NAME_UNKNOWN",
    )
    .await;
    assert_eq!(
        b.head("/v2/app/manifests/nope").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn docker_manifest_and_manifest_list() {
    let b = Berth::start();
    let config = b
        .push_blob_typed(
            "app",
            b"{\"architecture\":\"amd64\"}",
            "application/vnd.docker.container.image.v1+json",
        )
        .await;
    let layer = b.push_blob("app", &random_bytes(300, 2)).await;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": config.descriptor(),
        "layers": [{ "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": layer.digest, "size": layer.size }],
    });
    let m = b
        .push_manifest_json("app", "amd64", DOCKER_MANIFEST, &manifest)
        .await;
    let list = json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_LIST,
        "manifests": [{ "mediaType": DOCKER_MANIFEST, "digest": m.digest, "size": m.size, "platform": { "architecture": "amd64", "os": "linux" } }],
    });
    let l = b
        .push_manifest_json("app", "latest", DOCKER_LIST, &list)
        .await;
    let resp = b.get("/v2/app/manifests/latest").await;
    assert_eq!(resp.headers()["content-type"], DOCKER_LIST);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), l.bytes.as_slice());
}

#[tokio::test]
async fn references_must_exist_in_the_repository() {
    let b = Berth::start();
    let config = b.push_blob_typed("app", b"{}", OCI_CONFIG).await;
    let elsewhere = b.push_blob("other", &random_bytes(10, 3)).await;
    let missing = sha256(b"missing layer");
    let manifest = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config.descriptor(),
        "layers": [elsewhere.descriptor(), { "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": missing, "size": 5 }],
    });
    let resp = b
        .put_manifest(
            "app",
            "v1",
            OCI_MANIFEST,
            &serde_json::to_vec(&manifest).unwrap(),
        )
        .await;
    let body = expect_error(resp, StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN").await;
    let details: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["detail"]["digest"].as_str().unwrap())
        .collect();
    assert_eq!(details.len(), 2, "{body}");
    assert!(details.contains(&elsewhere.digest.as_str()) && details.contains(&missing.as_str()));
    expect_error(
        b.get("/v2/app/manifests/v1").await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    )
    .await;

    // A declared size that disagrees with the stored blob.
    let manifest = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": { "mediaType": OCI_CONFIG, "digest": config.digest, "size": 999 }, "layers": [],
    });
    let resp = b
        .put_manifest(
            "app",
            "v1",
            OCI_MANIFEST,
            &serde_json::to_vec(&manifest).unwrap(),
        )
        .await;
    expect_error(resp, StatusCode::BAD_REQUEST, "MANIFEST_INVALID").await;

    // An index whose child is not in the repository.
    let index = json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{ "mediaType": OCI_MANIFEST, "digest": sha256(b"child"), "size": 5 }],
    });
    let resp = b
        .put_manifest(
            "app",
            "idx",
            OCI_INDEX,
            &serde_json::to_vec(&index).unwrap(),
        )
        .await;
    expect_error(resp, StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN").await;
}

#[tokio::test]
async fn invalid_manifests_are_refused() {
    let b = Berth::start();
    let config = b.push_blob_typed("app", b"{}", OCI_CONFIG).await;
    let good = json!({ "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config.descriptor(), "layers": [] });
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (OCI_MANIFEST, b"{not json".to_vec()),
        (OCI_MANIFEST, b"".to_vec()),
        (OCI_MANIFEST, b"[1,2]".to_vec()),
        (OCI_MANIFEST, serde_json::to_vec(&json!({ "schemaVersion": 1, "mediaType": OCI_MANIFEST, "config": config.descriptor(), "layers": [] })).unwrap()),
        (OCI_MANIFEST, serde_json::to_vec(&json!({ "schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": [] })).unwrap()),
        // Content-Type disagrees with mediaType.
        (DOCKER_MANIFEST, serde_json::to_vec(&good).unwrap()),
        // Unknown manifest media type.
        ("application/vnd.example.unknown+json", serde_json::to_vec(&json!({ "schemaVersion": 2, "config": config.descriptor(), "layers": [] })).unwrap()),
        ("application/vnd.docker.distribution.manifest.v1+prettyjws", br#"{"schemaVersion":1,"name":"app","tag":"x","fsLayers":[]}"#.to_vec()),
        // Bad descriptor digest.
        (OCI_MANIFEST, serde_json::to_vec(&json!({ "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": { "mediaType": OCI_CONFIG, "digest": "sha256:zz", "size": 2 }, "layers": [] })).unwrap()),
    ];
    for (content_type, body) in cases {
        let resp = b.put_manifest("app", "bad", content_type, &body).await;
        expect_error(resp, StatusCode::BAD_REQUEST, "MANIFEST_INVALID").await;
    }
    expect_error(
        b.get("/v2/app/manifests/bad").await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    )
    .await;
    // The good one goes through, even with Content-Type parameters.
    let resp = b
        .put_manifest(
            "app",
            "good",
            &format!("{OCI_MANIFEST}; charset=utf-8"),
            &serde_json::to_vec(&good).unwrap(),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    // Invalid tags in ?tag= are refused.
    let digest = sha256(&serde_json::to_vec(&good).unwrap());
    let resp = b
        .http
        .put(b.url(&format!("/v2/app/manifests/{digest}?tag=ok&tag=-bad")))
        .header("content-type", OCI_MANIFEST)
        .body(serde_json::to_vec(&good).unwrap())
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::BAD_REQUEST, "TAG_INVALID").await;
}

/// The conformance suite reads `.INVALID_MANIFEST_NAME` and expects `404`: no manifest can
/// have that name. Pushing to it is the client's mistake, and the message says why.
#[tokio::test]
async fn references_that_cannot_exist_are_unknown_and_pushing_to_them_is_refused() {
    let b = Berth::start();
    let pushed = b.push_image("app", "v1", 1, 1).await;
    for reference in [".INVALID_MANIFEST_NAME", "-tag", "sha256:nothex"] {
        let path = format!("/v2/app/manifests/{reference}");
        expect_error(
            b.get(&path).await,
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
        )
        .await;
        assert_eq!(
            b.head(&path).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    let delete = |reference: &str| {
        b.http
            .delete(b.url(&format!("/v2/app/manifests/{reference}")))
            .send()
    };
    // As Distribution: a bad tag names nothing to delete, a bad digest is malformed.
    expect_error(
        delete(".INVALID_MANIFEST_NAME").await.unwrap(),
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    )
    .await;
    expect_error(
        delete("sha256:nothex").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "DIGEST_INVALID",
    )
    .await;
    let resp = b
        .put_manifest("app", ".INVALID_MANIFEST_NAME", OCI_MANIFEST, &pushed.bytes)
        .await;
    let body = expect_error(resp, StatusCode::BAD_REQUEST, "TAG_INVALID").await;
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}"),
        "{message}"
    );
    let resp = b
        .put_manifest("app", "sha256:nothex", OCI_MANIFEST, &pushed.bytes)
        .await;
    expect_error(resp, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    // A bad repository name is still the name's fault.
    expect_error(
        b.get("/v2/App/manifests/.INVALID_MANIFEST_NAME").await,
        StatusCode::BAD_REQUEST,
        "NAME_INVALID",
    )
    .await;
    // Nothing was tagged on the way.
    let tags: serde_json::Value = b.get("/v2/app/tags/list").await.json().await.unwrap();
    assert_eq!(tags["tags"], json!(["v1"]));
}

#[tokio::test]
async fn manifests_up_to_the_limit_are_accepted_and_larger_ones_get_413() {
    let b = Berth::start();
    let config = b.push_blob_typed("app", b"{}", OCI_CONFIG).await;
    let build = |total: usize| {
        let base = json!({ "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config.descriptor(), "layers": [], "annotations": { "pad": "" } });
        let empty = serde_json::to_vec(&base).unwrap().len();
        let mut m = base;
        m["annotations"]["pad"] = json!("x".repeat(total - empty));
        let bytes = serde_json::to_vec(&m).unwrap();
        assert_eq!(bytes.len(), total);
        bytes
    };
    let limit = 4 * 1024 * 1024;
    let resp = b
        .put_manifest("app", "big", OCI_MANIFEST, &build(limit))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = b
        .put_manifest("app", "bigger", OCI_MANIFEST, &build(limit + 1))
        .await;
    expect_error(resp, StatusCode::PAYLOAD_TOO_LARGE, "MANIFEST_INVALID").await;
    // Also when streamed without Content-Length.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = build(limit + 1)
        .chunks(65536)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let resp = b
        .http
        .put(b.url("/v2/app/manifests/streamed"))
        .header("content-type", OCI_MANIFEST)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::PAYLOAD_TOO_LARGE, "MANIFEST_INVALID").await;
    let resp = b.get("/v2/app/manifests/big").await;
    assert_eq!(resp.bytes().await.unwrap().len(), limit);
}

#[tokio::test]
async fn artifacts_subjects_and_oci_subject_header() {
    let b = Berth::start();
    let subject = b.push_image("app", "v1", 1, 1).await;
    let empty = b
        .push_blob_typed("app", b"{}", "application/vnd.oci.empty.v1+json")
        .await;
    assert_eq!(
        empty.digest,
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    );
    let sig = b
        .push_blob_typed("app", b"signature", "application/vnd.example.sig")
        .await;
    let artifact = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.sig.v1",
        "config": empty.descriptor(), "layers": [sig.descriptor()],
        "subject": subject.descriptor(), "annotations": { "org.example.signer": "alice" },
    });
    let bytes = serde_json::to_vec(&artifact).unwrap();
    let resp = b
        .put_manifest("app", &sha256(&bytes), OCI_MANIFEST, &bytes)
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(resp.headers()["oci-subject"], subject.digest.as_str());

    // A subject that does not exist (yet) is accepted.
    let dangling = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.sbom",
        "config": empty.descriptor(), "layers": [],
        "subject": { "mediaType": OCI_MANIFEST, "digest": sha256(b"future"), "size": 10 },
    });
    let bytes = serde_json::to_vec(&dangling).unwrap();
    let resp = b
        .put_manifest("app", &sha256(&bytes), OCI_MANIFEST, &bytes)
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(resp.headers()["oci-subject"], sha256(b"future").as_str());
}

#[tokio::test]
async fn several_tags_in_one_put() {
    let b = Berth::start();
    let config = b.push_blob_typed("app", b"{}", OCI_CONFIG).await;
    let m = serde_json::to_vec(&json!({ "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config.descriptor(), "layers": [] })).unwrap();
    let digest = sha256(&m);
    let resp = b
        .http
        .put(b.url(&format!(
            "/v2/app/manifests/{digest}?tag=1.2.3&tag=1.2&tag=1&tag=latest"
        )))
        .header("content-type", OCI_MANIFEST)
        .body(m)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let mut tags: Vec<String> = resp
        .headers()
        .get_all("oci-tag")
        .iter()
        .flat_map(|v| {
            v.to_str()
                .unwrap()
                .split(',')
                .map(|t| t.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    tags.sort();
    assert_eq!(tags, ["1", "1.2", "1.2.3", "latest"]);
    for tag in &tags {
        let resp = b.head(&format!("/v2/app/manifests/{tag}")).await;
        assert_eq!(resp.headers()["docker-content-digest"], digest.as_str());
    }
}

#[tokio::test]
async fn deleting_tags_and_manifests() {
    let b = Berth::start();
    let one = b.push_image("app", "v1", 1, 1).await;
    b.put_manifest("app", "also", OCI_MANIFEST, &one.bytes)
        .await;
    let two = b.push_image("app", "v2", 2, 1).await;

    // Deleting a tag removes only the tag.
    let resp = b.delete("/v2/app/manifests/v1").await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    expect_error(
        b.get("/v2/app/manifests/v1").await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    )
    .await;
    assert_eq!(
        b.get(&format!("/v2/app/manifests/{}", one.digest))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        b.get("/v2/app/manifests/also").await.status(),
        StatusCode::OK
    );
    expect_error(
        b.delete("/v2/app/manifests/v1").await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    )
    .await;

    // Deleting by digest removes the manifest and every tag on it.
    let resp = b.delete(&format!("/v2/app/manifests/{}", one.digest)).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    expect_error(
        b.get(&format!("/v2/app/manifests/{}", one.digest)).await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    )
    .await;
    expect_error(
        b.get("/v2/app/manifests/also").await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    )
    .await;
    assert_eq!(
        b.get(&format!("/v2/app/manifests/{}", two.digest))
            .await
            .status(),
        StatusCode::OK
    );
    let tags: serde_json::Value = b.get("/v2/app/tags/list").await.json().await.unwrap();
    assert_eq!(tags["tags"], json!(["v2"]));
    expect_error(
        b.delete(&format!("/v2/ghost/manifests/{}", one.digest))
            .await,
        StatusCode::NOT_FOUND,
        "NAME_UNKNOWN",
    )
    .await;
}

#[tokio::test]
async fn concurrent_puts_of_one_tag_leave_it_on_one_complete_manifest() {
    let b = Berth::start();
    let mut candidates = Vec::new();
    for i in 0..6 {
        candidates.push(b.push_image("app", &format!("c{i}"), i, 1).await);
    }
    let mut tasks = Vec::new();
    for round in 0..5 {
        for c in &candidates {
            let (http, url, bytes) = (
                b.http.clone(),
                b.url("/v2/app/manifests/hot"),
                c.bytes.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let _ = round;
                http.put(url)
                    .header("content-type", OCI_MANIFEST)
                    .body(bytes)
                    .send()
                    .await
                    .unwrap()
                    .status()
            }));
        }
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::CREATED);
    }
    let resp = b.get("/v2/app/manifests/hot").await;
    let digest = resp.headers()["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = resp.bytes().await.unwrap();
    assert_eq!(sha256(&body), digest);
    assert!(candidates.iter().any(|c| c.digest == digest));
}

/// Many clients tagging one manifest at once (a release pipeline fanning out, the benchmark's
/// tag flood): every PUT succeeds, on PostgreSQL too, where they contend for the same rows.
#[tokio::test]
async fn a_flood_of_tags_on_one_manifest_all_succeed() {
    let b = Berth::start();
    let image = b.push_image("flood/app", "base", 7, 1).await;
    let mut tasks = Vec::new();
    for client in 0..16 {
        let (http, base, bytes) = (
            b.http.clone(),
            b.url("/v2/flood/app/manifests/"),
            image.bytes.clone(),
        );
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let status = http
                    .put(format!("{base}t{client:02}-{i:02}"))
                    .header("content-type", OCI_MANIFEST)
                    .body(bytes.clone())
                    .send()
                    .await
                    .unwrap()
                    .status();
                assert_eq!(status, StatusCode::CREATED, "tag t{client:02}-{i:02}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let tags: serde_json::Value = b.get("/v2/flood/app/tags/list").await.json().await.unwrap();
    assert_eq!(tags["tags"].as_array().unwrap().len(), 16 * 25 + 1);
}
