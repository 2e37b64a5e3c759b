//! The JSON API of an organization's own retention rules and webhooks under
//! `/api/v1/orgs/{org}`: retention rules read, replaced as a whole, and tried out (what a
//! retention pass would delete now); webhooks listed, created, changed, deleted, tested, and
//! their delivery log. A webhook's secret is write-only: answers say `has_secret`, never it.
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
//! GET    /api/v1/orgs/{org}/webhooks               {"webhooks": [...]}
//! POST   /api/v1/orgs/{org}/webhooks               {"url", "events": ["push"], "scope"?, "secret"?}
//! PUT    /api/v1/orgs/{org}/webhooks/{id}          same; no "secret": the secret stays
//! DELETE /api/v1/orgs/{org}/webhooks/{id}
//! POST   /api/v1/orgs/{org}/webhooks/{id}/test     the test delivery and its first attempt
//! GET    /api/v1/orgs/{org}/webhooks/{id}/deliveries?n=20
//! GET    /api/v1/orgs/{org}/audit?repository=&actor=&action=&since=MS&until=MS&before=ID&n=N
//!                                                  {"entries": [...]}, newest first
//! ```
//!
//! The audit log of an organization holds only entries about it: its repositories, and
//! changes of the organization, its members, teams, robots, rules and webhooks.

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::json;

use super::auth::Gate;
use super::caller::{JsonBody, MaybeJson, OrgManager, Refusal};
use crate::meta::accounts::AccountKind;
use crate::meta::audit::AuditQuery;
use crate::meta::events::HookEvent;
use crate::meta::org_retention::RetentionRule;
use crate::service::Registry;
use crate::service::org_webhooks::HookRequest;

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
        .route(
            "/api/v1/orgs/{org}/webhooks",
            get(list_hooks).post(create_hook),
        )
        .route(
            "/api/v1/orgs/{org}/webhooks/{id}",
            put(update_hook).delete(delete_hook),
        )
        .route("/api/v1/orgs/{org}/webhooks/{id}/test", post(test_hook))
        .route(
            "/api/v1/orgs/{org}/webhooks/{id}/deliveries",
            get(hook_deliveries),
        )
        .route("/api/v1/orgs/{org}/audit", get(org_audit))
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

/// A webhook, as sent.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Hook {
    url: String,
    events: Vec<HookEvent>,
    #[serde(default)]
    scope: String,
    secret: Option<String>,
}

impl From<Hook> for HookRequest {
    fn from(h: Hook) -> Self {
        HookRequest {
            url: h.url,
            scope: h.scope,
            events: h.events,
            secret: h.secret,
        }
    }
}

/// The `{id}` of a webhook path.
fn hook_id(org: &str, id: &str) -> Result<i64, Refusal> {
    id.parse()
        .map_err(|_| Refusal::NotFound(format!("webhook {id} of {org} not found")))
}

/// `GET`: the organization's webhooks (without secrets).
async fn list_hooks(State(p): State<OrgPolicy>, m: OrgManager) -> ApiResult {
    let hooks = p.registry.org_webhooks(&m.org).await?;
    Ok(super::json::ok(StatusCode::OK, json!({"webhooks": hooks})))
}

/// `POST`: adds a webhook; `201` with it.
async fn create_hook(
    State(p): State<OrgPolicy>,
    m: OrgManager,
    JsonBody(hook): JsonBody<Hook>,
) -> ApiResult {
    let hook = p
        .registry
        .create_org_webhook(&m.org, &hook.into(), &m.caller.origin)
        .await?;
    Ok(super::json::ok(StatusCode::CREATED, json!(hook)))
}

/// `PUT`: changes a webhook; its secret only if one is sent.
async fn update_hook(
    State(p): State<OrgPolicy>,
    Path((_, id)): Path<(String, String)>,
    m: OrgManager,
    JsonBody(hook): JsonBody<Hook>,
) -> ApiResult {
    let id = hook_id(&m.org, &id)?;
    let hook = p
        .registry
        .update_org_webhook(&m.org, id, &hook.into(), &m.caller.origin)
        .await?;
    Ok(super::json::ok(StatusCode::OK, json!(hook)))
}

/// `DELETE`: deletes a webhook.
async fn delete_hook(
    State(p): State<OrgPolicy>,
    Path((_, id)): Path<(String, String)>,
    m: OrgManager,
) -> ApiResult {
    let id = hook_id(&m.org, &id)?;
    p.registry
        .delete_org_webhook(&m.org, id, &m.caller.origin)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST test`: sends a test event now; the delivery with its first attempt.
async fn test_hook(
    State(p): State<OrgPolicy>,
    Path((_, id)): Path<(String, String)>,
    m: OrgManager,
) -> ApiResult {
    let id = hook_id(&m.org, &id)?;
    let delivery = p
        .registry
        .test_org_webhook(&m.org, id, &m.caller.origin)
        .await?;
    Ok(super::json::ok(StatusCode::OK, json!(delivery)))
}

/// `?n=` of the delivery log.
#[derive(Deserialize)]
struct LogQuery {
    n: Option<u32>,
}

/// `GET deliveries`: the newest deliveries of a webhook, with their attempts.
async fn hook_deliveries(
    State(p): State<OrgPolicy>,
    Path((_, id)): Path<(String, String)>,
    Query(q): Query<LogQuery>,
    m: OrgManager,
) -> ApiResult {
    let id = hook_id(&m.org, &id)?;
    let log = p
        .registry
        .org_webhook_deliveries(&m.org, id, q.n.unwrap_or(20))
        .await?;
    Ok(super::json::ok(StatusCode::OK, json!({"deliveries": log})))
}

/// The filters of an organization's audit log.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditParams {
    repository: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
    before: Option<i64>,
    n: Option<u32>,
}

/// `GET audit`: the organization's audit log, newest first.
async fn org_audit(
    State(p): State<OrgPolicy>,
    m: OrgManager,
    params: Result<Query<AuditParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(q) = params.map_err(|_| {
        Refusal::Invalid(
            "query parameters are repository, actor, action, since and until (Unix ms), \
             before (an entry id) and n (a count)"
                .into(),
        )
    })?;
    // An administrator manages every organization, even one that does not exist.
    p.gate
        .accounts
        .account(&m.org, Some(AccountKind::Org))
        .await?;
    let query = AuditQuery {
        repository: q.repository.as_deref(),
        actor: q.actor.as_deref(),
        action: q.action.as_deref(),
        org: None,
        since_ms: q.since,
        until_ms: q.until,
        before_id: q.before,
        limit: q.n.unwrap_or(100),
    };
    let entries = p.registry.org_audit(&m.org, query).await?;
    Ok(super::json::ok(StatusCode::OK, json!({"entries": entries})))
}
