//! The local image store under one root directory, shared by every image and container:
//!
//! ```text
//! ROOT/
//!   blobs/sha256/HEX       manifests, configs and compressed layers, verified by digest
//!   layers/sha256/HEX/     each layer unpacked once (HEX: the layer blob's digest); an
//!                          overlayfs lower directory for every image that uses it
//!   images.json            image names -> manifest, config and layer digests
//!   tmp/                   downloads and unpacks in progress (cleared of stale entries)
//! ```
//!
//! Everything becomes visible by an atomic rename after it is complete and verified, and
//! `images.json` is replaced atomically, so a crash leaves only debris in `tmp/`.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file operation failed.
    #[error("{what} {path}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// On which path.
        path: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// `images.json` does not parse.
    #[error("the image index {path} is damaged: {reason}")]
    Corrupt {
        /// Its path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A digest is not `sha256:` and 64 hex digits.
    #[error("unsupported digest {0:?}")]
    Digest(String),
}

/// Result of store operations.
pub type StoreResult<T> = Result<T, StoreError>;

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// An image as the store records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Digest of the image manifest (for one platform).
    pub manifest: String,
    /// Digest of the index it was chosen from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    /// Digest of the image config.
    pub config: String,
    /// Digests of the layer blobs, bottom first.
    pub layers: Vec<String>,
    /// Compressed size of config and layers.
    pub size: u64,
    /// When it was pulled or created here (Unix seconds).
    pub stored_at: u64,
    /// Where its blobs came from (`registry/repository`), so that a push to another
    /// repository of the same registry can mount them instead of uploading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The trust policy verification it passed at its pull, if a policy covered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<crate::verify::Verified>,
    /// Made on this machine (`berth commit`) rather than pulled: trust policies, which cover
    /// what registries serve, do not apply to it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub local: bool,
}

/// `images.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    images: BTreeMap<String, ImageRecord>,
}

/// The store.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// The hex part of a `sha256:` digest, checked.
pub fn digest_hex(digest: &str) -> StoreResult<&str> {
    match digest.strip_prefix("sha256:") {
        Some(hex)
            if hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) =>
        {
            Ok(hex)
        }
        _ => Err(StoreError::Digest(digest.to_owned())),
    }
}

impl Store {
    /// Opens (creating) the store at `root`.
    pub fn open(root: &Path) -> StoreResult<Store> {
        for dir in ["blobs/sha256", "layers/sha256", "tmp"] {
            let p = root.join(dir);
            fs::create_dir_all(&p).map_err(io_err("cannot create", &p))?;
        }
        Ok(Store {
            root: root.to_owned(),
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a blob lives (whether or not it is there).
    pub fn blob_path(&self, digest: &str) -> StoreResult<PathBuf> {
        Ok(self.root.join("blobs/sha256").join(digest_hex(digest)?))
    }

    /// Whether a verified blob is present.
    pub fn has_blob(&self, digest: &str) -> StoreResult<bool> {
        Ok(self.blob_path(digest)?.is_file())
    }

    /// Reads a whole blob (manifests and configs; never layers).
    pub fn read_blob(&self, digest: &str) -> StoreResult<Vec<u8>> {
        let p = self.blob_path(digest)?;
        fs::read(&p).map_err(io_err("cannot read", &p))
    }

    /// Where an unpacked layer lives.
    pub fn layer_path(&self, digest: &str) -> StoreResult<PathBuf> {
        Ok(self.root.join("layers/sha256").join(digest_hex(digest)?))
    }

    /// A fresh path under `tmp/` (not created).
    pub fn temp_path(&self, hint: &str) -> PathBuf {
        let unique = format!(
            "{hint}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        self.root.join("tmp").join(unique)
    }

    /// Moves a completed, verified file or directory into place (atomically; a concurrent
    /// writer of the same content may have won, which is fine).
    pub fn commit(&self, temp: &Path, dest: &Path) -> StoreResult<()> {
        match fs::rename(temp, dest) {
            Ok(()) => Ok(()),
            Err(_) if dest.exists() => {
                let _ = fs::remove_dir_all(temp).or_else(|_| fs::remove_file(temp));
                Ok(())
            }
            Err(e) => Err(io_err("cannot move into place", dest)(e)),
        }
    }

    /// Stores bytes already verified to have `digest`.
    pub fn put_blob(&self, digest: &str, bytes: &[u8]) -> StoreResult<()> {
        let dest = self.blob_path(digest)?;
        if dest.is_file() {
            return Ok(());
        }
        let temp = self.temp_path("blob");
        let mut f = fs::File::create(&temp).map_err(io_err("cannot create", &temp))?;
        f.write_all(bytes).map_err(io_err("cannot write", &temp))?;
        f.sync_all().map_err(io_err("cannot sync", &temp))?;
        self.commit(&temp, &dest)
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("images.json")
    }

    fn load(&self) -> StoreResult<Index> {
        let p = self.index_path();
        match fs::read(&p) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                path: p,
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(io_err("cannot read", &p)(e)),
        }
    }

    fn save(&self, index: &Index) -> StoreResult<()> {
        let p = self.index_path();
        let temp = self.temp_path("images.json");
        let bytes = serde_json::to_vec_pretty(index).map_err(|e| StoreError::Corrupt {
            path: p.clone(),
            reason: e.to_string(),
        })?;
        let mut f = fs::File::create(&temp).map_err(io_err("cannot create", &temp))?;
        f.write_all(&bytes).map_err(io_err("cannot write", &temp))?;
        f.sync_all().map_err(io_err("cannot sync", &temp))?;
        fs::rename(&temp, &p).map_err(io_err("cannot replace", &p))
    }

    /// Records (or moves) the name `name`.
    pub fn set_image(&self, name: &str, record: ImageRecord) -> StoreResult<()> {
        let mut index = self.load()?;
        index.images.insert(name.to_owned(), record);
        self.save(&index)
    }

    /// The image called `name`.
    pub fn image(&self, name: &str) -> StoreResult<Option<ImageRecord>> {
        Ok(self.load()?.images.remove(name))
    }

    /// Every image name with its record.
    pub fn images(&self) -> StoreResult<Vec<(String, ImageRecord)>> {
        Ok(self.load()?.images.into_iter().collect())
    }

    /// Removes a name; returns its record. Blobs and layers no other image uses are removed
    /// too.
    pub fn remove_image(&self, name: &str) -> StoreResult<Option<ImageRecord>> {
        let mut index = self.load()?;
        let Some(removed) = index.images.remove(name) else {
            return Ok(None);
        };
        self.save(&index)?;
        let in_use: std::collections::HashSet<&str> = index
            .images
            .values()
            .flat_map(|r| {
                [r.manifest.as_str(), r.config.as_str()]
                    .into_iter()
                    .chain(r.index.as_deref())
                    .chain(r.layers.iter().map(String::as_str))
            })
            .collect();
        let mine = [removed.manifest.as_str(), removed.config.as_str()]
            .into_iter()
            .chain(removed.index.as_deref())
            .chain(removed.layers.iter().map(String::as_str));
        for digest in mine {
            if in_use.contains(digest) {
                continue;
            }
            if let Ok(p) = self.blob_path(digest) {
                let _ = fs::remove_file(p);
            }
            if let Ok(p) = self.layer_path(digest)
                && p.exists()
            {
                // Rename first, so a half-deleted layer is never mistaken for a whole one.
                let doomed = self.temp_path("removed-layer");
                if fs::rename(&p, &doomed).is_ok() {
                    let _ = fs::remove_dir_all(&doomed);
                }
            }
        }
        Ok(Some(removed))
    }
}
