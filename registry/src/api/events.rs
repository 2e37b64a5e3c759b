//! The JSON API of the audit log and webhooks under `/api/v1`, for hub administrators only
//! (with authentication off everything is open, as `/v2` is):
//!
//! - `GET /api/v1/audit?repository=R&actor=A&action=X&since=MS&before=ID&n=N`: entries
//!   newest first (`since` in Unix milliseconds, `before` an entry id for the next page);
//! - `GET /api/v1/webhooks`: the configured webhooks, and every organization's
//!   (`org_webhooks`), never their secrets;
//! - `POST /api/v1/webhooks/NAME/test`: queue a test event and make its first attempt now;
//! - `GET /api/v1/webhooks/NAME/deliveries?n=N`: the delivery log with every attempt.
//!
//! Errors are `{"error": CODE, "message": TEXT}`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Gate;
use super::hub::request_parts;
use super::json::error;
use crate::meta::audit::AuditQuery;
use crate::meta::events::Origin;
use crate::service::{Registry, RegistryError};

struct Events {
    registry: Registry,
    gate: Option<Arc<Gate>>,
    trust_forwarded: bool,
}

/// The routes.
pub fn router(registry: Registry, gate: Option<Arc<Gate>>, trust_forwarded: bool) -> Router {
    Router::new()
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/webhooks", get(webhooks))
        .route("/api/v1/webhooks/{name}/test", post(test))
        .route("/api/v1/webhooks/{name}/deliveries", get(deliveries))
        .with_state(Arc::new(Events {
            registry,
            gate,
            trust_forwarded,
        }))
}

impl Events {
    /// Who the administrator asking is; answers anyone else.
    async fn admin(&self, parts: &Parts) -> Result<Origin, Response> {
        let rp = request_parts(parts);
        match &self.gate {
            Some(gate) => gate.check_admin(&rp).await,
            None => Ok(rp.origin(String::new(), self.trust_forwarded)),
        }
    }
}

fn ok(body: Value) -> Response {
    super::json::ok(StatusCode::OK, body)
}

fn registry_error(e: &RegistryError) -> Response {
    match e {
        RegistryError::WebhookUnknown(_) => {
            error(StatusCode::NOT_FOUND, "not_found", e.to_string())
        }
        _ => {
            tracing::error!(error = %e, "audit or webhook API request failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal server error",
            )
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditParams {
    repository: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    since: Option<i64>,
    before: Option<i64>,
    n: Option<u32>,
}

/// `GET /api/v1/audit`.
async fn audit(
    State(events): State<Arc<Events>>,
    params: Result<Query<AuditParams>, axum::extract::rejection::QueryRejection>,
    parts: Parts,
) -> Response {
    if let Err(response) = events.admin(&parts).await {
        return response;
    }
    let Ok(Query(p)) = params else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid",
            "query parameters are repository, actor, action, since (Unix ms), before (an entry id) and n (a count)",
        );
    };
    let query = AuditQuery {
        repository: p.repository.as_deref(),
        actor: p.actor.as_deref(),
        action: p.action.as_deref(),
        org: None,
        since_ms: p.since,
        until_ms: None,
        before_id: p.before,
        limit: p.n.unwrap_or(100),
    };
    match events.registry.audit(query).await {
        Ok(entries) => ok(json!({"entries": entries})),
        Err(e) => registry_error(&e),
    }
}

/// `GET /api/v1/webhooks`.
async fn webhooks(State(events): State<Arc<Events>>, parts: Parts) -> Response {
    if let Err(response) = events.admin(&parts).await {
        return response;
    }
    let hooks: Vec<Value> = events
        .registry
        .webhooks()
        .all()
        .iter()
        .map(|h| {
            json!({
                "name": h.name,
                "url": h.url,
                "scope": h.scope,
                "events": h.events,
                "timeout_secs": h.timeout.as_secs(),
                "max_attempts": h.max_attempts,
            })
        })
        .collect();
    let org_hooks = match events.registry.all_org_webhooks().await {
        Ok(hooks) => hooks,
        Err(e) => return registry_error(&e),
    };
    let limits = events.registry.webhooks();
    let org_hooks: Vec<Value> = org_hooks
        .iter()
        .map(|h| {
            json!({
                "name": h.name(),
                "org": h.org,
                "id": h.id,
                "url": h.url,
                "scope": h.scope,
                "events": h.events,
                "has_secret": h.has_secret,
                "updated_by": h.updated_by,
                "updated_at": h.updated_at,
                "timeout_secs": limits.org_timeout().as_secs(),
                "max_attempts": limits.org_max_attempts(),
            })
        })
        .collect();
    ok(json!({"webhooks": hooks, "org_webhooks": org_hooks}))
}

/// `POST /api/v1/webhooks/NAME/test`.
async fn test(
    State(events): State<Arc<Events>>,
    Path(name): Path<String>,
    parts: Parts,
) -> Response {
    let origin = match events.admin(&parts).await {
        Ok(origin) => origin,
        Err(response) => return response,
    };
    match events.registry.test_webhook(&name, &origin).await {
        Ok(delivery) => ok(json!(delivery)),
        Err(e) => registry_error(&e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveryParams {
    n: Option<u32>,
}

/// `GET /api/v1/webhooks/NAME/deliveries`.
async fn deliveries(
    State(events): State<Arc<Events>>,
    Path(name): Path<String>,
    params: Result<Query<DeliveryParams>, axum::extract::rejection::QueryRejection>,
    parts: Parts,
) -> Response {
    if let Err(response) = events.admin(&parts).await {
        return response;
    }
    let Ok(Query(p)) = params else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid",
            "the query parameter is n (a count)",
        );
    };
    match events
        .registry
        .webhook_deliveries(Some(&name), p.n.unwrap_or(50))
        .await
    {
        Ok(log) => ok(json!({"webhook": name, "deliveries": log})),
        Err(e) => registry_error(&e),
    }
}
