//! The JSON bodies of `GET /api/v1/sbom/REPO?reference=R` and `GET /api/v1/findings/REPO`
//! (the handlers are in [`super::hub`]).

use serde_json::{Value, json};

use crate::domain::RepoName;
use crate::meta::findings::MatchRecord;
use crate::meta::scans::ScanStatus;
use crate::service::sbom::ManifestSbom;
use crate::service::vuln_policy::JudgedFindings;

/// The manifest's inventory as JSON.
pub(super) fn render(repo: &RepoName, found: &ManifestSbom) -> Value {
    let mut body = json!({
        "repository": repo.as_str(),
        "digest": found.digest.to_string(),
    });
    let Some(scan) = &found.scan else {
        body["status"] = json!("not_scanned");
        return body;
    };
    body["status"] = json!(match scan.status {
        ScanStatus::Queued | ScanStatus::Running => "pending",
        ScanStatus::Done => "done",
        ScanStatus::Failed => "failed",
    });
    body["job"] = json!(scan.status);
    body["attempts"] = json!(scan.attempts);
    body["queued_at"] = json!(scan.queued_at);
    body["finished_at"] = json!(scan.finished_at);
    body["duration_ms"] = json!(scan.duration_ms);
    body["reason"] = json!(scan.reason);
    if scan.status == ScanStatus::Done {
        body["os"] = json!(scan.os);
        body["problems"] = scan
            .problems
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok())
            .unwrap_or_else(|| json!([]));
        body["sbom"] = json!(scan.sbom_digest);
        body["packages"] = json!(scan.packages);
        body["vulnerabilities"] = matched(found.matched.as_ref());
    }
    body
}

/// A match's summary: `{generation, matched_at, counts}`, or null before the first.
fn matched(m: Option<&MatchRecord>) -> Value {
    m.map_or(Value::Null, |m| {
        json!({
            "generation": m.generation,
            "matched_at": m.matched_at,
            "counts": m.summary,
        })
    })
}

/// The manifest's findings as JSON: each with the allowlist entry accepting it
/// (`allowlisted`, null when none) or the expired one that no longer does
/// (`allowlist_expired`); `matched.unallowlisted` counts the findings no entry accepts, beside
/// `matched.counts` (all of them); `policy` is the vulnerability policy covering the
/// repository and whether it refuses a pull.
pub(super) fn render_findings(repo: &RepoName, judged: &JudgedFindings) -> Value {
    let found = &judged.found;
    let findings: Vec<Value> = found
        .findings
        .iter()
        .zip(judged.allowlisted.iter().zip(&judged.expired))
        .map(|(f, (allowlisted, expired))| {
            let mut v = json!(f);
            v["allowlisted"] = json!(allowlisted);
            if expired.is_some() {
                v["allowlist_expired"] = json!(expired);
            }
            v
        })
        .collect();
    let mut matched = matched(found.matched.as_ref());
    if !matched.is_null() {
        matched["unallowlisted"] = json!(judged.open);
        matched["allowlisted"] = json!(judged.allowlisted_total);
    }
    json!({
        "repository": repo.as_str(),
        "digest": found.digest.to_string(),
        "status": found.status.as_str(),
        "matched": matched,
        "policy": judged.policy,
        "findings": findings,
    })
}
