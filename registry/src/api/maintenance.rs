//! The JSON API of the background passes, for hub administrators only: the recorded
//! garbage-collection passes and where the scrub stands (see
//! [`crate::service::maintenance`]). Errors are `{"error": CODE, "message": TEXT}`.
//!
//! ```text
//! GET /api/v1/gc/passes?n=20   {"passes": [{"started_at", "finished_at", "run_by": "serve"|"cli",
//!                               "manifests_removed", "blobs_removed", "bytes_freed", "error"}]}
//! GET /api/v1/scrub            {"progress": {...}, "findings": [{"problem", "digest",
//!                               "repository", "found_at", ...}]}
//! ```

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use super::auth::Gate;
use super::caller::{Caller, Refusal};
use crate::meta::maintenance::GC_PASSES_KEPT;
use crate::service::Registry;

/// What the handlers work with.
#[derive(Clone)]
struct Maintenance {
    registry: Registry,
    gate: Arc<Gate>,
}

impl FromRef<Maintenance> for Arc<Gate> {
    fn from_ref(p: &Maintenance) -> Self {
        p.gate.clone()
    }
}

/// The routes.
pub fn router(registry: Registry, gate: Arc<Gate>) -> Router {
    Router::new()
        .route("/api/v1/gc/passes", get(gc_passes))
        .route("/api/v1/scrub", get(scrub))
        .with_state(Maintenance { registry, gate })
        .layer(axum::middleware::map_response(
            |mut response: Response| async move {
                response
                    .extensions_mut()
                    .insert(super::RouteName("maintenance_api"));
                response
            },
        ))
}

type ApiResult = Result<Response, Refusal>;

/// How many passes to list.
#[derive(Deserialize)]
struct Count {
    n: Option<u32>,
}

/// `GET /api/v1/gc/passes`: the newest passes (`n`, default and at most all kept), newest
/// first.
async fn gc_passes(
    State(p): State<Maintenance>,
    caller: Caller,
    Query(q): Query<Count>,
) -> ApiResult {
    caller.require_admin()?;
    let kept = u32::try_from(GC_PASSES_KEPT).unwrap_or(u32::MAX);
    let passes = p.registry.gc_passes(q.n.unwrap_or(kept).min(kept)).await?;
    Ok(super::json::ok(StatusCode::OK, json!({"passes": passes})))
}

/// `GET /api/v1/scrub`: the current round's progress and the open findings.
async fn scrub(State(p): State<Maintenance>, caller: Caller) -> ApiResult {
    caller.require_admin()?;
    let status = p.registry.scrub_status().await?;
    Ok(super::json::ok(StatusCode::OK, json!(status)))
}
