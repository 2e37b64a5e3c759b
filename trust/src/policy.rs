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

use crate::key::{KeyError, PublicKey};
use crate::notation::{NotationTrust, NotationTrustError};

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
        "trust.policy[{0}]: mode = \"enforce\" needs at least one key or a notation trust store"
    )]
    NoKeys(usize),
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
                && config.notation_trust_store.is_none()
            {
                return Err(PolicyError::NoKeys(index));
            }
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
            let notation = notation_trust(config, base)
                .map_err(|source| PolicyError::Notation { index, source })?;
            let mut ids: Vec<&str> = keys.iter().map(|k| k.id().as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            let notation_id = notation.as_ref().map(|n| format!("notation:{}", n.id()));
            ids.extend(notation_id.as_deref());
            let keyset = format!(
                "sha256:{}",
                hex::encode(Sha256::digest(ids.join(",").as_bytes()))
            );
            policies.push(Policy {
                scope: scope.to_owned(),
                mode: config.mode,
                keys,
                exempt_robots: config.exempt_robots,
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
