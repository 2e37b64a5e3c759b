//! Memory: a multi-gigabyte upload and download must not grow the server's memory, and
//! thousands of stalled uploads hold bounded state that is given back when they leave.

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

/// A line of `/proc/PID/status` (`VmRSS`, `Threads`...), as a number (KiB for sizes).
fn proc_status(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Opens an upload and starts a `PATCH` of 100 MB that sends 16 KiB and then stalls, on one
/// connection from the loopback address `from`.
async fn stalled_upload(b: &Berth, from: [u8; 4]) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = crate::connections::connect_from(from, b.addr).await;
    let host = b.host();
    let start = format!("POST /v2/stalled/blobs/uploads/ HTTP/1.1\r\nHost: {host}\r\n\r\n");
    s.write_all(start.as_bytes()).await.unwrap();
    // The 202 has no body: its head is the whole answer.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        assert_eq!(s.read(&mut byte).await.unwrap(), 1, "closed: {head:?}");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 202 "), "{head}");
    let location = head
        .lines()
        .find_map(|l| l.strip_prefix("location: "))
        .unwrap();
    let patch = format!(
        "PATCH {location} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: 100000000\r\n\r\n"
    );
    s.write_all(patch.as_bytes()).await.unwrap();
    s.write_all(&crate::harness::random_bytes(16 * 1024, 7))
        .await
        .unwrap();
    s
}

/// Thousands of clients that stall mid-upload hold a bounded amount of state, and what they
/// held goes back when they leave: no thread per upload (the runtime's blocking threads are
/// shared by all disk work), every connection and address counted out again, and the
/// resident memory returned to the system rather than kept by the allocator.
#[tokio::test]
async fn stalled_uploads_hold_no_threads_and_their_memory_returns() {
    const UPLOADS: usize = 2000;
    // 200 per client address, within the default per-address limit.
    const ADDRESSES: usize = 10;
    let b = Berth::start();
    let pid = b.pid().unwrap();
    let baseline = proc_status(pid, "VmRSS");

    let mut held = Vec::with_capacity(UPLOADS);
    for batch in (0..UPLOADS).collect::<Vec<_>>().chunks(50) {
        let opened = batch.iter().map(|i| {
            let from = [127, 0, 0, 1 + u8::try_from(i % ADDRESSES).unwrap()];
            stalled_upload(&b, from)
        });
        held.extend(futures_util::future::join_all(opened).await);
    }
    let m = crate::metrics::scrape_until(&b, "every upload in flight", |m| {
        m.get("berth_upload_requests_in_flight", &[]) == Some(UPLOADS as f64)
    })
    .await;
    // The scrape's own connection, from 127.0.0.1, is the one more.
    assert_eq!(
        m.get("berth_connections_open", &[]),
        Some(UPLOADS as f64 + 1.0)
    );
    assert_eq!(
        m.get("berth_connection_addresses", &[]),
        Some(ADDRESSES as f64)
    );
    // A stalled upload waits for its client on the runtime, not on a thread of its own
    // (before: one of at most 512 blocking threads each, so 512 stalled clients stalled
    // every other upload and download). Disk writes still borrow blocking threads for a
    // moment: on a loaded machine more of them overlap (108 were seen beside four builds), so
    // the bound is half the pool that one thread per upload would exhaust.
    let threads = proc_status(pid, "Threads");
    assert!(
        threads < 256,
        "{threads} threads for {UPLOADS} stalled uploads"
    );
    let peak = proc_status(pid, "VmRSS");
    // Another upload goes through meanwhile.
    b.push_blob("other", &crate::harness::random_bytes(100_000, 8))
        .await;

    drop(held);
    let m = crate::metrics::scrape_until(&b, "every stalled upload gone", |m| {
        m.get("berth_upload_requests_in_flight", &[]) == Some(0.0)
            && m.get("berth_connections_open", &[]) == Some(1.0)
    })
    .await;
    assert_eq!(m.get("berth_connection_addresses", &[]), Some(1.0));
    // The allocator gives the memory back once idle (jemalloc's background purge, about ten
    // seconds); glibc's malloc kept the peak for good.
    let returned_below = baseline + (peak - baseline) / 2;
    let mut rss = proc_status(pid, "VmRSS");
    for _ in 0..60 {
        if rss <= returned_below {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss = proc_status(pid, "VmRSS");
    }
    eprintln!(
        "server RSS: {baseline} KiB at start, {peak} KiB with {UPLOADS} stalled uploads, {rss} KiB after they closed"
    );
    assert!(
        rss <= returned_below,
        "resident memory stayed at {rss} KiB after {UPLOADS} stalled uploads closed (start {baseline} KiB, peak {peak} KiB)"
    );
}

/// Clients that request a blob and then read nothing hold no thread either (before: each
/// held one of the runtime's 512 blocking threads, so a few hundred of them stalled every
/// disk operation), and what each holds is bounded (the chunk read ahead, hyper's buffer).
#[tokio::test]
async fn stalled_downloads_hold_no_threads() {
    use tokio::io::AsyncWriteExt;
    const DOWNLOADS: usize = 300;
    let b = Berth::start();
    let pid = b.pid().unwrap();
    let blob = b
        .push_blob("big", &crate::harness::random_bytes(32 << 20, 9))
        .await;
    let baseline = proc_status(pid, "VmRSS");
    let mut held = Vec::with_capacity(DOWNLOADS);
    for i in 0..DOWNLOADS {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        // A small window, so the server's side fills up soon.
        socket.set_recv_buffer_size(4096).unwrap();
        let from = [127, 0, 0, 1 + u8::try_from(i % 10).unwrap()];
        socket.bind(std::net::SocketAddr::from((from, 0))).unwrap();
        let mut s = socket.connect(b.addr).await.unwrap();
        let get = format!(
            "GET /v2/big/blobs/{} HTTP/1.1\r\nHost: {}\r\n\r\n",
            blob.digest,
            b.host()
        );
        s.write_all(get.as_bytes()).await.unwrap();
        held.push(s);
    }
    // Every response under way (their heads are counted before the bodies stream)...
    crate::metrics::scrape_until(&b, "every download started", |m| {
        m.get(
            "berth_http_requests_total",
            &[("route", "blob_get"), ("method", "GET"), ("status", "200")],
        ) == Some(DOWNLOADS as f64)
    })
    .await;
    // ...and the blocking threads that read chunks meanwhile idle out after ten seconds.
    let mut threads = proc_status(pid, "Threads");
    for _ in 0..60 {
        if threads < 100 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        threads = proc_status(pid, "Threads");
    }
    let rss = proc_status(pid, "VmRSS");
    eprintln!(
        "{DOWNLOADS} stalled downloads: {threads} threads, RSS {baseline} -> {rss} KiB ({} KiB each)",
        rss.saturating_sub(baseline) / DOWNLOADS as u64
    );
    assert!(
        threads < 100,
        "{threads} threads for {DOWNLOADS} stalled downloads"
    );
    // The server still reads from disk for others.
    let resp = b.get(&format!("/v2/big/blobs/{}", blob.digest)).await;
    assert_eq!(resp.bytes().await.unwrap().len(), 32 << 20);
    drop(held);
}
