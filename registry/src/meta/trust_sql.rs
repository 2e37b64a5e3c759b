//! The SQL of [`TrustStore`](super::trust::TrustStore), for SQLite and PostgreSQL.

/// Defines the trust query functions over `&mut $conn`.
macro_rules! trust_queries {
    ($conn:ty) => {
        use $crate::domain::{Digest, RepoName};
        use $crate::meta::MetaResult;
        use $crate::meta::sql::digest;
        use $crate::meta::trust::StoredVerdict;

        pub(super) async fn signatures(
            conn: &mut $conn,
            repo: &RepoName,
            subject: &Digest,
            artifact_type: &str,
            tag: &str,
            limit: u32,
        ) -> MetaResult<Vec<Digest>> {
            let rows: Vec<(String,)> = sqlx::query_as(
                "SELECT m.digest FROM manifests m JOIN repositories r ON r.id = m.repository_id
                 WHERE r.name = $1 AND (
                     (m.subject_digest = $2 AND m.artifact_type = $3)
                     OR m.id IN (SELECT t.manifest_id FROM tags t WHERE t.repository_id = r.id AND t.name = $4))
                 ORDER BY m.digest LIMIT $5",
            )
            .bind(repo.as_str())
            .bind(subject.to_string())
            .bind(artifact_type)
            .bind(tag)
            .bind(i64::from(limit))
            .fetch_all(conn)
            .await?;
            rows.into_iter().map(|(d,)| digest(&d, "manifests")).collect()
        }

        pub(super) async fn parents(
            conn: &mut $conn,
            repo: &RepoName,
            child: &Digest,
            limit: u32,
        ) -> MetaResult<Vec<Digest>> {
            let rows: Vec<(String,)> = sqlx::query_as(
                "SELECT p.digest FROM manifest_children c
                 JOIN manifests p ON p.id = c.parent_id
                 JOIN repositories r ON r.id = p.repository_id
                 WHERE r.name = $1 AND c.child_digest = $2 ORDER BY p.digest LIMIT $3",
            )
            .bind(repo.as_str())
            .bind(child.to_string())
            .bind(i64::from(limit))
            .fetch_all(conn)
            .await?;
            rows.into_iter().map(|(d,)| digest(&d, "manifests")).collect()
        }

        pub(super) async fn verdict(
            conn: &mut $conn,
            repo: &RepoName,
            manifest: &Digest,
            keyset: &str,
        ) -> MetaResult<Option<StoredVerdict>> {
            type Row = (String, String, Option<String>, String, i64);
            let row: Option<Row> = sqlx::query_as(
                "SELECT v.signatures, v.status, v.key_id, v.detail, v.checked_at
                 FROM trust_verdicts v
                 JOIN manifests m ON m.id = v.manifest_id
                 JOIN repositories r ON r.id = m.repository_id
                 WHERE r.name = $1 AND m.digest = $2 AND v.keyset = $3",
            )
            .bind(repo.as_str())
            .bind(manifest.to_string())
            .bind(keyset)
            .fetch_optional(conn)
            .await?;
            Ok(row.map(|(signatures, status, key_id, detail, checked_at)| StoredVerdict {
                signatures,
                status,
                key_id,
                detail,
                checked_at,
            }))
        }

        pub(super) async fn save_verdict(
            conn: &mut $conn,
            repo: &RepoName,
            manifest: &Digest,
            keyset: &str,
            v: &StoredVerdict,
        ) -> MetaResult<()> {
            sqlx::query(
                "INSERT INTO trust_verdicts (manifest_id, keyset, signatures, status, key_id, detail, checked_at)
                 SELECT m.id, $3, $4, $5, $6, $7, $8 FROM manifests m
                 JOIN repositories r ON r.id = m.repository_id
                 WHERE r.name = $1 AND m.digest = $2
                 ON CONFLICT (manifest_id, keyset) DO UPDATE SET signatures = excluded.signatures,
                     status = excluded.status, key_id = excluded.key_id, detail = excluded.detail,
                     checked_at = excluded.checked_at",
            )
            .bind(repo.as_str())
            .bind(manifest.to_string())
            .bind(keyset)
            .bind(&v.signatures)
            .bind(&v.status)
            .bind(v.key_id.as_deref())
            .bind(&v.detail)
            .bind(v.checked_at)
            .execute(conn)
            .await?;
            Ok(())
        }
    };
}

/// Implements [`TrustStore`](super::trust::TrustStore) for `$store` over `$conn`.
macro_rules! impl_trust_store {
    ($store:ty, $conn:ty) => {
        mod tq {
            $crate::meta::trust_sql::trust_queries!($conn);
        }

        #[async_trait::async_trait]
        impl $crate::meta::trust::TrustStore for $store {
            async fn trust_signatures(
                &self,
                repo: &$crate::domain::RepoName,
                digest: &$crate::domain::Digest,
                artifact_type: &str,
                tag: &str,
                limit: u32,
            ) -> $crate::meta::MetaResult<Vec<$crate::domain::Digest>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [repo, digest, artifact_type, tag],
                    |c| tq::signatures(c, &repo, &digest, &artifact_type, &tag, limit))
            }
            async fn trust_parents(
                &self,
                repo: &$crate::domain::RepoName,
                digest: &$crate::domain::Digest,
                limit: u32,
            ) -> $crate::meta::MetaResult<Vec<$crate::domain::Digest>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [repo, digest], |c| tq::parents(c, &repo, &digest, limit))
            }
            async fn trust_verdict(
                &self,
                repo: &$crate::domain::RepoName,
                digest: &$crate::domain::Digest,
                keyset: &str,
            ) -> $crate::meta::MetaResult<Option<$crate::meta::trust::StoredVerdict>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [repo, digest, keyset], |c| tq::verdict(c, &repo, &digest, &keyset))
            }
            async fn trust_save_verdict(
                &self,
                repo: &$crate::domain::RepoName,
                digest: &$crate::domain::Digest,
                keyset: &str,
                verdict: &$crate::meta::trust::StoredVerdict,
            ) -> $crate::meta::MetaResult<()> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [repo, digest, keyset, verdict],
                    |c| tq::save_verdict(c, &repo, &digest, &keyset, &verdict))
            }
        }
    };
}

pub(crate) use impl_trust_store;
pub(crate) use trust_queries;
