//! The SQL of [`AuditStore`](super::audit::AuditStore), for SQLite and PostgreSQL. Events
//! are recorded by `sql.rs` (`record_event`) inside the transactions of the changes.

/// Defines the audit and outbox query functions over `&mut $conn`; `$claim` locks the
/// claimed rows (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so replicas claim different ones);
/// `$detail` is the `detail` column as a value `->> 'field'` reads a JSON field of (SQLite
/// reads JSON text as it is; PostgreSQL needs it cast to `jsonb`).
macro_rules! audit_queries {
    ($conn:ty, $claim:literal, $detail:literal) => {
        use $crate::meta::audit::{Attempt, AttemptOutcome, AuditEntry, AuditQuery, Delivery, DeliveryLog};
        use $crate::meta::sql::{int, uint};
        use $crate::meta::{MetaError, MetaResult, now_ms};

        type EntryRow = (i64, String, i64, String, String, Option<String>, Option<String>, Option<String>,
                         Option<String>, Option<String>, Option<i64>, Option<String>, Option<String>);

        fn entry(r: EntryRow) -> MetaResult<AuditEntry> {
            let detail = r.12
                .map(|d| serde_json::from_str(&d))
                .transpose()
                .map_err(|e| MetaError::Corrupt { table: "audit_log", reason: e.to_string() })?;
            Ok(AuditEntry {
                id: r.0,
                event_id: r.1,
                at: r.2,
                action: r.3,
                actor: r.4,
                address: r.5,
                repository: r.6,
                tag: r.7,
                digest: r.8,
                media_type: r.9,
                size: r.10.map(|s| uint(s, "audit_log")).transpose()?,
                target: r.11,
                detail,
            })
        }

        pub(super) async fn entries(conn: &mut $conn, q: AuditQuery<'_>) -> MetaResult<Vec<AuditEntry>> {
            let rows: Vec<EntryRow> = sqlx::query_as(concat!(
                "SELECT id, event_id, at, action, actor, address, repository, tag, digest, media_type,
                        size, target, detail
                 FROM audit_log
                 WHERE ($1 IS NULL OR repository = $1 OR substr(repository, 1, length($2)) = $2)
                   AND ($3 IS NULL OR actor = $3)
                   AND ($4 IS NULL OR action = $4 OR substr(action, 1, length($5)) = $5)
                   AND at >= $6 AND id < $7 AND at < $9
                   AND ($10 IS NULL
                        OR repository = $10 OR substr(repository, 1, length($11)) = $11
                        OR target = $10 OR substr(target, 1, length($11)) = $11
                        OR substr(target, 1, length($12)) = $12
                        OR (action IN ('member.set', 'member.remove') AND (", $detail, " ->> 'org') = $10)
                        OR (action IN ('team.member.add', 'team.member.remove')
                            AND substr((", $detail, " ->> 'team'), 1, length($11)) = $11))
                 ORDER BY id DESC LIMIT $8",
            ))
            // A namespace covers the repositories under `NAME/`, an action prefix the actions
            // under `PREFIX.` (compared as text: `_` in a name is no wildcard). An
            // organization covers its repositories, itself, its teams (`ORG/TEAM`) and robots
            // (`ORG+ROBOT`) as targets, and its members' joining and leaving, which name the
            // organization (or the team) in their detail: account names hold neither `/` nor
            // `+`, so no other account's entries match.
            .bind(q.repository)
            .bind(q.repository.map(|r| format!("{r}/")))
            .bind(q.actor)
            .bind(q.action)
            .bind(q.action.map(|a| format!("{a}.")))
            .bind(q.since_ms.unwrap_or(i64::MIN))
            .bind(q.before_id.unwrap_or(i64::MAX))
            .bind(i64::from(q.limit))
            .bind(q.until_ms.unwrap_or(i64::MAX))
            .bind(q.org)
            .bind(q.org.map(|o| format!("{o}/")))
            .bind(q.org.map(|o| format!("{o}+")))
            .fetch_all(conn)
            .await?;
            rows.into_iter().map(entry).collect()
        }

        pub(super) async fn prune(conn: &mut $conn, before: i64) -> MetaResult<u64> {
            let pruned = sqlx::query("DELETE FROM audit_log WHERE at < $1")
                .bind(before)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            sqlx::query(
                "DELETE FROM webhook_deliveries
                 WHERE created_at < $1 AND (delivered_at IS NOT NULL OR failed_at IS NOT NULL)",
            )
            .bind(before)
            .execute(conn)
            .await?;
            Ok(pruned)
        }

        /// Whether any delivery is due: a read, so an idle worker's polls write nothing.
        pub(super) async fn any_due(conn: &mut $conn, now: i64, only: Option<i64>) -> MetaResult<bool> {
            let due: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM webhook_deliveries
                 WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1
                   AND (lease_until < $1 OR id = $2) AND ($2 IS NULL OR id = $2)
                 LIMIT 1",
            )
            .bind(now)
            .bind(only)
            .fetch_optional(conn)
            .await?;
            Ok(due.is_some())
        }

        /// Claims due deliveries whose claim ran out; delivery `only` (its caller's own, claimed
        /// when it was queued) whatever its claim.
        pub(super) async fn claim(conn: &mut $conn, now: i64, lease_until: i64, limit: u32, only: Option<i64>) -> MetaResult<Vec<Delivery>> {
            let rows: Vec<(i64, String, String, String, String, i64)> = sqlx::query_as(concat!(
                "SELECT id, hook, event_id, event_type, payload, attempts FROM webhook_deliveries
                 WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1
                   AND (lease_until < $1 OR id = $2) AND ($2 IS NULL OR id = $2)
                 ORDER BY next_attempt_at, id LIMIT $3",
                $claim
            ))
            .bind(now)
            .bind(only)
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await?;
            let mut claimed = Vec::with_capacity(rows.len());
            for (id, hook, event_id, event_type, payload, attempts) in rows {
                sqlx::query("UPDATE webhook_deliveries SET lease_until = $2 WHERE id = $1")
                    .bind(id)
                    .bind(lease_until)
                    .execute(&mut *conn)
                    .await?;
                let attempts = u32::try_from(attempts).map_err(|_| MetaError::Corrupt {
                    table: "webhook_deliveries",
                    reason: format!("attempts {attempts}"),
                })?;
                claimed.push(Delivery { id, hook, event_id, event_type, payload, attempts });
            }
            Ok(claimed)
        }

        pub(super) async fn finish(conn: &mut $conn, id: i64, a: &Attempt, outcome: AttemptOutcome) -> MetaResult<()> {
            sqlx::query(
                "INSERT INTO webhook_attempts (delivery_id, attempt, at, status, error, duration_ms)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (delivery_id, attempt) DO NOTHING",
            )
            .bind(id)
            .bind(i64::from(a.attempt))
            .bind(a.at)
            .bind(a.status.map(i64::from))
            .bind(a.error.as_deref())
            .bind(int(a.duration_ms))
            .execute(&mut *conn)
            .await?;
            let (delivered, failed, next) = match outcome {
                AttemptOutcome::Delivered => (Some(now_ms()), None, 0),
                AttemptOutcome::GiveUp => (None, Some(now_ms()), 0),
                AttemptOutcome::RetryAt(at) => (None, None, at),
            };
            sqlx::query(
                "UPDATE webhook_deliveries
                 SET attempts = $2, lease_until = 0, delivered_at = $3, failed_at = $4,
                     next_attempt_at = CASE WHEN $5 = 0 THEN next_attempt_at ELSE $5 END
                 WHERE id = $1",
            )
            .bind(id)
            .bind(i64::from(a.attempt))
            .bind(delivered)
            .bind(failed)
            .bind(next)
            .execute(conn)
            .await?;
            Ok(())
        }

        pub(super) async fn deliveries(conn: &mut $conn, hook: Option<&str>, limit: u32) -> MetaResult<Vec<DeliveryLog>> {
            type Row = (i64, String, String, String, i64, i64, Option<i64>, Option<i64>);
            let rows: Vec<Row> = sqlx::query_as(
                "SELECT id, hook, event_id, event_type, created_at, next_attempt_at, delivered_at, failed_at
                 FROM webhook_deliveries WHERE ($1 IS NULL OR hook = $1) ORDER BY id DESC LIMIT $2",
            )
            .bind(hook)
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await?;
            let (Some(newest), Some(oldest)) = (rows.first().map(|r| r.0), rows.last().map(|r| r.0)) else {
                return Ok(Vec::new());
            };
            let attempts: Vec<(i64, i64, i64, Option<i64>, Option<String>, i64)> = sqlx::query_as(
                "SELECT delivery_id, attempt, at, status, error, duration_ms FROM webhook_attempts
                 WHERE delivery_id BETWEEN $1 AND $2 ORDER BY delivery_id, attempt",
            )
            .bind(oldest)
            .bind(newest)
            .fetch_all(conn)
            .await?;
            let corrupt = |reason: String| MetaError::Corrupt { table: "webhook_attempts", reason };
            rows.into_iter()
                .map(|(id, hook, event_id, event_type, created_at, next, delivered, failed)| {
                    let state = match (delivered, failed) {
                        (Some(_), _) => "delivered",
                        (None, Some(_)) => "failed",
                        (None, None) => "pending",
                    };
                    let attempts = attempts
                        .iter()
                        .filter(|a| a.0 == id)
                        .map(|a| {
                            Ok(Attempt {
                                attempt: u32::try_from(a.1).map_err(|e| corrupt(e.to_string()))?,
                                at: a.2,
                                status: a.3.map(u16::try_from).transpose().map_err(|e| corrupt(e.to_string()))?,
                                error: a.4.clone(),
                                duration_ms: uint(a.5, "webhook_attempts")?,
                            })
                        })
                        .collect::<MetaResult<Vec<_>>>()?;
                    Ok(DeliveryLog {
                        id,
                        hook,
                        event_id,
                        event_type,
                        created_at,
                        state,
                        next_attempt_at: (state == "pending").then_some(next),
                        attempts,
                    })
                })
                .collect()
        }
    };
}

/// Implements [`AuditStore`](super::audit::AuditStore) for a store with the `account_read`
/// and `account_write` runners.
macro_rules! impl_audit_store {
    ($store:ty, $conn:ty, $claim:literal, $detail:literal) => {
        mod eq {
            $crate::meta::audit_sql::audit_queries!($conn, $claim, $detail);
        }

        #[async_trait::async_trait]
        impl $crate::meta::audit::AuditStore for $store {
            async fn audit_entries(&self, query: $crate::meta::audit::AuditQuery<'_>) -> $crate::meta::MetaResult<Vec<$crate::meta::audit::AuditEntry>> {
                let (repository, actor, action) = (query.repository.map(str::to_owned), query.actor.map(str::to_owned), query.action.map(str::to_owned));
                let org = query.org.map(str::to_owned);
                let (since_ms, until_ms, before_id, limit) = (query.since_ms, query.until_ms, query.before_id, query.limit);
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [repository, actor, action, org], |c| eq::entries(c, $crate::meta::audit::AuditQuery {
                    repository: repository.as_deref(),
                    actor: actor.as_deref(),
                    action: action.as_deref(),
                    org: org.as_deref(),
                    since_ms,
                    until_ms,
                    before_id,
                    limit,
                }))
            }
            async fn prune_audit(&self, before_ms: i64) -> $crate::meta::MetaResult<u64> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [], |c| eq::prune(c, before_ms))
            }
            async fn record_event(&self, event: &$crate::meta::events::Event, claim_until: i64) -> $crate::meta::MetaResult<Vec<i64>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [event], |c| async {
                    let ids = q::record_event(&mut *c, &event).await?;
                    for id in &ids {
                        sqlx::query("UPDATE webhook_deliveries SET lease_until = $2 WHERE id = $1")
                            .bind(id)
                            .bind(claim_until)
                            .execute(&mut *c)
                            .await?;
                    }
                    Ok::<_, $crate::meta::MetaError>(ids)
                })
            }
            async fn claim_deliveries(&self, now: i64, lease_until: i64, limit: u32, only: Option<i64>) -> $crate::meta::MetaResult<Vec<$crate::meta::audit::Delivery>> {
                let due = $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| eq::any_due(c, now, only))?;
                if !due {
                    return Ok(Vec::new());
                }
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [], |c| eq::claim(c, now, lease_until, limit, only))
            }
            async fn finish_attempt(&self, id: i64, attempt: &$crate::meta::audit::Attempt, outcome: $crate::meta::audit::AttemptOutcome) -> $crate::meta::MetaResult<()> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [attempt], |c| eq::finish(c, id, &attempt, outcome))
            }
            async fn deliveries(&self, hook: Option<&str>, limit: u32) -> $crate::meta::MetaResult<Vec<$crate::meta::audit::DeliveryLog>> {
                let hook = hook.map(str::to_owned);
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [hook], |c| eq::deliveries(c, hook.as_deref(), limit))
            }
        }
    };
}

pub(crate) use audit_queries;
pub(crate) use impl_audit_store;
