//! Sigstore's trust material, as `trusted_root.json` carries it (sigstore protobuf-specs
//! `dev.sigstore.trustroot.v1.TrustedRoot`, media type
//! `application/vnd.dev.sigstore.trustedroot+json;version=0.1`): the certificate authorities
//! that issue signing certificates (Fulcio) and the transparency logs (Rekor) whose keys sign
//! log entries, each with the time window it was in service. `cosign trusted-root create` and
//! sigstore's TUF repository write it; berth reads it from a file and needs no network.
//!
//! ```json
//! {"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
//!  "tlogs": [{"baseUrl": "https://rekor.sigstore.dev", "hashAlgorithm": "SHA2_256",
//!             "publicKey": {"rawBytes": "<base64 DER SPKI>", "keyDetails": "PKIX_ECDSA_P256_SHA_256",
//!                           "validFor": {"start": "2021-01-12T11:53:27Z"}},
//!             "logId": {"keyId": "<base64 SHA-256 of the SPKI>"}}],
//!  "certificateAuthorities": [{"subject": {...}, "uri": "https://fulcio.sigstore.dev",
//!             "certChain": {"certificates": [{"rawBytes": "<base64 DER>"}, ...]},
//!             "validFor": {"start": "2022-04-13T20:06:15Z"}}]}
//! ```
//! A CA's chain lists the intermediates first and the root last.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::key::PublicKey;
use crate::x509::Cert;

/// The largest trusted root file read (sigstore's public one is about 7 KiB).
pub const MAX_TRUSTED_ROOT_BYTES: usize = 1024 * 1024;

/// Why a trusted root is unusable.
#[derive(Debug, thiserror::Error)]
#[error("trusted root: {0}")]
pub struct TrustedRootError(String);

/// A time window, in Unix seconds; an open end is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First second in service.
    pub start: u64,
    /// Last second in service, if it ended.
    pub end: Option<u64>,
}

impl Window {
    /// Whether `at` is inside the window.
    pub fn contains(&self, at: u64) -> bool {
        at >= self.start && self.end.is_none_or(|end| at <= end)
    }
}

/// A certificate authority: its chain (intermediates, then the root) and when it issued.
#[derive(Debug, Clone)]
pub struct CertificateAuthority {
    /// Intermediates, closest to the leaf first.
    pub intermediates: Vec<Cert>,
    /// The root.
    pub root: Cert,
    /// When it was in service.
    pub valid_for: Window,
}

/// A transparency log: its key and id.
#[derive(Debug, Clone)]
pub struct Tlog {
    /// The log's id: hex SHA-256 of its public key (DER), as Rekor entries name it.
    pub log_id: String,
    /// The key that signs entry timestamps and checkpoints.
    pub key: PublicKey,
    /// When it was in service.
    pub valid_for: Window,
}

/// The trust material of one trusted root file.
#[derive(Debug, Clone)]
pub struct TrustedRoot {
    /// Fulcio-like certificate authorities.
    pub certificate_authorities: Vec<CertificateAuthority>,
    /// Rekor-like logs.
    pub tlogs: Vec<Tlog>,
    /// `sha256:` of the file's bytes: cached verdicts are not reused when it changes.
    pub digest: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    #[serde(default)]
    tlogs: Vec<RawTlog>,
    #[serde(default)]
    certificate_authorities: Vec<RawCa>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTlog {
    public_key: RawKey,
    log_id: RawLogId,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawKey {
    raw_bytes: String,
    valid_for: Option<RawWindow>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLogId {
    key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCa {
    cert_chain: RawChain,
    valid_for: Option<RawWindow>,
}

#[derive(Deserialize)]
struct RawChain {
    certificates: Vec<RawCert>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCert {
    raw_bytes: String,
}

#[derive(Deserialize)]
struct RawWindow {
    start: Option<String>,
    end: Option<String>,
}

impl TrustedRoot {
    /// Reads a trusted root file's bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Self, TrustedRootError> {
        let err = |s: String| TrustedRootError(s);
        if bytes.len() > MAX_TRUSTED_ROOT_BYTES {
            return Err(err(format!("larger than {MAX_TRUSTED_ROOT_BYTES} bytes")));
        }
        let raw: Raw = serde_json::from_slice(bytes).map_err(|e| err(e.to_string()))?;
        let mut tlogs = Vec::with_capacity(raw.tlogs.len());
        for (i, t) in raw.tlogs.into_iter().enumerate() {
            let der = STANDARD
                .decode(&t.public_key.raw_bytes)
                .map_err(|e| err(format!("tlogs[{i}].publicKey: {e}")))?;
            let key =
                PublicKey::from_der(&der).map_err(|e| err(format!("tlogs[{i}].publicKey: {e}")))?;
            let log_id = STANDARD
                .decode(&t.log_id.key_id)
                .map_err(|e| err(format!("tlogs[{i}].logId: {e}")))?;
            tlogs.push(Tlog {
                log_id: hex::encode(log_id),
                key,
                valid_for: window(t.public_key.valid_for.as_ref())
                    .map_err(|e| err(format!("tlogs[{i}].validFor: {e}")))?,
            });
        }
        let mut certificate_authorities = Vec::new();
        for (i, ca) in raw.certificate_authorities.into_iter().enumerate() {
            let mut certs = Vec::new();
            for c in &ca.cert_chain.certificates {
                let der = STANDARD
                    .decode(&c.raw_bytes)
                    .map_err(|e| err(format!("certificateAuthorities[{i}]: {e}")))?;
                certs.push(
                    Cert::from_der(&der)
                        .map_err(|e| err(format!("certificateAuthorities[{i}]: {e}")))?,
                );
            }
            let Some(root) = certs.pop() else {
                return Err(err(format!(
                    "certificateAuthorities[{i}] has no certificate"
                )));
            };
            certificate_authorities.push(CertificateAuthority {
                intermediates: certs,
                root,
                valid_for: window(ca.valid_for.as_ref())
                    .map_err(|e| err(format!("certificateAuthorities[{i}].validFor: {e}")))?,
            });
        }
        Ok(Self {
            certificate_authorities,
            tlogs,
            digest: format!("sha256:{}", hex::encode(Sha256::digest(bytes))),
        })
    }

    /// The log with id `log_id` (hex), in service at `at`.
    pub fn tlog(&self, log_id: &str, at: u64) -> Option<&Tlog> {
        self.tlogs
            .iter()
            .find(|t| t.log_id.eq_ignore_ascii_case(log_id) && t.valid_for.contains(at))
    }
}

fn window(raw: Option<&RawWindow>) -> Result<Window, String> {
    let start = match raw.and_then(|w| w.start.as_deref()) {
        Some(s) => rfc3339(s)?,
        None => 0,
    };
    let end = raw
        .and_then(|w| w.end.as_deref())
        .map(rfc3339)
        .transpose()?;
    Ok(Window { start, end })
}

/// Unix seconds of an RFC 3339 time as protobuf's JSON writes `Timestamp`s
/// (`2022-04-13T20:06:15.000Z`; offsets are accepted too). Fractions are dropped.
fn rfc3339(s: &str) -> Result<u64, String> {
    let bad = || format!("not an RFC 3339 time: {s:?}");
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<u64, String> {
        s.get(r)
            .filter(|d| d.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|d| d.parse().ok())
            .ok_or_else(bad)
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = &frac[digits..];
    }
    let offset: i64 = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) => {
            let h = num(s.len() - 5..s.len() - 3)? as i64;
            let m = num(s.len() - 2..s.len())? as i64;
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (h * 3600 + m * 60)
        }
        _ => return Err(bad()),
    };
    let to = |v: u64| u8::try_from(v).map_err(|_| bad());
    let dt = x509_cert::der::DateTime::new(
        u16::try_from(year).map_err(|_| bad())?,
        to(month)?,
        to(day)?,
        to(hour)?,
        to(minute)?,
        to(second)?,
    )
    .map_err(|_| bad())?;
    let secs = dt.unix_duration().as_secs() as i64 - offset;
    u64::try_from(secs).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_as_protobuf_writes_them() {
        assert_eq!(rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(rfc3339("2022-04-13T20:06:15.000Z"), Ok(1_649_880_375));
        assert_eq!(rfc3339("2022-04-13T22:06:15+02:00"), Ok(1_649_880_375));
        for bad in [
            "",
            "2022-04-13",
            "2022-13-01T00:00:00Z",
            "2022-04-13T20:06:15",
            "x".repeat(40).as_str(),
        ] {
            assert!(rfc3339(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn windows_with_open_ends() {
        let w = Window {
            start: 10,
            end: None,
        };
        assert!(w.contains(10) && w.contains(u64::MAX) && !w.contains(9));
        let w = Window {
            start: 10,
            end: Some(20),
        };
        assert!(w.contains(20) && !w.contains(21));
    }

    #[test]
    fn malformed_files_are_refused() {
        for bad in [
            &b"not json"[..],
            br#"{"tlogs":[{"publicKey":{"rawBytes":"%%"},"logId":{"keyId":""}}]}"#,
            br#"{"certificateAuthorities":[{"certChain":{"certificates":[]}}]}"#,
            br#"{"certificateAuthorities":[{"certChain":{"certificates":[{"rawBytes":"AAAA"}]}}]}"#,
        ] {
            assert!(TrustedRoot::from_json(bad).is_err());
        }
        let empty = TrustedRoot::from_json(b"{}").expect("an empty root is well-formed");
        assert!(empty.tlogs.is_empty());
    }
}
