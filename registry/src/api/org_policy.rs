//! The JSON API of an organization's retention rules under `/api/v1/orgs/{org}`: read,
//! replaced as a whole, and tried out (what a retention pass would delete now).
//!
//! Only the organization's owners and hub administrators may read or change them (members,
//! other organizations' owners and robots are refused, as in [`super::policies`]). The
//! configuration's policies that apply in the organization are listed alongside; how the two
//! combine is in [`crate::service::retention`]. Errors are `{"error": CODE, "message": TEXT}`.
//!
//! ```text
//! GET  /api/v1/orgs/{org}/retention          {"rules": [...], "instance_policies": [...]}
//! PUT  /api/v1/orgs/{org}/retention          {"rules": [{"scope": "acme/app", "keep_newest": 5,
//!                                              "keep_pushed_within_days": 30,
//!                                              "keep_pulled_within_days": 90,
//!                                              "keep_tags": ["v*"]}, ...]}
//! POST /api/v1/orgs/{org}/retention/dry-run  same body (proposed rules), or none (the saved
//!                                            ones): {"tags_judged": N, "deleted": [...]}
//! ```

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::auth::Gate;
use super::caller::{JsonBody, MaybeJson, OrgManager, Refusal};
use crate::meta::org_retention::RetentionRule;
use crate::service::Registry;

/// What the handlers work with.
#[derive(Clone)]
struct OrgPolicy {
    registry: Registry,
    gate: Arc<Gate>,
}

impl FromRef<OrgPolicy> for Arc<Gate> {
    fn from_ref(p: &OrgPolicy) -> Self {
        p.gate.clone()
    }
}

/// The routes.
pub fn router(registry: Registry, gate: Arc<Gate>) -> Router {
    Router::new()
        .route(
            "/api/v1/orgs/{org}/retention",
            get(get_retention).put(put_retention),
        )
        .route("/api/v1/orgs/{org}/retention/dry-run", post(dry_run))
        .with_state(OrgPolicy { registry, gate })
        .layer(axum::middleware::map_response(
            |mut response: Response| async move {
                response
                    .extensions_mut()
                    .insert(super::RouteName("org_policy_api"));
                response
            },
        ))
}

type ApiResult = Result<Response, Refusal>;

/// An organization's retention rules, as sent.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rules {
    rules: Vec<RetentionRule>,
}

/// `GET`: the organization's rules, and the configuration's policies that apply in it.
async fn get_retention(State(p): State<OrgPolicy>, m: OrgManager) -> ApiResult {
    let rules = p.registry.org_retention(&m.org).await?;
    let instance = p.registry.instance_retention_in(&m.org);
    Ok(super::json::ok(
        StatusCode::OK,
        json!({"rules": rules, "instance_policies": instance}),
    ))
}

/// `PUT`: replaces the organization's rules (all checked first; nothing is saved if one is
/// invalid); `200` with the rules saved.
async fn put_retention(
    State(p): State<OrgPolicy>,
    m: OrgManager,
    JsonBody(body): JsonBody<Rules>,
) -> ApiResult {
    let rules = p
        .registry
        .set_org_retention(&m.org, &body.rules, &m.caller.origin)
        .await?;
    Ok(super::json::ok(StatusCode::OK, json!({"rules": rules})))
}

/// `POST dry-run`: the tags a retention pass would delete now with the proposed rules (or the
/// saved ones); nothing is saved or deleted.
async fn dry_run(
    State(p): State<OrgPolicy>,
    m: OrgManager,
    MaybeJson(body): MaybeJson<Rules>,
) -> ApiResult {
    let proposed = body.as_ref().map(|b| b.rules.as_slice());
    let report = p.registry.try_org_retention(&m.org, proposed).await?;
    Ok(super::json::ok(StatusCode::OK, json!(report)))
}
