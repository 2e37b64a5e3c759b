//! The JSON API of the hub's stored content under `/api/v1`: tag history and restores,
//! storage usage per repository and namespace, trust status, image inventories (SBOMs) and
//! their vulnerability findings.
//!
//! Callers authenticate as on `/v2` (HTTP Basic with a password or access token, or a bearer
//! token) and need pull on the repository to read, push to change it; with authentication
//! off everything is open, as `/v2` is. Usage of a namespace needs pull on each of its
//! repositories (so totals reveal nothing about repositories the caller cannot see). Errors are `{"error": CODE, "message": TEXT}`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{Gate, Need, RequestParts};
use crate::auth::Actions;
use crate::domain::{Digest, Reference, RepoName, Tag};
use crate::meta::events::Origin;
use crate::service::{Registry, RegistryError};

struct Hub {
    registry: Registry,
    gate: Option<Arc<Gate>>,
    trust_forwarded: bool,
}

/// The routes.
pub fn router(registry: Registry, gate: Option<Arc<Gate>>, trust_forwarded: bool) -> Router {
    Router::new()
        .route("/api/v1/tag-history/{*repository}", get(history))
        .route("/api/v1/tag-restore/{*repository}", post(restore))
        .route("/api/v1/usage", get(usage_all))
        .route("/api/v1/usage/{*scope}", get(usage))
        .route("/api/v1/trust/{*repository}", get(trust))
        .route("/api/v1/sbom/{*repository}", get(sbom))
        .route("/api/v1/findings/{*repository}", get(findings))
        .with_state(Arc::new(Hub {
            registry: registry.clone(),
            gate: gate.clone(),
            trust_forwarded,
        }))
        .merge(super::events::router(registry, gate, trust_forwarded))
        .layer(axum::middleware::map_response(
            |mut response: Response| async move {
                response
                    .extensions_mut()
                    .insert(super::RouteName("hub_api"));
                response
            },
        ))
}

use super::json::error;

fn ok(body: Value) -> Response {
    super::json::ok(StatusCode::OK, body)
}

fn registry_error(e: &RegistryError) -> Response {
    match e {
        RegistryError::NameUnknown(_) => error(StatusCode::NOT_FOUND, "not_found", e.to_string()),
        RegistryError::ManifestUnknown => error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such manifest in the repository",
        ),
        RegistryError::Denied(_) => error(StatusCode::FORBIDDEN, "denied", e.to_string()),
        RegistryError::RestoreImpossible(_) => {
            error(StatusCode::CONFLICT, "not_restorable", e.to_string())
        }
        _ => {
            tracing::error!(error = %e, "hub API request failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal server error",
            )
        }
    }
}

impl Hub {
    /// The repository named in the path, if the caller may do `actions` there, and who the
    /// caller is.
    async fn authorize(
        &self,
        parts: &Parts,
        repository: &str,
        actions: Actions,
    ) -> Result<(RepoName, Origin), Response> {
        let repo = RepoName::parse(repository)
            .map_err(|e| error(StatusCode::BAD_REQUEST, "invalid", e.to_string()))?;
        let rp = request_parts(parts);
        let origin = match &self.gate {
            Some(gate) => {
                gate.check_as(&rp, &Need::Repositories(vec![(repo.to_string(), actions)]))
                    .await?
                    .1
            }
            None => rp.origin(String::new(), self.trust_forwarded),
        };
        Ok((repo, origin))
    }

    /// The repository named in the path and the manifest `reference` names there, if the
    /// caller may pull it: what every per-manifest read (trust, SBOM, findings) starts with.
    async fn manifest_read(
        &self,
        parts: &Parts,
        repository: &str,
        reference: &str,
    ) -> Result<(RepoName, Reference), Response> {
        let (repo, _) = self.authorize(parts, repository, Actions::PULL).await?;
        let reference = Reference::parse(reference).map_err(|_| {
            error(
                StatusCode::BAD_REQUEST,
                "invalid",
                "reference must be a tag or a digest",
            )
        })?;
        Ok((repo, reference))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryParams {
    tag: Option<String>,
    before: Option<i64>,
    n: Option<u32>,
}

/// `GET /api/v1/tag-history/REPO[?tag=T][&before=ID][&n=N]`: changes newest first.
async fn history(
    State(hub): State<Arc<Hub>>,
    Path(repository): Path<String>,
    params: Result<Query<HistoryParams>, axum::extract::rejection::QueryRejection>,
    parts: Parts,
) -> Response {
    let Ok(Query(params)) = params else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid",
            "query parameters are tag, before (an entry id) and n (a count)",
        );
    };
    let repo = match hub.authorize(&parts, &repository, Actions::PULL).await {
        Ok((repo, _)) => repo,
        Err(response) => return response,
    };
    let tag = match params.tag.as_deref().map(Tag::parse).transpose() {
        Ok(tag) => tag,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid", e.to_string()),
    };
    match hub
        .registry
        .tag_history(&repo, tag.as_ref(), params.before, params.n.unwrap_or(100))
        .await
    {
        Ok(events) => ok(json!({"repository": repo.as_str(), "history": events})),
        Err(e) => registry_error(&e),
    }
}

/// `GET /api/v1/sbom/REPO?reference=TAG|DIGEST`: the manifest's inventory: `status`
/// (`pending`, `done`, `failed`, or `not_scanned` for a manifest with no job: an index, an
/// artifact, one pushed while scanning was off), the OS and packages once done.
async fn sbom(
    State(hub): State<Arc<Hub>>,
    Path(repository): Path<String>,
    params: Result<Query<TrustParams>, axum::extract::rejection::QueryRejection>,
    parts: Parts,
) -> Response {
    let Ok(Query(params)) = params else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid",
            "the query parameter is reference (a tag or a digest)",
        );
    };
    let (repo, reference) = match hub
        .manifest_read(&parts, &repository, &params.reference)
        .await
    {
        Ok(found) => found,
        Err(response) => return response,
    };
    match hub.registry.sbom_of(&repo, &reference).await {
        Ok(found) => ok(super::scans::render(&repo, &found)),
        Err(e) => registry_error(&e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FindingParams {
    reference: String,
    severity: Option<String>,
    fixable: Option<bool>,
}

/// `GET /api/v1/findings/REPO?reference=TAG|DIGEST[&severity=LEVEL][&fixable=true|false]`:
/// the manifest's vulnerability findings (`status` as for the SBOM, `done` once matched),
/// most severe first; `severity` keeps those at or above a level, `fixable` those with (or
/// without) a fixed version. Each finding says which allowlist entry accepts it, if any.
async fn findings(
    State(hub): State<Arc<Hub>>,
    Path(repository): Path<String>,
    params: Result<Query<FindingParams>, axum::extract::rejection::QueryRejection>,
    parts: Parts,
) -> Response {
    let Ok(Query(params)) = params else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid",
            "query parameters are reference (a tag or a digest), severity (unknown, low, medium, high, critical) and fixable (true or false)",
        );
    };
    let (repo, reference) = match hub
        .manifest_read(&parts, &repository, &params.reference)
        .await
    {
        Ok(found) => found,
        Err(response) => return response,
    };
    let severity = match params
        .severity
        .as_deref()
        .map(str::parse::<berth_scan::matching::Threshold>)
        .transpose()
    {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid", format!("severity: {e}")),
    };
    let filter = crate::service::findings::FindingFilter {
        severity,
        fixable: params.fixable,
    };
    match hub
        .registry
        .judged_findings(&repo, &reference, filter)
        .await
    {
        Ok(found) => ok(super::scans::render_findings(&repo, &found)),
        Err(e) => registry_error(&e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustParams {
    reference: String,
}

/// `GET /api/v1/trust/REPO?reference=TAG|DIGEST`: what the repository's trust policy says
/// about the manifest (`"trust": null` when no policy covers the repository).
async fn trust(
    State(hub): State<Arc<Hub>>,
    Path(repository): Path<String>,
    params: Result<Query<TrustParams>, axum::extract::rejection::QueryRejection>,
    parts: Parts,
) -> Response {
    let Ok(Query(params)) = params else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid",
            "the query parameter is reference (a tag or a digest)",
        );
    };
    let (repo, reference) = match hub
        .manifest_read(&parts, &repository, &params.reference)
        .await
    {
        Ok(found) => found,
        Err(response) => return response,
    };
    match hub.registry.trust_status_of(&repo, &reference).await {
        Ok((digest, status)) => ok(json!({
            "repository": repo.as_str(),
            "digest": digest.to_string(),
            "trust": status,
        })),
        Err(e) => registry_error(&e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RestoreBody {
    tag: String,
    digest: Option<String>,
}

/// `POST /api/v1/tag-restore/REPO` with `{"tag": T, "digest": D?}`.
async fn restore(
    State(hub): State<Arc<Hub>>,
    Path(repository): Path<String>,
    parts: Parts,
    body: Body,
) -> Response {
    let (repo, origin) = match hub.authorize(&parts, &repository, Actions::PULL_PUSH).await {
        Ok(authorized) => authorized,
        Err(response) => return response,
    };
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid",
            "request body too large",
        );
    };
    let body: RestoreBody = match serde_json::from_slice(&bytes) {
        Ok(body) => body,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid",
                format!("invalid JSON body: {e}"),
            );
        }
    };
    let tag = match Tag::parse(&body.tag) {
        Ok(tag) => tag,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid", e.to_string()),
    };
    let digest = match body.digest.as_deref().map(str::parse::<Digest>).transpose() {
        Ok(d) => d,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid", e.to_string()),
    };
    match hub
        .registry
        .restore_tag(&repo, &tag, digest.as_ref(), &origin)
        .await
    {
        Ok(restored) => ok(json!(restored)),
        Err(e) => registry_error(&e),
    }
}

/// `GET /api/v1/usage`: the whole registry.
async fn usage_all(State(hub): State<Arc<Hub>>, parts: Parts) -> Response {
    usage_of(&hub, &parts, None).await
}

/// `GET /api/v1/usage/NAME`: a repository or namespace.
async fn usage(State(hub): State<Arc<Hub>>, Path(scope): Path<String>, parts: Parts) -> Response {
    match RepoName::parse(&scope) {
        Ok(scope) => usage_of(&hub, &parts, Some(&scope)).await,
        Err(e) => error(StatusCode::BAD_REQUEST, "invalid", e.to_string()),
    }
}

async fn usage_of(hub: &Hub, parts: &Parts, scope: Option<&RepoName>) -> Response {
    let (usage, every) = match hub.registry.usage(scope).await {
        Ok(usage) => {
            let every = usage
                .repositories
                .iter()
                .map(|r| (r.repository.clone(), Actions::PULL))
                .collect();
            (Ok(usage), every)
        }
        // Whether a namespace exists is only told to whoever could read it.
        Err(e @ RegistryError::NameUnknown(_)) => {
            let name = scope.map_or_else(String::new, |s| s.to_string());
            (Err(e), vec![(name, Actions::PULL)])
        }
        Err(e) => return registry_error(&e),
    };
    if let Some(gate) = &hub.gate
        && let Err(response) = gate
            .check(&request_parts(parts), &Need::Repositories(every))
            .await
    {
        return response;
    }
    match usage {
        Ok(usage) => ok(json!(usage)),
        Err(e) => registry_error(&e),
    }
}

pub(super) fn request_parts(parts: &Parts) -> RequestParts<'_> {
    RequestParts {
        headers: &parts.headers,
        conn: parts.extensions.get::<crate::server::ConnInfo>().copied(),
        authority: parts.uri.authority().map(|a| a.as_str()),
    }
}
