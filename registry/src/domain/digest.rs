//! Content digests (`algorithm:hex`) and the resumable hasher uploads use.
//!
//! Grammar, from the OCI image spec ("Digests"):
//!
//! ```text
//! digest     ::= algorithm ":" encoded
//! algorithm  ::= algorithm-component (algorithm-separator algorithm-component)*
//! encoded    ::= [a-zA-Z0-9=_-]+
//! ```
//!
//! Registered algorithms are `sha256` (64 lowercase hex digits) and `sha512` (128). Anything that
//! matches the grammar with another algorithm is well formed but unsupported here.

use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;
use sha2::digest::common::hazmat::SerializableState;

/// A digest algorithm this registry can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256, the algorithm every client uses by default.
    Sha256,
    /// SHA-512, registered by the OCI image spec.
    Sha512,
}

impl Algorithm {
    /// The name used in digest strings.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Self::Sha256 => 64,
            Self::Sha512 => 128,
        }
    }
}

/// Why a digest string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// Not of the form `algorithm:encoded`.
    #[error("malformed digest {0:?}: expected algorithm:hex, e.g. sha256:<64 hex digits>")]
    Malformed(String),
    /// Well formed, but the algorithm is not one this registry verifies.
    #[error("unsupported digest algorithm {0:?}: use sha256 or sha512")]
    UnsupportedAlgorithm(String),
}

/// A validated content digest, such as `sha256:e3b0c442…`.
///
/// Only lowercase hex is accepted so each content has exactly one digest string, which makes
/// the string safe to use as a storage key and a SQL key.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    /// Parses and validates a digest string.
    pub fn parse(s: &str) -> Result<Self, DigestError> {
        let malformed = || DigestError::Malformed(short(s));
        let (algo, encoded) = s.split_once(':').ok_or_else(malformed)?;
        let algo_ok = !algo.is_empty()
            && algo.split(['+', '.', '_', '-']).all(|c| {
                !c.is_empty()
                    && c.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
        let encoded_ok = !encoded.is_empty()
            && encoded
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'));
        if !algo_ok || !encoded_ok {
            return Err(malformed());
        }
        let algorithm = match algo {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            other => return Err(DigestError::UnsupportedAlgorithm(short(other))),
        };
        let hex_ok = encoded.len() == algorithm.hex_len()
            && encoded
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hex_ok {
            return Err(malformed());
        }
        Ok(Self {
            algorithm,
            hex: encoded.to_owned(),
        })
    }

    /// The SHA-256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Self {
        Self {
            algorithm: Algorithm::Sha256,
            hex: hex::encode(sha2::Sha256::digest(bytes)),
        }
    }

    /// The digest of `bytes` computed with `algorithm`.
    pub fn compute(algorithm: Algorithm, bytes: &[u8]) -> Self {
        let hex = match algorithm {
            Algorithm::Sha256 => hex::encode(sha2::Sha256::digest(bytes)),
            Algorithm::Sha512 => hex::encode(sha2::Sha512::digest(bytes)),
        };
        Self { algorithm, hex }
    }

    /// The algorithm part.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lowercase hex part.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

fn short(s: &str) -> String {
    s.chars().take(200).collect()
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.as_str(), self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Version byte stored in front of a serialized hasher state. The `sha2` state format is marked
/// hazmat and may change between releases; a state with another version is refused rather than
/// misread.
const STATE_VERSION: u8 = 1;

/// Why a saved hasher state could not be restored.
#[derive(Debug, thiserror::Error)]
#[error("saved upload hash state is unreadable (written by another berth version?)")]
pub struct HashStateError;

/// A digest computed over the bytes of an upload as they arrive, which can be saved between
/// requests and resumed in any process, so any replica can continue any upload.
#[derive(Clone)]
pub enum UploadHasher {
    /// SHA-256 state.
    Sha256(sha2::Sha256),
    /// SHA-512 state.
    Sha512(sha2::Sha512),
}

impl UploadHasher {
    /// A hasher for `algorithm` that has seen no bytes.
    pub fn new(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Sha256 => Self::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Self::Sha512(sha2::Sha512::new()),
        }
    }

    /// The algorithm this hasher computes.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Self::Sha256(_) => Algorithm::Sha256,
            Self::Sha512(_) => Algorithm::Sha512,
        }
    }

    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(bytes),
            Self::Sha512(h) => h.update(bytes),
        }
    }

    /// Saves the state: a format version, the algorithm, then the `sha2` serialized state.
    pub fn save(&self) -> Vec<u8> {
        let (tag, state) = match self {
            Self::Sha256(h) => (0u8, h.serialize().to_vec()),
            Self::Sha512(h) => (1u8, h.serialize().to_vec()),
        };
        let mut out = Vec::with_capacity(2 + state.len());
        out.extend_from_slice(&[STATE_VERSION, tag]);
        out.extend_from_slice(&state);
        out
    }

    /// Restores a state written by [`UploadHasher::save`].
    pub fn restore(saved: &[u8]) -> Result<Self, HashStateError> {
        let [version, tag, state @ ..] = saved else {
            return Err(HashStateError);
        };
        if *version != STATE_VERSION {
            return Err(HashStateError);
        }
        match tag {
            0 => sha2::Sha256::deserialize(state.try_into().map_err(|_| HashStateError)?)
                .map(Self::Sha256)
                .map_err(|_| HashStateError),
            1 => sha2::Sha512::deserialize(state.try_into().map_err(|_| HashStateError)?)
                .map(Self::Sha512)
                .map_err(|_| HashStateError),
            _ => Err(HashStateError),
        }
    }

    /// The digest of everything fed so far.
    pub fn finish(self) -> Digest {
        let (algorithm, hex) = match self {
            Self::Sha256(h) => (Algorithm::Sha256, hex::encode(h.finalize())),
            Self::Sha512(h) => (Algorithm::Sha512, hex::encode(h.finalize())),
        };
        Digest { algorithm, hex }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_registered_algorithms() {
        let d = Digest::parse(EMPTY).unwrap();
        assert_eq!(d.algorithm(), Algorithm::Sha256);
        assert_eq!(d.to_string(), EMPTY);
        let d512 = format!("sha512:{}", "0".repeat(128));
        assert_eq!(Digest::parse(&d512).unwrap().algorithm(), Algorithm::Sha512);
    }

    #[test]
    fn refuses_malformed_and_unsupported_digests() {
        for bad in [
            "",
            "sha256",
            "sha256:",
            ":abc",
            "sha256:abc",
            "SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:../../../../../../../../../../../../../../../../../../../../../etc/pass",
            "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ] {
            assert!(
                matches!(Digest::parse(bad), Err(DigestError::Malformed(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            Digest::parse("md5:abcd"),
            Err(DigestError::UnsupportedAlgorithm(_))
        ));
    }

    #[test]
    fn computes_digests() {
        assert_eq!(Digest::sha256_of(b"").to_string(), EMPTY);
        assert_eq!(Digest::compute(Algorithm::Sha256, b"").to_string(), EMPTY);
        assert!(
            Digest::compute(Algorithm::Sha512, b"")
                .to_string()
                .starts_with("sha512:cf83e135")
        );
    }

    #[test]
    fn hasher_state_survives_save_and_restore() {
        for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
            let mut h = UploadHasher::new(algorithm);
            h.update(b"hello ");
            let saved = h.save();
            let mut resumed = UploadHasher::restore(&saved).unwrap();
            resumed.update(b"world");
            assert_eq!(resumed.finish(), Digest::compute(algorithm, b"hello world"));
        }
    }

    #[test]
    fn hasher_refuses_foreign_state() {
        assert!(UploadHasher::restore(&[]).is_err());
        assert!(UploadHasher::restore(&[9; 106]).is_err());
        let mut saved = UploadHasher::new(Algorithm::Sha256).save();
        saved.pop();
        assert!(UploadHasher::restore(&saved).is_err());
    }
}
