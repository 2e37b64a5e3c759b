//! `berth_scan_policy_refusals_total`: manifest pulls this process refused because a
//! vulnerability policy's `prevent_vulnerable` threshold was met by unallowlisted findings.
//! The service counts (see `service::vuln_policy`); each scrape copies its count here.

use std::sync::atomic::Ordering;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry as Families;

/// The refusal counter.
#[derive(Debug, Clone, Default)]
pub struct VulnPolicyMetrics {
    refusals: Counter,
}

impl VulnPolicyMetrics {
    /// Registers the counter at zero.
    pub fn register(families: &mut Families) -> Self {
        let refusals = Counter::default();
        families.register(
            "berth_scan_policy_refusals",
            "Manifest pulls refused by vulnerability policies (prevent_vulnerable)",
            refusals.clone(),
        );
        Self { refusals }
    }

    /// Copies the service's count (monotonic, so the counter stays a counter).
    pub fn set(&self, refused: u64) {
        self.refusals.inner().store(refused, Ordering::Relaxed);
    }
}
