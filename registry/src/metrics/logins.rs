//! `berth_login_throttle_entries`: how many failed-login records this process keeps, per
//! table of the throttle (see `auth::throttle`). Sampled at each scrape; each table is bounded,
//! so the gauge shows an attack's footprint, never unbounded growth.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry as Families;

/// One table of the throttle.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TableLabel {
    table: &'static str,
}

/// The table names, in the order `Accounts::throttle_sizes` reports them.
const TABLES: [&str; 4] = ["account_address", "address", "account", "signed_in"];

/// The throttle's gauges.
#[derive(Debug, Clone)]
pub struct LoginGauges {
    entries: Family<TableLabel, Gauge>,
}

impl LoginGauges {
    /// Registers the family, every table at zero.
    pub fn register(families: &mut Families) -> Self {
        let entries = Family::<TableLabel, Gauge>::default();
        for table in TABLES {
            entries.get_or_create_owned(&TableLabel { table });
        }
        families.register(
            "berth_login_throttle_entries",
            "Failed-login records kept by this process, by throttle table (each is bounded)",
            entries.clone(),
        );
        Self { entries }
    }

    /// Sets the gauges from the throttle's table sizes.
    pub fn set(&self, sizes: [usize; 4]) {
        for (table, size) in TABLES.into_iter().zip(sizes) {
            self.entries
                .get_or_create(&TableLabel { table })
                .set(i64::try_from(size).unwrap_or(i64::MAX));
        }
    }
}
