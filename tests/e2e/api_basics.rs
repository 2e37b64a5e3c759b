//! `/v2/`, routing, error envelopes and hostile paths.

use reqwest::StatusCode;

use crate::client::expect_error;
use crate::harness::{Berth, raw_http};

#[tokio::test]
async fn base_endpoint_answers_with_the_api_version() {
    let b = Berth::start();
    for path in ["/v2/", "/v2"] {
        let resp = b.get(path).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.headers()["docker-distribution-api-version"],
            "registry/2.0"
        );
        assert_eq!(resp.text().await.unwrap(), "{}");
    }
    assert_eq!(b.head("/v2/").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_routes_and_methods_get_the_error_envelope() {
    let b = Berth::start();
    expect_error(b.get("/v2/foo").await, StatusCode::NOT_FOUND, "UNSUPPORTED").await;
    expect_error(
        b.get("/v2/foo/bar/baz").await,
        StatusCode::NOT_FOUND,
        "UNSUPPORTED",
    )
    .await;
    let resp = b.get("/v1/").await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = b
        .http
        .post(b.url("/v2/foo/manifests/latest"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["allow"], "GET, HEAD, PUT, DELETE");
    expect_error(resp, StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED").await;
    let resp = b.http.put(b.url("/v2/_catalog")).send().await.unwrap();
    expect_error(resp, StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED").await;
}

#[tokio::test]
async fn malformed_names_and_digests_are_rejected() {
    let b = Berth::start();
    expect_error(
        b.get("/v2/UPPER/tags/list").await,
        StatusCode::BAD_REQUEST,
        "NAME_INVALID",
    )
    .await;
    expect_error(
        b.get("/v2/a__-b/manifests/latest").await,
        StatusCode::BAD_REQUEST,
        "NAME_INVALID",
    )
    .await;
    let long = "a".repeat(256);
    expect_error(
        b.get(&format!("/v2/{long}/tags/list")).await,
        StatusCode::BAD_REQUEST,
        "NAME_INVALID",
    )
    .await;
    expect_error(
        b.get("/v2/ok/blobs/sha256:abc").await,
        StatusCode::BAD_REQUEST,
        "DIGEST_INVALID",
    )
    .await;
    expect_error(
        b.get("/v2/ok/blobs/md5:abc").await,
        StatusCode::BAD_REQUEST,
        "DIGEST_INVALID",
    )
    .await;
    expect_error(
        b.get("/v2/ok/referrers/nope:").await,
        StatusCode::BAD_REQUEST,
        "DIGEST_INVALID",
    )
    .await;
    // Manifest references that cannot exist are unknown (api_manifests has the whole table).
    let tag = "t".repeat(129);
    for reference in ["-tag", tag.as_str(), "sha256:totallywrong"] {
        expect_error(
            b.get(&format!("/v2/ok/manifests/{reference}")).await,
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
        )
        .await;
    }
    expect_error(
        b.get("/v2/ok/blobs/uploads/not-a-session").await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
}

#[tokio::test]
async fn path_tricks_never_reach_storage() {
    let b = Berth::start();
    // Push something real so there is data a traversal could try to reach.
    b.push_image("victim", "latest", 1, 1).await;
    for path in [
        "/v2/victim/../victim/manifests/latest",
        "/v2/x/%2e%2e/victim/manifests/latest",
        "/v2/x/%2E%2E/victim/manifests/latest",
        "/v2//victim/manifests/latest",
        "/v2/victim//manifests/latest",
        "/v2/victim%2fx/manifests/latest",
        "/v2/./victim/manifests/latest",
    ] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let (status, headers, body) = raw_http(b.addr, request.as_bytes());
        assert_eq!(status, 400, "{path}: {}", String::from_utf8_lossy(&body));
        assert!(
            headers
                .iter()
                .any(|(k, v)| k == "content-type" && v == "application/json")
        );
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["errors"][0]["code"], "NAME_INVALID", "{path}");
    }
    // Traversal in a digest position is a malformed digest, not a file path.
    let request = "GET /v2/victim/blobs/sha256:..%2f..%2f..%2fetc%2fpasswd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let (status, _, _) = raw_http(b.addr, request.as_bytes());
    assert_eq!(status, 400);
}

#[tokio::test]
async fn requests_are_logged_one_line_each_without_query_strings() {
    let b = Berth::start();
    b.get("/v2/?secret=hunter2").await;
    expect_error(
        b.get("/v2/nope/tags/list").await,
        StatusCode::NOT_FOUND,
        "NAME_UNKNOWN",
    )
    .await;
    let logs = b.logs();
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["message"] == "request")
        .collect();
    assert_eq!(lines.len(), 2, "{logs}");
    assert_eq!(lines[0]["method"], "GET");
    assert_eq!(lines[0]["route"], "base");
    assert_eq!(lines[0]["status"], 200);
    assert_eq!(lines[0]["bytes_out"], 2);
    assert!(lines[0]["latency_ms"].as_f64().is_some());
    assert_eq!(lines[1]["route"], "tags_list");
    assert_eq!(lines[1]["status"], 404);
    assert!(!logs.contains("hunter2"));
}

#[tokio::test]
async fn health_probes_answer() {
    let b = Berth::start();
    let resp = b.get("/healthz").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = b.get("/readyz").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.text().await.unwrap(), "ready\n");
}

#[tokio::test]
async fn readiness_turns_off_while_draining() {
    let mut b = Berth::start_with(&[("BERTH_SERVER_SHUTDOWN_DRAIN_SECS", "3")]);
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(b.pid().unwrap().to_string())
        .status();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    // Still serving during the drain, but not ready, and closing connections after each reply.
    let resp = b.get("/readyz").await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()["connection"], "close");
    let resp = b.get("/v2/").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(b.terminate(std::time::Duration::from_secs(20)));
}
