//! Several replicas sharing one PostgreSQL database and one S3 bucket (BERTH_TEST_BACKEND=
//! postgres-s3): sessions that hop between replicas, concurrent writers, a crash, a docker
//! push and pull through different replicas, and a rolling restart under load.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::client::{OCI_MANIFEST, expect_error};
use crate::crash::assert_consistent;
use crate::harness::{Backend, Berth, backend, random_bytes, required, sha256};
use crate::nginx::Nginx;
use crate::real_clients::{Docker, busybox, docker_build};

/// `n` replicas on one shared database and bucket, or `None` (skip) on a single-node backend.
pub(crate) fn replicas(
    n: usize,
    env: &[(&str, &str)],
) -> Option<(tempfile::TempDir, PathBuf, Vec<Berth>)> {
    if backend() != Backend::PostgresS3 {
        if !required() {
            eprintln!(
                "SKIPPED: replica tests need BERTH_TEST_BACKEND=postgres-s3 (tests/run sets it)"
            );
        }
        return None;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shared");
    let all = (0..n).map(|_| Berth::start_in(&dir, env)).collect();
    Some((tmp, dir, all))
}

#[tokio::test]
async fn a_chunked_upload_hops_between_replicas() {
    let Some((_tmp, _dir, r)) = replicas(3, &[]) else {
        return;
    };
    // 12 MiB in three 4 MiB chunks: with 5 MiB parts, part boundaries fall inside chunks, so
    // pending bytes must travel between replicas through the database.
    let data = random_bytes(12 << 20, 1);
    let digest = sha256(&data);
    let location = r[0].start_upload("hop/blob").await;
    let mut offset = 0;
    for (i, chunk) in data.chunks(4 << 20).enumerate() {
        let replica = &r[(i + 1) % 3];
        let resp = replica
            .http
            .patch(replica.url(&location))
            .header(
                "content-range",
                format!("{offset}-{}", offset + chunk.len() - 1),
            )
            .body(chunk.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::ACCEPTED,
            "chunk {i} on replica {}",
            (i + 1) % 3
        );
        offset += chunk.len();
        // Any replica reports the same progress.
        let status = r[i % 3].get(&location).await;
        assert_eq!(
            status.headers()["range"],
            format!("0-{}", offset - 1).as_str()
        );
    }
    let resp = r[0]
        .http
        .put(r[0].url(&format!("{location}?digest={digest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    for replica in &r {
        let got = replica
            .get(&format!("/v2/hop/blob/blobs/{digest}"))
            .await
            .bytes()
            .await
            .unwrap();
        assert!(got == data, "bytes differ through {}", replica.addr);
    }
}

#[tokio::test]
async fn docker_pushes_through_one_replica_and_pulls_through_another() {
    let Some((_tmp, _dir, r)) = replicas(2, &[]) else {
        return;
    };
    let (Some(docker), Some(busybox)) = (Docker::get(), busybox()) else {
        return;
    };
    let pushed = format!("{}/shared/app:v1", r[0].host());
    let pulled = format!("{}/shared/app:v1", r[1].host());
    docker_build(&docker, &busybox, "pushed through one replica", &pushed);
    docker.ok(&["push", &pushed]);
    docker.ok(&["rmi", &pushed]);
    docker.ok(&["pull", &pulled]);
    let out = docker.ok(&["run", "--rm", "--network", "none", &pulled]);
    assert_eq!(out, "pushed through one replica\ndoomed-is-gone\n");
    docker.ok(&["rmi", &pulled]);
}

#[tokio::test]
async fn concurrent_pushes_of_one_blob_and_tag_through_different_replicas() {
    let Some((_tmp, _dir, r)) = replicas(3, &[]) else {
        return;
    };
    let data = random_bytes(7 << 20, 2);
    let digest = sha256(&data);
    let mut tasks = Vec::new();
    for (i, replica) in r.iter().enumerate() {
        for round in 0..2 {
            let (http, base, data, digest) = (
                replica.http.clone(),
                replica.url(""),
                data.clone(),
                digest.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let repo = format!("race/r{}", (i + round) % 2);
                let resp = http
                    .post(format!("{base}/v2/{repo}/blobs/uploads/"))
                    .send()
                    .await
                    .unwrap();
                let loc = resp.headers()["location"].to_str().unwrap().to_owned();
                let resp = http
                    .patch(format!("{base}{loc}"))
                    .body(data)
                    .send()
                    .await
                    .unwrap();
                let loc = resp.headers()["location"].to_str().unwrap().to_owned();
                http.put(format!("{base}{loc}?digest={digest}"))
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
    // One stored copy, whichever replica won.
    let copies: Vec<String> = r[0]
        .stored_objects()
        .into_iter()
        .filter(|k| k.starts_with("blobs/") || k.starts_with("data/"))
        .collect();
    assert_eq!(copies.len(), 1, "{copies:?}");

    // Racing tag updates through every replica end on one complete manifest.
    let mut candidates = Vec::new();
    for i in 0..4 {
        candidates.push(
            r[i % 3]
                .push_image("race/r0", &format!("c{i}"), 100 + i as u64, 1)
                .await,
        );
    }
    let mut tasks = Vec::new();
    for round in 0..4 {
        for (i, c) in candidates.iter().enumerate() {
            let replica = &r[(i + round) % 3];
            let req = replica
                .http
                .put(replica.url("/v2/race/r0/manifests/hot"))
                .header("content-type", OCI_MANIFEST)
                .body(c.bytes.clone());
            tasks.push(tokio::spawn(
                async move { req.send().await.unwrap().status() },
            ));
        }
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::CREATED);
    }
    for replica in &r {
        let resp = replica.get("/v2/race/r0/manifests/hot").await;
        let digest = resp.headers()["docker-content-digest"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(sha256(&resp.bytes().await.unwrap()), digest);
        assert!(candidates.iter().any(|c| c.digest == digest));
    }
    assert_consistent(&r[1]).await;
}

#[tokio::test]
async fn a_replica_killed_mid_upload_leaves_the_session_to_another() {
    let lease = [("BERTH_SERVER_UPLOAD_LEASE_SECS", "1")];
    let Some((_tmp, _dir, mut r)) = replicas(2, &lease) else {
        return;
    };
    let data = random_bytes(11 << 20, 3);
    let digest = sha256(&data);
    let location = r[0].start_upload("crash/blob").await;
    let first = 6 << 20;
    let resp = r[0]
        .http
        .patch(r[0].url(&location))
        .header("content-range", format!("0-{}", first - 1))
        .body(data[..first].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    // The next chunk is cut by replica 0's death.
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let partial = data[first..first + (2 << 20)].to_vec();
    let stream = futures_util::stream::unfold((Some(partial), Some(rx)), |(p, rx)| async move {
        if let Some(p) = p {
            return Some((Ok::<_, std::io::Error>(p), (None, rx)));
        }
        if let Some(rx) = rx {
            let _ = rx.await;
        }
        None
    });
    let cut = r[0]
        .http
        .patch(r[0].url(&location))
        .header("content-range", format!("{first}-{}", data.len() - 1))
        .body(reqwest::Body::wrap_stream(stream))
        .send();
    let cut = tokio::spawn(cut);
    tokio::time::sleep(Duration::from_millis(500)).await;
    r[0].kill();
    let _ = cut.await;
    drop(tx);

    // Replica 1 sees the progress recorded before the crash, and finishes the session once
    // the dead request's lease lapses.
    let status = r[1].get(&location).await;
    assert_eq!(
        status.headers()["range"],
        format!("0-{}", first - 1).as_str()
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let resp = r[1]
        .http
        .put(r[1].url(&format!("{location}?digest={digest}")))
        .header("content-range", format!("{first}-{}", data.len() - 1))
        .body(data[first..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::CREATED,
        "{:?}",
        resp.text().await
    );
    let got = r[1]
        .get(&format!("/v2/crash/blob/blobs/{digest}"))
        .await
        .bytes()
        .await
        .unwrap();
    assert!(got == data);
    assert_consistent(&r[1]).await;
}

#[tokio::test]
async fn deletes_racing_pushes_leave_a_consistent_store() {
    let Some((_tmp, _dir, r)) = replicas(2, &[]) else {
        return;
    };
    let image = r[0].push_image("del/app", "v1", 7, 2).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let replica = &r[i % 2];
        let (http, base, bytes) = (replica.http.clone(), replica.url(""), image.bytes.clone());
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                let s = http
                    .put(format!("{base}/v2/del/app/manifests/t{i}"))
                    .header("content-type", OCI_MANIFEST)
                    .body(bytes)
                    .send()
                    .await
                    .unwrap()
                    .status();
                // The push may land before or after the manifest's deletion below; either is
                // fine, as long as the manifest is never half there.
                assert!(s == StatusCode::CREATED, "{s}");
            } else {
                let s = http
                    .delete(format!("{base}/v2/del/app/manifests/t{}", i - 1))
                    .send()
                    .await
                    .unwrap()
                    .status();
                assert!(
                    s == StatusCode::ACCEPTED || s == StatusCode::NOT_FOUND,
                    "{s}"
                );
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let resp = r[1]
        .delete(&format!("/v2/del/app/manifests/{}", image.digest))
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    expect_error(
        r[0].get("/v2/del/app/manifests/v1").await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    )
    .await;
    let tags: serde_json::Value = r[0]
        .get("/v2/del/app/tags/list")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tags["tags"], json!([]));
    assert_consistent(&r[0]).await;
}

#[tokio::test]
async fn a_rolling_restart_under_load_loses_no_request() {
    let grace = [
        ("BERTH_SERVER_SHUTDOWN_TIMEOUT_SECS", "20"),
        ("BERTH_SERVER_SHUTDOWN_DRAIN_SECS", "1"),
    ];
    let Some((_tmp, dir, mut r)) = replicas(3, &grace) else {
        return;
    };
    let addrs: Vec<_> = r.iter().map(|b| b.addr).collect();
    let Some(lb) = Nginx::start(&addrs) else {
        return;
    };
    let base = format!("http://{}", lb.host());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..4u64 {
        let (base, stop) = (base.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut done = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let seed = w * 100_000 + done;
                push_and_pull(&http, &base, &format!("roll/w{w}"), seed).await;
                done += 1;
            }
            done
        }));
    }
    // Restart each replica in turn on its own port, as an orchestrator does: SIGTERM (it
    // drains, then finishes its requests and exits), then a new process.
    for i in 0..r.len() {
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(
            r[i].terminate(Duration::from_secs(40)),
            "replica {i} did not exit cleanly"
        );
        r[i] = Berth::start_at(&dir, &grace, &addrs[i].to_string());
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for w in workers {
        match w.await {
            Ok(n) => total += n,
            Err(e) => panic!(
                "a client request failed during the rolling restart: {e}\nnginx: {}",
                lb.errors()
            ),
        }
    }
    assert!(total > 0);
    assert_consistent(&r[0]).await;
}

/// Pushes a small image in chunks and pulls it back, asserting every status.
async fn push_and_pull(http: &reqwest::Client, base: &str, repo: &str, seed: u64) {
    let layer = random_bytes(300_000, seed);
    let config = format!(r#"{{"seed":{seed}}}"#).into_bytes();
    let mut descs = Vec::new();
    for (bytes, media_type) in [
        (&config, "application/vnd.oci.image.config.v1+json"),
        (&layer, "application/vnd.oci.image.layer.v1.tar"),
    ] {
        let digest = sha256(bytes);
        let resp = http
            .post(format!("{base}/v2/{repo}/blobs/uploads/"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        let mut loc = resp.headers()["location"].to_str().unwrap().to_owned();
        let mut offset = 0;
        for chunk in bytes.chunks(100_000) {
            let resp = http
                .patch(format!("{base}{loc}"))
                .header(
                    "content-range",
                    format!("{offset}-{}", offset + chunk.len() - 1),
                )
                .body(chunk.to_vec())
                .send()
                .await
                .unwrap();
            assert_eq!(
                resp.status(),
                StatusCode::ACCEPTED,
                "{:?}",
                resp.text().await
            );
            loc = resp.headers()["location"].to_str().unwrap().to_owned();
            offset += chunk.len();
        }
        let resp = http
            .put(format!("{base}{loc}?digest={digest}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::CREATED,
            "{:?}",
            resp.text().await
        );
        descs.push(json!({ "mediaType": media_type, "digest": digest, "size": bytes.len() }));
    }
    let manifest = serde_json::to_vec(&json!({ "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descs[0], "layers": [descs[1]] })).unwrap();
    let tag = format!("t{}", seed % 5);
    let resp = http
        .put(format!("{base}/v2/{repo}/manifests/{tag}"))
        .header("content-type", OCI_MANIFEST)
        .body(manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = http
        .get(format!("{base}/v2/{repo}/manifests/{}", sha256(&manifest)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = http
        .get(format!("{base}/v2/{repo}/blobs/{}", sha256(&layer)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.bytes().await.unwrap() == layer);
}

#[tokio::test]
async fn blob_downloads_can_redirect_to_presigned_urls() {
    let Some((_tmp, _dir, r)) = replicas(1, &[("BERTH_STORAGE_REDIRECT", "true")]) else {
        return;
    };
    let b = &r[0];
    let small = random_bytes(1000, 11);
    let large = random_bytes(12 << 20, 12); // assembled from parts, stored under data/
    for data in [&small, &large] {
        let blob = b.push_blob("redir/app", data).await;
        for head in [false, true] {
            let path = format!("/v2/redir/app/blobs/{}", blob.digest);
            let resp = if head {
                b.head(&path).await
            } else {
                b.get(&path).await
            };
            assert_eq!(resp.status(), StatusCode::TEMPORARY_REDIRECT);
            let url = resp.headers()["location"].to_str().unwrap().to_owned();
            assert!(url.starts_with(&crate::harness::s3_endpoint()), "{url}");
            assert!(url.contains("X-Amz-Signature="), "{url}");
            if !head {
                let got = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
                assert!(
                    got.as_ref() == data.as_slice(),
                    "presigned download differs"
                );
            }
        }
    }
    // Unknown blobs are still answered by berth.
    expect_error(
        b.get(&format!("/v2/redir/app/blobs/{}", sha256(b"none")))
            .await,
        StatusCode::NOT_FOUND,
        "BLOB_UNKNOWN",
    )
    .await;
}
