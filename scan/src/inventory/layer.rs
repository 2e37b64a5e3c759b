//! Opening a layer blob: its compression from its media type, the decoder, and the meter that
//! bounds the uncompressed bytes and the time of a whole walk.

use std::io::{self, BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// How a layer blob is compressed, from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (any number of members).
    Gzip,
    /// zstd (any number of frames; windows up to zstd's default 128 MiB limit).
    Zstd,
}

impl Compression {
    /// The compression a layer media type names, or `None` for a media type that is not a
    /// layer: OCI's `tar`, `tar+gzip`, `tar+zstd` (and their `nondistributable` forms), and
    /// docker's `rootfs.diff.tar.gzip` and `rootfs.foreign.diff.tar.gzip`.
    pub fn from_media_type(media_type: &str) -> Option<Compression> {
        match media_type {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Some(Compression::None),
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
                Some(Compression::Gzip)
            }
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => {
                Some(Compression::Zstd)
            }
            _ => None,
        }
    }
}

/// The decoded tar stream of a blob, read through `meter`.
pub(crate) fn open<'a>(
    compression: Compression,
    blob: impl Read + 'a,
    meter: &Arc<Meter>,
) -> io::Result<impl Read + 'a> {
    let blob = BufReader::with_capacity(64 * 1024, blob);
    let decoded: Box<dyn Read + 'a> = match compression {
        Compression::None => Box::new(blob),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(blob)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(blob)?),
    };
    Ok(Metered {
        inner: decoded,
        meter: Arc::clone(meter),
    })
}

/// The shared budget of uncompressed bytes and time, checked on every read.
pub(crate) struct Meter {
    left: AtomicU64,
    deadline: Option<Instant>,
    /// Which bound stopped the walk.
    tripped: OnceLock<&'static str>,
}

struct Metered<R> {
    inner: R,
    meter: Arc<Meter>,
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.meter.deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = self.meter.tripped.set("stopped: the deadline passed");
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the deadline passed",
            ));
        }
        let left = self.meter.left.load(Ordering::Relaxed);
        if left == 0 {
            let _ = self
                .meter
                .tripped
                .set("stopped: the layers expand to more bytes than allowed");
            return Err(io::Error::other(
                "the layers expand to more bytes than allowed",
            ));
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.meter.left.fetch_sub(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl Meter {
    /// A budget of `bytes` uncompressed bytes, until `deadline`.
    pub(crate) fn new(bytes: u64, deadline: Option<Instant>) -> Self {
        Meter {
            left: AtomicU64::new(bytes),
            deadline,
            tripped: OnceLock::new(),
        }
    }

    /// Which bound stopped the walk, once one did.
    pub(crate) fn tripped(&self) -> Option<&'static str> {
        self.tripped.get().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_media_types() {
        use Compression::*;
        let docker = "application/vnd.docker.image.rootfs.diff.tar.gzip";
        assert_eq!(Compression::from_media_type(docker), Some(Gzip));
        let oci = "application/vnd.oci.image.layer.v1.tar+zstd";
        assert_eq!(Compression::from_media_type(oci), Some(Zstd));
        let plain = "application/vnd.oci.image.layer.v1.tar";
        assert_eq!(Compression::from_media_type(plain), Some(None));
        let config = "application/vnd.oci.image.config.v1+json";
        assert_eq!(Compression::from_media_type(config), Option::None);
    }
}
