//! Streaming: a multi-gigabyte upload and download must not grow the server's memory.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use sha2::{Digest as _, Sha256};

use crate::harness::Berth;

/// Peak resident memory (VmHWM) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmHWM")
}

/// Block `i` of the test blob: 1 MiB of fixed pseudo-random bytes stamped with `i`, so the
/// blob is never repetitive yet costs only a copy to produce.
fn block(base: &[u8], i: u64) -> Vec<u8> {
    let mut out = base.to_vec();
    out[..8].copy_from_slice(&i.to_le_bytes());
    out
}

/// Free space under `dir`, in MiB (from `df`, which every test machine has).
fn free_mib(dir: &std::path::Path) -> u64 {
    let out = std::process::Command::new("df")
        .args(["--output=avail", "-BM"])
        .arg(dir)
        .output()
        .expect("df");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .nth(1)
        .and_then(|l| l.trim().trim_end_matches('M').parse().ok())
        .unwrap_or_else(|| panic!("unreadable df output: {text}"))
}

#[tokio::test]
async fn a_multi_gigabyte_upload_and_download_run_in_constant_memory() {
    let b = Berth::start();
    // Up to 5 GiB on local storage, within half the free disk so that a full disk cannot be
    // mistaken for a registry fault; 1 GiB through the S3 test server, which keeps every byte
    // in its own memory and is slow. Any of these is far beyond the memory bound checked.
    let blocks: u64 = match crate::harness::backend() {
        crate::harness::Backend::PostgresS3 => 1024,
        _ => (free_mib(&b.data_dir) / 2).min(5 * 1024),
    };
    assert!(
        blocks >= 1024,
        "the streaming test needs at least 2 GiB free under {}",
        b.data_dir.display()
    );
    let pid = b.pid().unwrap();
    let baseline = peak_rss_kib(pid);

    // The digest is computed on the fly; the blob is never held in the test either.
    let base = std::sync::Arc::new(crate::harness::random_bytes(1 << 20, 99));
    let mut hasher = Sha256::new();
    for i in 0..blocks {
        hasher.update(block(&base, i));
    }
    let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
    let body = futures_util::stream::iter(0..blocks)
        .map(move |i| Ok::<_, std::io::Error>(block(&base, i)));
    let location = b.start_upload("big").await;
    let resp = b
        .http
        .patch(b.url(&location))
        .body(reqwest::Body::wrap_stream(body))
        .timeout(Duration::from_secs(600))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let resp = b
        .http
        .put(b.url(&format!("{location}?digest={digest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let after_upload = peak_rss_kib(pid);

    let resp = b.get(&format!("/v2/big/blobs/{digest}")).await;
    assert_eq!(
        resp.headers()["content-length"],
        (blocks << 20).to_string().as_str()
    );
    let mut stream = resp.bytes_stream();
    let mut check = Sha256::new();
    let mut total = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        total += chunk.len() as u64;
        check.update(&chunk);
    }
    assert_eq!(total, blocks << 20);
    assert_eq!(format!("sha256:{}", hex::encode(check.finalize())), digest);
    let after_download = peak_rss_kib(pid);

    eprintln!(
        "server peak RSS: start {baseline} KiB, after a {blocks} MiB upload {after_upload} KiB, after download {after_download} KiB"
    );
    // Constant memory: the peak grows by buffers (and at most a few multipart parts), not by
    // the blob (at least 1 GiB = 1,048,576 KiB).
    assert!(
        after_download < baseline + 64 * 1024,
        "peak RSS grew from {baseline} to {after_download} KiB"
    );
    let _ = std::fs::remove_dir_all(b.data_dir.join("blobs"));
}
