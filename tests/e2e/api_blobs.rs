//! Blobs and upload sessions.

use futures_util::StreamExt;
use reqwest::StatusCode;

use crate::client::{OCI_LAYER, expect_error};
use crate::harness::{Berth, random_bytes, send_and_hang_up, sha256};

fn sha512(data: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha512:{}", hex::encode(sha2::Sha512::digest(data)))
}

async fn get_blob(b: &Berth, repo: &str, digest: &str) -> (StatusCode, Vec<u8>) {
    let resp = b.get(&format!("/v2/{repo}/blobs/{digest}")).await;
    let status = resp.status();
    (status, resp.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn monolithic_post_stores_a_verified_blob() {
    let b = Berth::start();
    let data = random_bytes(100_000, 1);
    let digest = sha256(&data);
    let missing = b.head(&format!("/v2/app/blobs/{digest}")).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let resp = b
        .http
        .post(b.url(&format!("/v2/app/blobs/uploads/?digest={digest}")))
        .header("content-type", "application/octet-stream")
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(
        resp.headers()["location"],
        format!("/v2/app/blobs/{digest}").as_str()
    );
    assert_eq!(resp.headers()["docker-content-digest"], digest.as_str());

    let head = b.head(&format!("/v2/app/blobs/{digest}")).await;
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["content-length"], "100000");
    assert_eq!(head.headers()["docker-content-digest"], digest.as_str());
    assert_eq!(head.headers()["accept-ranges"], "bytes");
    assert_eq!(get_blob(&b, "app", &digest).await, (StatusCode::OK, data));
}

#[tokio::test]
async fn wrong_digest_stores_nothing() {
    let b = Berth::start();
    let data = b"actual bytes".to_vec();
    let claimed = sha256(b"other bytes");
    let resp = b
        .http
        .post(b.url(&format!("/v2/app/blobs/uploads/?digest={claimed}")))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    let body = expect_error(resp, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    assert_eq!(body["errors"][0]["detail"]["actual"], sha256(&data));
    for digest in [claimed, sha256(&data)] {
        assert_eq!(get_blob(&b, "app", &digest).await.0, StatusCode::NOT_FOUND);
    }
    // Same through a session: the session is discarded too.
    let location = b.start_upload("app").await;
    let resp = b
        .http
        .put(b.url(&format!("{location}?digest={}", sha256(b"x"))))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    expect_error(
        b.get(&location).await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    assert_eq!(
        get_blob(&b, "app", &sha256(&data)).await.0,
        StatusCode::NOT_FOUND
    );
    // Malformed and unsupported digests are 400 DIGEST_INVALID too.
    for bad in ["sha256:abc", "nope", "md5:d41d8cd98f00b204e9800998ecf8427e"] {
        let resp = b
            .http
            .post(b.url(&format!("/v2/app/blobs/uploads/?digest={bad}")))
            .body("x")
            .send()
            .await
            .unwrap();
        expect_error(resp, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    }
}

#[tokio::test]
async fn post_then_put_with_the_whole_body() {
    let b = Berth::start();
    let data = random_bytes(5000, 2);
    let digest = sha256(&data);
    let location = b.start_upload("a/b/c").await;
    assert!(
        location.starts_with("/v2/a/b/c/blobs/uploads/"),
        "{location}"
    );
    let resp = b
        .http
        .put(b.url(&format!("{location}?digest={digest}")))
        .header("content-type", "application/octet-stream")
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(
        resp.headers()["location"],
        format!("/v2/a/b/c/blobs/{digest}").as_str()
    );
    assert_eq!(get_blob(&b, "a/b/c", &digest).await, (StatusCode::OK, data));
    // The session is gone once complete.
    expect_error(
        b.get(&location).await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
}

#[tokio::test]
async fn post_response_describes_the_session() {
    let b = Berth::start();
    let resp = b
        .http
        .post(b.url("/v2/app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let h = resp.headers();
    let uuid = h["docker-upload-uuid"].to_str().unwrap();
    assert_eq!(
        h["location"],
        format!("/v2/app/blobs/uploads/{uuid}").as_str()
    );
    assert_eq!(h["range"], "0-0");
    assert_eq!(h["content-length"], "0");
}

#[tokio::test]
async fn chunked_upload_in_order_with_status_and_416s() {
    let b = Berth::start();
    let data = random_bytes(30_000, 3);
    let digest = sha256(&data);
    let (c1, c2, c3) = (&data[..10_000], &data[10_000..25_000], &data[25_000..]);
    let location = b.start_upload("app").await;

    // Out of order: the second chunk first.
    let resp = b
        .http
        .patch(b.url(&location))
        .header("content-range", "10000-24999")
        .body(c2.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["range"], "0-0");
    expect_error(
        resp,
        StatusCode::RANGE_NOT_SATISFIABLE,
        "BLOB_UPLOAD_INVALID",
    )
    .await;

    let resp = b
        .http
        .patch(b.url(&location))
        .header("content-type", "application/octet-stream")
        .header("content-range", "0-9999")
        .body(c1.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(resp.headers()["range"], "0-9999");
    let location = resp.headers()["location"].to_str().unwrap().to_owned();

    // Retrying the same chunk is out of order now; status reports where we stand.
    let resp = b
        .http
        .patch(b.url(&location))
        .header("content-range", "0-9999")
        .body(c1.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let status = b.get(&location).await;
    assert_eq!(status.status(), StatusCode::NO_CONTENT);
    assert_eq!(status.headers()["range"], "0-9999");
    assert_eq!(status.headers()["location"], location.as_str());

    // An overlapping range is out of order as well.
    let resp = b
        .http
        .patch(b.url(&location))
        .header("content-range", "5000-19999")
        .body(data[5000..20_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    let resp = b
        .http
        .patch(b.url(&location))
        .header("content-range", "10000-24999")
        .header("content-length", "15000")
        .body(c2.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(resp.headers()["range"], "0-24999");

    // The last chunk rides on the closing PUT.
    let resp = b
        .http
        .put(b.url(&format!("{location}?digest={digest}")))
        .header("content-range", "25000-29999")
        .body(c3.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(get_blob(&b, "app", &digest).await, (StatusCode::OK, data));
}

#[tokio::test]
async fn bad_content_ranges_and_lengths_are_refused_without_progress() {
    let b = Berth::start();
    let location = b.start_upload("app").await;
    for (range, body) in [
        ("abc", "xx"),
        ("5-2", "xx"),
        ("0-", "xx"),
        ("bytes=0-x", "xx"),
    ] {
        let resp = b
            .http
            .patch(b.url(&location))
            .header("content-range", range)
            .body(body)
            .send()
            .await
            .unwrap();
        expect_error(resp, StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID").await;
    }
    // The range announces 10 bytes, the body has 2.
    let resp = b
        .http
        .patch(b.url(&location))
        .header("content-range", "0-9")
        .body("xx")
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::BAD_REQUEST, "SIZE_INVALID").await;
    let status = b.get(&location).await;
    assert_eq!(status.headers()["range"], "0-0");
    // The session still works afterwards.
    let resp = b
        .http
        .put(b.url(&format!("{location}?digest={}", sha256(b"ok"))))
        .body("ok")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn streamed_patch_with_chunked_transfer_encoding_as_docker_sends_it() {
    let b = Berth::start();
    let data = random_bytes(3 * 1024 * 1024 + 17, 4);
    let digest = sha256(&data);
    let location = b.start_upload("app").await;
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
        data.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    let resp = b
        .http
        .patch(b.url(&location))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            pieces,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(
        resp.headers()["range"],
        format!("0-{}", data.len() - 1).as_str()
    );
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let resp = b
        .http
        .put(b.url(&format!("{location}?digest={digest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = b.get(&format!("/v2/app/blobs/{digest}")).await;
    let mut got = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        got.extend_from_slice(&chunk.unwrap());
    }
    assert!(got == data, "blob bytes differ");
}

#[tokio::test]
async fn truncated_bodies_store_nothing_and_leave_the_session_usable() {
    let b = Berth::start();
    let data = random_bytes(1000, 5);
    let digest = sha256(&data);
    // Monolithic POST that announces 1000 bytes and sends 500.
    let mut req = format!(
        "POST /v2/app/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
    )
    .into_bytes();
    req.extend_from_slice(&data[..500]);
    send_and_hang_up(b.addr, &req);
    assert_eq!(get_blob(&b, "app", &digest).await.0, StatusCode::NOT_FOUND);

    // PATCH that announces 1000 and sends 500.
    let location = b.start_upload("app").await;
    let mut req = format!(
        "PATCH {location} HTTP/1.1\r\nHost: x\r\nContent-Range: 0-999\r\nContent-Length: 1000\r\n\r\n"
    )
    .into_bytes();
    req.extend_from_slice(&data[..500]);
    send_and_hang_up(b.addr, &req);
    let status = b.get(&location).await;
    assert_eq!(status.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        status.headers()["range"],
        "0-0",
        "no progress is recorded for a cut body"
    );
    // Complete it properly.
    let resp = b
        .http
        .put(b.url(&format!("{location}?digest={digest}")))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(get_blob(&b, "app", &digest).await, (StatusCode::OK, data));
}

#[tokio::test]
async fn empty_blobs_upload_and_download() {
    let b = Berth::start();
    let digest = sha256(b"");
    let location = b.start_upload("app").await;
    let resp = b
        .http
        .put(b.url(&format!("{location}?digest={digest}")))
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(get_blob(&b, "app", &digest).await, (StatusCode::OK, vec![]));
    let head = b.head(&format!("/v2/app/blobs/{digest}")).await;
    assert_eq!(head.headers()["content-length"], "0");
}

#[tokio::test]
async fn sha512_uploads_with_digest_algorithm() {
    let b = Berth::start();
    let data = random_bytes(70_000, 6);
    let digest = sha512(&data);
    // Monolithic.
    let resp = b
        .http
        .post(b.url(&format!("/v2/app/blobs/uploads/?digest={digest}")))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(
        get_blob(&b, "app", &digest).await,
        (StatusCode::OK, data.clone())
    );
    // Chunked, announced with digest-algorithm.
    let other = random_bytes(70_000, 7);
    let digest = sha512(&other);
    let resp = b
        .http
        .post(b.url("/v2/app/blobs/uploads/?digest-algorithm=sha512"))
        .send()
        .await
        .unwrap();
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let resp = b
        .http
        .patch(b.url(&location))
        .body(other.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let resp = b
        .http
        .put(b.url(&format!("{location}?digest={digest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    // Chunked without announcing: on local storage the registry re-hashes the stored bytes;
    // cloud storage keeps no copy to re-read, so the client is told to announce it.
    let third = random_bytes(1000, 8);
    let location = b.start_upload("app").await;
    let resp = b
        .http
        .put(b.url(&format!("{location}?digest={}", sha512(&third))))
        .body(third.clone())
        .send()
        .await
        .unwrap();
    if crate::harness::backend() == crate::harness::Backend::PostgresS3 {
        let body = expect_error(resp, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
        assert!(body.to_string().contains("digest-algorithm"), "{body}");
    } else {
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
    let resp = b
        .http
        .post(b.url("/v2/app/blobs/uploads/?digest-algorithm=md5"))
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
}

#[tokio::test]
async fn put_without_digest_is_refused() {
    let b = Berth::start();
    let location = b.start_upload("app").await;
    let resp = b
        .http
        .put(b.url(&location))
        .body("abc")
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
}

#[tokio::test]
async fn sessions_belong_to_their_repository_and_can_be_cancelled() {
    let b = Berth::start();
    let location = b.start_upload("one").await;
    let id = location.rsplit('/').next().unwrap();
    expect_error(
        b.get(&format!("/v2/two/blobs/uploads/{id}")).await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    let resp = b
        .http
        .patch(b.url(&location))
        .body("abc")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let resp = b.delete(&location).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    expect_error(
        b.get(&location).await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    expect_error(
        b.delete(&location).await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    let resp = b
        .http
        .patch(b.url(&location))
        .body("abc")
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
    let unknown = format!(
        "/v2/one/blobs/uploads/{}",
        "00000000-0000-4000-8000-000000000000"
    );
    expect_error(
        b.get(&unknown).await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
}

#[tokio::test]
async fn range_requests() {
    let b = Berth::start();
    let data = random_bytes(1000, 9);
    let blob = b.push_blob("app", &data).await;
    let path = format!("/v2/app/blobs/{}", blob.digest);
    let get_range = |range: &'static str| {
        let req = b.http.get(b.url(&path)).header("range", range);
        async move { req.send().await.unwrap() }
    };
    let resp = get_range("bytes=10-19").await;
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(resp.headers()["content-range"], "bytes 10-19/1000");
    assert_eq!(resp.headers()["content-length"], "10");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &data[10..20]);
    let resp = get_range("bytes=990-").await;
    assert_eq!(resp.headers()["content-range"], "bytes 990-999/1000");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &data[990..]);
    let resp = get_range("bytes=-5").await;
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &data[995..]);
    let resp = get_range("bytes=900-5000").await;
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &data[900..]);
    let resp = get_range("bytes=1000-1001").await;
    assert_eq!(resp.headers()["content-range"], "bytes */1000");
    expect_error(resp, StatusCode::RANGE_NOT_SATISFIABLE, "SIZE_INVALID").await;
    // Several ranges: ignored, the whole blob is sent.
    let resp = get_range("bytes=0-1,5-6").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap().len(), 1000);
}

#[tokio::test]
async fn mounts_link_blobs_across_repositories() {
    let b = Berth::start();
    let data = random_bytes(2000, 10);
    let blob = b.push_blob("source", &data).await;
    // With from.
    let resp = b
        .http
        .post(b.url(&format!(
            "/v2/target/blobs/uploads/?mount={}&from=source",
            blob.digest
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(
        resp.headers()["location"],
        format!("/v2/target/blobs/{}", blob.digest).as_str()
    );
    assert_eq!(
        resp.headers()["docker-content-digest"],
        blob.digest.as_str()
    );
    assert_eq!(
        get_blob(&b, "target", &blob.digest).await,
        (StatusCode::OK, data.clone())
    );
    // Without from: found in some repository.
    let resp = b
        .http
        .post(b.url(&format!("/v2/third/blobs/uploads/?mount={}", blob.digest)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    // From a repository that does not have it: a new session instead.
    let resp = b
        .http
        .post(b.url(&format!(
            "/v2/fourth/blobs/uploads/?mount={}&from=empty",
            blob.digest
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert!(
        resp.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/v2/fourth/blobs/uploads/")
    );
    // An unknown blob: a new session too.
    let resp = b
        .http
        .post(b.url(&format!(
            "/v2/fourth/blobs/uploads/?mount={}",
            sha256(b"nowhere")
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let resp = b
        .http
        .post(b.url("/v2/fourth/blobs/uploads/?mount=sha256:bad&from=source"))
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    let resp = b
        .http
        .post(b.url(&format!(
            "/v2/fourth/blobs/uploads/?mount={}&from=Bad..Name",
            blob.digest
        )))
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::BAD_REQUEST, "NAME_INVALID").await;
}

#[tokio::test]
async fn deleting_a_blob_unlinks_it_from_one_repository_only() {
    let b = Berth::start();
    let data = random_bytes(500, 11);
    let blob = b.push_blob("one", &data).await;
    b.push_blob("two", &data).await;
    let resp = b.delete(&format!("/v2/one/blobs/{}", blob.digest)).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(
        get_blob(&b, "one", &blob.digest).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get_blob(&b, "two", &blob.digest).await,
        (StatusCode::OK, data)
    );
    expect_error(
        b.delete(&format!("/v2/one/blobs/{}", blob.digest)).await,
        StatusCode::NOT_FOUND,
        "BLOB_UNKNOWN",
    )
    .await;
    expect_error(
        b.delete(&format!("/v2/nonexistent/blobs/{}", blob.digest))
            .await,
        StatusCode::NOT_FOUND,
        "NAME_UNKNOWN",
    )
    .await;
    expect_error(
        b.get(&format!("/v2/one/blobs/{}", sha256(b"never"))).await,
        StatusCode::NOT_FOUND,
        "BLOB_UNKNOWN",
    )
    .await;
}

#[tokio::test]
async fn concurrent_uploads_of_the_same_blob_all_succeed_with_one_copy() {
    let b = Berth::start();
    let data = random_bytes(2 * 1024 * 1024, 12);
    let digest = sha256(&data);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (http, url, data) = (b.http.clone(), b.url(""), data.clone());
        let digest = digest.clone();
        tasks.push(tokio::spawn(async move {
            let repo = format!("r{}", i % 3);
            if i % 2 == 0 {
                let resp = http
                    .post(format!("{url}/v2/{repo}/blobs/uploads/?digest={digest}"))
                    .body(data)
                    .send()
                    .await
                    .unwrap();
                resp.status()
            } else {
                let resp = http
                    .post(format!("{url}/v2/{repo}/blobs/uploads/"))
                    .send()
                    .await
                    .unwrap();
                let location = resp.headers()["location"].to_str().unwrap().to_owned();
                let resp = http
                    .patch(format!("{url}{location}"))
                    .body(data)
                    .send()
                    .await
                    .unwrap();
                let location = resp.headers()["location"].to_str().unwrap().to_owned();
                http.put(format!("{url}{location}?digest={digest}"))
                    .send()
                    .await
                    .unwrap()
                    .status()
            }
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::CREATED);
    }
    for repo in ["r0", "r1", "r2"] {
        let (status, got) = get_blob(&b, repo, &digest).await;
        assert_eq!(status, StatusCode::OK);
        assert!(got == data);
    }
    // Deduplicated: exactly one stored copy, and no upload leftovers.
    let objects = b.stored_objects();
    let blobs: Vec<&String> = objects
        .iter()
        .filter(|k| k.starts_with("blobs/") || k.starts_with("data/"))
        .collect();
    assert_eq!(blobs.len(), 1, "{blobs:?}");
    let uploads: Vec<&String> = objects
        .iter()
        .filter(|k| k.starts_with("uploads/"))
        .collect();
    assert!(uploads.is_empty(), "{uploads:?}");
}

#[tokio::test]
async fn concurrent_writes_to_one_session_never_interleave() {
    let b = Berth::start();
    let location = b.start_upload("app").await;
    let a = random_bytes(4 * 1024 * 1024, 13);
    let c = random_bytes(4 * 1024 * 1024, 14);
    let send = |data: Vec<u8>| {
        let req = b
            .http
            .patch(b.url(&location))
            .header("content-range", format!("0-{}", data.len() - 1))
            .body(data);
        // The loser is answered 416 as soon as the session is found busy, before its body is
        // read, and the server then closes the connection: a client still writing its body
        // may see that as a broken pipe instead of the answer. Either way it was refused.
        async move {
            match req.send().await {
                Ok(resp) => Some(resp.status()),
                Err(e) if e.is_request() => None,
                Err(e) => panic!("{e}"),
            }
        }
    };
    let (s1, s2) = tokio::join!(send(a.clone()), send(c.clone()));
    let statuses = [s1, s2];
    let accepted = statuses
        .iter()
        .filter(|s| **s == Some(StatusCode::ACCEPTED))
        .count();
    assert_eq!(accepted, 1, "{statuses:?}");
    assert!(
        statuses.contains(&Some(StatusCode::RANGE_NOT_SATISFIABLE)) || statuses.contains(&None),
        "{statuses:?}"
    );
    // Exactly one of the two bodies made it, whole.
    let winner = if s1 == Some(StatusCode::ACCEPTED) {
        a
    } else {
        c
    };
    let resp = b
        .http
        .put(b.url(&format!("{location}?digest={}", sha256(&winner))))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn layer_media_type_is_not_required_for_blobs() {
    // Blobs are opaque bytes: any Content-Type (or none) is accepted.
    let b = Berth::start();
    let data = b"opaque".to_vec();
    let resp = b
        .http
        .post(b.url(&format!("/v2/app/blobs/uploads/?digest={}", sha256(&data))))
        .header("content-type", OCI_LAYER)
        .body(data)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
}
