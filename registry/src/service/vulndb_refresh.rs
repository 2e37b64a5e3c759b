//! The advisory database kept fresh by `serve` (`[scan] vulndb_refresh_secs`): each source of
//! `scan.vulndb_sources` is imported again once its last check is that old.
//!
//! When a source is due is read from the database (the source's `checked_at`, which an import
//! or a "not modified" answer records), not from this process's memory: a restart does not
//! download everything again, `berth vulndb update` run by hand counts as a refresh, and
//! replicas sharing a database share the schedule. Two replicas may still look at the same
//! moment; that costs one more conditional request (answered "not modified"), or one more
//! import that changes nothing, since an import only writes records newer than the stored
//! ones. Each replica waits a random extra tenth of the interval, so they rarely do.
//!
//! Matching the stored inventories against what changed is the scan workers' catch-up
//! ([`super::findings`]), which follows the database's generation whoever wrote it.

use std::time::Duration;

use super::Registry;
use super::vulndb::{Source, VulnDb};
use crate::meta::now_ms;
use crate::telemetry::error_chain;

/// The longest wait before a source whose import failed is tried again.
pub const RETRY_AFTER: Duration = Duration::from_secs(300);

impl Registry {
    /// Imports each of `sources` whenever its last check is `every` old, forever (until the
    /// task is dropped). A failing source is logged and tried again after [`RETRY_AFTER`]
    /// (or `every`, if shorter); the others go on.
    pub async fn refresh_advisories_forever(&self, sources: Vec<Source>, every: Duration) {
        let importer = match VulnDb::new(self.meta.clone()) {
            Ok(importer) => importer,
            Err(e) => {
                tracing::error!(error = %error_chain(&e), "advisory refresh disabled");
                return;
            }
        };
        let retry = RETRY_AFTER.min(every);
        loop {
            let mut next = every;
            for source in &sources {
                let wait = match self.due_in(source, every).await {
                    Ok(wait) => wait,
                    Err(e) => {
                        tracing::warn!(source = %source.name(), error = %e, "cannot read when advisories were last checked");
                        retry
                    }
                };
                if !wait.is_zero() {
                    next = next.min(wait);
                    continue;
                }
                match importer.import(source).await {
                    Ok(report) => tracing::debug!(source = %report.source,
                        not_modified = report.not_modified, new = report.new,
                        updated = report.updated, "advisory source refreshed"),
                    Err(e) => {
                        tracing::warn!(source = %source.name(), error = %error_chain(&e),
                            retry_secs = retry.as_secs(), "advisory refresh failed");
                        next = next.min(retry);
                    }
                }
            }
            tokio::time::sleep(next + spread(every)).await;
        }
    }

    /// How long until `source` is due: zero when it was never checked or last checked
    /// `every` ago or more.
    async fn due_in(&self, source: &Source, every: Duration) -> crate::meta::MetaResult<Duration> {
        let Some(last) = self.meta.advisory_source(&source.name()).await? else {
            return Ok(Duration::ZERO);
        };
        let age = u64::try_from(now_ms().saturating_sub(last.checked_at)).unwrap_or(0);
        Ok(every.saturating_sub(Duration::from_millis(age)))
    }
}

/// A random extra wait of up to a tenth of `every`, so that replicas started together do
/// not all look at once.
fn spread(every: Duration) -> Duration {
    let r = f64::from(uuid::Uuid::new_v4().as_u128() as u16) / 65536.0;
    (every / 10).mul_f64(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spread_is_at_most_a_tenth() {
        for _ in 0..100 {
            assert!(spread(Duration::from_secs(600)) <= Duration::from_secs(60));
        }
        assert_eq!(spread(Duration::ZERO), Duration::ZERO);
    }
}
