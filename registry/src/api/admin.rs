//! The JSON administration API under `/api/v1`: users, organizations, members, teams,
//! grants, repository visibility, personal access tokens and robot accounts. `berth admin`
//! does the same from the command line; the web UI builds on this.
//!
//! Callers authenticate with HTTP Basic (a user's password). Administrators may do
//! everything; an organization's owners manage its members, teams, grants and robots; users
//! manage their own password and tokens; visibility needs every right on the repository.
//! Errors are `{"error": CODE, "message": TEXT}` with a matching status.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Gate;
use super::caller::{Caller, JsonBody, MAY_NOT, MaybeJson, OrgManager, Refusal};
use crate::auth::{Actions, Role};
use crate::meta::accounts::{AccountKind, AccountRecord, MemberRecord, TokenRecord};
use crate::meta::events::Origin;
use crate::service::accounts::{Authority, login_name};

/// The routes, over the gate's accounts service.
pub fn router(gate: Arc<Gate>) -> Router {
    Router::new()
        .route("/api/v1/user", get(whoami))
        .route("/api/v1/users", get(list_users).post(create_user))
        .route(
            "/api/v1/users/{name}",
            axum::routing::patch(update_user).delete(delete_user),
        )
        .route("/api/v1/orgs", get(list_orgs).post(create_org))
        .route("/api/v1/namespaces", get(list_namespaces))
        .route("/api/v1/orgs/{org}", axum::routing::delete(delete_org))
        .route("/api/v1/orgs/{org}/members", get(list_members))
        .route(
            "/api/v1/orgs/{org}/members/{user}",
            put(put_member).delete(delete_member),
        )
        .route(
            "/api/v1/orgs/{org}/teams",
            get(list_teams).post(create_team),
        )
        .route(
            "/api/v1/orgs/{org}/teams/{team}",
            axum::routing::delete(delete_team),
        )
        .route(
            "/api/v1/orgs/{org}/teams/{team}/members/{user}",
            put(put_team_member).delete(delete_team_member),
        )
        .route(
            "/api/v1/orgs/{org}/teams/{team}/grants",
            put(put_grant).delete(delete_grant),
        )
        .route(
            "/api/v1/orgs/{org}/robots",
            get(list_robots).post(create_robot),
        )
        .route(
            "/api/v1/orgs/{org}/robots/{name}",
            axum::routing::delete(delete_robot),
        )
        .route("/api/v1/tokens", get(list_tokens).post(create_token))
        .route("/api/v1/tokens/{name}", axum::routing::delete(delete_token))
        .route(
            "/api/v1/visibility/{*repository}",
            get(get_visibility).put(put_visibility),
        )
        .with_state(gate)
        .layer(axum::middleware::map_response(tag_route))
}

async fn tag_route(mut response: Response) -> Response {
    response
        .extensions_mut()
        .insert(super::RouteName("admin_api"));
    response
}

type ApiResult = Result<Response, Refusal>;

fn ok(status: StatusCode, body: Value) -> ApiResult {
    Ok(super::json::ok(status, body))
}

/// Refuses a caller who is neither an administrator nor a member of `org`.
async fn member_or_admin(g: &Gate, c: &Caller, org: &str) -> Result<Vec<MemberRecord>, Refusal> {
    let members = g.accounts.members(org).await?;
    if !c.admin() && !members.iter().any(|m| m.name == c.record.name) {
        return Err(MAY_NOT);
    }
    Ok(members)
}

fn user_json(u: &AccountRecord) -> Value {
    json!({"name": u.name, "admin": u.admin, "disabled": u.disabled, "created_at": u.created_at})
}

fn token_json(t: &TokenRecord) -> Value {
    json!({
        "owner": t.owner_name,
        "name": t.name,
        "login": login_name(t),
        "scopes": t.scopes,
        "created_at": t.created_at,
        "expires_at": t.expires_at,
        "last_used_at": t.last_used_at,
        "revoked_at": t.revoked_at,
    })
}

// ---- Users ----------------------------------------------------------------------------------

async fn whoami(c: Caller) -> ApiResult {
    ok(StatusCode::OK, user_json(&c.record))
}

async fn list_users(State(g): State<Arc<Gate>>, c: Caller) -> ApiResult {
    c.require_admin()?;
    let users = g.accounts.list(AccountKind::User).await?;
    ok(
        StatusCode::OK,
        json!({"users": users.iter().map(user_json).collect::<Vec<_>>()}),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    name: String,
    password: String,
    #[serde(default)]
    admin: bool,
    /// Give the new account the ownerless namespace of its name, with what is in it.
    #[serde(default)]
    adopt_namespace: bool,
}

async fn create_user(
    State(g): State<Arc<Gate>>,
    c: Caller,
    JsonBody(new): JsonBody<NewUser>,
) -> ApiResult {
    c.require_admin()?;
    let authority = Authority::Administrator {
        adopt_namespace: new.adopt_namespace,
    };
    let u = g
        .accounts
        .create_user(&new.name, &new.password, new.admin, authority, &c.origin)
        .await?;
    ok(StatusCode::CREATED, user_json(&u))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserChange {
    password: Option<String>,
    admin: Option<bool>,
    disabled: Option<bool>,
}

async fn update_user(
    State(g): State<Arc<Gate>>,
    Path(name): Path<String>,
    c: Caller,
    JsonBody(change): JsonBody<UserChange>,
) -> ApiResult {
    let own_password_only =
        c.record.name == name && change.admin.is_none() && change.disabled.is_none();
    if !c.admin() && !own_password_only {
        return Err(MAY_NOT);
    }
    if let Some(p) = &change.password {
        g.accounts.set_password(&name, p, &c.origin).await?;
    }
    if let Some(a) = change.admin {
        g.accounts.set_admin(&name, a, &c.origin).await?;
    }
    if let Some(d) = change.disabled {
        g.accounts.set_disabled(&name, d, &c.origin).await?;
    }
    let u = g.accounts.account(&name, Some(AccountKind::User)).await?;
    ok(StatusCode::OK, user_json(&u))
}

async fn delete_user(State(g): State<Arc<Gate>>, Path(name): Path<String>, c: Caller) -> ApiResult {
    c.require_admin()?;
    g.accounts.account(&name, Some(AccountKind::User)).await?;
    g.accounts.delete_account(&name, &c.origin).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- Namespaces ------------------------------------------------------------------------------

async fn list_namespaces(State(g): State<Arc<Gate>>, c: Caller) -> ApiResult {
    c.require_admin()?;
    let list: Vec<Value> = g
        .accounts
        .namespaces()
        .await?
        .iter()
        .map(|n| json!({"name": n.name, "owner": n.owner, "repositories": n.repositories}))
        .collect();
    ok(StatusCode::OK, json!({"namespaces": list}))
}

// ---- Organizations, members, teams ----------------------------------------------------------

async fn list_orgs(State(g): State<Arc<Gate>>, c: Caller) -> ApiResult {
    let mut orgs = Vec::new();
    for o in g.accounts.list(AccountKind::Org).await? {
        let members = g.accounts.members(&o.name).await?;
        let me = members.iter().find(|m| m.name == c.record.name);
        if c.admin() || me.is_some() {
            orgs.push(json!({"name": o.name, "owner": me.is_some_and(|m| m.owner)}));
        }
    }
    ok(StatusCode::OK, json!({"organizations": orgs}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Named {
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOrg {
    name: String,
    /// Administrators only: give the new organization the ownerless namespace of its name.
    #[serde(default)]
    adopt_namespace: bool,
}

async fn create_org(
    State(g): State<Arc<Gate>>,
    c: Caller,
    JsonBody(new): JsonBody<NewOrg>,
) -> ApiResult {
    // Any user may found an organization in a namespace nobody has used; they own it.
    let authority = if c.admin() {
        Authority::Administrator {
            adopt_namespace: new.adopt_namespace,
        }
    } else if new.adopt_namespace {
        return Err(Refusal::Forbidden(
            "only administrators may adopt a namespace",
        ));
    } else {
        Authority::SelfService
    };
    let o = g
        .accounts
        .create_org(&new.name, Some(&c.record.name), authority, &c.origin)
        .await?;
    ok(StatusCode::CREATED, json!({"name": o.name}))
}

async fn delete_org(State(g): State<Arc<Gate>>, m: OrgManager) -> ApiResult {
    g.accounts.delete_account(&m.org, &m.caller.origin).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_members(State(g): State<Arc<Gate>>, Path(org): Path<String>, c: Caller) -> ApiResult {
    let list: Vec<Value> = member_or_admin(&g, &c, &org)
        .await?
        .iter()
        .map(|m| json!({"name": m.name, "owner": m.owner}))
        .collect();
    ok(StatusCode::OK, json!({"members": list}))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Membership {
    #[serde(default)]
    owner: bool,
}

async fn put_member(
    State(g): State<Arc<Gate>>,
    Path((_, user)): Path<(String, String)>,
    m: OrgManager,
    MaybeJson(membership): MaybeJson<Membership>,
) -> ApiResult {
    let owner = membership.unwrap_or_default().owner;
    g.accounts
        .add_member(&m.org, &user, owner, &m.caller.origin)
        .await?;
    ok(StatusCode::OK, json!({"name": user, "owner": owner}))
}

async fn delete_member(
    State(g): State<Arc<Gate>>,
    Path((_, user)): Path<(String, String)>,
    m: OrgManager,
) -> ApiResult {
    g.accounts
        .remove_member(&m.org, &user, &m.caller.origin)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_teams(State(g): State<Arc<Gate>>, Path(org): Path<String>, c: Caller) -> ApiResult {
    member_or_admin(&g, &c, &org).await?;
    let teams: Vec<Value> = g
        .accounts
        .teams(&org)
        .await?
        .into_iter()
        .map(|t| {
            let grants: Vec<Value> = t
                .grants
                .iter()
                .map(|(repo, role)| {
                    json!({"repository": (!repo.is_empty()).then_some(repo), "role": role.as_str()})
                })
                .collect();
            json!({"name": t.name, "members": t.members, "grants": grants})
        })
        .collect();
    ok(StatusCode::OK, json!({"teams": teams}))
}

async fn create_team(
    State(g): State<Arc<Gate>>,
    m: OrgManager,
    JsonBody(new): JsonBody<Named>,
) -> ApiResult {
    g.accounts
        .create_team(&m.org, &new.name, &m.caller.origin)
        .await?;
    ok(
        StatusCode::CREATED,
        json!({"name": new.name, "members": [], "grants": []}),
    )
}

async fn delete_team(
    State(g): State<Arc<Gate>>,
    Path((_, team)): Path<(String, String)>,
    m: OrgManager,
) -> ApiResult {
    g.accounts
        .delete_team(&m.org, &team, &m.caller.origin)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn put_team_member(
    State(g): State<Arc<Gate>>,
    Path((_, team, user)): Path<(String, String, String)>,
    m: OrgManager,
) -> ApiResult {
    g.accounts
        .set_team_member(&m.org, &team, &user, true, &m.caller.origin)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn delete_team_member(
    State(g): State<Arc<Gate>>,
    Path((_, team, user)): Path<(String, String, String)>,
    m: OrgManager,
) -> ApiResult {
    g.accounts
        .set_team_member(&m.org, &team, &user, false, &m.caller.origin)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantBody {
    /// A repository of the organization; absent for the whole organization.
    repository: Option<String>,
    /// read, write or admin; absent (on DELETE) to remove.
    role: Option<Role>,
}

async fn put_grant(
    State(g): State<Arc<Gate>>,
    Path((_, team)): Path<(String, String)>,
    m: OrgManager,
    JsonBody(grant): JsonBody<GrantBody>,
) -> ApiResult {
    let role = grant
        .role
        .ok_or_else(|| Refusal::Invalid("role is required: read, write or admin".into()))?;
    g.accounts
        .set_team_grant(
            &m.org,
            &team,
            grant.repository.as_deref(),
            Some(role),
            &m.caller.origin,
        )
        .await?;
    ok(
        StatusCode::OK,
        json!({"repository": grant.repository, "role": role.as_str()}),
    )
}

async fn delete_grant(
    State(g): State<Arc<Gate>>,
    Path((_, team)): Path<(String, String)>,
    m: OrgManager,
    MaybeJson(grant): MaybeJson<GrantBody>,
) -> ApiResult {
    let repository = grant.and_then(|body| body.repository);
    g.accounts
        .set_team_grant(&m.org, &team, repository.as_deref(), None, &m.caller.origin)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- Tokens and robots ----------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
    scopes: Vec<String>,
    expires_days: Option<u64>,
}

async fn issue_token(g: &Gate, owner: &str, new: NewToken, by: &Origin) -> ApiResult {
    let expires = new
        .expires_days
        .map(|d| Duration::from_secs(d.saturating_mul(86_400)));
    let t = g
        .accounts
        .create_token(owner, &new.name, &new.scopes, expires, by)
        .await?;
    let mut shown = token_json(&t.record);
    shown["secret"] = Value::String(t.secret);
    ok(StatusCode::CREATED, shown)
}

async fn list_tokens(State(g): State<Arc<Gate>>, c: Caller) -> ApiResult {
    let tokens = g.accounts.tokens(Some(&c.record.name)).await?;
    ok(
        StatusCode::OK,
        json!({"tokens": tokens.iter().map(token_json).collect::<Vec<_>>()}),
    )
}

async fn create_token(
    State(g): State<Arc<Gate>>,
    c: Caller,
    JsonBody(new): JsonBody<NewToken>,
) -> ApiResult {
    issue_token(&g, &c.record.name, new, &c.origin).await
}

async fn delete_token(
    State(g): State<Arc<Gate>>,
    Path(name): Path<String>,
    c: Caller,
) -> ApiResult {
    g.accounts
        .revoke_token(&c.record.name, &name, &c.origin)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_robots(State(g): State<Arc<Gate>>, m: OrgManager) -> ApiResult {
    let tokens = g.accounts.tokens(Some(&m.org)).await?;
    ok(
        StatusCode::OK,
        json!({"robots": tokens.iter().map(token_json).collect::<Vec<_>>()}),
    )
}

async fn create_robot(
    State(g): State<Arc<Gate>>,
    m: OrgManager,
    JsonBody(new): JsonBody<NewToken>,
) -> ApiResult {
    g.accounts.account(&m.org, Some(AccountKind::Org)).await?;
    issue_token(&g, &m.org, new, &m.caller.origin).await
}

async fn delete_robot(
    State(g): State<Arc<Gate>>,
    Path((_, name)): Path<(String, String)>,
    m: OrgManager,
) -> ApiResult {
    g.accounts
        .revoke_token(&m.org, &name, &m.caller.origin)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- Repository visibility ------------------------------------------------------------------

/// Whether the caller may do `actions` on `repository`.
async fn may(g: &Gate, c: &Caller, repository: &str, actions: Actions) -> Result<bool, Refusal> {
    // The gate logged the cause of a failure already.
    g.may(&c.principal, &[(repository.to_owned(), actions)])
        .await
        .map_err(|_| Refusal::Internal("access check failed".into()))
}

async fn get_visibility(
    State(g): State<Arc<Gate>>,
    Path(repository): Path<String>,
    c: Caller,
) -> ApiResult {
    if !may(&g, &c, &repository, Actions::PULL).await? {
        return Err(Refusal::NotFound("no such repository".into()));
    }
    let public = g.accounts.is_public(&repository).await?;
    ok(
        StatusCode::OK,
        json!({"repository": repository, "public": public}),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Visibility {
    public: bool,
}

async fn put_visibility(
    State(g): State<Arc<Gate>>,
    Path(repository): Path<String>,
    c: Caller,
    JsonBody(v): JsonBody<Visibility>,
) -> ApiResult {
    if !may(&g, &c, &repository, Actions::ALL).await? {
        return Err(MAY_NOT);
    }
    g.accounts
        .set_public(&repository, v.public, &c.origin)
        .await?;
    ok(
        StatusCode::OK,
        json!({"repository": repository, "public": v.public}),
    )
}
