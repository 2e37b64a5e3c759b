//! Vulnerability policies in the hub: which findings a repository accepts, and refusing pulls
//! of images with findings at or above a policy's `prevent_vulnerable` threshold.
//!
//! Two allowlists apply together in a repository: the entries of the configuration's
//! `[[scan.policy]]` table covering it (the most specific scope, fixed while the server runs)
//! and the entries the organization owning its namespace keeps in SQL (the API's
//! `/api/v1/orgs/{org}/cve-allowlist`). Owners add to the configuration's entries; they cannot
//! remove them. The threshold comes from the configuration only.
//!
//! What is refused: a manifest `GET` whose stored findings (see [`super::findings`]) hold a
//! finding at or above the threshold that no live entry accepts, with `403 DENIED` naming the
//! counts and the policy; an index when any platform manifest it lists (up to
//! [`MAX_PLATFORMS`]) is refused. `HEAD` is answered, as for signature policies. Manifests not
//! yet scanned or matched, and artifacts (which are never inventoried), are served: a policy
//! refuses what berth knows to be vulnerable, it does not hold pulls until a scan ends.
//!
//! Cost: an admission is remembered for [`super::admissions::TTL`] (5 s) in the same cache as
//! signature admissions, keyed by the policy's scope, so a hot image costs no query; on a
//! miss, three indexed reads per manifest (its scan row, its findings, the organization's
//! list). Refusals are never remembered, so an entry added to an allowlist admits the next
//! pull at once; an advisory import, a finding re-matched or an entry expiring refuses within
//! the TTL.
//!
//! Depends on `meta` (findings, organization lists) and `berth_scan::policy`; never on `blob`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use berth_scan::matching::{AllowEntry, Allowlist};
use berth_scan::osv::Level;
use berth_scan::policy::{AllowItem, Counts, Judgement, Mark, Policies, Policy, judge};
use serde::Serialize;

use super::findings::{FindingFilter, ManifestFindings, level_of};
use super::{Registry, RegistryError, RegistryResult, StoredManifest};
use crate::domain::{Digest, Reference, RepoName};
use crate::meta::cve_allowlist::{AllowlistSet, OrgAllowlist};
use crate::meta::events::{Action, Event, Origin};
use crate::meta::findings::StoredFinding;
use crate::meta::now_ms;

/// Platform manifests of an index checked at most; an index listing more is judged by its
/// first ones (no image has that many platforms; the bound keeps one pull's work bounded).
pub const MAX_PLATFORMS: usize = 64;
/// Entries an organization's list may hold.
pub const MAX_ORG_ENTRIES: usize = 1000;

impl berth_scan::policy::Judged for StoredFinding {
    fn advisory(&self) -> &str {
        &self.advisory
    }
    fn aliases(&self) -> &[String] {
        &self.aliases
    }
    fn level(&self) -> Level {
        level_of(&self.severity)
    }
}

/// The registry's vulnerability policies, and the pulls they refused.
#[derive(Debug, Clone, Default)]
pub struct VulnPolicies(Arc<Policies>, Arc<AtomicU64>);

impl VulnPolicies {
    /// Policies read from `[[scan.policy]]`.
    pub fn new(policies: Policies) -> Self {
        Self(Arc::new(policies), Arc::default())
    }

    /// The policy covering `repo`.
    pub fn for_repository(&self, repo: &str) -> Option<&Policy> {
        self.0.for_name(repo)
    }

    /// Every policy, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &Policy> {
        self.0.iter()
    }
}

/// Where an allowlist entry comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntrySource {
    /// The configuration's `[[scan.policy]]` table.
    Instance,
    /// The organization's own list.
    Org,
}

/// The allowlist in force in a repository: the configuration's entries, then the
/// organization's.
#[derive(Debug, Clone, Default)]
pub struct RepoAllowlist {
    /// The policy's scope, if a table covers the repository.
    pub scope: Option<String>,
    /// Its threshold.
    pub threshold: Option<berth_scan::matching::Threshold>,
    /// The entries.
    pub list: Allowlist,
    /// How many of the first entries are the configuration's.
    pub instance: usize,
}

impl RepoAllowlist {
    fn source(&self, i: usize) -> EntrySource {
        if i < self.instance {
            EntrySource::Instance
        } else {
            EntrySource::Org
        }
    }

    /// Entry `i` as the API shows it.
    pub fn shown(&self, i: usize) -> Option<ShownEntry> {
        let e = self.list.entries.get(i)?;
        Some(ShownEntry::of(e, self.source(i)))
    }

    /// The entries a finding marked `mark` is shown with: the one accepting it, or the
    /// expired one naming it.
    fn entries_of(&self, mark: Mark) -> (Option<ShownEntry>, Option<ShownEntry>) {
        match mark {
            Mark::Open => (None, None),
            Mark::Allowlisted(i) => (self.shown(i), None),
            Mark::Expired(i) => (None, self.shown(i)),
        }
    }

    /// The covering policy as shown, with `verdict`'s refusal; `None` without a policy.
    fn policy_view(&self, verdict: &Judgement) -> Option<PolicyView> {
        self.scope.clone().map(|scope| PolicyView {
            scope,
            prevent_vulnerable: self.threshold.map(|t| t.to_string()),
            refused: verdict.refusal().map(|r| r.to_string()),
        })
    }
}

/// An allowlist entry as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShownEntry {
    /// The advisory id or alias it names.
    pub id: String,
    /// When it expires, RFC 3339 UTC; absent: never.
    pub expires: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// Whose entry it is.
    pub source: EntrySource,
}

impl ShownEntry {
    fn of(e: &AllowEntry, source: EntrySource) -> Self {
        Self {
            id: e.id.clone(),
            expires: e.expires.map(berth_scan::policy::rfc3339),
            reason: e.reason.clone(),
            source,
        }
    }
}

/// A manifest's findings with what the allowlist says of each.
#[derive(Debug, Clone)]
pub struct JudgedFindings {
    /// The findings as [`Registry::findings_for`] gives them, filtered.
    pub found: ManifestFindings,
    /// For each finding kept, the entry accepting it, if any.
    pub allowlisted: Vec<Option<ShownEntry>>,
    /// For each finding kept and not accepted, the expired entry naming it, if any.
    pub expired: Vec<Option<ShownEntry>>,
    /// Over every finding (not only those the filter kept): the ones not accepted.
    pub open: Counts,
    /// Over every finding: the ones accepted.
    pub allowlisted_total: u64,
    /// The policy, its threshold and whether a pull would be refused (and why).
    pub policy: Option<PolicyView>,
}

/// What the allowlist says of one finding on a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowMark {
    /// No entry names it.
    Open,
    /// This entry accepts it.
    Accepted(ShownEntry),
    /// Only this expired entry names it: it counts again.
    Expired(ShownEntry),
}

/// What the allowlist and the policy say of a page of a manifest's findings.
#[derive(Debug, Clone, Default)]
pub struct PageMarks {
    /// Per finding of the page, in its order.
    pub rows: Vec<RowMark>,
    /// Over all the manifest's findings: how many are accepted.
    pub allowlisted_total: u64,
    /// The policy covering the repository, and why a pull would be refused, if it would.
    pub policy: Option<PolicyView>,
}

/// The policy covering a repository, as the findings API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyView {
    /// Its scope.
    pub scope: String,
    /// Its threshold, if it refuses anything.
    pub prevent_vulnerable: Option<String>,
    /// Why a pull of this manifest is refused, if it is.
    pub refused: Option<String>,
}

/// An organization's list, with the configuration's entries that apply in it.
#[derive(Debug, Clone, Serialize)]
pub struct OrgAllowlistView {
    /// The organization.
    pub org: String,
    /// Its own entries, as given.
    pub entries: Vec<AllowItem>,
    /// Who set them last, and when (Unix ms).
    pub updated_by: Option<String>,
    /// When, Unix ms.
    pub updated_at: Option<i64>,
    /// The configuration's tables over the organization or part of it, with their entries.
    pub instance_policies: Vec<InstancePolicyView>,
}

/// A configuration table that applies in an organization, as its owners see it.
#[derive(Debug, Clone, Serialize)]
pub struct InstancePolicyView {
    /// Its scope.
    pub scope: String,
    /// Its threshold, if it refuses pulls.
    pub prevent_vulnerable: Option<String>,
    /// Its entries.
    pub entries: Vec<ShownEntry>,
}

/// Why an organization's list was not set.
#[derive(Debug, thiserror::Error)]
pub enum AllowlistError {
    /// An entry is invalid, or there are too many.
    #[error("{0}")]
    Invalid(String),
    /// No such organization.
    #[error("{0}")]
    NotFound(String),
    /// The registry failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl From<crate::meta::MetaError> for AllowlistError {
    fn from(e: crate::meta::MetaError) -> Self {
        Self::Registry(e.into())
    }
}

/// The platform manifests an index lists, up to [`MAX_PLATFORMS`]; none for anything else.
fn platforms(content: &[u8]) -> Vec<Digest> {
    #[derive(serde::Deserialize)]
    struct Index {
        #[serde(default)]
        manifests: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        digest: String,
    }
    serde_json::from_slice::<Index>(content)
        .map(|i| {
            i.manifests
                .iter()
                .take(MAX_PLATFORMS)
                .filter_map(|m| Digest::parse(&m.digest).ok())
                .collect()
        })
        .unwrap_or_default()
}

fn now_secs() -> i64 {
    now_ms() / 1000
}

impl Registry {
    /// Pulls the vulnerability policies refused since this process started, for `/metrics`.
    pub fn vuln_refused_pulls(&self) -> u64 {
        self.limits.vuln.1.load(Ordering::Relaxed)
    }

    /// Serves a manifest pull as the signature policies do ([`Registry::pull_manifest_trusted`]),
    /// then refuses a `GET` when the vulnerability policy covering `repo` has a threshold and
    /// the manifest's stored findings (or one of an index's platforms') hold an unaccepted
    /// finding at or above it (see the module doc).
    pub async fn pull_manifest_as(
        &self,
        repo: &RepoName,
        reference: &Reference,
        content: bool,
        by: &Origin,
    ) -> RegistryResult<StoredManifest> {
        let m = self
            .pull_manifest_trusted(repo, reference, content, by)
            .await?;
        if content {
            self.admit_vulnerable(repo, &m, by).await?;
        }
        Ok(m)
    }

    /// Refuses `m` if the policy covering `repo` forbids it; remembers an admission.
    async fn admit_vulnerable(
        &self,
        repo: &RepoName,
        m: &StoredManifest,
        by: &Origin,
    ) -> RegistryResult<()> {
        let Some(policy) = self
            .limits
            .vuln
            .for_repository(repo.as_str())
            .filter(|p| p.prevent_vulnerable.is_some() && !(p.exempt_robots && by.is_robot()))
        else {
            return Ok(());
        };
        // Scopes are repository names, which never look like a signature key set (`sha256:`).
        if self.admissions.admitted(repo, &m.digest, &policy.scope) {
            return Ok(());
        }
        let allowlist = self.allowlist_in(repo).await?;
        let now = now_secs();
        let mut manifests = vec![m.digest.clone()];
        manifests.extend(platforms(&m.content));
        for digest in &manifests {
            let findings = self.stored_findings(repo, digest).await?;
            let verdict = judge(&findings, &allowlist.list, policy.prevent_vulnerable, now);
            if let Some(refusal) = verdict.refusal() {
                self.limits.vuln.1.fetch_add(1, Ordering::Relaxed);
                let which = if digest == &m.digest {
                    String::new()
                } else {
                    format!(" in platform manifest {digest}")
                };
                return Err(RegistryError::Denied(format!(
                    "pull refused by vulnerability policy {:?}: {refusal}{which}",
                    policy.scope
                )));
            }
        }
        self.admissions.remember(repo, &m.digest, &policy.scope);
        Ok(())
    }

    /// The stored findings of `digest` in `repo`: none when it was never inventoried.
    async fn stored_findings(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> RegistryResult<Vec<StoredFinding>> {
        let Some(id) = self
            .meta
            .scan_manifest_id(repo.as_str(), &digest.to_string())
            .await?
        else {
            return Ok(Vec::new());
        };
        Ok(self.meta.findings_of(id).await?)
    }

    /// The allowlist in force in `repo`: the configuration's entries, then its organization's.
    pub async fn allowlist_in(&self, repo: &RepoName) -> RegistryResult<RepoAllowlist> {
        let policy = self.limits.vuln.for_repository(repo.as_str());
        let mut list = policy.map(|p| p.allowlist.clone()).unwrap_or_default();
        let instance = list.entries.len();
        if let Some(own) = self.meta.org_cve_allowlist(repo.namespace()).await? {
            // Stored entries were checked when set; one that no longer reads is left out.
            list.entries
                .extend(own.entries.iter().filter_map(|i| i.entry().ok()));
        }
        Ok(RepoAllowlist {
            scope: policy.map(|p| p.scope.clone()),
            threshold: policy.and_then(|p| p.prevent_vulnerable),
            list,
            instance,
        })
    }

    /// The findings of the manifest `reference` names in `repo`, each marked with the entry
    /// accepting it, and the counts of the unaccepted ones beside the totals.
    pub async fn judged_findings(
        &self,
        repo: &RepoName,
        reference: &Reference,
        filter: FindingFilter,
    ) -> RegistryResult<JudgedFindings> {
        let mut found = self
            .findings_for(repo, reference, FindingFilter::default())
            .await?;
        let allowlist = self.allowlist_in(repo).await?;
        let now = now_secs();
        let verdict: Judgement = judge(&found.findings, &allowlist.list, allowlist.threshold, now);
        let policy = allowlist.policy_view(&verdict);
        let mut allowlisted = Vec::new();
        let mut expired = Vec::new();
        let mut kept = Vec::new();
        for (f, mark) in std::mem::take(&mut found.findings)
            .into_iter()
            .zip(&verdict.marks)
        {
            if !filter.keeps(&f) {
                continue;
            }
            let (a, x) = allowlist.entries_of(*mark);
            allowlisted.push(a);
            expired.push(x);
            kept.push(f);
        }
        found.findings = kept;
        Ok(JudgedFindings {
            found,
            allowlisted,
            expired,
            open: verdict.open,
            allowlisted_total: verdict.allowlisted,
            policy,
        })
    }

    /// What the allowlist in force in `repo` says of `page`, some of the findings of the
    /// manifest whose scan row is `scan_id`; with a policy, or any entry, all of its findings
    /// are judged too (for the totals and the pull verdict).
    pub(super) async fn page_marks(
        &self,
        repo: &RepoName,
        scan_id: i64,
        page: &[StoredFinding],
    ) -> RegistryResult<PageMarks> {
        let allowlist = self.allowlist_in(repo).await?;
        if allowlist.list.entries.is_empty() && allowlist.scope.is_none() {
            return Ok(PageMarks {
                rows: vec![RowMark::Open; page.len()],
                ..PageMarks::default()
            });
        }
        let now = now_secs();
        let rows = judge(page, &allowlist.list, None, now)
            .marks
            .iter()
            .map(|mark| match allowlist.entries_of(*mark) {
                (Some(accepting), _) => RowMark::Accepted(accepting),
                (None, Some(expired)) => RowMark::Expired(expired),
                (None, None) => RowMark::Open,
            })
            .collect();
        let all = self.meta.findings_of(scan_id).await?;
        let verdict = judge(&all, &allowlist.list, allowlist.threshold, now);
        Ok(PageMarks {
            rows,
            allowlisted_total: verdict.allowlisted,
            policy: allowlist.policy_view(&verdict),
        })
    }

    /// Organization `org`'s own list, and the configuration's tables that apply in it.
    pub async fn org_cve_allowlist(&self, org: &str) -> RegistryResult<OrgAllowlistView> {
        let own = self.meta.org_cve_allowlist(org).await?;
        let instance_policies = self
            .limits
            .vuln
            .iter()
            .filter(|p| {
                berth_scan::policy::covers(&p.scope, org)
                    || berth_scan::policy::covers(org, &p.scope)
            })
            .map(|p| InstancePolicyView {
                scope: p.scope.clone(),
                prevent_vulnerable: p.prevent_vulnerable.map(|t| t.to_string()),
                entries: p
                    .allowlist
                    .entries
                    .iter()
                    .map(|e| ShownEntry::of(e, EntrySource::Instance))
                    .collect(),
            })
            .collect();
        Ok(OrgAllowlistView {
            org: org.to_owned(),
            entries: own.as_ref().map(|o| o.entries.clone()).unwrap_or_default(),
            updated_by: own.as_ref().map(|o| o.updated_by.clone()),
            updated_at: own.map(|o| o.updated_at),
            instance_policies,
        })
    }

    /// Replaces organization `org`'s list (audited with the old and the new entries); the
    /// next pull judges with it.
    pub async fn set_org_cve_allowlist(
        &self,
        org: &str,
        entries: &[AllowItem],
        by: &Origin,
    ) -> Result<OrgAllowlist, AllowlistError> {
        if entries.len() > MAX_ORG_ENTRIES {
            return Err(AllowlistError::Invalid(format!(
                "an organization's allowlist may hold at most {MAX_ORG_ENTRIES} entries"
            )));
        }
        for item in entries {
            item.entry()
                .map_err(|e| AllowlistError::Invalid(e.to_string()))?;
        }
        let event = Event::new(Action::CveAllowlistSet, by).target(org);
        match self
            .meta
            .set_org_cve_allowlist(org, entries, &event)
            .await?
        {
            AllowlistSet::Set { new, .. } => Ok(new),
            AllowlistSet::NoOrganization => Err(AllowlistError::NotFound(format!(
                "organization {org} not found"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_lists_its_platforms_up_to_the_bound() {
        let d = |i: usize| format!("sha256:{i:064x}");
        let index = serde_json::json!({
            "manifests": (0..MAX_PLATFORMS + 3).map(|i| serde_json::json!({"digest": d(i)})).collect::<Vec<_>>()
        });
        let listed = platforms(index.to_string().as_bytes());
        assert_eq!(listed.len(), MAX_PLATFORMS);
        assert_eq!(listed[1].to_string(), d(1));
        assert!(platforms(br#"{"layers": []}"#).is_empty());
        assert!(platforms(b"not json").is_empty());
    }
}
