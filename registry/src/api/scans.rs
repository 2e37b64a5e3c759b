//! The JSON body of `GET /api/v1/sbom/REPO?reference=R` (the handler is in [`super::hub`]).

use serde_json::{Value, json};

use crate::domain::RepoName;
use crate::meta::scans::ScanStatus;
use crate::service::sbom::ManifestSbom;

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
    }
    body
}
