//! Blob push (monolithic and chunked) and pull throughput.

use std::time::Instant;

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use sha2::{Digest as _, Sha256};

use crate::servers::Registry;

/// A blob to push: its bytes and digest.
pub struct TestBlob {
    /// The bytes.
    pub bytes: Bytes,
    /// `sha256:<hex>`.
    pub digest: String,
}

/// A random blob of `len` bytes, different for every `seed`.
pub fn random_blob(len: usize, seed: u64) -> TestBlob {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut data = vec![0u8; len];
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = x.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&data)));
    TestBlob {
        bytes: Bytes::from(data),
        digest,
    }
}

async fn start_session(
    http: &reqwest::Client,
    reg: &Registry,
    repo: &str,
) -> anyhow::Result<String> {
    let resp = http
        .post(format!("{}/v2/{repo}/blobs/uploads/", reg.url))
        .send()
        .await?;
    ensure!(
        resp.status().as_u16() == 202,
        "POST upload: {}",
        resp.status()
    );
    location(reg, &resp)
}

fn location(reg: &Registry, resp: &reqwest::Response) -> anyhow::Result<String> {
    let loc = resp
        .headers()
        .get("location")
        .context("no Location")?
        .to_str()?
        .to_owned();
    Ok(if loc.starts_with("http") {
        loc
    } else {
        format!("{}{loc}", reg.url)
    })
}

fn with_digest(location: &str, digest: &str) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={digest}")
}

/// `POST` a session then `PUT` the whole blob; returns MB/s.
pub async fn push_monolithic(
    http: &reqwest::Client,
    reg: &Registry,
    repo: &str,
    blob: &TestBlob,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let loc = start_session(http, reg, repo).await?;
    let resp = http
        .put(with_digest(&loc, &blob.digest))
        .header("content-type", "application/octet-stream")
        .body(blob.bytes.clone())
        .send()
        .await?;
    ensure!(resp.status().as_u16() == 201, "PUT blob: {}", resp.status());
    Ok(mb_per_s(blob.bytes.len(), started))
}

/// `POST`, then `PATCH` chunks of `chunk` bytes with `Content-Range`, then `PUT`; returns MB/s.
pub async fn push_chunked(
    http: &reqwest::Client,
    reg: &Registry,
    repo: &str,
    blob: &TestBlob,
    chunk: usize,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut loc = start_session(http, reg, repo).await?;
    let mut offset = 0;
    while offset < blob.bytes.len() {
        let end = (offset + chunk).min(blob.bytes.len());
        let resp = http
            .patch(&loc)
            .header("content-type", "application/octet-stream")
            .header("content-range", format!("{offset}-{}", end - 1))
            .body(blob.bytes.slice(offset..end))
            .send()
            .await?;
        if resp.status().as_u16() != 202 {
            bail!("PATCH chunk at {offset}: {}", resp.status());
        }
        loc = location(reg, &resp)?;
        offset = end;
    }
    let resp = http.put(with_digest(&loc, &blob.digest)).send().await?;
    ensure!(
        resp.status().as_u16() == 201,
        "PUT close: {}",
        resp.status()
    );
    Ok(mb_per_s(blob.bytes.len(), started))
}

/// `GET` a blob over a plain TCP connection read with a 1 MiB buffer, so the measurement
/// reflects the server rather than an HTTP client library; returns MB/s.
pub async fn pull(reg: &Registry, repo: &str, blob: &TestBlob) -> anyhow::Result<f64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let started = Instant::now();
    let mut s = tokio::net::TcpStream::connect(reg.host()).await?;
    let request = format!(
        "GET /v2/{repo}/blobs/{} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        blob.digest,
        reg.host()
    );
    s.write_all(request.as_bytes()).await?;
    let mut buf = vec![0u8; 1 << 20];
    let mut head = Vec::new();
    let body_start = loop {
        let n = s.read(&mut buf).await?;
        ensure!(n > 0, "connection closed before the response head");
        head.extend_from_slice(&buf[..n]);
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let text = String::from_utf8_lossy(&head[..body_start]).to_ascii_lowercase();
    ensure!(
        text.starts_with("http/1.1 200"),
        "GET blob: {}",
        text.lines().next().unwrap_or("")
    );
    let length: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .context("no Content-Length")?
        .trim()
        .parse()?;
    let mut first = head.get(body_start).copied();
    let mut total = head.len() - body_start;
    while total < length {
        let n = s.read(&mut buf).await?;
        ensure!(n > 0, "connection closed after {total} of {length} bytes");
        if total == 0 {
            first = Some(buf[0]);
        }
        total += n;
    }
    let rate = mb_per_s(total, started);
    ensure!(
        total == blob.bytes.len(),
        "pulled {total} bytes of {}",
        blob.bytes.len()
    );
    ensure!(first == blob.bytes.first().copied(), "pulled bytes differ");
    Ok(rate)
}

/// Megabytes (10^6 bytes) per second.
pub fn mb_per_s(bytes: usize, since: Instant) -> f64 {
    bytes as f64 / 1e6 / since.elapsed().as_secs_f64()
}
