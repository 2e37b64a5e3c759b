//! Crash safety: SIGKILL the server mid-request, restart it on the same data, and check that
//! the store is consistent and usable.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::client::OCI_MANIFEST;
use crate::harness::{Berth, random_bytes, sha256};

/// A request body that sends `first` and then stalls until dropped.
fn stalled_body(first: Vec<u8>) -> (reqwest::Body, tokio::sync::oneshot::Sender<()>) {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stream =
        futures_util::stream::unfold((Some(first), Some(stop_rx)), |(first, stop)| async move {
            if let Some(bytes) = first {
                return Some((Ok::<_, std::io::Error>(bytes), (None, stop)));
            }
            if let Some(rx) = stop {
                let _ = rx.await;
            }
            None
        });
    (reqwest::Body::wrap_stream(stream), stop_tx)
}

/// Checks everything reachable through the API and every stored blob file.
pub async fn assert_consistent(b: &Berth) {
    let catalog: Value = b.get("/v2/_catalog").await.json().await.unwrap();
    for repo in catalog["repositories"].as_array().unwrap() {
        let repo = repo.as_str().unwrap();
        let tags: Value = b
            .get(&format!("/v2/{repo}/tags/list"))
            .await
            .json()
            .await
            .unwrap();
        for tag in tags["tags"].as_array().unwrap() {
            let resp = b
                .get(&format!("/v2/{repo}/manifests/{}", tag.as_str().unwrap()))
                .await;
            assert_eq!(resp.status(), StatusCode::OK, "{repo}:{tag}");
            let digest = resp.headers()["docker-content-digest"]
                .to_str()
                .unwrap()
                .to_owned();
            let body = resp.bytes().await.unwrap();
            assert_eq!(sha256(&body), digest, "manifest bytes of {repo}:{tag}");
            let manifest: Value = serde_json::from_slice(&body).unwrap();
            let blobs = std::iter::once(&manifest["config"])
                .chain(manifest["layers"].as_array().into_iter().flatten());
            for desc in blobs.filter(|d| d.is_object()) {
                let d = desc["digest"].as_str().unwrap();
                let resp = b.get(&format!("/v2/{repo}/blobs/{d}")).await;
                assert_eq!(resp.status(), StatusCode::OK, "blob {d} of {repo}:{tag}");
                let bytes = resp.bytes().await.unwrap();
                assert_eq!(sha256(&bytes), d);
                assert_eq!(bytes.len() as u64, desc["size"].as_u64().unwrap());
            }
        }
    }
    assert_blob_objects_match_their_names(b);
}

/// No partial or wrong blob is ever visible under a digest.
fn assert_blob_objects_match_their_names(b: &Berth) {
    for key in b.stored_objects() {
        if let Some(hex) = key
            .strip_prefix("blobs/sha256/")
            .and_then(|k| k.split('/').nth(1))
        {
            let bytes = b.read_object(&key);
            assert_eq!(
                sha256(&bytes),
                format!("sha256:{hex}"),
                "object {key} is not its content"
            );
        }
    }
}

#[tokio::test]
async fn kill_during_uploads_leaves_nothing_visible_and_sessions_resumable() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    // A short lease, so the session held by the killed request frees up quickly.
    let lease = [("BERTH_SERVER_UPLOAD_LEASE_SECS", "1")];
    let mut b = Berth::start_in(&data_dir, &lease);
    let data = random_bytes(3 * 1024 * 1024, 1);
    let digest = sha256(&data);

    // A session with one complete chunk, then a second chunk cut by the crash.
    let location = b.start_upload("app").await;
    let resp = b
        .http
        .patch(b.url(&location))
        .header("content-range", format!("0-{}", 1024 * 1024 - 1))
        .body(data[..1024 * 1024].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let (body, _keep1) = stalled_body(data[1024 * 1024..2 * 1024 * 1024].to_vec());
    let patch = b
        .http
        .patch(b.url(&location))
        .header(
            "content-range",
            format!("{}-{}", 1024 * 1024, data.len() - 1),
        )
        .body(body)
        .send();
    // A monolithic upload cut by the crash.
    let (body2, _keep2) = stalled_body(data[..2 * 1024 * 1024].to_vec());
    let mono = b
        .http
        .post(b.url(&format!("/v2/app/blobs/uploads/?digest={digest}")))
        .header("content-length", data.len().to_string())
        .body(body2)
        .send();
    let p = tokio::spawn(patch);
    let m = tokio::spawn(mono);
    tokio::time::sleep(Duration::from_millis(500)).await;
    b.kill();
    let _ = p.await;
    let _ = m.await;

    drop(b);
    let b2 = Berth::start_in(&data_dir, &lease);
    assert_eq!(
        b2.get(&format!("/v2/app/blobs/{digest}")).await.status(),
        StatusCode::NOT_FOUND
    );
    let status = b2.get(&location).await;
    assert_eq!(status.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        status.headers()["range"],
        format!("0-{}", 1024 * 1024 - 1).as_str()
    );
    assert_consistent(&b2).await;

    // Once the dead request's claim lapses, the session continues where SQL says it stands.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let resp = b2
        .http
        .put(b2.url(&format!("{location}?digest={digest}")))
        .header(
            "content-range",
            format!("{}-{}", 1024 * 1024, data.len() - 1),
        )
        .body(data[1024 * 1024..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::CREATED,
        "{:?}",
        resp.text().await
    );
    let got = b2
        .get(&format!("/v2/app/blobs/{digest}"))
        .await
        .bytes()
        .await
        .unwrap();
    assert!(got == data);
    assert_consistent(&b2).await;
}

#[tokio::test]
async fn repeated_kills_during_a_push_flood_keep_the_store_consistent() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let mut pushed_ok = 0usize;
    for round in 0..6u64 {
        let mut b = Berth::start_in(&data_dir, &[]);
        assert_consistent(&b).await;
        // Push images from several tasks until the kill.
        let mut tasks = Vec::new();
        for worker in 0..4u64 {
            let http = b.http.clone();
            let base = b.url("");
            tasks.push(tokio::spawn(async move {
                let mut done = 0usize;
                for i in 0.. {
                    let seed = round * 1_000_000 + worker * 10_000 + i;
                    if push_one(&http, &base, &format!("repo{}", worker % 2), seed)
                        .await
                        .is_err()
                    {
                        break;
                    }
                    done += 1;
                }
                done
            }));
        }
        // Kill at a different moment each round.
        tokio::time::sleep(Duration::from_millis(150 + 97 * round)).await;
        b.kill();
        for t in tasks {
            pushed_ok += t.await.unwrap();
        }
        drop(b);
    }
    assert!(pushed_ok > 0, "no push completed before the kills");
    let b = Berth::start_in(&data_dir, &[]);
    assert_consistent(&b).await;
    // And the registry still takes pushes.
    b.push_image("after", "v1", 42, 2).await;
    assert_consistent(&b).await;
}

/// One image push (blob, config, manifest, tag) through raw API calls; `Err` once the server
/// is gone.
async fn push_one(
    http: &reqwest::Client,
    base: &str,
    repo: &str,
    seed: u64,
) -> Result<(), reqwest::Error> {
    let layer = random_bytes(64 * 1024 + (seed % 1000) as usize, seed);
    let config = format!(r#"{{"seed":{seed}}}"#).into_bytes();
    let mut descs = Vec::new();
    for (bytes, media_type) in [
        (&config, "application/vnd.oci.image.config.v1+json"),
        (&layer, "application/vnd.oci.image.layer.v1.tar"),
    ] {
        let digest = sha256(bytes);
        // Alternate between chunked sessions and monolithic pushes.
        if seed.is_multiple_of(2) {
            http.post(format!("{base}/v2/{repo}/blobs/uploads/?digest={digest}"))
                .body(bytes.clone())
                .send()
                .await?
                .error_for_status()?;
        } else {
            let resp = http
                .post(format!("{base}/v2/{repo}/blobs/uploads/"))
                .send()
                .await?
                .error_for_status()?;
            let location = resp.headers()["location"].to_str().unwrap().to_owned();
            let resp = http
                .patch(format!("{base}{location}"))
                .body(bytes.clone())
                .send()
                .await?
                .error_for_status()?;
            let location = resp.headers()["location"].to_str().unwrap().to_owned();
            http.put(format!("{base}{location}?digest={digest}"))
                .send()
                .await?
                .error_for_status()?;
        }
        descs.push(
            serde_json::json!({ "mediaType": media_type, "digest": digest, "size": bytes.len() }),
        );
    }
    let manifest = serde_json::json!({ "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descs[0], "layers": [descs[1]] });
    http.put(format!("{base}/v2/{repo}/manifests/t{}", seed % 7))
        .header("content-type", OCI_MANIFEST)
        .body(serde_json::to_vec(&manifest).unwrap())
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

#[tokio::test]
async fn a_stalled_body_is_abandoned_and_its_session_freed() {
    let b = Berth::start_with(&[("BERTH_SERVER_BODY_IDLE_TIMEOUT_SECS", "1")]);
    let location = b.start_upload("app").await;
    let (body, _keep) = stalled_body(vec![7u8; 1024]);
    let resp = b.http.patch(b.url(&location)).body(body).send().await;
    // The server gives up on the body and answers (or drops the connection).
    if let Ok(resp) = resp {
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    }
    let status = b.get(&location).await;
    assert_eq!(status.headers()["range"], "0-0");
    // The session is free at once: no need to wait for the lease to lapse.
    let resp = b
        .http
        .patch(b.url(&location))
        .body("abc")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn sigterm_finishes_promptly_even_with_a_stalled_client() {
    let mut b = Berth::start_with(&[("BERTH_SERVER_SHUTDOWN_TIMEOUT_SECS", "1")]);
    let location = b.start_upload("app").await;
    let (body, _keep) = stalled_body(vec![7u8; 1024]);
    let pending = tokio::spawn(b.http.patch(b.url(&location)).body(body).send());
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Exits on its own (status 0) once the shutdown timeout passes.
    assert!(
        b.terminate(Duration::from_secs(20)),
        "berth did not exit after SIGTERM"
    );
    pending.abort();
    assert!(b.logs().contains("shutting down"));
}

#[tokio::test]
async fn sigterm_closes_idle_kept_alive_connections_at_once() {
    // A kept-alive HTTP/1 connection waiting for its next request must not hold the exit
    // until the shutdown timeout (ten minutes here, past the minute allowed below).
    let mut b = Berth::start_with(&[
        ("BERTH_SERVER_SHUTDOWN_DRAIN_SECS", "0"),
        ("BERTH_SERVER_SHUTDOWN_TIMEOUT_SECS", "600"),
    ]);
    let host = b.host();
    let idle = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut tcp = std::net::TcpStream::connect(&host).unwrap();
        write!(tcp, "GET /v2/ HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
        let mut head = [0u8; 12];
        tcp.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
        tcp
    })
    .await
    .unwrap();
    let exited = b.terminate(Duration::from_secs(60));
    assert!(exited, "an idle connection held the shutdown: {}", b.logs());
    drop(idle);
}

#[tokio::test]
async fn abandoned_upload_sessions_expire_with_their_bytes() {
    let b = Berth::start_with(&[
        ("BERTH_SERVER_UPLOAD_TTL_SECS", "1"),
        ("BERTH_SERVER_UPLOAD_CLEANUP_INTERVAL_SECS", "1"),
    ]);
    let location = b.start_upload("app").await;
    // Enough for a multipart upload on S3 (5 MiB parts in the tests), a file locally.
    let resp = b
        .http
        .patch(b.url(&location))
        .body(random_bytes(6 << 20, 9))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let fresh = b.start_upload("app").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if b.get(&location).await.status() == StatusCode::NOT_FOUND {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the idle session never expired"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(b.logs().contains("removed expired upload sessions"));
    // Its bytes are gone too: no upload file, no assembled object.
    let leftovers: Vec<String> = b
        .stored_objects()
        .into_iter()
        .filter(|k| k.starts_with("uploads/") || k.starts_with("data/"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let open = b.open_multipart_uploads();
    assert!(open.is_empty(), "multipart uploads left open: {open:?}");
    let _ = fresh;
}
