//! Unpacking a layer tarball into a directory that overlayfs can use as a lower layer.
//!
//! Path safety is the point of this module. Every entry's path is checked before anything is
//! written: an absolute path or a `..` component is refused, and every directory on the way
//! to the entry must be a real directory inside the layer, never a symlink (one planted by an
//! earlier entry would otherwise carry later writes outside). Hard-link targets get the same
//! checks. A refused layer fails the whole unpack with an error naming the entry; the caller
//! discards the partial directory, and nothing outside it has been touched.
//!
//! OCI whiteouts (image-spec `layer.md`, "Whiteouts") become overlayfs whiteouts: `.wh.NAME`
//! is a character device 0/0 named `NAME`, and `.wh..wh..opq` marks its directory opaque with
//! the `trusted.overlay.opaque` extended attribute. Ownership, modes, modification times,
//! extended attributes, hard links, symlinks and device nodes are preserved (as root).
//!
//! The uncompressed stream is hashed as it is read, so the caller can check it against the
//! image config's `diff_ids`.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest as _, Sha256};
use tar::EntryType;

/// The opaque-directory marker entry.
const OPAQUE: &str = ".wh..wh..opq";
/// The prefix of a whiteout entry.
const WHITEOUT: &str = ".wh.";

/// Why a layer could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// An entry would land outside the layer directory.
    #[error("layer entry {path:?} is refused: {reason}")]
    Unsafe {
        /// The entry's path as written in the tarball.
        path: String,
        /// Why.
        reason: &'static str,
    },
    /// The tarball is malformed or writing failed.
    #[error("layer entry {path:?} cannot be written")]
    Entry {
        /// The entry's path as written in the tarball.
        path: String,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// Reading the tarball failed.
    #[error("cannot read the layer")]
    Read(#[source] io::Error),
}

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain tar.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

impl Compression {
    /// From the descriptor's media type, or from the first bytes when the type does not say
    /// (Docker's `rootfs.diff.tar.gzip`, foreign types).
    pub fn detect(media_type: &str, head: &[u8]) -> Compression {
        if media_type.ends_with("+zstd") || media_type.ends_with(".zstd") {
            Compression::Zstd
        } else if media_type.ends_with("+gzip")
            || media_type.ends_with(".gzip")
            || head.starts_with(&[0x1f, 0x8b])
        {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// Unpacks the layer blob `file` (compressed as `compression`) into `dest`, which must exist
/// and be empty. Returns the digest of the uncompressed tarball (`sha256:...`).
pub fn unpack(
    file: fs::File,
    compression: Compression,
    dest: &Path,
) -> Result<String, UnpackError> {
    let reader = io::BufReader::with_capacity(1 << 20, file);
    let decoded: Box<dyn Read> = match compression {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::with_buffer(reader).map_err(UnpackError::Read)?)
        }
    };
    let mut hashing = Hashing {
        inner: decoded,
        hash: Sha256::new(),
    };
    {
        let mut archive = tar::Archive::new(&mut hashing);
        let mut dirs = Vec::new();
        for entry in archive.entries().map_err(UnpackError::Read)? {
            let entry = entry.map_err(UnpackError::Read)?;
            if let Some(dir) = unpack_entry(entry, dest)? {
                dirs.push(dir);
            }
        }
        // Directory times last: creating entries inside a directory changes its mtime.
        for (path, mtime) in dirs.into_iter().rev() {
            let t = filetime::FileTime::from_unix_time(mtime, 0);
            let _ = filetime::set_symlink_file_times(&path, t, t);
        }
    }
    // Read to the end: the digest covers the padding after the last entry too.
    io::copy(&mut hashing, &mut io::sink()).map_err(UnpackError::Read)?;
    Ok(format!("sha256:{}", hex::encode(hashing.hash.finalize())))
}

/// The entry's path split into safe components, or why not.
fn safe_components(path: &Path, raw: &str) -> Result<Vec<String>, UnpackError> {
    let refuse = |reason| UnpackError::Unsafe {
        path: raw.to_owned(),
        reason,
    };
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(s) => parts.push(
                s.to_str()
                    .ok_or_else(|| refuse("the path is not UTF-8"))?
                    .to_owned(),
            ),
            Component::CurDir => {}
            Component::ParentDir => return Err(refuse("it climbs out with `..`")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(refuse("it is an absolute path"));
            }
        }
    }
    Ok(parts)
}

/// Creates (or checks) every directory on the way to `parts`'s last component and returns the
/// full path. Refuses any step that is not a real directory (a symlink, a file).
fn parent_dirs(dest: &Path, parts: &[String], raw: &str) -> Result<PathBuf, UnpackError> {
    let mut at = dest.to_path_buf();
    let io_err = |source| UnpackError::Entry {
        path: raw.to_owned(),
        source,
    };
    for part in &parts[..parts.len().saturating_sub(1)] {
        at.push(part);
        match fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(m) if m.file_type().is_symlink() => {
                return Err(UnpackError::Unsafe {
                    path: raw.to_owned(),
                    reason: "a directory on its way is a symlink (it could lead outside the layer)",
                });
            }
            Ok(_) => {
                return Err(UnpackError::Unsafe {
                    path: raw.to_owned(),
                    reason: "a directory on its way is not a directory",
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::DirBuilder::new()
                    .mode(0o755)
                    .create(&at)
                    .map_err(io_err)?;
            }
            Err(e) => return Err(io_err(e)),
        }
    }
    if let Some(last) = parts.last() {
        at.push(last);
    }
    Ok(at)
}

/// Removes whatever is at `path` (not following symlinks), so an entry can replace it.
fn clear(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_dir() => Ok(()),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes one entry; returns a directory and its mtime to set at the end.
fn unpack_entry<R: Read>(
    mut entry: tar::Entry<'_, R>,
    dest: &Path,
) -> Result<Option<(PathBuf, i64)>, UnpackError> {
    let path = entry.path().map_err(UnpackError::Read)?.into_owned();
    let raw = path.to_string_lossy().into_owned();
    let parts = safe_components(&path, &raw)?;
    if parts.is_empty() {
        // The layer root itself ("./"): nothing to create.
        return Ok(None);
    }
    let io_err = |source| UnpackError::Entry {
        path: raw.clone(),
        source,
    };
    let name = parts.last().map(String::as_str).unwrap_or_default();
    // Whiteouts.
    if name == OPAQUE {
        let dir = parent_dirs(dest, &parts, &raw)?;
        let dir = dir.parent().unwrap_or(dest).to_path_buf();
        xattr::set(&dir, "trusted.overlay.opaque", b"y").map_err(io_err)?;
        return Ok(None);
    }
    if let Some(hidden) = name.strip_prefix(WHITEOUT) {
        let mut target_parts = parts.clone();
        if let Some(last) = target_parts.last_mut() {
            *last = hidden.to_owned();
        }
        let target = parent_dirs(dest, &target_parts, &raw)?;
        clear(&target).map_err(io_err)?;
        nix::sys::stat::mknod(
            &target,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            nix::sys::stat::makedev(0, 0),
        )
        .map_err(|e| io_err(io::Error::from(e)))?;
        return Ok(None);
    }
    let target = parent_dirs(dest, &parts, &raw)?;
    let header = entry.header().clone();
    // Metadata fields some writers leave empty read as zero (root, the epoch) rather than
    // failing the layer; the mode defaults to what the entry type usually has.
    let kind = header.entry_type();
    let default_mode = if kind == EntryType::Directory {
        0o755
    } else {
        0o644
    };
    let mode = header.mode().unwrap_or(default_mode) & 0o7777;
    let (uid, gid) = (header.uid().unwrap_or(0), header.gid().unwrap_or(0));
    let mtime = header.mtime().map_or(0, |t| i64::try_from(t).unwrap_or(0));
    let mut directory = None;
    match kind {
        EntryType::Directory => {
            match fs::symlink_metadata(&target) {
                Ok(m) if m.file_type().is_dir() => {}
                Ok(_) => {
                    fs::remove_file(&target).map_err(io_err)?;
                    fs::create_dir(&target).map_err(io_err)?;
                }
                Err(_) => fs::create_dir(&target).map_err(io_err)?,
            }
            directory = Some((target.clone(), mtime));
        }
        EntryType::Regular | EntryType::Continuous => {
            clear(&target).map_err(io_err)?;
            let mut out = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&target)
                .map_err(io_err)?;
            io::copy(&mut entry, &mut out).map_err(io_err)?;
        }
        EntryType::Symlink => {
            let link = entry
                .link_name()
                .map_err(io_err)?
                .ok_or_else(|| io_err(io::Error::other("symlink without a target")))?;
            clear(&target).map_err(io_err)?;
            // The target is stored as written: it is resolved inside the container's root,
            // and nothing here ever follows it.
            std::os::unix::fs::symlink(&link, &target).map_err(io_err)?;
        }
        EntryType::Link => {
            let link = entry
                .link_name()
                .map_err(io_err)?
                .ok_or_else(|| io_err(io::Error::other("hard link without a target")))?;
            let link_raw = link.to_string_lossy().into_owned();
            let link_parts = safe_components(&link, &link_raw)?;
            let source = parent_dirs(dest, &link_parts, &link_raw)?;
            clear(&target).map_err(io_err)?;
            fs::hard_link(&source, &target).map_err(io_err)?;
            // A hard link shares the inode: its metadata was set with the first name.
            return Ok(None);
        }
        EntryType::Char | EntryType::Block | EntryType::Fifo => {
            let flag = match kind {
                EntryType::Char => nix::sys::stat::SFlag::S_IFCHR,
                EntryType::Block => nix::sys::stat::SFlag::S_IFBLK,
                _ => nix::sys::stat::SFlag::S_IFIFO,
            };
            // FIFOs carry no device numbers, and some writers leave the fields empty.
            let major = u64::from(header.device_major().ok().flatten().unwrap_or(0));
            let minor = u64::from(header.device_minor().ok().flatten().unwrap_or(0));
            clear(&target).map_err(io_err)?;
            nix::sys::stat::mknod(
                &target,
                flag,
                nix::sys::stat::Mode::from_bits_truncate(mode),
                nix::sys::stat::makedev(major, minor),
            )
            .map_err(|e| io_err(io::Error::from(e)))?;
        }
        // PAX and GNU metadata entries are consumed by the tar reader; anything else (sockets,
        // unknown types) has no place in a layer.
        _ => return Ok(None),
    }
    // Extended attributes (PAX `SCHILY.xattr.*`).
    if let Some(pax) = entry.pax_extensions().map_err(io_err)? {
        for ext in pax.flatten() {
            if let Ok(key) = ext.key()
                && let Some(attr) = key.strip_prefix("SCHILY.xattr.")
            {
                xattr::set(&target, attr, ext.value_bytes()).map_err(io_err)?;
            }
        }
    }
    let (uid, gid) = (u32::try_from(uid).ok(), u32::try_from(gid).ok());
    std::os::unix::fs::lchown(&target, uid, gid).map_err(io_err)?;
    if kind != EntryType::Symlink {
        // After chown, which clears set-id bits.
        fs::set_permissions(&target, fs::Permissions::from_mode(mode)).map_err(io_err)?;
        if directory.is_none() {
            let t = filetime::FileTime::from_unix_time(mtime, 0);
            filetime::set_symlink_file_times(&target, t, t).map_err(io_err)?;
        }
    } else {
        let t = filetime::FileTime::from_unix_time(mtime, 0);
        filetime::set_symlink_file_times(&target, t, t).map_err(io_err)?;
    }
    Ok(directory)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_comes_from_the_media_type_or_the_magic() {
        assert_eq!(
            Compression::detect("application/vnd.oci.image.layer.v1.tar+zstd", b""),
            Compression::Zstd
        );
        assert_eq!(
            Compression::detect("application/vnd.docker.image.rootfs.diff.tar.gzip", b""),
            Compression::Gzip
        );
        assert_eq!(
            Compression::detect("x", &[0x1f, 0x8b, 8]),
            Compression::Gzip
        );
        assert_eq!(
            Compression::detect("application/vnd.oci.image.layer.v1.tar", b"abc"),
            Compression::None
        );
    }

    #[test]
    fn unsafe_paths_are_named() {
        assert!(safe_components(Path::new("a/../../etc"), "x").is_err());
        assert!(safe_components(Path::new("/etc/passwd"), "x").is_err());
        assert_eq!(
            safe_components(Path::new("./usr/bin/"), "x").expect("safe"),
            ["usr", "bin"]
        );
    }
}
