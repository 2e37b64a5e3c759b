//! Vulnerability policies on the machine that runs containers: the `[[scan.policy]]` tables of
//! the local policy file (`/etc/berth/policy.toml`, beside its `[[trust.policy]]` tables; scopes
//! name a registry: `registry.example.com/team`), and the inventory of a stored image that
//! `berth run` and `berth pull` match against the advisory database before an image covered
//! by a `prevent_vulnerable` policy is used.
//!
//! The inventory is read from the image's stored layer blobs by `berth_scan`'s walker, as
//! `berth scan` reads a local image; matching needs the advisory database, which the `berth`
//! binary opens through its configuration. The verdict is [`berth_scan::policy::judge`]'s, the
//! same rule the hub applies to pulls.

use std::path::{Path, PathBuf};

use berth_scan::inventory::{Inventory, LayerBlob, Limits, Walker, default_cataloguers};
use berth_scan::matching::Finding;
use berth_scan::policy::{Policies, Policy, PolicyConfig, judge};

use crate::store::{ImageRecord, Store, StoreError};
use crate::verify::DEFAULT_POLICY_FILE;

/// Why a policy could not be read, or an image may not be used.
#[derive(Debug, thiserror::Error)]
pub enum VulnError {
    /// The policy file is unreadable or invalid.
    #[error("policy file {path}: {reason}")]
    Policy {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Unaccepted findings at or above the threshold.
    #[error(
        "{image} is refused by vulnerability policy {scope:?}: {why} (--insecure-skip-verify uses it anyway)"
    )]
    Refused {
        /// The image.
        image: String,
        /// The policy's scope.
        scope: String,
        /// The counts.
        why: String,
    },
    /// The stored image could not be read.
    #[error("cannot read the stored image {0}")]
    Store(String, #[source] StoreError),
    /// Its manifest is not JSON.
    #[error("the stored manifest of {0} is not valid JSON")]
    Manifest(String),
}

#[derive(serde::Deserialize, Default)]
struct PolicyFile {
    #[serde(default)]
    scan: ScanSection,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ScanSection {
    #[serde(default)]
    policy: Vec<PolicyConfig>,
}

/// The local vulnerability policies, or none.
#[derive(Debug, Clone, Default)]
pub struct ScanCheck {
    policies: Policies,
    skip: bool,
}

impl ScanCheck {
    /// Reads the `[[scan.policy]]` tables of the policy file `path`, or of
    /// [`DEFAULT_POLICY_FILE`] if it exists when `path` is `None`. With `skip`
    /// (`--insecure-skip-verify`) nothing is refused, and what would have been is said on
    /// standard error.
    pub fn load(path: Option<&Path>, skip: bool) -> Result<Self, VulnError> {
        let path = match path {
            Some(p) => p.to_owned(),
            None if Path::new(DEFAULT_POLICY_FILE).exists() => PathBuf::from(DEFAULT_POLICY_FILE),
            None => return Ok(Self::default()),
        };
        let bad = |reason: String| VulnError::Policy {
            path: path.clone(),
            reason,
        };
        let text = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
        // The trust section is read (and checked) by `verify`; only `scan` is read here.
        let file: PolicyFile = toml::from_str(&text).map_err(|e| bad(e.message().to_owned()))?;
        let policies = Policies::load(&file.scan.policy).map_err(|e| bad(e.to_string()))?;
        Ok(Self { policies, skip })
    }

    /// The policy with a `prevent_vulnerable` threshold covering a stored image, if any.
    /// Images made here (`berth commit`) have no registry a scope could name.
    pub fn enforcing(&self, record: &ImageRecord) -> Option<&Policy> {
        if record.local {
            return None;
        }
        self.policies
            .for_name(record.source.as_deref()?)
            .filter(|p| p.prevent_vulnerable.is_some())
    }

    /// Judges `findings` of image `image` under `policy` at `now` (Unix seconds): `Ok` when
    /// nothing unaccepted meets the threshold, or `--insecure-skip-verify` was given (then
    /// said on standard error).
    pub fn judge(
        &self,
        image: &str,
        policy: &Policy,
        findings: &[Finding],
        now: i64,
    ) -> Result<(), VulnError> {
        let verdict = judge(findings, &policy.allowlist, policy.prevent_vulnerable, now);
        for (f, mark) in findings.iter().zip(&verdict.marks) {
            if let berth_scan::policy::Mark::Expired(i) = mark {
                let e = &policy.allowlist.entries[*i];
                eprintln!(
                    "warning: allowlist entry {} of {:?} expired at {}: {} counts again",
                    e.id,
                    policy.scope,
                    e.expires
                        .map(berth_scan::policy::rfc3339)
                        .unwrap_or_default(),
                    f.advisory
                );
            }
        }
        let Some(refusal) = verdict.refusal() else {
            return Ok(());
        };
        if self.skip {
            eprintln!(
                "WARNING: {image}: {refusal}; vulnerability policy {:?} refuses it, but --insecure-skip-verify was given",
                policy.scope
            );
            return Ok(());
        }
        Err(VulnError::Refused {
            image: image.to_owned(),
            scope: policy.scope.clone(),
            why: refusal.to_string(),
        })
    }
}

#[derive(serde::Deserialize)]
struct Manifest {
    #[serde(default)]
    layers: Vec<Layer>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Layer {
    #[serde(default)]
    media_type: String,
    digest: String,
}

/// The packages of stored image `name` (record `record`), walked from its layer blobs with
/// whiteouts applied. A layer that cannot be opened is reported in the inventory's errors.
pub fn inventory(store: &Store, name: &str, record: &ImageRecord) -> Result<Inventory, VulnError> {
    let bytes = store
        .read_blob(&record.manifest)
        .map_err(|e| VulnError::Store(name.to_owned(), e))?;
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|_| VulnError::Manifest(name.to_owned()))?;
    let cataloguers = default_cataloguers();
    let blobs = manifest
        .layers
        .iter()
        .map(|layer| LayerBlob {
            media_type: layer.media_type.clone(),
            open: Box::new(move || {
                let path = store
                    .blob_path(&layer.digest)
                    .map_err(|e| format!("not read: {e}"))?;
                let file = std::fs::File::open(&path)
                    .map_err(|e| format!("not read: {}: {e}", path.display()))?;
                Ok(Box::new(file) as Box<dyn std::io::Read + Send>)
            }),
        })
        .collect();
    let mut walker = Walker::new(&cataloguers, Limits::default());
    walker.add_layers(blobs);
    Ok(walker.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_scan::osv::Level;

    fn finding(advisory: &str, severity: Level) -> Finding {
        Finding {
            package: "rsa".into(),
            kind: berth_scan::inventory::PackageType::Cargo,
            installed: "0.9.6".into(),
            ecosystem: "crates.io".into(),
            matched_name: "rsa".into(),
            advisory: advisory.into(),
            aliases: vec!["CVE-2099-0001".into()],
            summary: None,
            severity,
            score: None,
            fixed: None,
            fixed_versions: Vec::new(),
            fixable: false,
            paths: vec!["/app/Cargo.lock".into()],
        }
    }

    fn record(source: &str) -> ImageRecord {
        ImageRecord {
            manifest: "sha256:00".into(),
            index: None,
            config: "sha256:01".into(),
            layers: Vec::new(),
            size: 0,
            stored_at: 0,
            source: Some(source.into()),
            verified: None,
            local: false,
        }
    }

    #[test]
    fn the_policy_file_scopes_registries_and_the_verdict_names_the_counts() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("policy.toml");
        std::fs::write(
            &file,
            r#"
[[trust.policy]]
scope = "reg.example:5000/other"

[[scan.policy]]
scope = "reg.example:5000/team"
prevent_vulnerable = "high"

[[scan.policy]]
scope = "reg.example:5000/team/ok"
allowlist = [{ id = "CVE-2099-0001", expires = 2999-01-01 }]
prevent_vulnerable = "high"
"#,
        )
        .expect("write");
        let check = ScanCheck::load(Some(&file), false).expect("loads");
        assert!(
            check
                .enforcing(&record("reg.example:5000/other/app"))
                .is_none()
        );
        let mut local = record("reg.example:5000/team/app");
        local.local = true;
        assert!(check.enforcing(&local).is_none());
        let team = check
            .enforcing(&record("reg.example:5000/team/app"))
            .expect("covered");
        let found = [finding("TEST-1", Level::Critical)];
        let err = check
            .judge("img", team, &found, 0)
            .expect_err("refused")
            .to_string();
        assert!(
            err.contains("vulnerability policy \"reg.example:5000/team\": 1 critical not allowlisted (threshold high)"),
            "{err}"
        );
        let ok = check
            .enforcing(&record("reg.example:5000/team/ok/app"))
            .expect("covered");
        check
            .judge("img", ok, &found, 0)
            .expect("allowlisted by alias");
        let skipping = ScanCheck::load(Some(&file), true).expect("loads");
        skipping
            .judge("img", team, &found, 0)
            .expect("--insecure-skip-verify");

        std::fs::write(
            &file,
            "[[scan.policy]]\nscope = \"x\"\nprevent_vulnerable = \"dire\"\n",
        )
        .expect("write");
        let err = ScanCheck::load(Some(&file), false).expect_err("bad");
        assert!(err.to_string().contains("scan.policy[0]"), "{err}");
    }
}
