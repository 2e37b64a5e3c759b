//! `berth pull`: fetch an image for this host's platform from any registry into the store,
//! verify every byte against its digest, and unpack each layer once.
//!
//! The registry protocol (token flow, manifests, blob streams, `Range` resumption) is
//! `oci-client`'s; this module chooses the platform, verifies, resumes interrupted downloads
//! from the partial file left in the store's `tmp/`, and unpacks layers while other layers
//! are still downloading.

use std::fs;
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};
use oci_client::client::{BlobResponse, ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::store::{ImageRecord, Store, StoreError, digest_hex};
use crate::unpack::{self, Compression, UnpackError};
use crate::verify::TrustCheck;

/// Layers downloaded at once.
const PARALLEL_LAYERS: usize = 4;

/// Media types a pull accepts for the top-level manifest.
const ACCEPT: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// Why a pull failed.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The registry refused or failed.
    #[error("the registry refused or failed")]
    Registry(#[from] oci_client::errors::OciDistributionError),
    /// The manifest or config is not what an image should be.
    #[error("{0}")]
    Invalid(String),
    /// The index has no manifest for this platform.
    #[error("no image for platform {wanted} (the index offers: {offered})")]
    NoPlatform {
        /// The platform asked for.
        wanted: String,
        /// What the index lists.
        offered: String,
    },
    /// Content does not match its digest.
    #[error("{what} {expected} has digest {actual}: refused")]
    DigestMismatch {
        /// What was checked.
        what: &'static str,
        /// The digest it should have.
        expected: String,
        /// The digest it has.
        actual: String,
    },
    /// A layer is unsafe or malformed.
    #[error("layer {digest} cannot be unpacked")]
    Unpack {
        /// The layer.
        digest: String,
        /// Why.
        #[source]
        source: UnpackError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A local file operation failed.
    #[error("a file operation failed")]
    Io(#[from] std::io::Error),
    /// The trust policy refuses the image.
    #[error(transparent)]
    Untrusted(#[from] crate::verify::VerifyError),
}

/// A platform to choose from an index: `os/architecture[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// Operating system.
    pub os: String,
    /// Architecture, in OCI terms (`amd64`, `arm64`).
    pub architecture: String,
    /// Variant, if it matters (`v7`).
    pub variant: Option<String>,
}

impl Platform {
    /// The platform this program runs on.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: None,
        }
    }

    /// Parses `os/architecture[/variant]`.
    pub fn parse(s: &str) -> Option<Platform> {
        let mut parts = s.split('/');
        let os = parts.next().filter(|p| !p.is_empty())?.to_owned();
        let architecture = parts.next().filter(|p| !p.is_empty())?.to_owned();
        let variant = parts.next().map(str::to_owned);
        parts.next().is_none().then_some(Platform {
            os,
            architecture,
            variant,
        })
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    size: u64,
    platform: Option<IndexPlatform>,
}

#[derive(Debug, Deserialize)]
struct IndexPlatform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    variant: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Manifest {
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Debug, Default, Deserialize)]
struct RootFs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ImageConfig {
    #[serde(default)]
    rootfs: RootFs,
}

/// What a pull reports about one layer, as it happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerProgress {
    /// An earlier pull downloaded and unpacked it: nothing to do.
    Present,
    /// `done` of `total` bytes are on disk (a resumed download starts above zero).
    Downloading {
        /// Bytes on disk.
        done: u64,
        /// The layer's size.
        total: u64,
    },
    /// Downloaded and verified against its digest; being unpacked.
    Unpacking,
    /// Unpacked and verified against the config's `diff_id`.
    Done,
}

/// Receives a pull's progress. Called from the download tasks, once per received chunk while
/// downloading, so an implementation should be cheap (and throttle its own drawing).
pub trait Progress: Send + Sync {
    /// `layer` is the first 12 hex digits of the layer's digest.
    fn layer(&self, layer: &str, event: LayerProgress);
}

/// Progress as one line per finished step (for logs and pipes).
#[derive(Debug, Default)]
pub struct Lines;

impl Progress for Lines {
    fn layer(&self, layer: &str, event: LayerProgress) {
        match event {
            LayerProgress::Present => eprintln!("{layer}: already present"),
            LayerProgress::Unpacking => eprintln!("{layer}: downloaded"),
            LayerProgress::Done => eprintln!("{layer}: unpacked"),
            LayerProgress::Downloading { .. } => {}
        }
    }
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The name it is stored under.
    pub name: String,
    /// The stored record.
    pub record: ImageRecord,
    /// Layers downloaded (the others were already in the store).
    pub downloaded: usize,
}

/// A client for one registry host: plain HTTP for loopback addresses (as docker treats
/// 127.0.0.0/8), HTTPS for everything else.
pub fn client_for(reference: &Reference) -> Client {
    let registry = reference.resolve_registry().to_owned();
    let protocol = if crate::credentials::plain_http(&registry) {
        ClientProtocol::HttpsExcept(vec![registry])
    } else {
        ClientProtocol::Https
    };
    Client::new(ClientConfig {
        protocol,
        platform_resolver: None,
        ..ClientConfig::default()
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn check(what: &'static str, expected: &str, bytes: &[u8]) -> Result<(), PullError> {
    let actual = sha256_hex(bytes);
    if actual == expected {
        Ok(())
    } else {
        Err(PullError::DigestMismatch {
            what,
            expected: expected.to_owned(),
            actual,
        })
    }
}

/// Pulls `reference` for `platform` into `store` and names it `reference.whole()`, after
/// `trust` accepted its signatures (before anything is unpacked).
pub async fn pull(
    store: &Store,
    reference: &Reference,
    auth: &RegistryAuth,
    platform: &Platform,
    trust: &TrustCheck,
    progress: &dyn Progress,
) -> Result<Pulled, PullError> {
    let client = client_for(reference);
    let (bytes, digest) = client.pull_manifest_raw(reference, auth, ACCEPT).await?;
    let digest = reference.digest().map_or(digest, str::to_owned);
    check("manifest", &digest, &bytes)?;
    // The signed manifest is the one the reference names (the index, for a multi-platform
    // image), checked before any layer is fetched.
    let verified = trust.check(&client, reference, auth, &digest).await?;
    let top: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| PullError::Invalid(format!("the manifest is not valid JSON: {e}")))?;
    let (index, manifest_digest, manifest_bytes, manifest) = if top.config.is_none() {
        let chosen = choose(&top.manifests, platform)?;
        let child = Reference::with_digest(
            reference.registry().to_owned(),
            reference.repository().to_owned(),
            chosen.to_owned(),
        );
        let (child_bytes, _) = client.pull_manifest_raw(&child, auth, ACCEPT).await?;
        check("manifest", chosen, &child_bytes)?;
        let manifest: Manifest = serde_json::from_slice(&child_bytes)
            .map_err(|e| PullError::Invalid(format!("the manifest is not valid JSON: {e}")))?;
        store.put_blob(&digest, &bytes)?;
        (
            Some(digest),
            chosen.to_owned(),
            child_bytes.to_vec(),
            manifest,
        )
    } else {
        (None, digest, bytes.to_vec(), top)
    };
    let config = manifest
        .config
        .as_ref()
        .ok_or_else(|| PullError::Invalid("the manifest has no config".into()))?;
    let config_bytes = if store.has_blob(&config.digest)? {
        store.read_blob(&config.digest)?
    } else {
        let mut out = Vec::new();
        client
            .pull_blob(reference, config.digest.as_str(), &mut out)
            .await?;
        check("config", &config.digest, &out)?;
        store.put_blob(&config.digest, &out)?;
        out
    };
    let image_config: ImageConfig = serde_json::from_slice(&config_bytes)
        .map_err(|e| PullError::Invalid(format!("the image config is not valid JSON: {e}")))?;
    if image_config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(PullError::Invalid(format!(
            "the config lists {} layer diff_ids for {} layers",
            image_config.rootfs.diff_ids.len(),
            manifest.layers.len()
        )));
    }
    let client = Arc::new(client);
    let downloads = futures_util::stream::iter(
        manifest
            .layers
            .iter()
            .zip(&image_config.rootfs.diff_ids)
            .map(|(layer, diff_id)| {
                let client = client.clone();
                async move {
                    fetch_layer(store, &client, reference, layer, diff_id, progress).await
                }
            }),
    )
    .buffer_unordered(PARALLEL_LAYERS)
    .try_collect::<Vec<bool>>()
    .await?;
    store.put_blob(&manifest_digest, &manifest_bytes)?;
    let record = ImageRecord {
        manifest: manifest_digest,
        index,
        config: config.digest.clone(),
        layers: manifest.layers.iter().map(|l| l.digest.clone()).collect(),
        size: config.size + manifest.layers.iter().map(|l| l.size).sum::<u64>(),
        stored_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        source: Some(format!(
            "{}/{}",
            reference.resolve_registry(),
            reference.repository()
        )),
        verified,
        local: false,
    };
    let name = reference.whole();
    store.set_image(&name, record.clone())?;
    Ok(Pulled {
        name,
        record,
        downloaded: downloads.into_iter().filter(|d| *d).count(),
    })
}

/// Picks the manifest for `platform` from an index.
fn choose<'a>(manifests: &'a [Descriptor], platform: &Platform) -> Result<&'a str, PullError> {
    let matches = |p: &IndexPlatform| {
        p.os == platform.os
            && p.architecture == platform.architecture
            && (platform.variant.is_none() || p.variant == platform.variant)
    };
    manifests
        .iter()
        .find(|m| m.platform.as_ref().is_some_and(matches))
        .map(|m| m.digest.as_str())
        .ok_or_else(|| PullError::NoPlatform {
            wanted: platform.to_string(),
            offered: manifests
                .iter()
                .filter_map(|m| m.platform.as_ref())
                .map(|p| format!("{}/{}", p.os, p.architecture))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Downloads (resuming a partial download) and unpacks one layer unless the store has it.
/// Returns whether anything was downloaded.
async fn fetch_layer(
    store: &Store,
    client: &Client,
    reference: &Reference,
    layer: &Descriptor,
    diff_id: &str,
    progress: &dyn Progress,
) -> Result<bool, PullError> {
    let layer_dir = store.layer_path(&layer.digest)?;
    let blob = store.blob_path(&layer.digest)?;
    let short = &digest_hex(&layer.digest)?[..12];
    if layer_dir.is_dir() && blob.is_file() {
        progress.layer(short, LayerProgress::Present);
        return Ok(false);
    }
    let mut downloaded = false;
    if !blob.is_file() {
        let report = |done| {
            progress.layer(
                short,
                LayerProgress::Downloading {
                    done,
                    total: layer.size,
                },
            )
        };
        download(store, client, reference, layer, &blob, &report).await?;
        downloaded = true;
    }
    progress.layer(short, LayerProgress::Unpacking);
    if !layer_dir.is_dir() {
        let temp = store.temp_path("layer");
        fs::create_dir(&temp)?;
        let file = fs::File::open(&blob)?;
        let mut head = [0u8; 4];
        let n = (&file).read(&mut head)?;
        (&file).rewind()?;
        let compression = Compression::detect(&layer.media_type, &head[..n]);
        let temp_for_unpack = temp.clone();
        let result = tokio::task::spawn_blocking(move || {
            unpack::unpack(file, compression, &temp_for_unpack)
        })
        .await
        .map_err(|e| PullError::Invalid(format!("unpacking stopped: {e}")))?;
        let actual = match result {
            Ok(d) => d,
            Err(source) => {
                let _ = fs::remove_dir_all(&temp);
                return Err(PullError::Unpack {
                    digest: layer.digest.clone(),
                    source,
                });
            }
        };
        if actual != diff_id {
            let _ = fs::remove_dir_all(&temp);
            return Err(PullError::DigestMismatch {
                what: "uncompressed layer",
                expected: diff_id.to_owned(),
                actual,
            });
        }
        store.commit(&temp, &layer_dir)?;
    }
    progress.layer(short, LayerProgress::Done);
    Ok(downloaded)
}

/// Streams a blob into `dest` through a partial file in `tmp/`, resuming from what an
/// interrupted pull left there, and verifies size and digest before moving it into place.
async fn download(
    store: &Store,
    client: &Client,
    reference: &Reference,
    layer: &Descriptor,
    dest: &Path,
    report: &(dyn Fn(u64) + Send + Sync),
) -> Result<(), PullError> {
    let partial = store
        .root()
        .join("tmp")
        .join(format!("partial-{}", digest_hex(&layer.digest)?));
    let mut hash = Sha256::new();
    let mut have = 0u64;
    if let Ok(mut f) = fs::File::open(&partial) {
        // Re-hash what is there: the digest covers the whole blob.
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hash.update(&buf[..n]);
            have += n as u64;
        }
    }
    let mut out = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&partial)?;
    let mut stream = if have > 0 && have < layer.size {
        match client
            .pull_blob_stream_partial(reference, layer.digest.as_str(), have, None)
            .await?
        {
            BlobResponse::Partial(s) => s.stream,
            BlobResponse::Full(s) => {
                // The registry ignored the range: start over.
                out.set_len(0)?;
                hash = Sha256::new();
                have = 0;
                s.stream
            }
        }
    } else {
        if have > 0 {
            out.set_len(0)?;
            hash = Sha256::new();
            have = 0;
        }
        client
            .pull_blob_stream(reference, layer.digest.as_str())
            .await?
            .stream
    };
    report(have);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        hash.update(&chunk);
        have += chunk.len() as u64;
        if have > layer.size {
            drop(out);
            let _ = fs::remove_file(&partial);
            return Err(PullError::Invalid(format!(
                "layer {} is larger than its declared {} bytes",
                layer.digest, layer.size
            )));
        }
        out.write_all(&chunk)?;
        report(have);
    }
    out.sync_all()?;
    drop(out);
    let actual = format!("sha256:{}", hex::encode(hash.finalize()));
    if actual != layer.digest {
        let _ = fs::remove_file(&partial);
        return Err(PullError::DigestMismatch {
            what: "layer",
            expected: layer.digest.clone(),
            actual,
        });
    }
    store.commit(&partial, dest)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse_and_match() {
        let p = Platform::parse("linux/arm/v7").expect("platform");
        assert_eq!(p.to_string(), "linux/arm/v7");
        assert!(Platform::parse("linux").is_none());
        assert!(Platform::parse("a/b/c/d").is_none());
        let index: Manifest = serde_json::from_str(
            r#"{"manifests":[
                {"digest":"sha256:a","platform":{"os":"linux","architecture":"amd64"}},
                {"digest":"sha256:b","platform":{"os":"linux","architecture":"arm","variant":"v7"}}]}"#,
        )
        .expect("index");
        assert_eq!(choose(&index.manifests, &p).expect("arm"), "sha256:b");
        let amd = Platform::parse("linux/amd64").expect("amd64");
        assert_eq!(choose(&index.manifests, &amd).expect("amd"), "sha256:a");
        let err = choose(
            &index.manifests,
            &Platform::parse("linux/s390x").expect("p"),
        )
        .expect_err("none");
        assert!(err.to_string().contains("linux/amd64, linux/arm"), "{err}");
    }
}
