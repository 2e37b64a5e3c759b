//! The JSON administration API under `/api/v1`: users, organizations, members, teams,
//! grants, repository visibility, personal access tokens and robot accounts. `berth admin`
//! does the same from the command line; the web UI builds on this.
//!
//! Callers authenticate with HTTP Basic (a user's password). Administrators may do
//! everything; an organization's owners manage its members, teams, grants and robots; users
//! manage their own password and tokens; visibility needs every right on the repository.
//! Errors are `{"error": CODE, "message": TEXT}` with a matching status.

#![expect(
    clippy::result_large_err,
    reason = "an early refusal is a finished response; it is returned once, never copied around"
)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::auth::Gate;
use crate::auth::{Actions, Principal, Role};
use crate::meta::accounts::{AccountKind, AccountRecord, TokenRecord};
use crate::meta::events::Origin;
use crate::service::accounts::{AdminError, AuthError, Authority, login_name};

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

type ApiResult = Result<Response, Response>;

use super::json::error;

fn ok(status: StatusCode, body: Value) -> ApiResult {
    Ok(super::json::ok(status, body))
}

fn admin_error(e: AdminError) -> Response {
    match e {
        AdminError::NotFound(_) => error(StatusCode::NOT_FOUND, "not_found", e.to_string()),
        AdminError::Exists(_) => error(StatusCode::CONFLICT, "exists", e.to_string()),
        AdminError::NamespaceHeld { .. } => {
            error(StatusCode::CONFLICT, "namespace_held", e.to_string())
        }
        AdminError::Name(_)
        | AdminError::Repository(_)
        | AdminError::Scope(_)
        | AdminError::Password(_)
        | AdminError::Invalid(_) => error(StatusCode::BAD_REQUEST, "invalid", e.to_string()),
        AdminError::Random(_) | AdminError::Meta(_) => {
            tracing::error!(error = %e, "administration request failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal server error",
            )
        }
    }
}

fn forbidden() -> Response {
    error(StatusCode::FORBIDDEN, "forbidden", "you may not do this")
}

/// The signed-in user (HTTP Basic with a password; access tokens are for registry clients).
struct Caller {
    principal: Principal,
    record: AccountRecord,
    /// Who they are and where they call from, for the audit log.
    origin: Origin,
}

impl Caller {
    fn admin(&self) -> bool {
        self.record.admin
    }

    fn require_admin(&self) -> Result<(), Response> {
        if self.admin() {
            Ok(())
        } else {
            Err(forbidden())
        }
    }
}

async fn caller(gate: &Gate, parts: &Parts) -> Result<Caller, Response> {
    let unauthorized = || {
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "sign in with HTTP Basic",
        );
        if let Ok(v) = header::HeaderValue::from_str("Basic realm=\"berth\"") {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        r
    };
    let Some((user, password)) = basic(&parts.headers) else {
        return Err(unauthorized());
    };
    let client = super::hub::request_parts(parts).client_addr(gate.trust_forwarded);
    match gate.accounts.login(&user, &password, client).await {
        Ok(principal @ Principal::User { .. }) => {
            let record = gate
                .accounts
                .account(&user, Some(AccountKind::User))
                .await
                .map_err(admin_error)?;
            let origin =
                super::hub::request_parts(parts).origin(record.name.clone(), gate.trust_forwarded);
            Ok(Caller {
                principal,
                record,
                origin,
            })
        }
        Ok(_) => Err(error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "access tokens cannot administer; sign in with a password",
        )),
        Err(AuthError::Throttled(wait)) => {
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "throttled",
                format!(
                    "too many failed logins; retry in {} seconds",
                    wait.as_secs().max(1)
                ),
            );
            if let Ok(v) = header::HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            Err(r)
        }
        Err(_) => Err(unauthorized()),
    }
}

fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    match super::auth::credentials(headers) {
        super::auth::Credentials::Basic(user, password) => Some((user, password)),
        _ => None,
    }
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(bytes).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid",
            format!("invalid JSON body: {e}"),
        )
    })
}

/// Whether the caller administers `org` (hub administrator or organization owner).
async fn manages_org(gate: &Gate, c: &Caller, org: &str) -> Result<(), Response> {
    if gate
        .accounts
        .manages_org(&c.record, org)
        .await
        .map_err(admin_error)?
    {
        Ok(())
    } else {
        Err(forbidden())
    }
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

async fn whoami(State(g): State<Arc<Gate>>, parts: Parts) -> ApiResult {
    let c = caller(&g, &parts).await?;
    ok(StatusCode::OK, user_json(&c.record))
}

async fn list_users(State(g): State<Arc<Gate>>, parts: Parts) -> ApiResult {
    caller(&g, &parts).await?.require_admin()?;
    let users = g
        .accounts
        .list(AccountKind::User)
        .await
        .map_err(admin_error)?;
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

async fn create_user(State(g): State<Arc<Gate>>, parts: Parts, body: Body) -> ApiResult {
    let c = caller(&g, &parts).await?;
    c.require_admin()?;
    let new: NewUser = parse(&read(body).await?)?;
    let u = g
        .accounts
        .create_user(
            &new.name,
            &new.password,
            new.admin,
            Authority::Administrator {
                adopt_namespace: new.adopt_namespace,
            },
            &c.origin,
        )
        .await
        .map_err(admin_error)?;
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
    parts: Parts,
    body: Body,
) -> ApiResult {
    let c = caller(&g, &parts).await?;
    let change: UserChange = parse(&read(body).await?)?;
    let own_password_only =
        c.record.name == name && change.admin.is_none() && change.disabled.is_none();
    if !c.admin() && !own_password_only {
        return Err(forbidden());
    }
    if let Some(p) = &change.password {
        g.accounts
            .set_password(&name, p, &c.origin)
            .await
            .map_err(admin_error)?;
    }
    if let Some(a) = change.admin {
        g.accounts
            .set_admin(&name, a, &c.origin)
            .await
            .map_err(admin_error)?;
    }
    if let Some(d) = change.disabled {
        g.accounts
            .set_disabled(&name, d, &c.origin)
            .await
            .map_err(admin_error)?;
    }
    let u = g
        .accounts
        .account(&name, Some(AccountKind::User))
        .await
        .map_err(admin_error)?;
    ok(StatusCode::OK, user_json(&u))
}

async fn delete_user(
    State(g): State<Arc<Gate>>,
    Path(name): Path<String>,
    parts: Parts,
) -> ApiResult {
    let c = caller(&g, &parts).await?;
    c.require_admin()?;
    g.accounts
        .account(&name, Some(AccountKind::User))
        .await
        .map_err(admin_error)?;
    g.accounts
        .delete_account(&name, &c.origin)
        .await
        .map_err(admin_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- Namespaces ------------------------------------------------------------------------------

async fn list_namespaces(State(g): State<Arc<Gate>>, parts: Parts) -> ApiResult {
    caller(&g, &parts).await?.require_admin()?;
    let namespaces = g.accounts.namespaces().await.map_err(admin_error)?;
    let list: Vec<Value> = namespaces
        .iter()
        .map(|n| json!({"name": n.name, "owner": n.owner, "repositories": n.repositories}))
        .collect();
    ok(StatusCode::OK, json!({"namespaces": list}))
}

// ---- Organizations, members, teams ----------------------------------------------------------

async fn list_orgs(State(g): State<Arc<Gate>>, parts: Parts) -> ApiResult {
    let c = caller(&g, &parts).await?;
    let mut orgs = Vec::new();
    for o in g
        .accounts
        .list(AccountKind::Org)
        .await
        .map_err(admin_error)?
    {
        let members = g.accounts.members(&o.name).await.map_err(admin_error)?;
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

async fn create_org(State(g): State<Arc<Gate>>, parts: Parts, body: Body) -> ApiResult {
    let c = caller(&g, &parts).await?;
    let new: NewOrg = parse(&read(body).await?)?;
    // Any user may found an organization in a namespace nobody has used; they own it.
    let authority = if c.admin() {
        Authority::Administrator {
            adopt_namespace: new.adopt_namespace,
        }
    } else if new.adopt_namespace {
        return Err(error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only administrators may adopt a namespace",
        ));
    } else {
        Authority::SelfService
    };
    let o = g
        .accounts
        .create_org(&new.name, Some(&c.record.name), authority, &c.origin)
        .await
        .map_err(admin_error)?;
    ok(StatusCode::CREATED, json!({"name": o.name}))
}

async fn delete_org(
    State(g): State<Arc<Gate>>,
    Path(org): Path<String>,
    parts: Parts,
) -> ApiResult {
    let c = caller(&g, &parts).await?;
    manages_org(&g, &c, &org).await?;
    g.accounts
        .delete_account(&org, &c.origin)
        .await
        .map_err(admin_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_members(
    State(g): State<Arc<Gate>>,
    Path(org): Path<String>,
    parts: Parts,
) -> ApiResult {
    let c = caller(&g, &parts).await?;
    let members = g.accounts.members(&org).await.map_err(admin_error)?;
    if !c.admin() && !members.iter().any(|m| m.name == c.record.name) {
        return Err(forbidden());
    }
    let list: Vec<Value> = members
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
    Path((org, user)): Path<(String, String)>,
    parts: Parts,
    body: Body,
) -> ApiResult {
    let c = caller(&g, &parts).await?;
    manages_org(&g, &c, &org).await?;
    let bytes = read(body).await?;
    let m: Membership = if bytes.is_empty() {
        Membership::default()
    } else {
        parse(&bytes)?
    };
    g.accounts
        .add_member(&org, &user, m.owner, &c.origin)
        .await
        .map_err(admin_error)?;
    ok(StatusCode::OK, json!({"name": user, "owner": m.owner}))
}

async fn delete_member(
    State(g): State<Arc<Gate>>,
    Path((org, user)): Path<(String, String)>,
    parts: Parts,
) -> ApiResult {
    let c = caller(&g, &parts).await?;
    manages_org(&g, &c, &org).await?;
    g.accounts
        .remove_member(&org, &user, &c.origin)
        .await
        .map_err(admin_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_teams(
    State(g): State<Arc<Gate>>,
    Path(org): Path<String>,
    parts: Parts,
) -> ApiResult {
    let c = caller(&g, &parts).await?;
    let members = g.accounts.members(&org).await.map_err(admin_error)?;
    if !c.admin() && !members.iter().any(|m| m.name == c.record.name) {
        return Err(forbidden());
    }
    let teams: Vec<Value> = g
        .accounts
        .teams(&org)
        .await
        .map_err(admin_error)?
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
    Path(org): Path<String>,
    parts: Parts,
    body: Body,
) -> ApiResult {
    let c = caller(&g, &parts).await?;
    manages_org(&g, &c, &org).await?;
    let new: Named = parse(&read(body).await?)?;
    g.accounts
        .create_team(&org, &new.name, &c.origin)
        .await
        .map_err(admin_error)?;
    ok(
        StatusCode::CREATED,
        json!({"name": new.name, "members": [], "grants": []}),
    )
}

async fn delete_team(
    State(g): State<Arc<Gate>>,
    Path((org, team)): Path<(String, String)>,
    parts: Parts,
) -> ApiResult {
    let c = caller(&g, &parts).await?;
    manages_org(&g, &c, &org).await?;
    g.accounts
        .delete_team(&org, &team, &c.origin)
        .await
        .map_err(admin_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn put_team_member(
    State(g): State<Arc<Gate>>,
    Path((org, team, user)): Path<(String, String, String)>,
    parts: Parts,
) -> ApiResult {
    let c = caller(&g, &parts).await?;
    manages_org(&g, &c, &org).await?;
    g.accounts
        .set_team_member(&org, &team, &user, true, &c.origin)
        .await
        .map_err(admin_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn delete_team_member(
    State(g): State<Arc<Gate>>,
    Path((org, team, user)): Path<(String, String, String)>,
    parts: Parts,
) -> ApiResult {
    let c = caller(&g, &parts).await?;
    manages_org(&g, &c, &org).await?;
    g.accounts
        .set_team_member(&org, &team, &user, false, &c.origin)
        .await
        .map_err(admin_error)?;
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
    Path((org, team)): Path<(String, String)>,
    parts: Parts,
    body: Body,
) -> ApiResult {
    let c = caller(&g, &parts).await?;
    manages_org(&g, &c, &org).await?;
    let grant: GrantBody = parse(&read(body).await?)?;
    let Some(role) = grant.role else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "invalid",
            "role is required: read, write or admin",
        ));
    };
    g.accounts
        .set_team_grant(
            &org,
            &team,
            grant.repository.as_deref(),
            Some(role),
            &c.origin,
        )
        .await
        .map_err(admin_error)?;
    ok(
        StatusCode::OK,
        json!({"repository": grant.repository, "role": role.as_str()}),
    )
}

async fn delete_grant(
    State(g): State<Arc<Gate>>,
    Path((org, team)): Path<(String, String)>,
    parts: Parts,
    body: Body,
) -> ApiResult {
    let c = caller(&g, &parts).await?;
    manages_org(&g, &c, &org).await?;
    let bytes = read(body).await?;
    let repository = if bytes.is_empty() {
        None
    } else {
        parse::<GrantBody>(&bytes)?.repository
    };
    g.accounts
        .set_team_grant(&org, &team, repository.as_deref(), None, &c.origin)
        .await
        .map_err(admin_error)?;
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

async fn issue_token(g: &Gate, owner: &str, body: Body, by: &Origin) -> ApiResult {
    let new: NewToken = parse(&read(body).await?)?;
    let expires = new
        .expires_days
        .map(|d| Duration::from_secs(d.saturating_mul(86_400)));
    let t = g
        .accounts
        .create_token(owner, &new.name, &new.scopes, expires, by)
        .await
        .map_err(admin_error)?;
    let mut shown = token_json(&t.record);
    shown["secret"] = Value::String(t.secret);
    ok(StatusCode::CREATED, shown)
}

async fn list_tokens(State(g): State<Arc<Gate>>, parts: Parts) -> ApiResult {
    let c = caller(&g, &parts).await?;
    let tokens = g
        .accounts
        .tokens(Some(&c.record.name))
        .await
        .map_err(admin_error)?;
    ok(
        StatusCode::OK,
        json!({"tokens": tokens.iter().map(token_json).collect::<Vec<_>>()}),
    )
}

async fn create_token(State(g): State<Arc<Gate>>, parts: Parts, body: Body) -> ApiResult {
    let c = caller(&g, &parts).await?;
    issue_token(&g, &c.record.name, body, &c.origin).await
}

async fn delete_token(
    State(g): State<Arc<Gate>>,
    Path(name): Path<String>,
    parts: Parts,
) -> ApiResult {
    let c = caller(&g, &parts).await?;
    g.accounts
        .revoke_token(&c.record.name, &name, &c.origin)
        .await
        .map_err(admin_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_robots(
    State(g): State<Arc<Gate>>,
    Path(org): Path<String>,
    parts: Parts,
) -> ApiResult {
    let c = caller(&g, &parts).await?;
    manages_org(&g, &c, &org).await?;
    let tokens = g.accounts.tokens(Some(&org)).await.map_err(admin_error)?;
    ok(
        StatusCode::OK,
        json!({"robots": tokens.iter().map(token_json).collect::<Vec<_>>()}),
    )
}

async fn create_robot(
    State(g): State<Arc<Gate>>,
    Path(org): Path<String>,
    parts: Parts,
    body: Body,
) -> ApiResult {
    let c = caller(&g, &parts).await?;
    manages_org(&g, &c, &org).await?;
    g.accounts
        .account(&org, Some(AccountKind::Org))
        .await
        .map_err(admin_error)?;
    issue_token(&g, &org, body, &c.origin).await
}

async fn delete_robot(
    State(g): State<Arc<Gate>>,
    Path((org, name)): Path<(String, String)>,
    parts: Parts,
) -> ApiResult {
    let c = caller(&g, &parts).await?;
    manages_org(&g, &c, &org).await?;
    g.accounts
        .revoke_token(&org, &name, &c.origin)
        .await
        .map_err(admin_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- Repository visibility ------------------------------------------------------------------

async fn repo_admin(g: &Gate, c: &Caller, repository: &str) -> Result<(), Response> {
    if g.may(&c.principal, &[(repository.to_owned(), Actions::ALL)])
        .await?
    {
        Ok(())
    } else {
        Err(forbidden())
    }
}

async fn get_visibility(
    State(g): State<Arc<Gate>>,
    Path(repository): Path<String>,
    parts: Parts,
) -> ApiResult {
    let c = caller(&g, &parts).await?;
    if !g
        .may(&c.principal, &[(repository.clone(), Actions::PULL)])
        .await?
    {
        return Err(error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such repository",
        ));
    }
    let public = g
        .accounts
        .is_public(&repository)
        .await
        .map_err(admin_error)?;
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
    parts: Parts,
    body: Body,
) -> ApiResult {
    let c = caller(&g, &parts).await?;
    repo_admin(&g, &c, &repository).await?;
    let v: Visibility = parse(&read(body).await?)?;
    g.accounts
        .set_public(&repository, v.public, &c.origin)
        .await
        .map_err(admin_error)?;
    ok(
        StatusCode::OK,
        json!({"repository": repository, "public": v.public}),
    )
}

/// Reads a small JSON body.
async fn read(body: Body) -> Result<Bytes, Response> {
    axum::body::to_bytes(body, 64 * 1024).await.map_err(|_| {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid",
            "request body too large",
        )
    })
}
