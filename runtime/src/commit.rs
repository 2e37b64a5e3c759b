//! `commit`: a container's changes (its overlay upper directory) become one new gzip layer on
//! top of its image, with overlayfs whiteouts written back as OCI whiteouts (`.wh.NAME`,
//! `.wh..wh..opq`), hard links kept as links, and the config updated the way `docker commit`
//! does: the container's command, environment, user and working directory, a new diff_id
//! and a history entry. The manifest keeps the base image's format (Docker or OCI).

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use flate2::Compression as Gzip;
use flate2::write::GzEncoder;
use sha2::{Digest as _, Sha256};

use crate::containers::{ContainerError, ContainerRecord, Containers, State};
use crate::run::ContainerPaths;
use crate::store::{ImageRecord, Store, StoreError};
use crate::unpack::{self, Compression};

/// `commit`'s options.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// History comment (`-m`).
    pub message: Option<String>,
    /// Author (`-a`).
    pub author: Option<String>,
    /// Freeze a running container while its changes are read (`--pause`, Docker's default),
    /// so that the layer is one moment of it.
    pub pause: bool,
}

/// Why a commit failed.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The container.
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading the changes or writing the layer.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// The base image's manifest or config is not what `pull` stored.
    #[error("the base image is damaged: {0}")]
    Base(String),
    /// The new layer does not unpack as written.
    #[error("the new layer does not unpack: {0}")]
    Unpack(#[from] unpack::UnpackError),
    /// The running container could not be frozen.
    #[error("cannot pause the container (commit --pause=false reads it running): {0}")]
    Pause(String),
}

/// Freezes the container if it runs; thawed again when the returned handle is dropped.
fn pause(containers: &Containers, record: &ContainerRecord) -> Result<Option<Paused>, CommitError> {
    if !matches!(record.state, State::Running { .. }) {
        return Ok(None);
    }
    let mut container =
        libcontainer::container::Container::load(containers.run_root().join(&record.id))
            .map_err(|e| CommitError::Pause(e.to_string()))?;
    container
        .pause()
        .map_err(|e| CommitError::Pause(e.to_string()))?;
    Ok(Some(Paused(container)))
}

struct Paused(libcontainer::container::Container);

impl Drop for Paused {
    fn drop(&mut self) {
        let _ = self.0.resume();
    }
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> CommitError {
    let what = what.into();
    move |source| CommitError::Io { what, source }
}

/// Hashes and counts what passes through.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    size: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn digest_of(hash: Sha256) -> String {
    format!("sha256:{}", hex::encode(hash.finalize()))
}

/// Paths the runtime itself creates in every container (mount points of `/proc`, `/dev`,
/// `/sys` and the bind-mounted `/etc` files); never part of a commit, as in Docker.
fn runtime_owned(rel: &Path, record: &ContainerRecord) -> bool {
    let s = rel.to_string_lossy();
    matches!(
        s.as_ref(),
        "etc/hostname" | "etc/hosts" | "etc/resolv.conf" | "proc" | "sys" | "dev"
    ) || s.starts_with("dev/")
        || s.starts_with("proc/")
        || s.starts_with("sys/")
        || record
            .volumes
            .iter()
            .any(|v| v.destination.trim_start_matches('/') == s)
}

/// Writes the changes under `upper` as a tar stream.
fn write_changes<W: Write>(
    upper: &Path,
    record: &ContainerRecord,
    builder: &mut tar::Builder<W>,
) -> Result<(), CommitError> {
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel_dir) = stack.pop() {
        let dir = upper.join(&rel_dir);
        let mut entries: Vec<_> = fs::read_dir(&dir)
            .map_err(io_err(format!("cannot list {}", dir.display())))?
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        entries.sort();
        for name in entries {
            let rel = rel_dir.join(&name);
            if runtime_owned(&rel, record) {
                continue;
            }
            let path = upper.join(&rel);
            let meta = fs::symlink_metadata(&path)
                .map_err(io_err(format!("cannot read {}", path.display())))?;
            let kind = meta.file_type();
            if kind.is_char_device() && meta.rdev() == 0 {
                // An overlayfs whiteout: the file was deleted.
                let mut wh_name = std::ffi::OsString::from(".wh.");
                wh_name.push(&name);
                append_empty(builder, &rel_dir.join(wh_name))?;
                continue;
            }
            if kind.is_file() && meta.nlink() > 1 {
                if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                    let mut header = tar::Header::new_gnu();
                    header.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
                    header.set_entry_type(tar::EntryType::Link);
                    header.set_size(0);
                    builder
                        .append_link(&mut header, &rel, first)
                        .map_err(io_err(format!("cannot add {}", rel.display())))?;
                    continue;
                }
                links.insert((meta.dev(), meta.ino()), rel.clone());
            }
            append_entry(builder, &path, &rel, &meta, record)?;
            if kind.is_dir() {
                if xattr::get(&path, "trusted.overlay.opaque")
                    .ok()
                    .flatten()
                    .is_some_and(|v| v == b"y")
                {
                    // Everything the lower layers had here is hidden.
                    append_empty(builder, &rel.join(".wh..wh..opq"))?;
                }
                stack.push(rel);
            }
        }
    }
    Ok(())
}

/// The kernel's ID for anything a user namespace does not map (`nobody`).
const OVERFLOW_ID: u32 = 65534;

/// Appends one entry of the upper directory as stored: owner, mode, times, device numbers,
/// extended attributes (PAX `SCHILY.xattr.*`; overlayfs' own `trusted.overlay.*` are its
/// bookkeeping, not the container's). In a user namespace the owner is stored as host IDs
/// and is written as the container's.
fn append_entry<W: Write>(
    builder: &mut tar::Builder<W>,
    path: &Path,
    rel: &Path,
    meta: &fs::Metadata,
    record: &ContainerRecord,
) -> Result<(), CommitError> {
    let add_err = || io_err(format!("cannot add {}", rel.display()));
    let mut header = tar::Header::new_gnu();
    header.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
    if let Some(map) = &record.userns {
        header.set_uid(map.container_uid(meta.uid()).unwrap_or(OVERFLOW_ID).into());
        header.set_gid(map.container_gid(meta.gid()).unwrap_or(OVERFLOW_ID).into());
    }
    append_xattrs(builder, path, rel)?;
    let kind = meta.file_type();
    if kind.is_file() {
        let file = fs::File::open(path).map_err(add_err())?;
        return builder
            .append_data(&mut header, rel, file)
            .map_err(add_err());
    }
    header.set_size(0);
    if kind.is_symlink() {
        let target = fs::read_link(path).map_err(add_err())?;
        return builder
            .append_link(&mut header, rel, target)
            .map_err(add_err());
    }
    if kind.is_char_device() || kind.is_block_device() {
        let dev = meta.rdev();
        header
            .set_device_major(nix::sys::stat::major(dev) as u32)
            .and_then(|()| header.set_device_minor(nix::sys::stat::minor(dev) as u32))
            .map_err(add_err())?;
    }
    builder
        .append_data(&mut header, rel, io::empty())
        .map_err(add_err())
}

/// A PAX extended header holding `path`'s extended attributes, if it has any.
fn append_xattrs<W: Write>(
    builder: &mut tar::Builder<W>,
    path: &Path,
    rel: &Path,
) -> Result<(), CommitError> {
    let read_err = || io_err(format!("cannot read the attributes of {}", rel.display()));
    let mut records = Vec::new();
    for name in xattr::list(path).map_err(read_err())? {
        let key = name.to_string_lossy();
        if key.starts_with("trusted.overlay.") {
            continue;
        }
        if let Some(value) = xattr::get(path, &name).map_err(read_err())? {
            pax_record(&mut records, &format!("SCHILY.xattr.{key}"), &value);
        }
    }
    if records.is_empty() {
        return Ok(());
    }
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::XHeader);
    header.set_mode(0o644);
    header.set_size(records.len() as u64);
    builder
        .append_data(&mut header, "PaxHeaders/attributes", records.as_slice())
        .map_err(io_err(format!(
            "cannot add the attributes of {}",
            rel.display()
        )))
}

/// One PAX record: `LENGTH KEY=VALUE\n`, where LENGTH counts the whole record, itself included.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let rest = key.len() + value.len() + 3;
    let mut len = rest + 1;
    while rest + len.to_string().len() != len {
        len = rest + len.to_string().len();
    }
    out.extend_from_slice(format!("{len} {key}=").as_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
}

fn append_empty<W: Write>(builder: &mut tar::Builder<W>, path: &Path) -> Result<(), CommitError> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(0);
    header.set_mode(0o644);
    header.set_mtime(0);
    builder
        .append_data(&mut header, path, io::empty())
        .map_err(io_err(format!("cannot add {}", path.display())))
}

/// The new layer: (digest, diff_id, size) of a gzip blob stored in `store`, unpacked there.
fn build_layer(
    store: &Store,
    record: &ContainerRecord,
    upper: &Path,
) -> Result<(String, String, u64), CommitError> {
    let temp = store.temp_path("commit-layer");
    let file =
        fs::File::create(&temp).map_err(io_err(format!("cannot create {}", temp.display())))?;
    let compressed = Hashing {
        inner: io::BufWriter::new(file),
        hash: Sha256::new(),
        size: 0,
    };
    let plain = Hashing {
        inner: GzEncoder::new(compressed, Gzip::fast()),
        hash: Sha256::new(),
        size: 0,
    };
    let mut builder = tar::Builder::new(plain);
    builder.mode(tar::HeaderMode::Complete);
    builder.follow_symlinks(false);
    let written = write_changes(upper, record, &mut builder);
    let finished = written.and_then(|()| {
        let plain = builder
            .into_inner()
            .map_err(io_err("cannot finish the layer"))?;
        let diff_id = digest_of(plain.hash);
        let mut compressed = plain
            .inner
            .finish()
            .map_err(io_err("cannot finish the layer"))?;
        compressed
            .flush()
            .map_err(io_err("cannot write the layer"))?;
        let digest = digest_of(compressed.hash);
        let file = compressed
            .inner
            .into_inner()
            .map_err(|e| io_err("cannot write the layer")(e.into_error()))?;
        file.sync_all().map_err(io_err("cannot sync the layer"))?;
        Ok((digest, diff_id, compressed.size))
    });
    let (digest, diff_id, size) = match finished {
        Ok(v) => v,
        Err(e) => {
            let _ = fs::remove_file(&temp);
            return Err(e);
        }
    };
    store.commit(&temp, &store.blob_path(&digest)?)?;
    let layer_dir = store.layer_path(&digest)?;
    if !layer_dir.is_dir() {
        let unpack_dir = store.temp_path("commit-unpack");
        fs::create_dir(&unpack_dir).map_err(io_err("cannot create the layer directory"))?;
        let blob =
            fs::File::open(store.blob_path(&digest)?).map_err(io_err("cannot reopen the layer"))?;
        let unpacked = unpack::unpack(blob, Compression::Gzip, &unpack_dir);
        match unpacked {
            Ok(d) if d == diff_id => store.commit(&unpack_dir, &layer_dir)?,
            Ok(d) => {
                let _ = fs::remove_dir_all(&unpack_dir);
                return Err(CommitError::Base(format!(
                    "the new layer unpacks to {d}, not {diff_id}"
                )));
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&unpack_dir);
                return Err(e.into());
            }
        }
    }
    Ok((digest, diff_id, size))
}

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

fn timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Commits container `key` as image `target` (a full store name); returns the new record.
pub fn commit(
    store: &Store,
    containers: &Containers,
    key: &str,
    target: &str,
    options: &CommitOptions,
) -> Result<ImageRecord, CommitError> {
    let record = containers.find(key)?;
    let upper = ContainerPaths::new(containers, &record.id).upper();
    let base = &record.image_record;
    let parse = |digest: &str| -> Result<serde_json::Value, CommitError> {
        serde_json::from_slice(&store.read_blob(digest)?)
            .map_err(|e| CommitError::Base(format!("{digest}: {e}")))
    };
    let mut config = parse(&base.config)?;
    let mut manifest = parse(&base.manifest)?;

    let paused = if options.pause {
        pause(containers, &record)?
    } else {
        None
    };
    let built = build_layer(store, &record, &upper);
    drop(paused);
    let (digest, diff_id, size) = built?;

    let created = timestamp();
    let p = &record.process;
    let c = &mut config["config"];
    if !c.is_object() {
        *c = serde_json::json!({});
    }
    c["Cmd"] = serde_json::json!(p.cmd);
    c["Entrypoint"] = if p.entrypoint.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::json!(p.entrypoint)
    };
    c["Env"] = serde_json::json!(
        p.env
            .iter()
            .filter(|e| !e.starts_with("HOSTNAME="))
            .collect::<Vec<_>>()
    );
    c["WorkingDir"] = serde_json::json!(p.cwd);
    c["User"] = serde_json::json!(p.user);
    config["created"] = serde_json::json!(created);
    if let Some(author) = &options.author {
        config["author"] = serde_json::json!(author);
    }
    match config["rootfs"]["diff_ids"].as_array_mut() {
        Some(ids) => ids.push(serde_json::json!(diff_id)),
        None => {
            return Err(CommitError::Base(
                "the config has no rootfs.diff_ids".into(),
            ));
        }
    }
    let mut entry = serde_json::json!({
        "created": created,
        "created_by": format!("berth commit {}", record.name),
    });
    if let Some(m) = &options.message {
        entry["comment"] = serde_json::json!(m);
    }
    if let Some(a) = &options.author {
        entry["author"] = serde_json::json!(a);
    }
    match config["history"].as_array_mut() {
        Some(h) => h.push(entry),
        None => config["history"] = serde_json::json!([entry]),
    }
    let config_bytes = serde_json::to_vec(&config).map_err(|e| CommitError::Base(e.to_string()))?;
    let config_digest = format!("sha256:{}", hex::encode(Sha256::digest(&config_bytes)));
    store.put_blob(&config_digest, &config_bytes)?;

    let docker = manifest["mediaType"] == DOCKER_MANIFEST;
    let layer_type = if docker {
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    } else {
        "application/vnd.oci.image.layer.v1.tar+gzip"
    };
    manifest["config"]["digest"] = serde_json::json!(config_digest);
    manifest["config"]["size"] = serde_json::json!(config_bytes.len());
    match manifest["layers"].as_array_mut() {
        Some(layers) => layers.push(serde_json::json!({
            "mediaType": layer_type, "digest": digest, "size": size
        })),
        None => return Err(CommitError::Base("the manifest has no layers".into())),
    }
    let manifest_bytes =
        serde_json::to_vec_pretty(&manifest).map_err(|e| CommitError::Base(e.to_string()))?;
    let manifest_digest = format!("sha256:{}", hex::encode(Sha256::digest(&manifest_bytes)));
    store.put_blob(&manifest_digest, &manifest_bytes)?;

    let mut layers = base.layers.clone();
    layers.push(digest);
    let new = ImageRecord {
        manifest: manifest_digest,
        index: None,
        config: config_digest,
        layers,
        // The image's size as pull records it: config plus compressed layers.
        size: config_bytes.len() as u64
            + manifest["layers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|l| l["size"].as_u64())
                .sum::<u64>(),
        stored_at: crate::containers::now(),
        source: base.source.clone(),
        // Made here, not served by a registry: trust policies do not cover it until it is
        // pushed, signed and pulled back.
        verified: None,
        local: true,
    };
    store.set_image(target, new.clone())?;
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_count_their_own_length() {
        // Around the sizes where the length gains a digit.
        for size in [0, 1, 2, 80, 85, 86, 87, 88, 90, 95, 990, 995, 996, 1000] {
            let mut out = Vec::new();
            pax_record(&mut out, "SCHILY.xattr.user.k", &vec![b'v'; size]);
            let text = String::from_utf8(out.clone()).expect("utf8");
            let (len, _) = text.split_once(' ').expect("length");
            assert_eq!(len.parse::<usize>().expect("number"), out.len(), "{text}");
            assert!(text.ends_with('\n'));
        }
    }

    #[test]
    fn extended_attributes_travel_as_pax_records_and_read_back() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("f");
        fs::write(&file, b"x").expect("write");
        if xattr::set(&file, "user.berth", b"kept").is_err() {
            return; // A filesystem without user attributes.
        }
        let mut builder = tar::Builder::new(Vec::new());
        append_xattrs(&mut builder, &file, Path::new("f")).expect("attrs");
        let mut header = tar::Header::new_gnu();
        header.set_size(1);
        builder.append_data(&mut header, "f", &b"x"[..]).expect("f");
        let bytes = builder.into_inner().expect("tar");
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut entry = archive
            .entries()
            .expect("entries")
            .next()
            .expect("one")
            .expect("ok");
        assert_eq!(entry.path().expect("path").to_str(), Some("f"));
        let pax: Vec<(String, Vec<u8>)> = entry
            .pax_extensions()
            .expect("pax")
            .expect("some")
            .flatten()
            .map(|e| (e.key().expect("key").to_owned(), e.value_bytes().to_vec()))
            .collect();
        assert_eq!(
            pax,
            vec![("SCHILY.xattr.user.berth".to_owned(), b"kept".to_vec())]
        );
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = timestamp();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
    }
}
