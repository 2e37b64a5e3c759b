//! Group commit for SQLite: one task owns the only write connection and runs queued writes in
//! batches, each write inside its own savepoint, with one `COMMIT` (one fsync) per batch.
//!
//! SQLite has a single writer and `synchronous = FULL` pays one fsync per commit, so under
//! concurrent pushes most of a write's time is that fsync. Batching keeps every write atomic
//! (its savepoint is rolled back if it fails) and durable before its caller hears back (the
//! result is delivered only after the batch's `COMMIT`), while sharing the fsync.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use sqlx::{Executor, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use super::MetaError;

/// Writes per batch at most; bounds how long one commit holds results back.
const MAX_BATCH: usize = 128;

/// Delivers a job's result once the fate of its batch is known.
type Completion = Box<dyn FnOnce(Result<(), Arc<sqlx::Error>>) + Send>;
/// A queued write: runs on the write connection, reports whether it failed (so its savepoint
/// is rolled back) and how to deliver its result.
type Job =
    Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, (bool, Completion)> + Send>;

/// The queue into the writer task.
#[derive(Debug, Clone)]
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer task on `conn`.
    pub(super) fn start(conn: SqliteConnection) -> Self {
        let (jobs, rx) = mpsc::channel(1024);
        tokio::spawn(run(conn, rx));
        Self { jobs }
    }

    /// Runs `f` as one atomic write and returns its result once committed.
    pub(super) async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<MetaError> + Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            Box::pin(async move {
                let result = f(conn).await;
                let failed = result.is_err();
                let done: Completion = Box::new(move |committed| {
                    let result = match (result, committed) {
                        (Ok(_), Err(e)) => Err(E::from(MetaError::Commit(e))),
                        (result, _) => result,
                    };
                    let _ = reply.send(result);
                });
                (failed, done)
            })
        });
        if self.jobs.send(job).await.is_err() {
            return Err(MetaError::WriteNotRun.into());
        }
        answer
            .await
            .unwrap_or_else(|_| Err(MetaError::WriteNotRun.into()))
    }
}

async fn run(mut conn: SqliteConnection, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let outcome = run_batch(&mut conn, batch).await;
        let (completions, committed) = match outcome {
            Ok(completions) => match conn.execute("COMMIT").await {
                Ok(_) => (completions, Ok(())),
                Err(e) => {
                    let _ = conn.execute("ROLLBACK").await;
                    tracing::error!(error = %e, "database commit failed");
                    (completions, Err(Arc::new(e)))
                }
            },
            Err((completions, e)) => {
                let _ = conn.execute("ROLLBACK").await;
                tracing::error!(error = %e, "database write batch failed");
                (completions, Err(Arc::new(e)))
            }
        };
        for done in completions {
            done(committed.clone());
        }
    }
}

/// Runs a batch inside one transaction; on a failure of the transaction itself (not of a
/// single job), returns the completions gathered so far with the error.
async fn run_batch(
    conn: &mut SqliteConnection,
    batch: Vec<Job>,
) -> Result<Vec<Completion>, (Vec<Completion>, sqlx::Error)> {
    let mut completions = Vec::with_capacity(batch.len());
    if let Err(e) = conn.execute("BEGIN IMMEDIATE").await {
        completions.extend(batch.into_iter().map(answer_without_running));
        return Err((completions, e));
    }
    let mut jobs = batch.into_iter();
    while let Some(job) = jobs.next() {
        if let Err(e) = conn.execute("SAVEPOINT job").await {
            completions.push(answer_without_running(job));
            completions.extend(jobs.map(answer_without_running));
            return Err((completions, e));
        }
        let (failed, done) = job(conn).await;
        completions.push(done);
        let end = if failed {
            conn.execute("ROLLBACK TO job")
                .await
                .and(conn.execute("RELEASE job").await)
        } else {
            conn.execute("RELEASE job").await
        };
        if let Err(e) = end {
            completions.extend(jobs.map(answer_without_running));
            return Err((completions, e));
        }
    }
    Ok(completions)
}

/// Disposes of a job that cannot run because its batch failed: dropping it drops its reply
/// channel, and its caller gets [`MetaError::WriteNotRun`].
fn answer_without_running(job: Job) -> Completion {
    drop(job);
    Box::new(|_| {})
}

#[cfg(test)]
mod tests {
    use sqlx::Connection;

    use super::*;

    type Fut<'c, T> = BoxFuture<'c, Result<T, MetaError>>;

    #[tokio::test]
    async fn failed_writes_roll_back_alone_and_the_rest_commit_together() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let mut conn = SqliteConnection::connect(&url).await.unwrap();
        conn.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")
            .await
            .unwrap();
        let writer = Writer::start(conn);
        let mut tasks = Vec::new();
        for n in 0..60i64 {
            let w = writer.clone();
            tasks.push(tokio::spawn(async move {
                w.run(move |conn: &mut SqliteConnection| -> Fut<'_, i64> {
                    Box::pin(async move {
                        sqlx::query("INSERT INTO t (n) VALUES ($1)")
                            .bind(n)
                            .execute(&mut *conn)
                            .await?;
                        // Every third write fails after writing: its row must not survive.
                        if n % 3 == 0 {
                            return Err(MetaError::Corrupt {
                                table: "t",
                                reason: "test".into(),
                            });
                        }
                        Ok(n)
                    })
                })
                .await
            }));
        }
        let mut ok = 0;
        for (n, t) in tasks.into_iter().enumerate() {
            match t.await.unwrap() {
                Ok(v) => {
                    assert_eq!(v, n as i64);
                    ok += 1;
                }
                Err(MetaError::Corrupt { .. }) => assert_eq!(n % 3, 0),
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert_eq!(ok, 40);
        let count = writer
            .run(|conn: &mut SqliteConnection| -> Fut<'_, i64> {
                Box::pin(async move {
                    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM t")
                        .fetch_one(conn)
                        .await?)
                })
            })
            .await
            .unwrap();
        assert_eq!(count, 40);
        let failed_rows: i64 = writer
            .run(|conn: &mut SqliteConnection| -> Fut<'_, i64> {
                Box::pin(async move {
                    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM t WHERE n % 3 = 0")
                        .fetch_one(conn)
                        .await?)
                })
            })
            .await
            .unwrap();
        assert_eq!(failed_rows, 0);
    }
}
