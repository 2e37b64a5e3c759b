//! Who calls the JSON administration API, what they may administer, and the one table from
//! the accounts service's failures to answers, shared by the API and the web UI.
//!
//! - [`Caller`]: an extractor for the signed-in user (HTTP Basic with a password; access
//!   tokens and robots are for registry clients and cannot administer).
//! - [`OrgManager`]: an extractor for a caller who manages the organization named by the
//!   route's `{org}` (a hub administrator, or an owner of that organization).
//! - [`Refusal`]: why a request was refused. `From<AdminError>` is the one table from service
//!   failures; the API renders a refusal as `{"error": CODE, "message": TEXT}` with its
//!   status, the UI as a page (`impl From<Refusal> for UiError`).
//! - [`JsonBody`]: a small JSON request body, parsed into a typed value.
//!
//! Handlers using these are a few lines: extractors, one service call, `?`, a response.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::auth::{Credentials, Gate, credentials};
use super::json::error;
use crate::auth::Principal;
use crate::meta::accounts::{AccountKind, AccountRecord};
use crate::meta::events::Origin;
use crate::service::RegistryError;
use crate::service::accounts::{AdminError, AuthError};
use crate::service::immutable::RuleError;

/// Largest JSON body accepted; every administration request is a few short fields.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// Why an administration request was refused; each renders with its own status and code.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// No (valid) password was given.
    #[error("sign in with HTTP Basic")]
    SignIn,
    /// An access token or robot tried to administer.
    #[error("access tokens cannot administer; sign in with a password")]
    TokenLogin,
    /// Too many failed sign-ins from this client.
    #[error("too many failed logins; retry in {} seconds", .0.as_secs().max(1))]
    Throttled(Duration),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// Something named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The name is taken.
    #[error("{0}")]
    Exists(String),
    /// The namespace holds repositories of no account.
    #[error("{0}")]
    NamespaceHeld(String),
    /// The request is invalid: a name, a pattern, a field.
    #[error("{0}")]
    Invalid(String),
    /// The body is over [`MAX_BODY_BYTES`].
    #[error("request body too large")]
    TooLarge,
    /// The database or the system failed; carries the cause chain, which is logged, not sent.
    #[error("internal server error")]
    Internal(String),
}

/// The usual refusal: the caller is known but may not do this.
pub const MAY_NOT: Refusal = Refusal::Forbidden("you may not do this");

impl From<AdminError> for Refusal {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::NotFound(_) => Refusal::NotFound(e.to_string()),
            AdminError::Exists(_) => Refusal::Exists(e.to_string()),
            AdminError::NamespaceHeld { .. } => Refusal::NamespaceHeld(e.to_string()),
            AdminError::Name(_)
            | AdminError::Repository(_)
            | AdminError::Scope(_)
            | AdminError::Password(_)
            | AdminError::Invalid(_) => Refusal::Invalid(e.to_string()),
            AdminError::Random(_) | AdminError::Meta(_) => {
                Refusal::Internal(crate::telemetry::error_chain(&e))
            }
        }
    }
}

impl From<RuleError> for Refusal {
    fn from(e: RuleError) -> Self {
        match e {
            RuleError::Invalid(m) => Refusal::Invalid(m),
            RuleError::NotFound(m) => Refusal::NotFound(m),
            RuleError::Exists(m) => Refusal::Exists(m),
            RuleError::Registry(e) => e.into(),
        }
    }
}

/// The registry's failures behind the administration API are the server's (the requests
/// name nothing the registry would refuse).
impl From<RegistryError> for Refusal {
    fn from(e: RegistryError) -> Self {
        Refusal::Internal(crate::telemetry::error_chain(&e))
    }
}

impl Refusal {
    /// The status and the stable code of the JSON envelope.
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Refusal::SignIn => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Refusal::TokenLogin | Refusal::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Refusal::Throttled(_) => (StatusCode::TOO_MANY_REQUESTS, "throttled"),
            Refusal::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Refusal::Exists(_) => (StatusCode::CONFLICT, "exists"),
            Refusal::NamespaceHeld(_) => (StatusCode::CONFLICT, "namespace_held"),
            Refusal::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid"),
            Refusal::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "invalid"),
            Refusal::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        if let Refusal::Internal(cause) = &self {
            tracing::error!(error = %cause, "administration request failed");
        }
        let (status, code) = self.status_and_code();
        let mut response = error(status, code, self.to_string());
        let extra = match &self {
            Refusal::SignIn => Some((header::WWW_AUTHENTICATE, "Basic realm=\"berth\"".into())),
            Refusal::Throttled(wait) => {
                Some((header::RETRY_AFTER, wait.as_secs().max(1).to_string()))
            }
            _ => None,
        };
        if let Some((name, value)) = extra
            && let Ok(v) = HeaderValue::from_str(&value)
        {
            response.headers_mut().insert(name, v);
        }
        response
    }
}

/// The signed-in user calling the administration API.
pub struct Caller {
    /// As the registry's access checks know them.
    pub principal: Principal,
    /// Their account.
    pub record: AccountRecord,
    /// Who they are and where they call from, for the audit log.
    pub origin: Origin,
}

impl Caller {
    /// Whether the caller is a hub administrator.
    pub fn admin(&self) -> bool {
        self.record.admin
    }

    /// Refuses anyone but a hub administrator.
    pub fn require_admin(&self) -> Result<(), Refusal> {
        if self.admin() { Ok(()) } else { Err(MAY_NOT) }
    }
}

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    Arc<Gate>: FromRef<S>,
{
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Refusal> {
        let gate = Arc::<Gate>::from_ref(state);
        let Credentials::Basic(user, password) = credentials(&parts.headers) else {
            return Err(Refusal::SignIn);
        };
        let request = super::hub::request_parts(parts);
        let client = request.client_addr(gate.trust_forwarded);
        match gate.accounts.login(&user, &password, client).await {
            Ok(principal @ Principal::User { .. }) => {
                let record = gate
                    .accounts
                    .account(&user, Some(AccountKind::User))
                    .await?;
                let origin = request.origin(record.name.clone(), gate.trust_forwarded);
                Ok(Caller {
                    principal,
                    record,
                    origin,
                })
            }
            Ok(_) => Err(Refusal::TokenLogin),
            Err(AuthError::Throttled(wait)) => Err(Refusal::Throttled(wait)),
            Err(_) => Err(Refusal::SignIn),
        }
    }
}

/// Whether `user` may manage organization `org`: a hub administrator, or an owner of it.
/// The one check behind [`OrgManager`] and the UI's organization pages.
pub async fn manage_org(gate: &Gate, user: &AccountRecord, org: &str) -> Result<(), Refusal> {
    if gate.accounts.manages_org(user, org).await? {
        Ok(())
    } else {
        Err(MAY_NOT)
    }
}

/// A caller who manages the organization named by the route's `{org}`.
pub struct OrgManager {
    /// Who calls.
    pub caller: Caller,
    /// The organization, from the path.
    pub org: String,
}

impl<S> FromRequestParts<S> for OrgManager
where
    S: Send + Sync,
    Arc<Gate>: FromRef<S>,
{
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Refusal> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let org = RawPathParams::from_request_parts(parts, state)
            .await
            .ok()
            .and_then(|params| {
                params
                    .iter()
                    .find(|(name, _)| *name == "org")
                    .map(|(_, value)| value.to_owned())
            })
            .ok_or_else(|| Refusal::Invalid("the path names no organization".into()))?;
        manage_org(&Arc::<Gate>::from_ref(state), &caller.record, &org).await?;
        Ok(OrgManager { caller, org })
    }
}

/// A JSON request body of at most 64 KiB, parsed into `T`.
pub struct JsonBody<T>(pub T);

/// A JSON request body that may also be empty (`None`).
pub struct MaybeJson<T>(pub Option<T>);

async fn body_bytes(req: Request) -> Result<Bytes, Refusal> {
    axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)
        .await
        .map_err(|_| Refusal::TooLarge)
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Refusal> {
    serde_json::from_slice(bytes).map_err(|e| Refusal::Invalid(format!("invalid JSON body: {e}")))
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Refusal;

    async fn from_request(req: Request, _: &S) -> Result<Self, Refusal> {
        Ok(JsonBody(parse(&body_bytes(req).await?)?))
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for MaybeJson<T> {
    type Rejection = Refusal;

    async fn from_request(req: Request, _: &S) -> Result<Self, Refusal> {
        let bytes = body_bytes(req).await?;
        if bytes.is_empty() {
            return Ok(MaybeJson(None));
        }
        Ok(MaybeJson(Some(parse(&bytes)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_errors_map_to_one_status_each() {
        let cases = [
            (AdminError::NotFound("x".into()), StatusCode::NOT_FOUND),
            (AdminError::Exists("x".into()), StatusCode::CONFLICT),
            (AdminError::Invalid("x".into()), StatusCode::BAD_REQUEST),
        ];
        for (e, status) in cases {
            assert_eq!(Refusal::from(e).status_and_code().0, status);
        }
    }

    #[test]
    fn internal_refusals_hide_their_cause() {
        let r = Refusal::Internal("/secret/db.sqlite is locked".into());
        assert_eq!(r.to_string(), "internal server error");
    }
}
