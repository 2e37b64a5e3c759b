//! The vulnerability check of `berth run` and `berth pull`: where a `[[scan.policy]]` table
//! with `prevent_vulnerable` in the local policy file covers an image, its stored layers are
//! inventoried and matched against the advisory database `berth scan` uses (opened through
//! berth's configuration: `BERTH_CONFIG`, `BERTH_DATABASE_URL`, `BERTH_SERVER_DATA_DIR`), and
//! the image is refused when unaccepted findings meet the threshold (see
//! `berth_runtime::vuln_check`). Without an imported advisory database a covered image is
//! refused, with the command that imports one.

use anyhow::Context;
use berth_runtime::store::Store;
use berth_runtime::vuln_check::ScanCheck;

/// Refuses stored image `name` if a vulnerability policy of `check` forbids it.
pub fn admit(store: &Store, name: &str, check: &ScanCheck) -> anyhow::Result<()> {
    let Some(record) = store.image(name)? else {
        return Ok(());
    };
    let Some(policy) = check.enforcing(&record) else {
        return Ok(());
    };
    let config = crate::load_config(&crate::ConfigArgs::default())
        .context("the advisory database is named by berth's configuration, which does not load")?;
    let inventory = berth_runtime::vuln_check::inventory(store, name, &record)?;
    let findings = crate::runtime_cli::block_on(async {
        let meta = crate::scan_cli::open_advisories(&config)
            .await
            .with_context(|| {
                format!(
                    "{name} is covered by vulnerability policy {:?}, and cannot be checked",
                    policy.scope
                )
            })?;
        let (_, found) = berth_registry::service::findings::match_inventory(
            &*meta,
            &inventory.packages,
            inventory.os.as_ref(),
        )
        .await?;
        anyhow::Ok(found)
    })?;
    check.judge(
        &format!("{name} ({})", record.manifest),
        policy,
        &findings.findings,
        chrono::Utc::now().timestamp(),
    )?;
    Ok(())
}
