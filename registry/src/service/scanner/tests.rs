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

fn cargo(name: &str, version: &str) -> crate::meta::scans::StoredPackage {
    crate::meta::scans::StoredPackage {
        kind: "cargo".into(),
        name: name.into(),
        version: version.into(),
        source_name: None,
        source_version: None,
        arch: None,
        path: "/app/Cargo.lock".into(),
        purl: format!("pkg:cargo/{name}@{version}"),
    }
}

/// Imports one record of scan/tests/data/osv-match.
async fn import(r: &Registry, file: &str) {
    use crate::service::vulndb::{Source, VulnDb};
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scan/tests/data/osv-match")
        .join(file);
    let report = VulnDb::new(r.meta.clone())
        .expect("importer")
        .import(&Source::Path(path))
        .await
        .expect("import");
    assert_eq!(report.new, 1, "{report:?}");
}

async fn scan_events(r: &Registry) -> usize {
    r.meta
        .audit_entries(crate::meta::audit::AuditQuery {
            repository: None,
            actor: None,
            action: Some("scan.completed"),
            org: None,
            since_ms: None,
            until_ms: None,
            before_id: None,
            limit: 100,
        })
        .await
        .expect("audit")
        .len()
}

#[tokio::test]
async fn findings_are_matched_from_stored_inventories_and_caught_up_by_generation() {
    use crate::service::findings::Trigger;
    let dir = tempfile::tempdir().expect("dir");
    let r = registry(dir.path()).await;
    let repo = RepoName::parse("app").expect("repo");
    image(&r, &repo, "v1", "one").await;
    let job = r
        .meta
        .scan_claim(now_ms(), 60_000, 3)
        .await
        .expect("claim")
        .expect("job");
    let id = job.manifest_id;
    let outcome = ScanOutcome {
        problems: "[]".into(),
        packages: vec![cargo("rsa", "0.9.6"), cargo("serde", "1.0.0")],
        ..ScanOutcome::default()
    };
    assert!(r.meta.scan_done(&job, &outcome).await.expect("done"));
    let reads = r.blob_reads();

    // Nothing imported yet: matched, no findings; matching again at the same generation is
    // fenced off (another replica did it).
    assert!(
        r.match_manifest(id, Trigger::Inventory)
            .await
            .expect("match")
    );
    assert!(
        !r.match_manifest(id, Trigger::Inventory)
            .await
            .expect("match")
    );
    let first = r
        .meta
        .findings_match(id)
        .await
        .expect("read")
        .expect("matched");
    assert_eq!(first.summary.total, 0);
    assert_eq!(r.catch_up_findings().await.expect("catch up"), 0);

    // rsa's advisory comes in: the next round matches the manifest again.
    import(&r, "RUSTSEC-2023-0071.json").await;
    assert_eq!(r.catch_up_findings().await.expect("catch up"), 1);
    assert_eq!(r.catch_up_findings().await.expect("catch up"), 0);
    let found = r.meta.findings_of(id).await.expect("findings");
    assert_eq!(
        found
            .iter()
            .map(|f| (f.package.as_str(), f.advisory.as_str(), f.severity.as_str()))
            .collect::<Vec<_>>(),
        [("rsa", "RUSTSEC-2023-0071", "medium")]
    );
    assert!(found[0].aliases.iter().any(|a| a == "CVE-2023-49092"));
    let second = r
        .meta
        .findings_match(id)
        .await
        .expect("read")
        .expect("matched");
    assert!(second.generation > first.generation);
    assert_eq!((second.summary.medium, second.summary.total), (1, 1));

    // A record naming none of its packages (protobuf) only moves it to the new generation:
    // not matched again (same matched_at), no event.
    import(&r, "RUSTSEC-2024-0437.json").await;
    assert_eq!(r.catch_up_findings().await.expect("catch up"), 1);
    let third = r
        .meta
        .findings_match(id)
        .await
        .expect("read")
        .expect("matched");
    assert!(third.generation > second.generation);
    assert_eq!(third.matched_at, second.matched_at);
    assert_eq!(third.summary, second.summary);
    assert_eq!(scan_events(&r).await, 2, "the first match and the change");
    assert_eq!(r.blob_reads(), reads, "matching reads no blob");

    // A new inventory of the manifest is matched afresh.
    assert!(
        r.meta
            .scan_requeue("app", &job.digest, now_ms())
            .await
            .expect("requeue")
    );
    let job = r
        .meta
        .scan_claim(now_ms(), 60_000, 3)
        .await
        .expect("claim")
        .expect("job");
    assert!(r.meta.scan_done(&job, &outcome).await.expect("done"));
    assert_eq!(r.meta.findings_match(id).await.expect("read"), None);
    assert_eq!(r.catch_up_findings().await.expect("catch up"), 1);
    assert_eq!(r.meta.findings_of(id).await.expect("findings"), found);
}

/// Imports one OSV record written here: `id` affects crates.io `package` below 99.0.0,
/// modified at `modified`; `withdrawn` withdraws it, `details` only changes its text.
async fn import_record(
    r: &Registry,
    dir: &std::path::Path,
    id: &str,
    package: &str,
    modified: &str,
    details: &str,
    withdrawn: bool,
) {
    use crate::service::vulndb::{Source, VulnDb};
    let mut record = json!({
        "id": id,
        "modified": modified,
        "summary": format!("{package} is affected"),
        "details": details,
        "affected": [{
            "package": {"ecosystem": "crates.io", "name": package},
            "ranges": [{"type": "SEMVER", "events": [{"introduced": "0.0.0-0"}, {"fixed": "99.0.0"}]}],
        }],
    });
    if withdrawn {
        record["withdrawn"] = json!(modified);
    }
    let path = dir.join(format!("{id}-{modified}.json").replace(':', "-"));
    std::fs::write(&path, record.to_string()).expect("record");
    let report = VulnDb::new(r.meta.clone())
        .expect("importer")
        .import(&Source::Path(path))
        .await
        .expect("import");
    assert_eq!(report.new + report.updated, 1, "{report:?}");
}

/// Rows inserted into and deleted from a manifest's findings and targets, as counted by
/// [`watch_writes`]'s triggers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Writes {
    findings_in: i64,
    findings_out: i64,
    targets_in: i64,
    targets_out: i64,
}

/// The test's own connection to the registry's database file.
async fn db(dir: &std::path::Path) -> sqlx::SqliteConnection {
    use sqlx::Connection;
    let url = format!("sqlite://{}", dir.join("meta.db").display());
    sqlx::SqliteConnection::connect(&url).await.expect("db")
}

/// Makes the database count every row inserted into or deleted from `scan_findings` and
/// `scan_targets`, per manifest, in a table of the test's own. Row ids cannot tell whether a
/// row was written again: SQLite gives a new row the largest rowid plus one, so rows deleted
/// from the end of the table and written again get their old ids back.
async fn watch_writes(dir: &std::path::Path) {
    let mut c = db(dir).await;
    sqlx::query("CREATE TABLE test_writes (tbl TEXT NOT NULL, op TEXT NOT NULL, manifest_id INTEGER NOT NULL)")
        .execute(&mut c)
        .await
        .expect("table");
    for table in ["scan_findings", "scan_targets"] {
        for (op, row) in [("INSERT", "NEW"), ("DELETE", "OLD")] {
            let sql = format!(
                "CREATE TRIGGER test_{table}_{op} AFTER {op} ON {table} BEGIN
                 INSERT INTO test_writes VALUES ('{table}', '{op}', {row}.manifest_id); END"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut c)
                .await
                .expect("trigger");
        }
    }
}

/// What [`watch_writes`] counted for `manifest_id` so far.
async fn writes(dir: &std::path::Path, manifest_id: i64) -> Writes {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT tbl, op, COUNT(*) FROM test_writes WHERE manifest_id = $1 GROUP BY tbl, op",
    )
    .bind(manifest_id)
    .fetch_all(&mut db(dir).await)
    .await
    .expect("writes");
    let mut w = Writes::default();
    for (table, op, n) in rows {
        match (table.as_str(), op.as_str()) {
            ("scan_findings", "INSERT") => w.findings_in = n,
            ("scan_findings", "DELETE") => w.findings_out = n,
            ("scan_targets", "INSERT") => w.targets_in = n,
            ("scan_targets", "DELETE") => w.targets_out = n,
            other => panic!("unexpected {other:?}"),
        }
    }
    w
}

/// Inventories the next queued image with `packages`; returns its manifest id.
async fn inventoried(r: &Registry, packages: Vec<crate::meta::scans::StoredPackage>) -> i64 {
    let job = r
        .meta
        .scan_claim(now_ms(), 60_000, 3)
        .await
        .expect("claim")
        .expect("job");
    let outcome = ScanOutcome {
        problems: "[]".into(),
        packages,
        ..ScanOutcome::default()
    };
    assert!(r.meta.scan_done(&job, &outcome).await.expect("done"));
    job.manifest_id
}

async fn caught_up(r: &Registry) {
    while r.catch_up_findings().await.expect("catch up") > 0 {}
}

async fn advisories(r: &Registry, id: i64) -> Vec<(String, String)> {
    r.meta
        .findings_of(id)
        .await
        .expect("findings")
        .into_iter()
        .map(|f| (f.package, f.advisory))
        .collect()
}

#[tokio::test]
async fn matching_again_keeps_the_rows_that_did_not_change() {
    let dir = tempfile::tempdir().expect("dir");
    let records = tempfile::tempdir().expect("records");
    let r = registry(dir.path()).await;
    watch_writes(dir.path()).await;
    let repo = RepoName::parse("app").expect("repo");
    image(&r, &repo, "a", "a").await;
    let a = inventoried(&r, vec![cargo("rsa", "0.9.6"), cargo("serde", "1.0.0")]).await;
    let (digest_b, _) = image(&r, &repo, "b", "b").await;
    let b = inventoried(&r, vec![cargo("rsa", "0.9.6"), cargo("protobuf", "2.0.0")]).await;
    let rec = records.path();
    import_record(
        &r,
        rec,
        "TEST-RSA",
        "rsa",
        "2026-01-01T00:00:00Z",
        "one",
        false,
    )
    .await;
    import_record(
        &r,
        rec,
        "TEST-PB",
        "protobuf",
        "2026-01-01T00:00:00Z",
        "one",
        false,
    )
    .await;
    caught_up(&r).await;
    let rsa = ("rsa".to_owned(), "TEST-RSA".to_owned());
    let protobuf = ("protobuf".to_owned(), "TEST-PB".to_owned());
    assert_eq!(advisories(&r, a).await, std::slice::from_ref(&rsa));
    let mut found_b = advisories(&r, b).await;
    found_b.sort();
    assert_eq!(found_b, [protobuf.clone(), rsa.clone()]);
    // The first match writes every row once.
    let (writes_a, writes_b) = (writes(dir.path(), a).await, writes(dir.path(), b).await);
    let first = |findings_in, targets_in| Writes {
        findings_in,
        targets_in,
        ..Writes::default()
    };
    assert_eq!(writes_a, first(1, 2), "a: one finding, two targets");
    assert_eq!(writes_b, first(2, 2), "b: two findings, two targets");
    let events = scan_events(&r).await;

    // The rsa record changes in a way that changes no finding: both images are matched again
    // (their generation moves on) and every row stays, with no event.
    let before = r
        .meta
        .findings_match(a)
        .await
        .expect("read")
        .expect("matched");
    import_record(
        &r,
        rec,
        "TEST-RSA",
        "rsa",
        "2026-02-01T00:00:00Z",
        "two",
        false,
    )
    .await;
    caught_up(&r).await;
    let after = r
        .meta
        .findings_match(a)
        .await
        .expect("read")
        .expect("matched");
    assert!(after.generation > before.generation);
    assert!(after.matched_at >= before.matched_at);
    assert_eq!(writes(dir.path(), a).await, writes_a, "a: no row written");
    assert_eq!(writes(dir.path(), b).await, writes_b, "b: no row written");
    assert_eq!(scan_events(&r).await, events, "nothing changed");

    // The protobuf record is withdrawn: b's finding goes (its findings are written again, its
    // targets stay), a's rows are not touched.
    import_record(
        &r,
        rec,
        "TEST-PB",
        "protobuf",
        "2026-03-01T00:00:00Z",
        "one",
        true,
    )
    .await;
    caught_up(&r).await;
    assert_eq!(advisories(&r, b).await, std::slice::from_ref(&rsa));
    let now_b = writes(dir.path(), b).await;
    assert_eq!(
        now_b,
        Writes {
            findings_in: writes_b.findings_in + 1,
            findings_out: 2,
            ..writes_b
        },
        "b's findings written again, its targets kept"
    );
    assert_eq!(writes(dir.path(), a).await, writes_a, "a: no row written");
    assert_eq!(scan_events(&r).await, events + 1, "b's findings changed");
    let summary = r
        .meta
        .findings_match(b)
        .await
        .expect("read")
        .expect("matched");
    assert_eq!(summary.summary.total, 1);

    // A new inventory of b without protobuf and with serde: only the targets that changed
    // are written, the rsa target's row stays.
    assert!(
        r.meta
            .scan_requeue("app", &digest_b.to_string(), now_ms())
            .await
            .expect("requeue")
    );
    let again = inventoried(&r, vec![cargo("rsa", "0.9.6"), cargo("serde", "1.0.0")]).await;
    assert_eq!(again, b);
    caught_up(&r).await;
    assert_eq!(advisories(&r, b).await, [rsa]);
    assert_eq!(
        writes(dir.path(), b).await,
        Writes {
            targets_in: now_b.targets_in + 1,
            targets_out: now_b.targets_out + 1,
            ..now_b
        },
        "the same findings kept; rsa's target kept, protobuf's replaced by serde's"
    );
}

#[tokio::test]
async fn manifests_of_one_inventory_are_matched_alike_and_by_their_own_key() {
    let dir = tempfile::tempdir().expect("dir");
    let records = tempfile::tempdir().expect("records");
    let r = registry(dir.path()).await;
    let repo = RepoName::parse("app").expect("repo");
    let mut ids = Vec::new();
    // x and y share one inventory; z differs by one version (fixed); w is x's inventory
    // stored before inventories had keys.
    for (tag, version) in [
        ("x", "0.9.6"),
        ("y", "0.9.6"),
        ("z", "99.1.0"),
        ("w", "0.9.6"),
    ] {
        image(&r, &repo, tag, tag).await;
        ids.push(inventoried(&r, vec![cargo("rsa", version), cargo("serde", "1.0.0")]).await);
    }
    let keys: Vec<Option<String>> = {
        let mut c = db(dir.path()).await;
        sqlx::query("UPDATE scans SET inventory_key = NULL WHERE manifest_id = $1")
            .bind(ids[3])
            .execute(&mut c)
            .await
            .expect("unkeyed");
        let mut keys = Vec::new();
        for id in &ids {
            let key: Option<String> =
                sqlx::query_scalar("SELECT inventory_key FROM scans WHERE manifest_id = $1")
                    .bind(id)
                    .fetch_one(&mut c)
                    .await
                    .expect("key");
            keys.push(key);
        }
        keys
    };
    assert_eq!(keys[0], keys[1], "one inventory, one key");
    assert_ne!(keys[0], keys[2], "another version, another key");
    assert_eq!(keys[3], None);
    caught_up(&r).await;
    import_record(
        &r,
        records.path(),
        "TEST-RSA",
        "rsa",
        "2026-01-01T00:00:00Z",
        "one",
        false,
    )
    .await;
    // One round: x, y, z and w are matched again together.
    assert_eq!(r.catch_up_findings().await.expect("catch up"), 4);
    let rsa = [("rsa".to_owned(), "TEST-RSA".to_owned())];
    assert_eq!(advisories(&r, ids[0]).await, rsa);
    assert_eq!(advisories(&r, ids[1]).await, rsa);
    assert_eq!(advisories(&r, ids[2]).await, [], "z has the fix");
    assert_eq!(
        advisories(&r, ids[3]).await,
        rsa,
        "matched from its packages"
    );
    for id in &ids {
        let matched = r.meta.findings_match(*id).await.expect("read");
        assert!(matched.is_some(), "{id} is current");
    }
}
