//! Many concurrent small requests: manifest GET/HEAD by tag, tag PUTs, listings.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::ensure;
use hdrhistogram::Histogram;
use serde_json::json;

use crate::blobs::random_blob;
use crate::servers::Registry;

/// Results of a fixed-duration load run.
#[derive(Debug, Clone, Copy)]
pub struct LoadResult {
    /// Successful requests per second.
    pub rps: f64,
    /// Median latency in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency in milliseconds.
    pub p99_ms: f64,
    /// Failed requests (transport errors or non-success statuses).
    pub errors: u64,
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Pushes a small image (config and one layer) to `repo` and returns its manifest bytes.
pub async fn push_small_image(
    http: &reqwest::Client,
    reg: &Registry,
    repo: &str,
    seed: u64,
) -> anyhow::Result<Vec<u8>> {
    let config = random_blob(512, seed);
    let layer = random_blob(4096, seed + 1);
    for b in [&config, &layer] {
        let resp = http
            .post(format!("{}/v2/{repo}/blobs/uploads/", reg.url))
            .send()
            .await?;
        let loc = resp.headers()["location"].to_str()?.to_owned();
        let loc = if loc.starts_with("http") {
            loc
        } else {
            format!("{}{loc}", reg.url)
        };
        let sep = if loc.contains('?') { '&' } else { '?' };
        let resp = http
            .put(format!("{loc}{sep}digest={}", b.digest))
            .body(b.bytes.clone())
            .send()
            .await?;
        ensure!(
            resp.status().as_u16() == 201,
            "blob push: {}",
            resp.status()
        );
    }
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.digest, "size": config.bytes.len() },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.digest, "size": layer.bytes.len() }],
    }))?;
    put_tag(http, reg, repo, "latest", &manifest).await?;
    Ok(manifest)
}

/// Puts `manifest` under `tag`.
pub async fn put_tag(
    http: &reqwest::Client,
    reg: &Registry,
    repo: &str,
    tag: &str,
    manifest: &[u8],
) -> anyhow::Result<()> {
    let resp = http
        .put(format!("{}/v2/{repo}/manifests/{tag}", reg.url))
        .header("content-type", OCI_MANIFEST)
        .body(manifest.to_vec())
        .send()
        .await?;
    ensure!(
        resp.status().as_u16() == 201,
        "manifest PUT {tag}: {}",
        resp.status()
    );
    Ok(())
}

/// `GET` (or `HEAD`) `repo:latest` from `connections` concurrent clients for `duration`.
pub async fn manifest_load(
    reg: &Registry,
    repo: &str,
    head: bool,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<LoadResult> {
    let url = Arc::new(format!("{}/v2/{repo}/manifests/latest", reg.url));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            // One client per task: one keep-alive connection each, as separate clients would.
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()?;
            let mut hist = Histogram::<u64>::new(3)?;
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let t = Instant::now();
                let req = if head {
                    http.head(url.as_str())
                } else {
                    http.get(url.as_str())
                };
                let ok = match req.header("accept", OCI_MANIFEST).send().await {
                    Ok(resp) => resp.status().is_success() && resp.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if ok {
                    hist.record(t.elapsed().as_micros() as u64)?;
                } else {
                    errors += 1;
                }
            }
            anyhow::Ok((hist, errors))
        }));
    }
    let mut all = Histogram::<u64>::new(3)?;
    let mut errors = 0;
    for t in tasks {
        let (hist, e) = t.await??;
        all.add(&hist)?;
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(LoadResult {
        rps: all.len() as f64 / elapsed,
        p50_ms: all.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: all.value_at_quantile(0.99) as f64 / 1000.0,
        errors,
    })
}

/// Puts `count` tags on one manifest with `concurrency` clients; returns tags per second.
pub async fn tag_puts(
    reg: &Registry,
    repo: &str,
    manifest: &[u8],
    count: usize,
    concurrency: usize,
) -> anyhow::Result<f64> {
    let http = reqwest::Client::new();
    let manifest = Arc::new(manifest.to_vec());
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, manifest, next, url) = (
            http.clone(),
            manifest.clone(),
            next.clone(),
            reg.url.clone(),
        );
        let repo = repo.to_owned();
        tasks.push(tokio::spawn(async move {
            let reg = Registry::external("x", &url);
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count {
                    return anyhow::Ok(());
                }
                put_tag(&http, &reg, &repo, &format!("t{i:05}"), &manifest).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// Times a full listing, following `Link` headers; returns (milliseconds, items).
pub async fn list_all(
    http: &reqwest::Client,
    reg: &Registry,
    first: &str,
    key: &str,
) -> anyhow::Result<(f64, usize)> {
    let started = Instant::now();
    let mut url = format!("{}{first}", reg.url);
    let mut items = 0;
    loop {
        let resp = http.get(&url).send().await?;
        ensure!(
            resp.status().is_success(),
            "listing {url}: {}",
            resp.status()
        );
        let link = resp
            .headers()
            .get("link")
            .and_then(|l| l.to_str().ok())
            .and_then(|l| Some(l[l.find('<')? + 1..l.find('>')?].to_owned()));
        let body: serde_json::Value = resp.json().await?;
        items += body[key].as_array().map_or(0, Vec::len);
        match link {
            Some(next) if next.starts_with("http") => url = next,
            Some(next) => url = format!("{}{next}", reg.url),
            None => break,
        }
    }
    Ok((started.elapsed().as_secs_f64() * 1000.0, items))
}

/// The median time of `reps` sequential `GET`s of a web UI page, in milliseconds.
pub async fn page_ms(
    http: &reqwest::Client,
    reg: &Registry,
    path: &str,
    reps: usize,
) -> anyhow::Result<f64> {
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        let started = Instant::now();
        let resp = http.get(format!("{}{path}", reg.url)).send().await?;
        ensure!(resp.status().is_success(), "{path}: {}", resp.status());
        let body = resp.bytes().await?;
        ensure!(!body.is_empty(), "{path}: empty page");
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Creates `count` repositories holding the same small image (blobs mounted, manifest put).
pub async fn make_repositories(
    reg: &Registry,
    manifest: &[u8],
    from: &str,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    let parsed: serde_json::Value = serde_json::from_slice(manifest)?;
    let digests: Arc<Vec<String>> = Arc::new(
        std::iter::once(&parsed["config"])
            .chain(parsed["layers"].as_array().into_iter().flatten())
            .filter_map(|d| d["digest"].as_str().map(str::to_owned))
            .collect(),
    );
    let http = reqwest::Client::new();
    let manifest = Arc::new(manifest.to_vec());
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, manifest, next, digests) = (
            http.clone(),
            manifest.clone(),
            next.clone(),
            digests.clone(),
        );
        let (url, from) = (reg.url.clone(), from.to_owned());
        tasks.push(tokio::spawn(async move {
            let reg = Registry::external("x", &url);
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count {
                    return anyhow::Ok(());
                }
                let repo = format!("catalog/r{i:05}");
                for d in digests.iter() {
                    let resp = http
                        .post(format!(
                            "{url}/v2/{repo}/blobs/uploads/?mount={d}&from={from}"
                        ))
                        .send()
                        .await?;
                    ensure!(resp.status().as_u16() == 201, "mount: {}", resp.status());
                }
                put_tag(&http, &reg, &repo, "latest", &manifest).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}
