//! The JSON API of an organization's own policies under `/api/v1/orgs/{org}`: immutable-tag
//! rules, listed, added, deleted and tried out (which existing tags a rule would freeze).
//!
//! Only the organization's owners and hub administrators may read or change them (members,
//! other organizations' owners and robots are refused, as in [`super::admin`]). Rules apply
//! together with the configuration file's, which are listed alongside and cannot be changed
//! here (see [`crate::service::immutable`]). Errors are `{"error": CODE, "message": TEXT}`.
//!
//! ```text
//! GET    /api/v1/orgs/{org}/immutable-rules          {"rules": [...], "instance_rules": [...]}
//! POST   /api/v1/orgs/{org}/immutable-rules          {"pattern": "v*", "repository": "org/app"?}
//! DELETE /api/v1/orgs/{org}/immutable-rules/{id}
//! POST   /api/v1/orgs/{org}/immutable-rules/dry-run  same body: {"tags": [...]} it would freeze
//! ```

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Gate;
use super::caller::{JsonBody, OrgManager, Refusal};
use crate::domain::RepoName;
use crate::service::Registry;
use crate::service::immutable::RuleSpec;

/// What the handlers work with.
#[derive(Clone)]
struct Policies {
    registry: Registry,
    gate: Arc<Gate>,
}

impl FromRef<Policies> for Arc<Gate> {
    fn from_ref(p: &Policies) -> Self {
        p.gate.clone()
    }
}

/// The routes.
pub fn router(registry: Registry, gate: Arc<Gate>) -> Router {
    Router::new()
        .route(
            "/api/v1/orgs/{org}/immutable-rules",
            get(list_rules).post(add_rule),
        )
        .route("/api/v1/orgs/{org}/immutable-rules/dry-run", post(dry_run))
        .route(
            "/api/v1/orgs/{org}/immutable-rules/{id}",
            delete(delete_rule),
        )
        .with_state(Policies { registry, gate })
        .layer(axum::middleware::map_response(
            |mut response: Response| async move {
                response
                    .extensions_mut()
                    .insert(super::RouteName("policies_api"));
                response
            },
        ))
}

type ApiResult = Result<Response, Refusal>;

/// A rule as asked for.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRule {
    /// A tag pattern: `*`, `?`, `[...]`.
    pattern: String,
    /// A repository or namespace of the organization; absent for all of it.
    repository: Option<String>,
}

impl NewRule {
    fn spec(&self, org: &str) -> Result<RuleSpec, Refusal> {
        Ok(RuleSpec::parse(
            org,
            self.repository.as_deref(),
            &self.pattern,
        )?)
    }
}

/// `GET`: the organization's rules, and the configuration's rules that apply in it.
async fn list_rules(State(p): State<Policies>, m: OrgManager) -> ApiResult {
    let rules = p.registry.org_immutable_rules(&m.org).await?;
    let instance: Vec<Value> = p
        .registry
        .instance_immutable_rules()
        .iter()
        .filter(|(scope, _)| {
            // Rules over the organization, or over part of it.
            let within = |a: &str, b: &str| RepoName::parse(a).is_ok_and(|a| a.is_within(b));
            within(scope, &m.org) || within(&m.org, scope)
        })
        .map(|(scope, patterns)| {
            let tags: Vec<&str> = patterns.iter().map(glob::Pattern::as_str).collect();
            json!({"scope": scope, "tags": tags})
        })
        .collect();
    Ok(super::json::ok(
        StatusCode::OK,
        json!({"rules": rules, "instance_rules": instance}),
    ))
}

/// `POST`: adds a rule; `201` with it.
async fn add_rule(
    State(p): State<Policies>,
    m: OrgManager,
    JsonBody(new): JsonBody<NewRule>,
) -> ApiResult {
    let spec = new.spec(&m.org)?;
    let rule = p
        .registry
        .add_immutable_rule(&m.org, &spec, &m.caller.origin)
        .await?;
    Ok(super::json::ok(StatusCode::CREATED, json!(rule)))
}

/// `DELETE`: deletes a rule of the organization.
async fn delete_rule(
    State(p): State<Policies>,
    Path((_, id)): Path<(String, String)>,
    m: OrgManager,
) -> ApiResult {
    let id: i64 = id
        .parse()
        .map_err(|_| Refusal::NotFound(format!("rule {id} of {} not found", m.org)))?;
    p.registry
        .delete_immutable_rule(&m.org, id, &m.caller.origin)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST dry-run`: the existing tags the rule would freeze; nothing is saved.
async fn dry_run(
    State(p): State<Policies>,
    m: OrgManager,
    JsonBody(new): JsonBody<NewRule>,
) -> ApiResult {
    let spec = new.spec(&m.org)?;
    let tags: Vec<Value> = p
        .registry
        .immutable_dry_run(&spec)
        .await?
        .into_iter()
        .map(|t| json!({"repository": t.repository, "tag": t.tag, "digest": t.digest}))
        .collect();
    Ok(super::json::ok(StatusCode::OK, json!({"tags": tags})))
}
