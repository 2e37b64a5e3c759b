//! Authentication on the API: the access gate in front of every `/v2/` request, and the
//! Docker token endpoint (`GET`/`POST /token`).
//!
//! The gate works out what a request needs (pull, push or delete on which repositories),
//! who is asking (a registry token, HTTP Basic credentials, or nobody) and answers as
//! Distribution's token specification and real clients expect:
//! - `401` with a `WWW-Authenticate: Bearer realm=...,service=...,scope=...` challenge when
//!   there are no credentials, the token is invalid, or the token does not cover the request
//!   (`error="insufficient_scope"`: the client may fetch a wider token, which is granted only
//!   if its subject may do it; docker reports a final refusal as "denied");
//! - `403 DENIED` when HTTP Basic credentials are valid but lack the right;
//! - `429 TOOMANYREQUESTS` with `Retry-After` while logins are throttled.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Serialize;

use super::error::{ApiError, ErrorCode};
use super::query::Query;
use super::ratelimit::{Class, RateLimits, Refusal};
use super::route::OciRoute;
use crate::auth::jwt::Claims;
use crate::auth::{Action, Actions, Grants, Principal, ScopeRequest};
use crate::meta::events::Origin;
use crate::server::ConnInfo;
use crate::service::accounts::{Accounts, AuthError};

/// The gate's settings and the accounts service.
#[derive(Debug)]
pub struct Gate {
    /// The accounts service.
    pub accounts: Arc<Accounts>,
    /// Fixed realm URL, or empty to derive it from the request.
    pub realm: String,
    /// Whether `X-Forwarded-Proto`/`-Host` describe the client's view.
    pub trust_forwarded: bool,
    /// Per-account request limits, if any.
    pub rate_limits: Option<Arc<RateLimits>>,
    /// How long the JWKS may be cached (the key reload interval), seconds.
    pub jwks_max_age_secs: u64,
    /// Single sign-on for the web UI (`[auth.oidc]`), if configured.
    pub oidc: Option<Arc<crate::oidc::Oidc>>,
}

/// What a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// Any authenticated caller (the `/v2/` version check).
    Authenticated,
    /// Listing the catalog (filtered to what the caller may pull).
    Catalog,
    /// Actions on repositories.
    Repositories(Vec<(String, Actions)>),
}

/// What a request may do once through the gate.
pub enum Allowed {
    /// Everything it needed.
    All,
    /// The catalog, filtered by this predicate (public repositories are added separately).
    Catalog(Box<dyn Fn(&str) -> bool + Send + Sync>),
}

impl Need {
    /// What `method` on `route` needs. A cross-repository mount needs pull on its source as
    /// well; the dispatcher drops the mount (and starts a plain upload) when that is missing.
    pub fn of(route: &OciRoute, method: &Method) -> Need {
        let on =
            |name: &str, actions: Actions| Need::Repositories(vec![(name.to_owned(), actions)]);
        let read = matches!(*method, Method::GET | Method::HEAD);
        match route {
            OciRoute::Base => Need::Authenticated,
            OciRoute::Catalog => Need::Catalog,
            OciRoute::Tags(n) | OciRoute::Referrers(n, _) => on(n.as_str(), Actions::PULL),
            OciRoute::Manifest(n, _) | OciRoute::Blob(n, _) => {
                if read {
                    on(n.as_str(), Actions::PULL)
                } else if *method == Method::DELETE {
                    on(n.as_str(), Actions::of(Action::Delete))
                } else {
                    on(n.as_str(), Actions::PULL_PUSH)
                }
            }
            OciRoute::Uploads(n) | OciRoute::Upload(n, _) => on(n.as_str(), Actions::PULL_PUSH),
        }
    }

    /// The rate-limit class of a request that needs this: a push when it writes.
    fn class(&self) -> Class {
        match self {
            Need::Repositories(list)
                if list
                    .iter()
                    .any(|(_, a)| a.contains(Action::Push) || a.contains(Action::Delete)) =>
            {
                Class::Push
            }
            _ => Class::Pull,
        }
    }

    /// The scope a client should ask for.
    fn scope(&self) -> Option<String> {
        match self {
            Need::Authenticated => None,
            Need::Catalog => Some(ScopeRequest::Catalog.to_string()),
            Need::Repositories(list) => Some(
                list.iter()
                    .map(|(name, actions)| crate::auth::scope::repository_scope(name, *actions))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
        }
    }
}

/// Who a request comes from.
enum Caller {
    /// A verified registry token.
    Token(Claims),
    /// HTTP Basic credentials that checked out, or nobody.
    Principal(Principal),
}

impl Gate {
    /// Lets the request through, or answers it. The request counts against its account's
    /// rate limits.
    pub async fn check(&self, parts: &RequestParts<'_>, need: &Need) -> Result<Allowed, Response> {
        Ok(self.check_as(parts, need).await?.0)
    }

    /// Lets the request through and says who sent it (for the audit log), or answers it.
    pub async fn check_as(
        &self,
        parts: &RequestParts<'_>,
        need: &Need,
    ) -> Result<(Allowed, Origin), Response> {
        let caller = self.caller(parts).await?;
        let actor = match &caller {
            Caller::Token(claims) => claims.sub.clone(),
            Caller::Principal(p) => p.subject().to_owned(),
        };
        if let Some(limits) = &self.rate_limits
            && !actor.is_empty()
        {
            limits
                .check_account(need.class(), &actor)
                .map_err(IntoResponse::into_response)?;
        }
        let allowed = self.allowed(parts, need, caller).await?;
        Ok((allowed, parts.origin(actor, self.trust_forwarded)))
    }

    /// [`Gate::check`] for a second look at the same request (a mount's source), which
    /// must not count against the account again.
    pub async fn check_unmetered(
        &self,
        parts: &RequestParts<'_>,
        need: &Need,
    ) -> Result<Allowed, Response> {
        let caller = self.caller(parts).await?;
        self.allowed(parts, need, caller).await
    }

    /// Counts a token request by `principal` against its account's limits.
    fn limit_token(&self, principal: &Principal) -> Result<(), Refusal> {
        match &self.rate_limits {
            Some(limits) if !principal.is_anonymous() => {
                limits.check_account(Class::Token, principal.subject())
            }
            _ => Ok(()),
        }
    }

    async fn allowed(
        &self,
        parts: &RequestParts<'_>,
        need: &Need,
        caller: Caller,
    ) -> Result<Allowed, Response> {
        match (&caller, need) {
            (Caller::Principal(Principal::Anonymous), Need::Authenticated) => {
                Err(self.challenge(parts, need, None))
            }
            (_, Need::Authenticated) => Ok(Allowed::All),
            (Caller::Principal(Principal::Anonymous), Need::Catalog) => {
                Err(self.challenge(parts, need, None))
            }
            (_, Need::Catalog) => {
                let principal = match &caller {
                    Caller::Token(claims) => self.subject(claims).await?,
                    Caller::Principal(p) => p.clone(),
                };
                let grants = self.grants(&principal).await?;
                Ok(Allowed::Catalog(Box::new(move |name| {
                    crate::auth::access::allowed(&principal, &grants, name, false)
                        .contains(Action::Pull)
                })))
            }
            (Caller::Token(claims), Need::Repositories(list)) => {
                let covered = list.iter().all(|(name, wanted)| {
                    let granted = claims
                        .access
                        .iter()
                        .filter_map(|e| e.actions_on(name))
                        .fold(Actions::NONE, Actions::union);
                    granted.covers(*wanted)
                });
                if covered {
                    return Ok(Allowed::All);
                }
                // Too narrow. As Distribution does, answer 401 insufficient_scope whether or
                // not a wider token could be had: docker retries a 403 for a minute before
                // giving up, while a 401 here ends the push at once with "denied: requested
                // access to the resource is denied". The token endpoint never grants more
                // than the subject may do, so asking again changes nothing for them.
                Err(self.challenge(parts, need, Some("insufficient_scope")))
            }
            (Caller::Principal(p), Need::Repositories(list)) => {
                if self.may(p, list).await? {
                    Ok(Allowed::All)
                } else if p.is_anonymous() {
                    Err(self.challenge(parts, need, None))
                } else {
                    Err(denied())
                }
            }
        }
    }

    /// Lets a hub administrator through (a user signed in with a password, or with a
    /// registry token issued to one) and says who it is; answers anyone else: `401` with a
    /// challenge without credentials, `403` otherwise.
    pub async fn check_admin(&self, parts: &RequestParts<'_>) -> Result<Origin, Response> {
        let principal = match self.caller(parts).await? {
            Caller::Token(claims) => self.subject(&claims).await?,
            Caller::Principal(p) => p,
        };
        match &principal {
            Principal::User { admin: true, .. } => {
                Ok(parts.origin(principal.subject().to_owned(), self.trust_forwarded))
            }
            Principal::Anonymous => Err(self.challenge(parts, &Need::Authenticated, None)),
            _ => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::Denied,
                "only administrators may do this",
            )
            .into_response()),
        }
    }

    /// Whether `principal` may do everything in `list`.
    pub async fn may(
        &self,
        principal: &Principal,
        list: &[(String, Actions)],
    ) -> Result<bool, Response> {
        let grants = self.grants(principal).await?;
        for (name, wanted) in list {
            let allowed = self
                .accounts
                .allowed(principal, &grants, name)
                .await
                .map_err(|e| ApiError::internal(&e).into_response())?;
            if !allowed.covers(*wanted) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn grants(&self, principal: &Principal) -> Result<Grants, Response> {
        self.accounts
            .grants(principal)
            .await
            .map_err(|e| ApiError::internal(&e).into_response())
    }

    async fn subject(&self, claims: &Claims) -> Result<Principal, Response> {
        self.accounts
            .subject_principal(claims)
            .await
            .map_err(|e| ApiError::internal(&e).into_response())
    }

    async fn caller(&self, parts: &RequestParts<'_>) -> Result<Caller, Response> {
        match credentials(parts.headers) {
            Credentials::None => Ok(Caller::Principal(Principal::Anonymous)),
            Credentials::Bearer(token) => match self.accounts.verify(&token).await {
                Ok(claims) => Ok(Caller::Token(claims)),
                Err(e) => {
                    tracing::debug!(target: "berth::auth", error = %e, "registry token refused");
                    Err(self.challenge(parts, &Need::Authenticated, Some("invalid_token")))
                }
            },
            Credentials::Basic(user, password) => {
                match self
                    .accounts
                    .login(&user, &password, parts.client_addr(self.trust_forwarded))
                    .await
                {
                    Ok(p) => Ok(Caller::Principal(p)),
                    Err(e) => Err(auth_error(e, || {
                        self.challenge(parts, &Need::Authenticated, None)
                    })),
                }
            }
            Credentials::Malformed => Err(self.challenge(parts, &Need::Authenticated, None)),
        }
    }

    /// `401` with the challenge docker, containerd, podman and skopeo follow.
    fn challenge(&self, parts: &RequestParts<'_>, need: &Need, error: Option<&str>) -> Response {
        let mut value = format!(
            "Bearer realm=\"{}\",service=\"{}\"",
            self.realm(parts),
            self.accounts.issuer().service()
        );
        if let Some(scope) = need.scope() {
            value.push_str(&format!(",scope=\"{scope}\""));
        }
        if let Some(error) = error {
            value.push_str(&format!(",error=\"{error}\""));
        }
        let detail = match need {
            Need::Repositories(list) => serde_json::Value::Array(
                list.iter()
                    .flat_map(|(name, actions)| {
                        actions.iter().map(move |a| {
                            serde_json::json!({"Type": "repository", "Name": name, "Action": a.as_str()})
                        })
                    })
                    .collect(),
            ),
            _ => serde_json::Value::Null,
        };
        let mut e = ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "authentication required",
        )
        .with_header(header::WWW_AUTHENTICATE, value);
        if !detail.is_null() {
            e = e.with_detail(detail);
        }
        e.into_response()
    }

    /// The token endpoint's absolute URL as the client sees this server.
    pub fn realm(&self, parts: &RequestParts<'_>) -> String {
        if !self.realm.is_empty() {
            return self.realm.clone();
        }
        format!("{}/token", parts.base_url(self.trust_forwarded))
    }
}

/// The last address of `X-Forwarded-For`: the one the proxy in front added. Only that one:
/// if it is not an address, earlier entries (the client's own claims) are not used instead.
fn last_forwarded(headers: &HeaderMap) -> Option<IpAddr> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()?
        .to_str()
        .ok()?
        .rsplit(',')
        .next()?
        .trim()
        .parse()
        .ok()
}

/// The parts of a request the gate and token endpoint look at.
pub struct RequestParts<'a> {
    /// Request headers.
    pub headers: &'a HeaderMap,
    /// The connection, if known.
    pub conn: Option<ConnInfo>,
    /// The request target's authority: HTTP/2 carries the host there, not in `Host`.
    pub authority: Option<&'a str>,
}

impl RequestParts<'_> {
    /// The client's address (the proxy's behind a reverse proxy).
    pub fn client_ip(&self) -> IpAddr {
        self.conn
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.peer.ip())
    }

    /// The client's address, for the audit log and rate limits: with `trust_forwarded`, the
    /// last address in `X-Forwarded-For` (the one the trusted proxy in front saw; earlier ones
    /// are the client's own claims), else the connection's peer.
    pub fn client_addr(&self, trust_forwarded: bool) -> IpAddr {
        trust_forwarded
            .then(|| last_forwarded(self.headers))
            .flatten()
            .unwrap_or_else(|| self.client_ip())
    }

    /// Who sent the request and from where, as the audit log records it.
    pub fn origin(&self, actor: String, trust_forwarded: bool) -> Origin {
        Origin {
            actor,
            address: Some(self.client_addr(trust_forwarded).to_string()),
        }
    }

    /// `scheme://host` as the client addressed this server.
    pub fn base_url(&self, trust_forwarded: bool) -> String {
        let forwarded = |name: &str| {
            trust_forwarded
                .then(|| self.headers.get(name).and_then(|v| v.to_str().ok()))
                .flatten()
                .and_then(|v| v.split(',').next())
                .map(str::trim)
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic() && b != b'"'))
        };
        let scheme = forwarded("x-forwarded-proto")
            .filter(|p| matches!(*p, "http" | "https"))
            .unwrap_or(if self.conn.is_some_and(|c| c.tls) {
                "https"
            } else {
                "http"
            });
        let host = forwarded("x-forwarded-host")
            .or(self.authority)
            .or_else(|| {
                self.headers
                    .get(header::HOST)
                    .and_then(|v| v.to_str().ok())
                    .filter(|v| {
                        !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic() && b != b'"')
                    })
            })
            .unwrap_or("localhost");
        format!("{scheme}://{host}")
    }
}

fn denied() -> Response {
    ApiError::new(
        StatusCode::FORBIDDEN,
        ErrorCode::Denied,
        "requested access to the resource is denied",
    )
    .into_response()
}

/// Maps a failed login: throttled → 429, bad credentials → `unauthorized()`, else 500.
fn auth_error(e: AuthError, unauthorized: impl FnOnce() -> Response) -> Response {
    match e {
        AuthError::Throttled(wait) => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooManyRequests,
            format!(
                "too many failed logins; retry in {} seconds",
                wait.as_secs().max(1)
            ),
        )
        .with_header(header::RETRY_AFTER, wait.as_secs().max(1))
        .into_response(),
        AuthError::BadCredentials | AuthError::Token(_) => unauthorized(),
        AuthError::Meta(e) => ApiError::internal(&e).into_response(),
        AuthError::Directory(_) => directory_down(),
    }
}

/// The directory that decides a user's password or token did not answer: 503, and nobody is
/// let in (the cause is logged where it happened).
fn directory_down() -> Response {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Unknown,
        "the sign-in directory (LDAP) is unavailable; try again later",
    )
    .into_response()
}

/// What a request's `Authorization` header holds.
pub(super) enum Credentials {
    None,
    Bearer(String),
    Basic(String, String),
    Malformed,
}

/// Parses a request's `Authorization` header.
pub(super) fn credentials(headers: &HeaderMap) -> Credentials {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Credentials::None;
    };
    let Ok(value) = value.to_str() else {
        return Credentials::Malformed;
    };
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
        Credentials::Bearer(rest.to_owned())
    } else if scheme.eq_ignore_ascii_case("basic") {
        basic(rest).map_or(Credentials::Malformed, |(u, p)| Credentials::Basic(u, p))
    } else {
        Credentials::Malformed
    }
}

fn basic(encoded: &str) -> Option<(String, String)> {
    let decoded = String::from_utf8(B64.decode(encoded).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

// ---- The token endpoint -------------------------------------------------------------------

/// The token endpoint's answer (both the Docker and the OAuth2 field names).
#[derive(Serialize)]
struct TokenResponse {
    token: String,
    access_token: String,
    expires_in: u64,
    issued_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    scope: String,
}

/// `GET /token` (Docker's flow: Basic credentials or none) and `POST /token` (OAuth2:
/// `grant_type=password` or `refresh_token`, form-encoded).
pub async fn token(State(gate): State<Arc<Gate>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let rp = RequestParts {
        headers: &parts.headers,
        conn: parts.extensions.get::<ConnInfo>().copied(),
        authority: parts.uri.authority().map(|a| a.as_str()),
    };
    if let Some(limits) = &gate.rate_limits
        && let Err(refusal) =
            limits.check_address(Class::Token, rp.client_addr(gate.trust_forwarded))
    {
        let mut response = refusal.into_response();
        response.extensions_mut().insert(super::RouteName("token"));
        return response;
    }
    let mut response = match parts.method {
        Method::GET | Method::HEAD => {
            let query = Query::parse(parts.uri.query());
            token_get(&gate, &rp, &query).await
        }
        Method::POST => match axum::body::to_bytes(body, 64 * 1024).await {
            Ok(bytes) => {
                let form = Query::parse(std::str::from_utf8(&bytes).ok());
                token_post(&gate, &rp, &form).await
            }
            Err(_) => oauth_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
                "request too large",
            ),
        },
        _ => ApiError::method_not_allowed("GET, POST").into_response(),
    };
    response.extensions_mut().insert(super::RouteName("token"));
    response
}

async fn token_get(gate: &Gate, rp: &RequestParts<'_>, query: &Query) -> Response {
    if let Some(r) = wrong_service(gate, query) {
        return r;
    }
    let principal = match credentials(rp.headers) {
        Credentials::None => Principal::Anonymous,
        Credentials::Basic(user, password) => {
            match gate
                .accounts
                .login(&user, &password, rp.client_addr(gate.trust_forwarded))
                .await
            {
                Ok(p) => p,
                Err(e) => return auth_error(e, || login_failed(gate, rp)),
            }
        }
        // A registry token is not a credential for getting another one.
        Credentials::Bearer(_) | Credentials::Malformed => return login_failed(gate, rp),
    };
    if let Err(refusal) = gate.limit_token(&principal) {
        return refusal.into_response();
    }
    let offline = query.get("offline_token") == Some("true");
    issue(gate, &principal, query, offline).await
}

async fn token_post(gate: &Gate, rp: &RequestParts<'_>, form: &Query) -> Response {
    if let Some(r) = wrong_service(gate, form) {
        return r;
    }
    let principal = match form.get("grant_type") {
        Some("password") => {
            let (Some(user), Some(password)) = (form.get("username"), form.get("password")) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "username and password are required",
                );
            };
            match gate
                .accounts
                .login(user, password, rp.client_addr(gate.trust_forwarded))
                .await
            {
                Ok(p) => p,
                Err(AuthError::Throttled(w)) => {
                    return auth_error(AuthError::Throttled(w), || login_failed(gate, rp));
                }
                Err(AuthError::Meta(e)) => return ApiError::internal(&e).into_response(),
                Err(AuthError::Directory(_)) => return directory_down(),
                Err(_) => {
                    return oauth_error(
                        StatusCode::UNAUTHORIZED,
                        "invalid_grant",
                        "invalid username or password",
                    );
                }
            }
        }
        Some("refresh_token") => {
            let Some(refresh) = form.get("refresh_token") else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "refresh_token is required",
                );
            };
            match gate.accounts.refresh(refresh).await {
                Ok(p) => p,
                Err(AuthError::Meta(e)) => return ApiError::internal(&e).into_response(),
                Err(AuthError::Directory(_)) => return directory_down(),
                Err(_) => {
                    return oauth_error(
                        StatusCode::UNAUTHORIZED,
                        "invalid_grant",
                        "the refresh token is invalid or expired",
                    );
                }
            }
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type must be password or refresh_token",
            );
        }
    };
    // Docker's OAuth flow asks for a refresh token with access_type=offline on a password
    // grant; a refresh grant returns the same refresh token back.
    if let Err(refusal) = gate.limit_token(&principal) {
        return refusal.into_response();
    }
    let offline = form.get("access_type") == Some("offline");
    issue(gate, &principal, form, offline).await
}

/// A refusal when the request names another service than ours.
fn wrong_service(gate: &Gate, query: &Query) -> Option<Response> {
    match query.get("service") {
        Some(s) if s != gate.accounts.issuer().service() => Some(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "unknown service",
        )),
        _ => None,
    }
}

async fn issue(gate: &Gate, principal: &Principal, query: &Query, offline: bool) -> Response {
    let requests = ScopeRequest::parse_all(query.all("scope"));
    let (token, access) = match gate.accounts.token_for(principal, &requests).await {
        Ok(t) => t,
        Err(e) => return auth_error(e, || StatusCode::UNAUTHORIZED.into_response()),
    };
    let refresh_token = if offline {
        match gate.accounts.refresh_token_for(principal).await {
            Ok(t) => t,
            Err(e) => return auth_error(e, || StatusCode::UNAUTHORIZED.into_response()),
        }
    } else {
        None
    };
    let scope = access
        .iter()
        .map(|a| format!("{}:{}:{}", a.kind, a.name, a.actions.join(",")))
        .collect::<Vec<_>>()
        .join(" ");
    let body = TokenResponse {
        token: token.clone(),
        access_token: token,
        expires_in: gate.accounts.issuer().ttl_secs(),
        issued_at: rfc3339_now(),
        refresh_token,
        scope,
    };
    json(StatusCode::OK, &body)
}

fn login_failed(gate: &Gate, rp: &RequestParts<'_>) -> Response {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        ErrorCode::Unauthorized,
        "invalid username or password",
    )
    .with_header(
        header::WWW_AUTHENTICATE,
        format!("Basic realm=\"{}\"", gate.realm(rp)),
    )
    .into_response()
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json(
        status,
        &serde_json::json!({"error": error, "error_description": description}),
    )
}

/// A JSON response that no cache may keep (it may hold a token).
fn json(status: StatusCode, body: &impl Serialize) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        bytes,
    )
        .into_response()
}

/// Now as RFC 3339 (UTC, seconds).
fn rfc3339_now() -> String {
    let secs = i64::try_from(crate::auth::jwt::now_secs()).unwrap_or(0);
    let (y, m, d, h, mi, sec) = crate::auth::jwt::civil_time(secs);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{sec:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_address_comes_from_a_trusted_proxy_only() {
        let mut headers = HeaderMap::new();
        headers.append(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.7".parse().unwrap(),
        );
        headers.append("x-forwarded-for", "192.0.2.1".parse().unwrap());
        let parts = RequestParts {
            headers: &headers,
            conn: Some(ConnInfo {
                peer: "10.1.2.3:4567".parse().unwrap(),
                tls: false,
            }),
            authority: None,
        };
        // The proxy appended what it saw last; earlier entries are the client's own word.
        assert_eq!(parts.client_addr(true).to_string(), "192.0.2.1");
        assert_eq!(parts.client_addr(false).to_string(), "10.1.2.3");
        // A last entry that is not an address falls back to the peer, never to the client's
        // own claims before it.
        let mut junk = headers.clone();
        junk.append("x-forwarded-for", "unknown".parse().unwrap());
        let parts_junk = RequestParts {
            headers: &junk,
            ..parts
        };
        assert_eq!(parts_junk.client_addr(true).to_string(), "10.1.2.3");
        let origin = parts.origin("alice".into(), false);
        assert_eq!(origin.actor, "alice");
        assert_eq!(origin.address.as_deref(), Some("10.1.2.3"));
    }
}
