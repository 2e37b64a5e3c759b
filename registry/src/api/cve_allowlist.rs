//! The JSON API of an organization's own CVE allowlist:
//!
//! ```text
//! GET /api/v1/orgs/{org}/cve-allowlist   {"org", "entries": [...], "updated_by", "updated_at",
//!                                         "instance_policies": [{"scope", "prevent_vulnerable", "entries"}]}
//! PUT /api/v1/orgs/{org}/cve-allowlist   {"entries": [{"id": "CVE-2023-1234", "expires": "2027-01-31", "reason": "..."}]}
//! ```
//!
//! A `PUT` replaces the organization's list whole (audited with the old and the new entries).
//! Its entries are added to those of the configuration's `[[scan.policy]]` table covering a
//! repository of the organization, which are listed beside and cannot be changed here (see
//! [`crate::service::vuln_policy`]). Only the organization's owners and hub administrators
//! may read or change it, as for immutable-tag rules ([`super::caller::OrgManager`]).

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use berth_scan::policy::AllowItem;
use serde::Deserialize;
use serde_json::json;

use super::auth::Gate;
use super::caller::{JsonBody, OrgManager, Refusal};
use crate::service::Registry;
use crate::service::vuln_policy::AllowlistError;

#[derive(Clone)]
struct Lists {
    registry: Registry,
    gate: Arc<Gate>,
}

impl FromRef<Lists> for Arc<Gate> {
    fn from_ref(l: &Lists) -> Self {
        l.gate.clone()
    }
}

impl From<AllowlistError> for Refusal {
    fn from(e: AllowlistError) -> Self {
        match e {
            AllowlistError::Invalid(m) => Refusal::Invalid(m),
            AllowlistError::NotFound(m) => Refusal::NotFound(m),
            AllowlistError::Registry(e) => e.into(),
        }
    }
}

/// The routes.
pub fn router(registry: Registry, gate: Arc<Gate>) -> Router {
    Router::new()
        .route("/api/v1/orgs/{org}/cve-allowlist", get(show).put(replace))
        .with_state(Lists { registry, gate })
        .layer(axum::middleware::map_response(
            |mut response: Response| async move {
                response
                    .extensions_mut()
                    .insert(super::RouteName("cve_allowlist_api"));
                response
            },
        ))
}

/// A new list.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewList {
    entries: Vec<AllowItem>,
}

/// `GET`: the organization's entries and the configuration's that apply in it.
async fn show(State(l): State<Lists>, m: OrgManager) -> Result<Response, Refusal> {
    let view = l.registry.org_cve_allowlist(&m.org).await?;
    Ok(super::json::ok(StatusCode::OK, json!(view)))
}

/// `PUT`: replaces the organization's entries; `200` with the list now in force.
async fn replace(
    State(l): State<Lists>,
    m: OrgManager,
    JsonBody(new): JsonBody<NewList>,
) -> Result<Response, Refusal> {
    l.registry
        .set_org_cve_allowlist(&m.org, &new.entries, &m.caller.origin)
        .await?;
    let view = l.registry.org_cve_allowlist(&m.org).await?;
    Ok(super::json::ok(StatusCode::OK, json!(view)))
}
