//! The JSON API of quotas: administrators list, set and remove the quotas stored in SQL;
//! an organization's owners (and administrators) read the quotas of their organization with
//! what is used of them. The configuration file's `[[policies.quota]]` are listed alongside
//! (`"source": "config"`) and cannot be changed here; how the two combine is in
//! [`crate::service::quota`]. Errors are `{"error": CODE, "message": TEXT}`; a refused quota
//! changes nothing.
//!
//! ```text
//! GET    /api/v1/quotas                 admins: {"quotas": [every quota, with usage]}
//! GET    /api/v1/orgs/{org}/quota       owners, admins: {"org", "total", "quotas": [...]}
//! PUT    /api/v1/quotas/{scope}         admins: {"max_bytes": 1073741824 | "10GiB",
//!                                                "max_repositories": 20}  (one or both)
//! DELETE /api/v1/quotas/{scope}         admins
//! ```

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use super::auth::Gate;
use super::caller::{Caller, JsonBody, OrgManager, Refusal};
use crate::domain::RepoName;
use crate::service::Registry;
use crate::service::quota::{SizeInput, parse_quota};

/// What the handlers work with.
#[derive(Clone)]
struct QuotaApi {
    registry: Registry,
    gate: Arc<Gate>,
}

impl FromRef<QuotaApi> for Arc<Gate> {
    fn from_ref(p: &QuotaApi) -> Self {
        p.gate.clone()
    }
}

/// The routes.
pub fn router(registry: Registry, gate: Arc<Gate>) -> Router {
    Router::new()
        .route("/api/v1/quotas", get(list))
        .route(
            "/api/v1/quotas/{*scope}",
            axum::routing::put(set).delete(remove),
        )
        .route("/api/v1/orgs/{org}/quota", get(org_quota))
        .with_state(QuotaApi { registry, gate })
        .layer(axum::middleware::map_response(
            |mut response: Response| async move {
                response
                    .extensions_mut()
                    .insert(super::RouteName("quotas_api"));
                response
            },
        ))
}

type ApiResult = Result<Response, Refusal>;

/// A quota as sent.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewQuota {
    max_bytes: Option<SizeInput>,
    max_repositories: Option<SizeInput>,
}

/// `GET /api/v1/quotas`: every quota, configured and stored, with its usage.
async fn list(State(p): State<QuotaApi>, caller: Caller) -> ApiResult {
    caller.require_admin()?;
    let quotas = p.registry.quota_status(None).await?;
    Ok(super::json::ok(StatusCode::OK, json!({"quotas": quotas})))
}

/// `PUT /api/v1/quotas/{scope}`: sets (or replaces) the stored quota of a namespace or
/// repository; `200` with it.
async fn set(
    State(p): State<QuotaApi>,
    Path(scope): Path<String>,
    caller: Caller,
    JsonBody(body): JsonBody<NewQuota>,
) -> ApiResult {
    caller.require_admin()?;
    let (scope, limits) = parse_quota(
        &scope,
        body.max_bytes.as_ref(),
        body.max_repositories.as_ref(),
    )?;
    let record = p.registry.set_quota(&scope, limits, &caller.origin).await?;
    Ok(super::json::ok(StatusCode::OK, json!(record)))
}

/// `DELETE /api/v1/quotas/{scope}`: removes a stored quota; `204`.
async fn remove(State(p): State<QuotaApi>, Path(scope): Path<String>, caller: Caller) -> ApiResult {
    caller.require_admin()?;
    p.registry.delete_quota(&scope, &caller.origin).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/v1/orgs/{org}/quota`: the quotas over and within the organization, with usage.
async fn org_quota(State(p): State<QuotaApi>, m: OrgManager) -> ApiResult {
    let ns = RepoName::parse(&m.org)
        .map_err(|e| Refusal::Invalid(format!("invalid organization name: {e}")))?;
    let quotas = p.registry.namespace_quotas(&ns).await?;
    let total = p.registry.usage_total(&ns).await?;
    Ok(super::json::ok(
        StatusCode::OK,
        json!({"org": m.org, "total": total, "quotas": quotas}),
    ))
}
