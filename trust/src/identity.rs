//! Who may sign keylessly: an OIDC issuer and a subject, matched against what Fulcio wrote in
//! the signing certificate (Fulcio `docs/oid-info.md`): the subject is a SAN (a URI, such as a
//! GitHub Actions workflow, or an e-mail address), the issuer is extension
//! 1.3.6.1.4.1.57264.1.8 (a DER UTF8String), or the older 1.3.6.1.4.1.57264.1.1 (raw bytes).
//!
//! ```toml
//! [[trust.policy.identity]]
//! issuer = "https://token.actions.githubusercontent.com"
//! subject_regex = "^https://github.com/acme/.*$"
//! ```

use serde::{Deserialize, Serialize};
use x509_cert::der::Decode as _;
use x509_cert::der::asn1::Utf8StringRef;

use crate::x509::Cert;

/// Fulcio's OIDC issuer extension (V2, DER-encoded).
pub const ISSUER_V2_OID: &str = "1.3.6.1.4.1.57264.1.8";
/// Fulcio's OIDC issuer extension (V1, raw string, deprecated).
pub const ISSUER_V1_OID: &str = "1.3.6.1.4.1.57264.1.1";
/// The largest compiled subject regex: a policy cannot make matching slow.
const REGEX_SIZE_LIMIT: usize = 256 * 1024;
/// The longest subject regex pattern.
const MAX_PATTERN: usize = 1024;

/// One `[[trust.policy.identity]]` table as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// The OIDC issuer, exactly.
    pub issuer: String,
    /// The subject (SAN), exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// A regex the subject must match (unanchored, as cosign's
    /// `--certificate-identity-regexp`: write `^` and `$`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_regex: Option<String>,
}

/// An allowed identity, its regex compiled once.
#[derive(Debug, Clone)]
pub struct Identity {
    issuer: String,
    subject: Subject,
}

#[derive(Debug, Clone)]
enum Subject {
    Exact(String),
    Regex(regex::Regex),
}

/// Why an identity cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Neither or both of `subject` and `subject_regex`.
    #[error("an identity names exactly one of subject or subject_regex")]
    Subject,
    /// An empty issuer.
    #[error("an identity needs an issuer")]
    Issuer,
    /// A regex that does not compile (or is too large).
    #[error("subject_regex: {0}")]
    Regex(String),
}

impl Identity {
    /// Compiles a configured identity.
    pub fn new(config: &IdentityConfig) -> Result<Self, IdentityError> {
        if config.issuer.is_empty() {
            return Err(IdentityError::Issuer);
        }
        let subject = match (&config.subject, &config.subject_regex) {
            (Some(s), None) if !s.is_empty() => Subject::Exact(s.clone()),
            (None, Some(r)) => {
                if r.len() > MAX_PATTERN {
                    return Err(IdentityError::Regex(format!(
                        "longer than {MAX_PATTERN} characters"
                    )));
                }
                Subject::Regex(
                    regex::RegexBuilder::new(r)
                        .size_limit(REGEX_SIZE_LIMIT)
                        .dfa_size_limit(REGEX_SIZE_LIMIT)
                        .build()
                        .map_err(|e| IdentityError::Regex(e.to_string()))?,
                )
            }
            _ => return Err(IdentityError::Subject),
        };
        Ok(Self {
            issuer: config.issuer.clone(),
            subject,
        })
    }

    /// A stable description, for key-set ids and messages.
    pub fn describe(&self) -> String {
        match &self.subject {
            Subject::Exact(s) => format!("{} {s}", self.issuer),
            Subject::Regex(r) => format!("{} ~{}", self.issuer, r.as_str()),
        }
    }

    fn matches(&self, issuer: &str, subject: &str) -> bool {
        issuer == self.issuer
            && match &self.subject {
                Subject::Exact(s) => s == subject,
                Subject::Regex(r) => r.is_match(subject),
            }
    }
}

/// The signer a certificate names: (issuer, subject).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// The OIDC issuer.
    pub issuer: String,
    /// The SAN that matched.
    pub subject: String,
}

impl std::fmt::Display for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (issuer {})", self.subject, self.issuer)
    }
}

/// The OIDC issuer Fulcio wrote in `cert`.
pub fn certificate_issuer(cert: &Cert) -> Option<String> {
    if let Some(v2) = cert.extension(ISSUER_V2_OID) {
        return Utf8StringRef::from_der(v2)
            .ok()
            .map(|s| s.as_str().to_owned());
    }
    cert.extension(ISSUER_V1_OID)
        .and_then(|v1| std::str::from_utf8(v1).ok())
        .map(str::to_owned)
}

/// The first of `identities` that `cert` carries, or why none.
pub fn match_identity(cert: &Cert, identities: &[Identity]) -> Result<Signer, String> {
    let Some(issuer) = certificate_issuer(cert) else {
        return Err("the certificate names no OIDC issuer".into());
    };
    let sans = cert.san_identities();
    for subject in &sans {
        if identities.iter().any(|i| i.matches(&issuer, subject)) {
            return Ok(Signer {
                issuer,
                subject: subject.clone(),
            });
        }
    }
    Err(format!(
        "the certificate's identity {} (issuer {issuer}) is not one the policy allows",
        sans.first().map_or("(none)", String::as_str)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(subject: Option<&str>, regex: Option<&str>) -> IdentityConfig {
        IdentityConfig {
            issuer: "https://issuer.example".into(),
            subject: subject.map(str::to_owned),
            subject_regex: regex.map(str::to_owned),
        }
    }

    #[test]
    fn exact_and_regex_subjects() {
        let exact = Identity::new(&config(Some("a@b.example"), None)).expect("id");
        assert!(exact.matches("https://issuer.example", "a@b.example"));
        assert!(!exact.matches("https://issuer.example", "a@b.example.evil"));
        assert!(!exact.matches("https://other.example", "a@b.example"));
        let re = Identity::new(&config(None, Some("^https://github.com/acme/"))).expect("id");
        assert!(re.matches(
            "https://issuer.example",
            "https://github.com/acme/app/.github/w.yml@refs/heads/main"
        ));
        assert!(!re.matches("https://issuer.example", "https://github.com/acmeevil/app"));
    }

    #[test]
    fn bad_identities_are_refused() {
        assert!(Identity::new(&config(None, None)).is_err());
        assert!(Identity::new(&config(Some("x"), Some("y"))).is_err());
        assert!(Identity::new(&config(None, Some("("))).is_err());
        assert!(Identity::new(&config(None, Some(&"a".repeat(MAX_PATTERN + 1)))).is_err());
        // A small pattern that compiles to a huge program hits the size limit.
        assert!(Identity::new(&config(None, Some(r"\w{1000}\w{1000}"))).is_err());
        let mut no_issuer = config(Some("x"), None);
        no_issuer.issuer.clear();
        assert!(Identity::new(&no_issuer).is_err());
    }
}
