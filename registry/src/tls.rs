//! HTTPS served by berth itself: rustls with the ring provider, the certificate chain and
//! private key read from the PEM files `[tls]` names, and reloaded when either file changes.
//!
//! Depends on `config` only. `server` hands each accepted TCP connection to [`Tls::accept`]
//! and picks the HTTP version from the ALPN protocol the handshake settled on ([`is_h2`]).
//!
//! Reloading: a background task ([`Tls::reload_forever`]) compares both files' modification
//! time and size every `reload_interval_secs`. When either changed it loads the pair and, if
//! the key fits the certificate, new handshakes use it; open connections keep the certificate
//! they started with. A broken pair (half-written, mismatched) is logged and the previous one
//! kept, so renewing a certificate can never take the registry offline.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::config::TlsConfig;
use crate::telemetry::error_chain;

/// How long a client may take to complete the TLS handshake. Without a limit a client that
/// connects and stays silent would hold a task and a socket until the process exits.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// ALPN id of HTTP/2 (RFC 7540 section 3.3).
const ALPN_H2: &[u8] = b"h2";
/// ALPN id of HTTP/1.1 (RFC 7301 section 6).
const ALPN_HTTP11: &[u8] = b"http/1.1";

/// Why the certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Only one of the two files is configured.
    #[error(
        "tls.cert_file and tls.key_file must be set together (cert_file = {cert:?}, key_file = {key:?})"
    )]
    Incomplete {
        /// The configured certificate file (may be empty).
        cert: PathBuf,
        /// The configured key file (may be empty).
        key: PathBuf,
    },
    /// A file could not be read.
    #[error("cannot read TLS {what} file {path}")]
    Read {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A file is not well-formed PEM.
    #[error("invalid PEM in TLS {what} file {path}")]
    Pem {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The parser's explanation.
        #[source]
        source: pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("no certificate (BEGIN CERTIFICATE) in TLS certificate file {path}")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key file holds no private key.
    #[error(
        "no private key (BEGIN PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY) in TLS key file {path}"
    )]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// The key is of an unsupported kind, or does not belong to the certificate.
    #[error("the private key in {key} cannot serve the certificate in {cert}")]
    Unusable {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' explanation.
        #[source]
        source: rustls::Error,
    },
    /// rustls refused the server configuration.
    #[error("cannot configure TLS")]
    Config(#[source] rustls::Error),
}

/// The server side of TLS: an acceptor whose certificate follows the configured files.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
    cert: Arc<ReloadingCert>,
    interval: Duration,
}

impl Tls {
    /// Loads the certificate and key `config` names; `None` when TLS is not configured.
    pub fn from_config(config: &TlsConfig) -> Result<Option<Self>, TlsError> {
        if !config.enabled() {
            return Ok(None);
        }
        if config.cert_file.as_os_str().is_empty() || config.key_file.as_os_str().is_empty() {
            return Err(TlsError::Incomplete {
                cert: config.cert_file.clone(),
                key: config.key_file.clone(),
            });
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cert = Arc::new(ReloadingCert::load(
            &config.cert_file,
            &config.key_file,
            provider.clone(),
        )?);
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_cert_resolver(cert.clone());
        server.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP11.to_vec()];
        Ok(Some(Self {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            cert,
            interval: Duration::from_secs(config.reload_interval_secs.max(1)),
        }))
    }

    /// Completes the handshake on an accepted connection, within [`HANDSHAKE_TIMEOUT`].
    pub async fn accept(&self, tcp: TcpStream) -> io::Result<TlsStream<TcpStream>> {
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(tcp)).await {
            Ok(handshake) => handshake,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "TLS handshake timed out",
            )),
        }
    }

    /// Checks the files every reload interval and swaps in a changed pair; never returns
    /// (run it as a task and abort it).
    pub async fn reload_forever(self) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick completes at once; the files were just loaded.
        tick.tick().await;
        loop {
            tick.tick().await;
            let cert = self.cert.clone();
            // File reads block; keep them off the threads that serve connections.
            match tokio::task::spawn_blocking(move || cert.reload_if_changed()).await {
                Ok(Reload::Unchanged) => {}
                Ok(Reload::Loaded) => tracing::info!(
                    cert_file = %self.cert.cert_file.display(),
                    "loaded the changed TLS certificate; new connections use it"
                ),
                Ok(Reload::Failed(e)) => tracing::warn!(
                    error = %error_chain(&e),
                    "TLS files changed but cannot be used; keeping the previous certificate"
                ),
                Err(e) => tracing::warn!(error = %e, "TLS reload check failed"),
            }
        }
    }
}

/// Whether the handshake on `stream` chose HTTP/2 through ALPN.
pub fn is_h2(stream: &TlsStream<TcpStream>) -> bool {
    stream.get_ref().1.alpn_protocol() == Some(ALPN_H2)
}

/// The outcome of one check of the files.
#[derive(Debug)]
enum Reload {
    /// Neither file changed since the last check.
    Unchanged,
    /// A changed pair is now in use.
    Loaded,
    /// The files changed but the pair cannot be used; the previous one stays.
    Failed(TlsError),
}

/// A file's modification time and size. A new certificate written in place changes at least
/// one; comparing both survives file systems with coarse timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

impl Stamp {
    /// `None` when the file cannot be examined (mid-replacement, say): that counts as a change,
    /// and the load that follows reports why.
    fn of(path: &Path) -> Option<Self> {
        let meta = std::fs::metadata(path).ok()?;
        Some(Self {
            modified: meta.modified().ok(),
            len: meta.len(),
        })
    }
}

/// The certificate rustls presents: the current pair, replaced when the files change.
#[derive(Debug)]
struct ReloadingCert {
    cert_file: PathBuf,
    key_file: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    /// The files as they were at the last load attempt, successful or not.
    seen: Mutex<(Option<Stamp>, Option<Stamp>)>,
}

impl ReloadingCert {
    /// Loads the pair, failing when it cannot be used (at start there is no previous one).
    fn load(
        cert_file: &Path,
        key_file: &Path,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, TlsError> {
        // Stamp before reading: a write racing the read then changes the stamp again and the
        // next check reloads.
        let seen = (Stamp::of(cert_file), Stamp::of(key_file));
        let key = load_pair(cert_file, key_file, &provider)?;
        Ok(Self {
            cert_file: cert_file.to_owned(),
            key_file: key_file.to_owned(),
            provider,
            current: RwLock::new(Arc::new(key)),
            seen: Mutex::new(seen),
        })
    }

    /// Loads the pair again if either file changed since the last attempt.
    fn reload_if_changed(&self) -> Reload {
        let now = (Stamp::of(&self.cert_file), Stamp::of(&self.key_file));
        {
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            if *seen == now {
                return Reload::Unchanged;
            }
            // Remember the attempt even when it fails, so a broken pair is reported once
            // rather than every interval; the write that fixes it changes the stamps again.
            *seen = now;
        }
        match load_pair(&self.cert_file, &self.key_file, &self.provider) {
            Ok(key) => {
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(key);
                Reload::Loaded
            }
            Err(e) => Reload::Failed(e),
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

/// Reads a PEM certificate chain and private key and checks that the key fits the first
/// certificate.
fn load_pair(
    cert_file: &Path,
    key_file: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    const CERT: &str = "certificate";
    const KEY: &str = "private key";
    let chain = CertificateDer::pem_slice_iter(&read(CERT, cert_file)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            what: CERT,
            path: cert_file.to_owned(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert_file.to_owned(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&read(KEY, key_file)?).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoKey {
            path: key_file.to_owned(),
        },
        source => TlsError::Pem {
            what: KEY,
            path: key_file.to_owned(),
            source,
        },
    })?;
    CertifiedKey::from_der(chain, key, provider).map_err(|source| TlsError::Unusable {
        cert: cert_file.to_owned(),
        key: key_file.to_owned(),
        source,
    })
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for `localhost`: (certificate PEM, key PEM).
    fn self_signed() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn config(dir: &Path) -> TlsConfig {
        TlsConfig {
            cert_file: dir.join("cert.pem"),
            key_file: dir.join("key.pem"),
            reload_interval_secs: 1,
            ..TlsConfig::default()
        }
    }

    fn write_pair(dir: &Path, (cert, key): &(String, String)) {
        rewrite(&dir.join("cert.pem"), cert);
        rewrite(&dir.join("key.pem"), key);
    }

    /// Writes `path` and gives it a modification time of its own: two writes within one
    /// tick of the kernel's coarse clock would otherwise share one, and new PEM files of the
    /// same kind usually have the same length.
    fn rewrite(path: &Path, text: &str) {
        use std::sync::atomic::{AtomicU64, Ordering};
        static CLOCK: AtomicU64 = AtomicU64::new(1_000_000);
        std::fs::write(path, text).unwrap();
        let at =
            SystemTime::UNIX_EPOCH + Duration::from_secs(CLOCK.fetch_add(1, Ordering::Relaxed));
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(at)
            .unwrap();
    }

    fn current(tls: &Tls) -> CertificateDer<'static> {
        tls.cert.current.read().unwrap().cert[0].clone()
    }

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    #[test]
    fn off_unless_configured_and_both_files_are_required() {
        assert!(Tls::from_config(&TlsConfig::default()).unwrap().is_none());
        let only_cert = TlsConfig {
            cert_file: "cert.pem".into(),
            ..TlsConfig::default()
        };
        let e = Tls::from_config(&only_cert).err().unwrap();
        assert!(
            e.to_string().contains("must be set together"),
            "{}",
            error_chain(&e)
        );
    }

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path());
        let pair = self_signed();

        let e = Tls::from_config(&c).err().unwrap();
        assert!(
            matches!(
                e,
                TlsError::Read {
                    what: "certificate",
                    ..
                }
            ),
            "{e}"
        );

        std::fs::write(&c.cert_file, "not a certificate\n").unwrap();
        std::fs::write(&c.key_file, &pair.1).unwrap();
        let e = Tls::from_config(&c).err().unwrap();
        assert!(matches!(e, TlsError::NoCertificate { .. }), "{e}");
        assert!(e.to_string().contains("cert.pem"), "{e}");

        std::fs::write(&c.cert_file, &pair.0).unwrap();
        std::fs::write(&c.key_file, &pair.0).unwrap();
        let e = Tls::from_config(&c).err().unwrap();
        assert!(matches!(e, TlsError::NoKey { .. }), "{e}");
        assert!(e.to_string().contains("key.pem"), "{e}");

        // Another certificate's key.
        std::fs::write(&c.key_file, self_signed().1).unwrap();
        let e = Tls::from_config(&c).err().unwrap();
        assert!(
            matches!(e, TlsError::Unusable { .. }),
            "{}",
            error_chain(&e)
        );
    }

    #[test]
    fn a_changed_pair_is_used_and_a_broken_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path());
        let first = self_signed();
        write_pair(dir.path(), &first);
        let tls = Tls::from_config(&c).unwrap().unwrap();
        assert_eq!(current(&tls), der(&first.0));
        assert!(matches!(tls.cert.reload_if_changed(), Reload::Unchanged));

        // Half of a renewal: a new certificate beside the old key is refused, once.
        let second = self_signed();
        rewrite(&c.cert_file, &second.0);
        assert!(matches!(tls.cert.reload_if_changed(), Reload::Failed(_)));
        assert!(matches!(tls.cert.reload_if_changed(), Reload::Unchanged));
        assert_eq!(current(&tls), der(&first.0));

        // The other half completes it.
        rewrite(&c.key_file, &second.1);
        assert!(matches!(tls.cert.reload_if_changed(), Reload::Loaded));
        assert_eq!(current(&tls), der(&second.0));
    }
}
