//! Trust policies: which keys must have signed the images of a scope, and what happens to an
//! image they did not sign.
//!
//! The same `[[trust.policy]]` tables serve the registry (in berth's configuration, scopes are
//! repository names: `team` or `team/app`) and the runtime (in `/etc/berth/policy.toml`,
//! scopes are image references without tag: `registry.example.com/team`). A scope covers that
//! name and everything under `scope/`; the most specific scope that covers a name is the one
//! that applies, so `team/app` can relax or tighten what `team` requires.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::identity::{Identity, IdentityConfig, IdentityError};
use crate::key::{KeyError, PublicKey};
use crate::keyless::Keyless;
use crate::notation::{NotationTrust, NotationTrustError};
use crate::trusted_root::{MAX_TRUSTED_ROOT_BYTES, TrustedRoot, TrustedRootError};

/// What a policy does with an image its keys did not sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Record and show the status; refuse nothing.
    #[default]
    Audit,
    /// Refuse pulls (and runs) of images no trusted key signed.
    Enforce,
}

/// One `[[trust.policy]]` table as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// A repository or namespace (registry) or an image reference prefix (runtime).
    pub scope: String,
    /// `audit` (the default) or `enforce`.
    #[serde(default)]
    pub mode: Mode,
    /// PEM public key files (cosign.pub, or any SubjectPublicKeyInfo PEM): a signature by any
    /// of them vouches for an image.
    #[serde(default)]
    pub keys: Vec<PathBuf>,
    /// Robot accounts may pull unsigned images (CI that pushes, tests, then signs).
    #[serde(default)]
    pub exempt_robots: bool,
    /// Registry only, with `mode = "enforce"`: refuse pushes of tags onto manifests no
    /// trusted key signed (push by digest, sign, then tag). Robots are exempt where
    /// `exempt_robots` is set.
    #[serde(default)]
    pub require_signature_for_tags: bool,
    /// Keyless signatures: sigstore's `trusted_root.json` (Fulcio CAs, Rekor keys), read
    /// once at start. Needs at least one `identity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_root: Option<PathBuf>,
    /// Who may sign keylessly (`[[trust.policy.identity]]`): OIDC issuer and subject.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identity: Vec<IdentityConfig>,
    /// notation signatures: a PEM file or a directory of PEM files of the CA certificates
    /// (the notation trust store) a signing certificate must chain to.
    #[serde(default)]
    pub notation_trust_store: Option<PathBuf>,
    /// notation signatures: the identities trusted, `x509.subject: C=US, O=Acme, CN=release`
    /// (the leaf's subject must hold every attribute listed), or `*` for any certificate the
    /// trust store's CAs issued.
    #[serde(default)]
    pub notation_identities: Vec<String>,
}

/// Why policies could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A scope is empty or malformed.
    #[error("trust.policy[{index}]: invalid scope {scope:?}: {reason}")]
    Scope {
        /// Which table.
        index: usize,
        /// The scope as written.
        scope: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// Two tables have the same scope.
    #[error("trust.policy: scope {0:?} appears twice")]
    Duplicate(String),
    /// An enforcing policy names no key, so it would refuse everything.
    #[error(
        "trust.policy[{0}]: mode = \"enforce\" needs at least one key, a trusted_root with identities, or a notation trust store"
    )]
    NoKeys(usize),
    /// `require_signature_for_tags` in a policy that only audits.
    #[error("trust.policy[{0}]: require_signature_for_tags needs mode = \"enforce\"")]
    TagsNeedEnforce(usize),
    /// `trusted_root` without `identity`, or the other way round.
    #[error(
        "trust.policy[{0}]: keyless signing needs both trusted_root and at least one [[trust.policy.identity]]"
    )]
    Keyless(usize),
    /// The trusted root file is unreadable or invalid.
    #[error("trust.policy[{index}]: trusted root {path}: {reason}")]
    TrustedRoot {
        /// Which table.
        index: usize,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// An identity is invalid.
    #[error("trust.policy[{index}].identity[{identity}]: {source}")]
    Identity {
        /// Which table.
        index: usize,
        /// Which identity.
        identity: usize,
        /// Why.
        #[source]
        source: IdentityError,
    },
    /// The notation trust store or identities are unusable.
    #[error("trust.policy[{index}]: {source}")]
    Notation {
        /// Which table.
        index: usize,
        /// Why.
        #[source]
        source: NotationTrustError,
    },
    /// A key file could not be read.
    #[error("trust.policy[{index}]: cannot read key file {path}: {source}")]
    Read {
        /// Which table.
        index: usize,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A key file holds no usable key.
    #[error("trust.policy[{index}]: key file {path}: {source}")]
    Key {
        /// Which table.
        index: usize,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: KeyError,
    },
}

/// A policy with its keys read.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The scope it covers.
    pub scope: String,
    /// What it does with unsigned images.
    pub mode: Mode,
    /// The keys it trusts.
    pub keys: Vec<PublicKey>,
    /// Whether robots may pull unsigned images.
    pub exempt_robots: bool,
    /// Whether tags may only be pushed onto verified manifests (enforce mode only).
    pub require_signature_for_tags: bool,
    /// Keyless trust (trusted root and identities), if configured.
    pub keyless: Option<Keyless>,
    /// The notation trust store and identities, if any.
    pub notation: Option<NotationTrust>,
    keyset: String,
}

impl Policy {
    /// An id of the policy's key set (`sha256:` over the sorted key ids): verdicts cached under
    /// one key set are not reused after a key is added or removed.
    pub fn keyset(&self) -> &str {
        &self.keyset
    }
}

/// Every policy, looked up by name.
#[derive(Debug, Clone, Default)]
pub struct Policies {
    policies: Vec<Policy>,
}

impl Policies {
    /// Reads the key files of `configs`, resolving relative paths against `base`.
    pub fn load(configs: &[PolicyConfig], base: &Path) -> Result<Self, PolicyError> {
        let mut policies = Vec::with_capacity(configs.len());
        for (index, config) in configs.iter().enumerate() {
            let scope = config.scope.trim_end_matches('/');
            check_scope(scope).map_err(|reason| PolicyError::Scope {
                index,
                scope: config.scope.clone(),
                reason,
            })?;
            if policies.iter().any(|p: &Policy| p.scope == scope) {
                return Err(PolicyError::Duplicate(scope.to_owned()));
            }
            if config.mode == Mode::Enforce
                && config.keys.is_empty()
                && config.trusted_root.is_none()
                && config.notation_trust_store.is_none()
            {
                return Err(PolicyError::NoKeys(index));
            }
            if config.require_signature_for_tags && config.mode != Mode::Enforce {
                return Err(PolicyError::TagsNeedEnforce(index));
            }
            let keyless = load_keyless(index, config, base)?;
            let mut keys = Vec::with_capacity(config.keys.len());
            for path in &config.keys {
                let path = base.join(path);
                let pem = std::fs::read_to_string(&path).map_err(|source| PolicyError::Read {
                    index,
                    path: path.clone(),
                    source,
                })?;
                let key = PublicKey::from_pem(&pem).map_err(|source| PolicyError::Key {
                    index,
                    path: path.clone(),
                    source,
                })?;
                keys.push(key);
            }
            let mut ids: Vec<String> = keys.iter().map(|k| k.id().to_string()).collect();
            // Keyless trust counts as keys: a new trusted root or identity list re-verifies.
            if let Some(k) = &keyless {
                ids.push(format!("trusted-root:{}", k.root.digest));
                ids.extend(
                    k.identities
                        .iter()
                        .map(|i| format!("identity:{}", i.describe())),
                );
            }
            // So does a notation trust store (its certificates and identities).
            let notation = notation_trust(config, base)
                .map_err(|source| PolicyError::Notation { index, source })?;
            ids.sort_unstable();
            ids.dedup();
            ids.extend(notation.as_ref().map(|n| format!("notation:{}", n.id())));
            let keyset = format!(
                "sha256:{}",
                hex::encode(Sha256::digest(ids.join(",").as_bytes()))
            );
            policies.push(Policy {
                scope: scope.to_owned(),
                mode: config.mode,
                keys,
                exempt_robots: config.exempt_robots,
                require_signature_for_tags: config.require_signature_for_tags,
                keyless,
                notation,
                keyset,
            });
        }
        Ok(Self { policies })
    }

    /// The policy for `name` (a repository, or an image reference without tag): the one with
    /// the longest scope covering it.
    pub fn for_name(&self, name: &str) -> Option<&Policy> {
        self.policies
            .iter()
            .filter(|p| covers(&p.scope, name))
            .max_by_key(|p| p.scope.len())
    }

    /// Whether no policy is configured.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// Every policy, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &Policy> {
        self.policies.iter()
    }
}

/// Reads a policy's trusted root and compiles its identities.
fn load_keyless(
    index: usize,
    config: &PolicyConfig,
    base: &Path,
) -> Result<Option<Keyless>, PolicyError> {
    let path = match (&config.trusted_root, config.identity.is_empty()) {
        (None, true) => return Ok(None),
        (Some(path), false) => base.join(path),
        _ => return Err(PolicyError::Keyless(index)),
    };
    let bad = |reason: String| PolicyError::TrustedRoot {
        index,
        path: path.clone(),
        reason,
    };
    let bytes = std::fs::read(&path).map_err(|e| bad(e.to_string()))?;
    if bytes.len() > MAX_TRUSTED_ROOT_BYTES {
        return Err(bad(format!("larger than {MAX_TRUSTED_ROOT_BYTES} bytes")));
    }
    let root = TrustedRoot::from_json(&bytes).map_err(|e: TrustedRootError| bad(e.to_string()))?;
    if root.certificate_authorities.is_empty() || root.tlogs.is_empty() {
        return Err(bad(
            "names no certificate authority or no transparency log".into()
        ));
    }
    let identities = config
        .identity
        .iter()
        .enumerate()
        .map(|(identity, c)| {
            Identity::new(c).map_err(|source| PolicyError::Identity {
                index,
                identity,
                source,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(Some(Keyless { root, identities }))
}

/// The notation trust of `config`: its store with its identities, both or neither.
fn notation_trust(
    config: &PolicyConfig,
    base: &Path,
) -> Result<Option<NotationTrust>, NotationTrustError> {
    match &config.notation_trust_store {
        Some(store) => {
            NotationTrust::load(&base.join(store), &config.notation_identities).map(Some)
        }
        None if config.notation_identities.is_empty() => Ok(None),
        None => Err(NotationTrustError::Identity {
            identity: config.notation_identities[0].clone(),
            reason: "notation_identities need a notation_trust_store".into(),
        }),
    }
}

fn check_scope(scope: &str) -> Result<(), &'static str> {
    if scope.is_empty() {
        return Err("a scope names a namespace or repository; it cannot be empty");
    }
    if scope
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err("empty, `.` and `..` path segments are not allowed");
    }
    // A port is the only `:` a name prefix has (`host:5000/team`); a tag or digest would make
    // the scope cover nothing.
    let rest = scope.split_once('/').map_or("", |(_, rest)| rest);
    if scope.contains(['@', '*', '?', ' ']) || rest.contains(':') {
        return Err("a scope is a name prefix, without tag, digest or wildcards");
    }
    Ok(())
}

/// Whether `scope` covers `name`: the same name, or a name under `scope/`.
fn covers(scope: &str, name: &str) -> bool {
    name.strip_prefix(scope)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(scope: &str, mode: Mode) -> PolicyConfig {
        PolicyConfig {
            scope: scope.into(),
            mode,
            keys: Vec::new(),
            exempt_robots: false,
            require_signature_for_tags: false,
            trusted_root: None,
            identity: Vec::new(),
            notation_trust_store: None,
            notation_identities: Vec::new(),
        }
    }

    #[test]
    fn the_most_specific_scope_applies() {
        let p = Policies::load(
            &[config("team", Mode::Audit), config("team/app", Mode::Audit)],
            Path::new("/"),
        )
        .expect("policies");
        assert_eq!(
            p.for_name("team/app").map(|p| p.scope.as_str()),
            Some("team/app")
        );
        assert_eq!(
            p.for_name("team/app/sub").map(|p| p.scope.as_str()),
            Some("team/app")
        );
        assert_eq!(
            p.for_name("team/apps").map(|p| p.scope.as_str()),
            Some("team")
        );
        assert_eq!(p.for_name("team").map(|p| p.scope.as_str()), Some("team"));
        assert!(p.for_name("teams/app").is_none());
    }

    #[test]
    fn runtime_scopes_name_a_registry() {
        let p = Policies::load(
            &[config("registry.example.com:5000/team", Mode::Audit)],
            Path::new("/"),
        )
        .expect("policies");
        assert!(p.for_name("registry.example.com:5000/team/app").is_some());
        assert!(p.for_name("registry.example.com/team/app").is_none());
    }

    #[test]
    fn keyless_trust_needs_a_usable_root_and_identities() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("empty.json"), "{}").expect("write");
        let identity = IdentityConfig {
            issuer: "https://issuer.example".into(),
            subject: Some("dev@example.com".into()),
            subject_regex: None,
        };
        let mut root_only = config("team", Mode::Enforce);
        root_only.trusted_root = Some("empty.json".into());
        let mut identity_only = config("team", Mode::Enforce);
        identity_only.identity.push(identity.clone());
        let mut missing = root_only.clone();
        missing.identity.push(identity.clone());
        missing.trusted_root = Some("missing.json".into());
        let mut empty = root_only.clone();
        empty.identity.push(identity);
        for (bad, expect) in [
            (root_only, "needs both trusted_root"),
            (identity_only, "needs at least one key, a trusted_root"),
            (missing, "missing.json"),
            (empty, "names no certificate authority"),
        ] {
            let err = Policies::load(&[bad], dir.path()).expect_err("refused");
            assert!(err.to_string().contains(expect), "{err}");
        }
    }

    #[test]
    fn bad_policies_are_refused_with_their_index() {
        for (bad, expect) in [
            (vec![config("", Mode::Audit)], "invalid scope"),
            (vec![config("team/../x", Mode::Audit)], "invalid scope"),
            (vec![config("team/*", Mode::Audit)], "invalid scope"),
            (
                vec![config("team", Mode::Audit), config("team/", Mode::Audit)],
                "twice",
            ),
            (
                vec![config("team", Mode::Enforce)],
                "needs at least one key",
            ),
            (
                vec![PolicyConfig {
                    require_signature_for_tags: true,
                    ..config("team", Mode::Audit)
                }],
                "require_signature_for_tags needs mode = \"enforce\"",
            ),
        ] {
            let err = Policies::load(&bad, Path::new("/")).expect_err("refused");
            assert!(err.to_string().contains(expect), "{err}");
        }
        let mut identities_alone = config("team", Mode::Audit);
        identities_alone.notation_identities = vec!["*".into()];
        let err = Policies::load(&[identities_alone], Path::new("/")).expect_err("refused");
        assert!(
            err.to_string().contains("need a notation_trust_store"),
            "{err}"
        );
        let mut missing = config("team", Mode::Enforce);
        missing.keys.push("does-not-exist.pub".into());
        let err = Policies::load(&[missing], Path::new("/nowhere")).expect_err("refused");
        assert!(
            err.to_string().contains("/nowhere/does-not-exist.pub"),
            "{err}"
        );
    }
}
