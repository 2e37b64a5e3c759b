//! Issue 20's benchmark: what vulnerability scanning costs a hub (`--only scan`).
//!
//! - **Inventory of a large image**: a `--scan-image-mib`, `--scan-layers`-layer image
//!   (gzip layers of random bytes, the first one also holding this machine's
//!   `/etc/os-release` and dpkg database) pushed to a berth with scanning on; the time its
//!   inventory took (as the server reports it, `duration_ms`) against the time to pull its
//!   layers from the same server (the bytes only), against `berth pull` of the image
//!   (download, verify and unpack, as a client pulls it) and, given a docker daemon, against
//!   `docker pull`; and each server's peak memory.
//! - **Push cost**: the same image pushed to a berth with scanning off and to one with it
//!   on, alternately; the inventory runs after the manifest is pushed, so the push itself
//!   only pays for queueing the job.
//! - **Re-matching after a database update**: `--scan-images` small images (one shared
//!   layer with this machine's dpkg database, a config of their own), inventoried, then an
//!   advisory import (generated OSV records for some of those packages, written with
//!   `berth vulndb update`): the time from the import's end until every image's findings
//!   show the new advisories, read through the findings API.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::docker::Docker;
use crate::servers::Registry;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Where a figure stops being worth waiting for.
const PATIENCE: Duration = Duration::from_secs(1800);

/// What to measure.
pub struct Options<'a> {
    /// The large image's size, MiB.
    pub image_mib: usize,
    /// Its layers.
    pub layers: usize,
    /// Images re-matched.
    pub images: usize,
    /// Rounds of the large image's push and inventory.
    pub rounds: u64,
    /// A docker daemon, to time `docker pull` of the large image too.
    pub docker: Option<&'a Docker>,
}

/// A blob to push.
#[derive(Clone)]
struct Blob {
    bytes: Bytes,
    digest: String,
}

impl Blob {
    fn new(bytes: Vec<u8>) -> Self {
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        Self {
            bytes: bytes.into(),
            digest,
        }
    }
}

/// An image: its layers, config and manifest.
struct Image {
    layers: Vec<Blob>,
    config: Blob,
    manifest: Vec<u8>,
}

impl Image {
    /// An image of `layers` with a config naming `label`.
    fn new(layers: Vec<(Blob, String)>, label: &str) -> anyhow::Result<Self> {
        let diff_ids: Vec<&str> = layers.iter().map(|(_, d)| d.as_str()).collect();
        let config = Blob::new(serde_json::to_vec(&json!({
            "architecture": "amd64", "os": "linux",
            "config": { "Labels": { "bench": label } },
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
        }))?);
        let layers: Vec<Blob> = layers.into_iter().map(|(b, _)| b).collect();
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": { "mediaType": OCI_CONFIG, "digest": config.digest, "size": config.bytes.len() },
            "layers": layers.iter().map(|l| json!({
                "mediaType": OCI_LAYER_GZIP, "digest": l.digest, "size": l.bytes.len(),
            })).collect::<Vec<_>>(),
        }))?;
        Ok(Self {
            layers,
            config,
            manifest,
        })
    }

    fn digest(&self) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(&self.manifest)))
    }

    fn bytes(&self) -> usize {
        self.layers.iter().map(|l| l.bytes.len()).sum::<usize>() + self.config.bytes.len()
    }
}

/// A gzip tar layer of `files` (path, bytes), and its uncompressed digest.
fn layer(files: &[(&str, &[u8])]) -> anyhow::Result<(Blob, String)> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        tar.append_data(&mut header, path, *bytes)?;
    }
    let tar = tar.into_inner()?;
    let diff_id = format!("sha256:{}", hex::encode(Sha256::digest(&tar)));
    Ok((Blob::new(gzip_fast(&tar)), diff_id))
}

/// gzip of `data` at level 1 by miniz_oxide itself rather than through flate2, whose backend
/// follows the features of the whole build: with the scanner's `zlib-rs`, level 1 codes
/// random bytes with fixed Huffman codes (5.5% larger, and slower to inflate), so the
/// measured image would change with the server's dependencies. miniz_oxide's level 1 is what
/// every earlier figure was measured on.
fn gzip_fast(data: &[u8]) -> Vec<u8> {
    // RFC 1952: magic, deflate, no flags, no time, fastest (XFL 4), unknown OS.
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 0xff];
    out.extend(miniz_oxide::deflate::compress_to_vec(data, 1));
    out.extend(crc32fast::hash(data).to_le_bytes());
    // ISIZE: the length modulo 2^32.
    out.extend(((data.len() as u64 & 0xffff_ffff) as u32).to_le_bytes());
    out
}

/// This machine's os-release and dpkg database, as image files (the packages found).
fn system_files() -> anyhow::Result<Vec<(&'static str, Vec<u8>)>> {
    Ok(vec![
        (
            "etc/os-release",
            std::fs::read("/etc/os-release").context("reading /etc/os-release")?,
        ),
        (
            "var/lib/dpkg/status",
            std::fs::read("/var/lib/dpkg/status").context("reading /var/lib/dpkg/status")?,
        ),
    ])
}

/// The large image: `layers` layers of random bytes, `mib` MiB in all, the first one with
/// this machine's package database.
fn large_image(mib: usize, layers: usize, label: &str) -> anyhow::Result<Image> {
    let per_layer = (mib << 20) / layers.max(1);
    let system = system_files()?;
    let mut out = Vec::new();
    for i in 0..layers {
        let random = crate::blobs::random_blob(per_layer, 4000 + i as u64).bytes;
        let name = format!("data/layer-{i}.bin");
        let mut files: Vec<(&str, &[u8])> = vec![(&name, &random)];
        if i == 0 {
            files.extend(system.iter().map(|(p, b)| (*p, b.as_slice())));
        }
        out.push(layer(&files)?);
    }
    Image::new(out, label)
}

async fn upload(
    http: &reqwest::Client,
    reg: &Registry,
    repo: &str,
    blob: &Blob,
) -> anyhow::Result<()> {
    let resp = http
        .post(format!("{}/v2/{repo}/blobs/uploads/", reg.url))
        .send()
        .await?;
    ensure!(resp.status() == 202, "POST upload: {}", resp.status());
    let loc = resp.headers()["location"].to_str()?.to_owned();
    let loc = if loc.starts_with("http") {
        loc
    } else {
        format!("{}{loc}", reg.url)
    };
    let sep = if loc.contains('?') { '&' } else { '?' };
    let resp = http
        .put(format!("{loc}{sep}digest={}", blob.digest))
        .header("content-type", "application/octet-stream")
        .body(blob.bytes.clone())
        .send()
        .await?;
    ensure!(resp.status() == 201, "PUT blob: {}", resp.status());
    Ok(())
}

/// Pushes `image` to `repo:tag`, every blob uploaded (none skipped as present).
async fn push(
    http: &reqwest::Client,
    reg: &Registry,
    repo: &str,
    tag: &str,
    image: &Image,
) -> anyhow::Result<()> {
    for blob in image.layers.iter().chain([&image.config]) {
        upload(http, reg, repo, blob).await?;
    }
    let resp = http
        .put(format!("{}/v2/{repo}/manifests/{tag}", reg.url))
        .header("content-type", OCI_MANIFEST)
        .body(image.manifest.clone())
        .send()
        .await?;
    ensure!(resp.status() == 201, "PUT manifest: {}", resp.status());
    Ok(())
}

/// `berth pull` of `repo:latest` from `reg` into a store of its own: downloaded, verified
/// and unpacked, as a client pulls an image to run it (`docker pull` does the same);
/// returns seconds.
fn client_pull(berth: &Path, scratch: &Path, reg: &Registry, repo: &str) -> anyhow::Result<f64> {
    let root = tempfile::tempdir_in(scratch)?;
    let image = format!("{}/{repo}:latest", reg.host());
    let started = Instant::now();
    let out = Command::new(berth)
        .arg("pull")
        .arg(&image)
        .env("BERTH_ROOT", root.path())
        .env("BERTH_LOG_LEVEL", "warn")
        .output()?;
    let secs = started.elapsed().as_secs_f64();
    ensure!(
        out.status.success(),
        "berth pull {image}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(secs)
}

/// Pulls every layer of `image` from `repo`, reading and dropping the bytes; returns seconds.
async fn pull_layers(
    http: &reqwest::Client,
    reg: &Registry,
    repo: &str,
    image: &Image,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    for l in &image.layers {
        let mut resp = http
            .get(format!("{}/v2/{repo}/blobs/{}", reg.url, l.digest))
            .send()
            .await?;
        ensure!(resp.status() == 200, "GET blob: {}", resp.status());
        let mut n = 0;
        while let Some(chunk) = resp.chunk().await? {
            n += chunk.len();
        }
        ensure!(n == l.bytes.len(), "pulled {n} of {} bytes", l.bytes.len());
    }
    Ok(started.elapsed().as_secs_f64())
}

async fn get_json(http: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    let resp = http.get(url).send().await?;
    ensure!(resp.status() == 200, "GET {url}: {}", resp.status());
    Ok(resp.json().await?)
}

/// The inventory's duration, seconds, once the scan of `repo@digest` is done.
async fn inventory_secs(
    http: &reqwest::Client,
    reg: &Registry,
    repo: &str,
    digest: &str,
) -> anyhow::Result<f64> {
    let url = format!("{}/api/v1/sbom/{repo}?reference={digest}", reg.url);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let body = get_json(http, &url).await?;
        match body["job"].as_str() {
            Some("done") => {
                let ms = body["duration_ms"].as_f64().context("no duration_ms")?;
                ensure!(
                    body["packages"].as_array().is_some_and(|p| !p.is_empty()),
                    "the inventory found no packages: {body}"
                );
                return Ok(ms / 1000.0);
            }
            Some("failed") => bail!("the inventory failed: {body}"),
            _ => {}
        }
        ensure!(Instant::now() < deadline, "no inventory: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Figures of the scan benchmark, each the median of its rounds.
#[derive(Default)]
struct Figures {
    push_off: Vec<f64>,
    push_on: Vec<f64>,
    inventory: Vec<f64>,
    pull: Vec<f64>,
    client_pull: Vec<f64>,
    docker_pull: Vec<f64>,
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Runs the scan benchmark with `berth` (binary), scratch files under `scratch`; returns the
/// report's section.
pub async fn run(berth: &Path, scratch: &Path, o: &Options<'_>) -> anyhow::Result<String> {
    let http = reqwest::Client::new();
    let quiet = [("BERTH_SCAN_POLL_INTERVAL_MS".to_owned(), "100".to_owned())];
    let off = Registry::start_berth(berth, scratch, "scan-off", &quiet)?;
    let mut on_env = quiet.to_vec();
    on_env.push(("BERTH_SCAN_ENABLED".into(), "true".into()));
    let on = Registry::start_berth(berth, scratch, "scan-on", &on_env)?;

    eprintln!(
        "scan: building a {} MiB, {}-layer image",
        o.image_mib, o.layers
    );
    let image = large_image(o.image_mib, o.layers, "large")?;
    let digest = image.digest();
    let mut f = Figures::default();
    for round in 0..o.rounds {
        eprintln!("scan: round {} of {}", round + 1, o.rounds);
        let repo = format!("bench/large-{round}");
        let mut order = [&off, &on];
        if round % 2 == 1 {
            order.reverse();
        }
        for reg in order {
            let started = Instant::now();
            push(&http, reg, &repo, "latest", &image).await?;
            let secs = started.elapsed().as_secs_f64();
            if reg.name == on.name {
                f.push_on.push(secs);
                // The inventory runs alone, before anything else is measured.
                f.inventory
                    .push(inventory_secs(&http, &on, &repo, &digest).await?);
            } else {
                f.push_off.push(secs);
            }
        }
        f.pull.push(pull_layers(&http, &on, &repo, &image).await?);
        pull_layers(&http, &off, &repo, &image).await?;
    }
    // The clients' pulls write 1 GiB each to disk, whose writeback would slow the pushes of
    // a later round: they come after all of them.
    for round in 0..o.rounds {
        let repo = format!("bench/large-{round}");
        f.client_pull.push(client_pull(berth, scratch, &on, &repo)?);
        if let Some(docker) = o.docker {
            f.docker_pull
                .push(docker.pull_secs(&format!("{}/{repo}:latest", on.host()))?);
        }
    }
    let mib = |reg: &Registry| reg.peak_rss_kib().map_or(f64::NAN, |k| k as f64 / 1024.0);
    let (rss_off, rss_on) = (mib(&off), mib(&on));
    drop((off, on));
    let image_mb = image.bytes() as f64 / 1e6;
    drop(image);

    eprintln!("scan: re-matching {} images", o.images);
    let rematch = rematch(berth, scratch, &http, o.images).await?;

    let (push_off, push_on) = (median(&f.push_off), median(&f.push_on));
    let (inventory, pull) = (median(&f.inventory), median(&f.pull));
    let client = median(&f.client_pull);
    let mut out = String::new();
    out.push_str(&format!(
        "\n### Vulnerability scanning\n\nA {} MiB image of {} gzip layers ({image_mb:.0} MB \
         compressed, random bytes and this machine's dpkg database), medians of {} rounds; \
         berth on SQLite and a local directory.\n\n| measurement | value |\n|---|---:|\n",
        o.image_mib, o.layers, o.rounds
    ));
    let mut row = |what: &str, v: String| out.push_str(&format!("| {what} | {v} |\n"));
    row("push, scanning off, s", format!("{push_off:.2}"));
    row("push, scanning on, s", format!("{push_on:.2}"));
    row(
        "push throughput with scanning on, % of off",
        format!("{:.1}", 100.0 * push_off / push_on),
    );
    row(
        "inventory of that image (server's duration), s",
        format!("{inventory:.2}"),
    );
    row(
        "pull of its layers from the same server, s",
        format!("{pull:.2}"),
    );
    row("inventory / pull", format!("{:.2}", inventory / pull));
    row(
        "`berth pull` of the image from the same server (download, verify, unpack), s",
        format!("{client:.2}"),
    );
    row(
        "inventory / `berth pull`",
        format!("{:.2}", inventory / client),
    );
    if !f.docker_pull.is_empty() {
        let docker = median(&f.docker_pull);
        row(
            "`docker pull` of the image from the same server, s",
            format!("{docker:.2}"),
        );
        row(
            "inventory / `docker pull`",
            format!("{:.2}", inventory / docker),
        );
    }
    row(
        "server peak memory, scanning off, MiB",
        format!("{rss_off:.0}"),
    );
    row(
        "server peak memory, scanning on, MiB",
        format!("{rss_on:.0}"),
    );
    row(
        &format!("{} images inventoried (2 workers), s", o.images),
        format!("{:.1}", rematch.inventoried),
    );
    row(
        &format!("advisory import ({} records), s", rematch.records),
        format!("{:.2}", rematch.import),
    );
    row(
        &format!(
            "re-match of {} images after it (import end to last image matched), s",
            o.images
        ),
        format!("{:.2}", rematch.rematch),
    );
    row("findings per image after it", rematch.findings.to_string());
    Ok(out)
}

struct Rematch {
    inventoried: f64,
    records: usize,
    import: f64,
    rematch: f64,
    findings: usize,
}

/// Source packages of this machine's dpkg database (a package's `Source:`, else its name).
fn source_packages() -> anyhow::Result<BTreeSet<String>> {
    let status = std::fs::read_to_string("/var/lib/dpkg/status")?;
    let mut out = BTreeSet::new();
    for para in status.split("\n\n") {
        let field = |name: &str| {
            para.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().split(' ').next().unwrap_or("").to_owned())
        };
        if let Some(name) = field("Source:").or_else(|| field("Package:")) {
            out.insert(name);
        }
    }
    Ok(out)
}

/// `n` OSV records, one per source package of this machine (Debian 12), fixed in a version
/// above any installed one: each affects every package built from it.
fn write_records(dir: &Path, n: usize) -> anyhow::Result<usize> {
    let release = std::fs::read_to_string("/etc/os-release")?;
    let version = release
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_ID="))
        .map(|v| v.trim_matches('"').to_owned())
        .context("no VERSION_ID in /etc/os-release")?;
    let mut written = 0;
    for (i, source) in source_packages()?.into_iter().take(n).enumerate() {
        let record = json!({
            "id": format!("BENCH-{i:04}"),
            "modified": "2026-01-01T00:00:00Z",
            "summary": format!("benchmark advisory for {source}"),
            "aliases": [format!("CVE-2099-{:04}", 1000 + i)],
            "affected": [{
                "package": { "ecosystem": format!("Debian:{version}"), "name": source },
                "ranges": [{ "type": "ECOSYSTEM", "events": [{ "introduced": "0" }, { "fixed": "99:1" }] }],
            }],
        });
        std::fs::write(
            dir.join(format!("BENCH-{i:04}.json")),
            serde_json::to_vec(&record)?,
        )?;
        written += 1;
    }
    Ok(written)
}

/// Findings of `repo:latest` when matched, else `None`.
async fn findings(
    http: &reqwest::Client,
    reg: &Registry,
    repo: &str,
) -> anyhow::Result<Option<usize>> {
    let body = get_json(
        http,
        &format!("{}/api/v1/findings/{repo}?reference=latest", reg.url),
    )
    .await?;
    Ok((body["status"] == "done").then(|| body["findings"].as_array().map_or(0, Vec::len)))
}

async fn rematch(
    berth: &Path,
    scratch: &Path,
    http: &reqwest::Client,
    images: usize,
) -> anyhow::Result<Rematch> {
    let env: Vec<(String, String)> = [
        ("BERTH_SCAN_ENABLED", "true"),
        ("BERTH_SCAN_WORKERS", "2"),
        ("BERTH_SCAN_POLL_INTERVAL_MS", "100"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let reg = Registry::start_berth(berth, scratch, "scan-rematch", &env)?;
    let files = system_files()?;
    let shared = layer(
        &files
            .iter()
            .map(|(p, b)| (*p, b.as_slice()))
            .collect::<Vec<_>>(),
    )?;
    upload(http, &reg, "bench/m-0", &shared.0).await?;
    let started = Instant::now();
    let repos: Vec<String> = (0..images).map(|i| format!("bench/m-{i}")).collect();
    for (i, repo) in repos.iter().enumerate() {
        let image = Image::new(vec![shared.clone()], &format!("image-{i}"))?;
        // The shared layer is mounted, not uploaded again.
        let mount = http
            .post(format!(
                "{}/v2/{repo}/blobs/uploads/?mount={}&from=bench/m-0",
                reg.url, shared.0.digest
            ))
            .send()
            .await?;
        if mount.status() != 201 {
            upload(http, &reg, repo, &image.layers[0]).await?;
        }
        upload(http, &reg, repo, &image.config).await?;
        let resp = http
            .put(format!("{}/v2/{repo}/manifests/latest", reg.url))
            .header("content-type", OCI_MANIFEST)
            .body(image.manifest.clone())
            .send()
            .await?;
        ensure!(resp.status() == 201, "PUT manifest: {}", resp.status());
    }
    // Every image inventoried and matched (against an empty database: no findings).
    wait_all(http, &reg, &repos, |n| n.is_some()).await?;
    let inventoried = started.elapsed().as_secs_f64();

    let dir = tempfile::tempdir_in(scratch)?;
    let records = write_records(dir.path(), 50)?;
    let started = Instant::now();
    let out = Command::new(berth)
        .args(["vulndb", "update", "--from"])
        .arg(dir.path())
        .arg("--data-dir")
        .arg(reg.data_dir().context("the bench started this berth")?)
        .env("BERTH_LOG_LEVEL", "warn")
        .output()?;
    ensure!(
        out.status.success(),
        "berth vulndb update: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let import = started.elapsed().as_secs_f64();
    let after_import = Instant::now();
    let counts = wait_all(http, &reg, &repos, |n| n.is_some_and(|n| n > 0)).await?;
    let rematch = after_import.elapsed().as_secs_f64();
    let findings = counts.iter().copied().max().unwrap_or(0);
    ensure!(
        counts.iter().all(|&n| n == findings),
        "images of the same packages have different findings"
    );
    Ok(Rematch {
        inventoried,
        records,
        import,
        rematch,
        findings,
    })
}

/// Waits until `done` holds of every repository's findings count; returns the counts.
/// Repositories are looked at one at a time, in the order they were pushed (the order the
/// server matches them in), so that waiting adds one request every few milliseconds, not a
/// load that competes with the work measured.
async fn wait_all(
    http: &reqwest::Client,
    reg: &Registry,
    repos: &[String],
    done: impl Fn(Option<usize>) -> bool,
) -> anyhow::Result<Vec<usize>> {
    let mut counts = Vec::with_capacity(repos.len());
    let deadline = Instant::now() + PATIENCE;
    for repo in repos {
        loop {
            let n = findings(http, reg, repo).await?;
            if done(n) {
                counts.push(n.unwrap_or(0));
                break;
            }
            ensure!(Instant::now() < deadline, "{repo} never matched");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    Ok(counts)
}
