//! `berth_trust_verdicts_total{verdict}` and `berth_trust_refusals_total{mode, request}`:
//! signature verdicts this process reached (cache misses only: a pull of a verified image
//! served from the verdict cache counts nothing) and the requests enforcing trust policies
//! refused. The service counts (see `service::trust::TrustCounters`); each scrape copies its
//! counts here. Label values are fixed: four verdicts, one mode, two kinds of request.

use std::sync::atomic::Ordering;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry as Families;

use crate::service::trust::{Status, TrustCounts};

/// A verdict.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct VerdictLabel {
    verdict: &'static str,
}

/// A refusal: the policy mode that refused (only `enforce` refuses) and what was refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RefusalLabel {
    mode: &'static str,
    request: &'static str,
}

/// The trust counters.
#[derive(Debug, Clone)]
pub struct TrustMetrics {
    verdicts: Family<VerdictLabel, Counter>,
    refusals: Family<RefusalLabel, Counter>,
}

const PULL: RefusalLabel = RefusalLabel {
    mode: "enforce",
    request: "pull",
};
const TAG_PUSH: RefusalLabel = RefusalLabel {
    mode: "enforce",
    request: "tag_push",
};

impl TrustMetrics {
    /// Registers both families, every series at zero.
    pub fn register(families: &mut Families) -> Self {
        let verdicts = Family::<VerdictLabel, Counter>::default();
        for status in Status::ALL {
            verdicts.get_or_create_owned(&VerdictLabel {
                verdict: status.as_str(),
            });
        }
        families.register(
            "berth_trust_verdicts",
            "Signature verdicts reached by this process (not read from the verdict cache), by verdict",
            verdicts.clone(),
        );
        let refusals = Family::<RefusalLabel, Counter>::default();
        refusals.get_or_create_owned(&PULL);
        refusals.get_or_create_owned(&TAG_PUSH);
        families.register(
            "berth_trust_refusals",
            "Requests refused by enforcing trust policies, by mode and request (pull, tag_push)",
            refusals.clone(),
        );
        Self { verdicts, refusals }
    }

    /// Copies the service's counts (monotonic, so the counters stay counters).
    pub fn set(&self, counts: &TrustCounts) {
        for (status, n) in Status::ALL.into_iter().zip(counts.verdicts) {
            self.verdicts
                .get_or_create(&VerdictLabel {
                    verdict: status.as_str(),
                })
                .inner()
                .store(n, Ordering::Relaxed);
        }
        for (label, n) in [
            (PULL, counts.refused_pulls),
            (TAG_PUSH, counts.refused_tag_pushes),
        ] {
            self.refusals
                .get_or_create(&label)
                .inner()
                .store(n, Ordering::Relaxed);
        }
    }
}
