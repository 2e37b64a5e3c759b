//! The scan queue on SQLite: what a push queues, claims and leases, bounded attempts.

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::blob::BlobStore;
use crate::domain::Tag;
use crate::meta::events::Origin;
use crate::meta::scans::ScanStatus;
use crate::meta::{MetaStore, SqliteStore};
use crate::service::Limits;

const LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

async fn registry(dir: &std::path::Path) -> Registry {
    let meta: Arc<dyn MetaStore> = Arc::new(
        SqliteStore::open(&dir.join("meta.db"), 2, true)
            .await
            .expect("db"),
    );
    let blobs = BlobStore::local(&dir.join("blobs")).expect("blobs");
    let limits = Limits {
        scan: ScanSettings {
            enabled: true,
            ..ScanSettings::default()
        },
        ..Limits::default()
    };
    Registry::new(meta, blobs, limits)
}

fn by() -> Origin {
    Origin::system("test")
}

async fn blob(r: &Registry, repo: &RepoName, data: &[u8]) -> serde_json::Value {
    let digest = Digest::sha256_of(data);
    let body = data.to_vec();
    r.upload_monolithic(
        repo,
        &digest,
        Box::pin(futures_util::stream::once(
            async move { Ok(Bytes::from(body)) },
        )),
    )
    .await
    .expect("blob");
    json!({"digest": digest.to_string(), "size": data.len()})
}

/// Pushes a manifest; returns its digest.
async fn manifest(r: &Registry, repo: &RepoName, tag: &str, m: &serde_json::Value) -> Digest {
    let bytes = Bytes::from(m.to_string());
    let media_type = m["mediaType"].as_str().expect("mediaType").to_owned();
    r.put_manifest(
        repo,
        &Reference::Tag(Tag::parse(tag).expect("tag")),
        Some(&media_type),
        bytes,
        Vec::new(),
        &by(),
    )
    .await
    .expect("manifest")
    .digest
}

/// An image with one layer (its bytes `seed`).
async fn image(
    r: &Registry,
    repo: &RepoName,
    tag: &str,
    seed: &str,
) -> (Digest, serde_json::Value) {
    let mut config = blob(r, repo, format!("{{\"seed\":\"{seed}\"}}").as_bytes()).await;
    config["mediaType"] = json!("application/vnd.oci.image.config.v1+json");
    let mut layer = blob(r, repo, seed.as_bytes()).await;
    layer["mediaType"] = json!(LAYER);
    let m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST_TYPE,
        "config": config,
        "layers": [layer],
    });
    let digest = manifest(r, repo, tag, &m).await;
    let size = m.to_string().len();
    (
        digest.clone(),
        json!({"mediaType": OCI_MANIFEST_TYPE, "digest": digest.to_string(), "size": size}),
    )
}

const OCI_MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

async fn counts(r: &Registry) -> (u64, u64, u64, u64) {
    let c = r.meta.scan_counts().await.expect("counts");
    (c.queued, c.running, c.done, c.failed)
}

#[tokio::test]
async fn an_image_push_queues_one_job_and_nothing_else_does() {
    let dir = tempfile::tempdir().expect("dir");
    let r = registry(dir.path()).await;
    let repo = RepoName::parse("team/app").expect("repo");
    let (digest, descriptor) = image(&r, &repo, "v1", "one").await;
    assert_eq!(counts(&r).await, (1, 0, 0, 0));
    // The same digest again, under another tag: no second job.
    let bytes = r
        .meta
        .manifest(&repo, &Reference::Digest(digest.clone()), true)
        .await
        .expect("read")
        .expect("stored")
        .content;
    let again: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    manifest(&r, &repo, "v2", &again).await;
    assert_eq!(counts(&r).await, (1, 0, 0, 0));
    // An index of it, and an artifact referring to it (empty config, no layer tar): no job.
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [descriptor.clone()],
    });
    manifest(&r, &repo, "multi", &index).await;
    let mut empty = blob(&r, &repo, b"{}").await;
    empty["mediaType"] = json!("application/vnd.oci.empty.v1+json");
    let mut doc = blob(&r, &repo, b"{\"bomFormat\":\"CycloneDX\"}").await;
    doc["mediaType"] = json!("application/vnd.cyclonedx+json");
    let artifact = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST_TYPE,
        "artifactType": "application/vnd.cyclonedx+json",
        "config": empty,
        "layers": [doc],
        "subject": descriptor,
    });
    manifest(&r, &repo, "sbom", &artifact).await;
    assert_eq!(counts(&r).await, (1, 0, 0, 0));
    // Deleting the image drops its job.
    r.delete_manifest(&repo, &Reference::Digest(digest.clone()), &by())
        .await
        .expect("delete");
    assert_eq!(counts(&r).await, (0, 0, 0, 0));
    assert!(
        r.meta
            .scan_of("team/app", &digest.to_string())
            .await
            .expect("read")
            .is_none()
    );
}

#[tokio::test]
async fn scanning_off_queues_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let mut r = registry(dir.path()).await;
    r.limits.scan.enabled = false;
    let repo = RepoName::parse("app").expect("repo");
    image(&r, &repo, "v1", "one").await;
    assert_eq!(counts(&r).await, (0, 0, 0, 0));
}

#[tokio::test]
async fn a_claimed_job_is_nobody_elses_until_its_lease_runs_out() {
    let dir = tempfile::tempdir().expect("dir");
    let r = registry(dir.path()).await;
    let repo = RepoName::parse("app").expect("repo");
    let (digest, _) = image(&r, &repo, "v1", "one").await;
    let now = now_ms();
    let first = r
        .meta
        .scan_claim(now, 1000, 3)
        .await
        .expect("claim")
        .expect("a job");
    assert_eq!(
        (
            first.repository.as_str(),
            first.digest.clone(),
            first.attempts
        ),
        ("app", digest.to_string(), 1)
    );
    assert_eq!(
        r.meta.scan_claim(now + 500, 1000, 3).await.expect("claim"),
        None
    );
    assert!(r.meta.scan_renew(&first, now + 3000).await.expect("renew"));
    assert_eq!(
        r.meta.scan_claim(now + 2000, 1000, 3).await.expect("claim"),
        None
    );
    // The holder went quiet: after the lease another worker takes it over, and the first
    // one's writes are fenced off.
    let second = r
        .meta
        .scan_claim(now + 3001, 1000, 3)
        .await
        .expect("claim")
        .expect("taken over");
    assert_eq!(second.attempts, 2);
    assert_ne!(second.token, first.token);
    let outcome = ScanOutcome {
        problems: "[]".into(),
        ..ScanOutcome::default()
    };
    assert!(!r.meta.scan_done(&first, &outcome).await.expect("done"));
    assert!(!r.meta.scan_renew(&first, now + 9000).await.expect("renew"));
    assert!(r.meta.scan_done(&second, &outcome).await.expect("done"));
    let record = r
        .meta
        .scan_of("app", &digest.to_string())
        .await
        .expect("read")
        .expect("record");
    assert_eq!(record.status, ScanStatus::Done);
    assert_eq!(
        r.meta
            .scan_claim(now + 99_000, 1000, 3)
            .await
            .expect("claim"),
        None
    );
}

#[tokio::test]
async fn attempts_are_bounded_and_a_released_job_does_not_count_one() {
    let dir = tempfile::tempdir().expect("dir");
    let r = registry(dir.path()).await;
    let repo = RepoName::parse("app").expect("repo");
    let (digest, _) = image(&r, &repo, "v1", "one").await;
    let now = now_ms();
    // A stopping worker gives its job back: the next claim is still the first attempt.
    let job = r
        .meta
        .scan_claim(now, 1000, 2)
        .await
        .expect("claim")
        .expect("job");
    assert!(r.meta.scan_release(&job).await.expect("release"));
    let job = r
        .meta
        .scan_claim(now, 1000, 2)
        .await
        .expect("claim")
        .expect("job");
    assert_eq!(job.attempts, 1);
    // A failed attempt is queued again with its reason.
    assert!(
        r.meta
            .scan_failed(&job, "storage unreachable", false)
            .await
            .expect("fail")
    );
    let record = r
        .meta
        .scan_of("app", &digest.to_string())
        .await
        .expect("read")
        .expect("record");
    assert_eq!(
        (record.status, record.reason.as_deref()),
        (ScanStatus::Queued, Some("storage unreachable"))
    );
    // The second and last attempt's worker dies: the job is given up, not claimed a third time.
    let job = r
        .meta
        .scan_claim(now, 1000, 2)
        .await
        .expect("claim")
        .expect("job");
    assert_eq!(job.attempts, 2);
    assert_eq!(
        r.meta.scan_claim(now + 5000, 1000, 2).await.expect("claim"),
        None
    );
    let record = r
        .meta
        .scan_of("app", &digest.to_string())
        .await
        .expect("read")
        .expect("record");
    assert_eq!(record.status, ScanStatus::Failed);
    assert!(
        record.reason.expect("reason").contains("last attempt"),
        "a readable reason"
    );
    assert_eq!(counts(&r).await, (0, 0, 0, 1));
}
