//! Single sign-on pages: `GET /ui/login/oidc` sends the browser to the provider,
//! `GET /ui/login/oidc/callback` signs it in (see [`crate::oidc`] for the checks).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::account::{NextQuery, safe_next};
use super::layout;
use super::viewer::{SESSION_COOKIE, Viewer, cookie, cookie_name, set_cookie};
use super::{Ui, UiError, UiResult};
use crate::oidc::{Oidc, OidcError};
use crate::service::accounts::AuthError;
use crate::service::identity::SignInError;
use crate::service::sign_ins::{HoldError, PENDING_TTL};

/// The cookie that carries the id of a sign-in in progress (the rest is in the database).
const PENDING_COOKIE: &str = "berth_oidc";

fn oidc(ui: &Ui) -> Result<&Arc<Oidc>, UiError> {
    ui.gate
        .as_ref()
        .and_then(|g| g.oidc.as_ref())
        .ok_or(UiError::NotFound)
}

/// `GET /ui/login/oidc?next=`: to the provider's sign-in page.
pub(super) async fn start(
    State(ui): State<Arc<Ui>>,
    viewer: Viewer,
    Query(q): Query<NextQuery>,
) -> UiResult {
    let oidc = oidc(&ui)?;
    let next = safe_next(q.next.as_deref().unwrap_or("/ui/"));
    let redirect = oidc.redirect_url(&viewer.base_url);
    let gate = ui.gate()?;
    match oidc.begin(&redirect, next).await {
        Ok((url, pending)) => {
            let id = match gate
                .accounts
                .hold_sign_in(pending, viewer.client, oidc.max_pending())
                .await
            {
                Ok(id) => id,
                Err(HoldError::Meta(e)) => return Err(e.into()),
                Err(e @ HoldError::Full(_)) => {
                    tracing::warn!(target: "berth::oidc", error = %e, "single sign-on refused: auth.oidc.max_pending_logins reached");
                    return Ok(page(
                        &viewer,
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Too many single sign-ons are in progress right now. Try again in a few minutes; administrators can sign in with their password.",
                    ));
                }
                Err(e @ HoldError::FullFromAddress(_)) => {
                    tracing::warn!(target: "berth::oidc", error = %e, client = %viewer.client, "single sign-on refused: auth.oidc.max_pending_logins_per_address reached");
                    return Ok(page(
                        &viewer,
                        StatusCode::TOO_MANY_REQUESTS,
                        "Too many single sign-ons from your address are in progress. Finish or close them, or try again in a few minutes.",
                    ));
                }
                Err(e @ HoldError::NoRandomness) => return Err(UiError::Internal(e.to_string())),
            };
            let mut response = Redirect::to(&url).into_response();
            let c = set_cookie(PENDING_COOKIE, &id, PENDING_TTL.as_secs(), viewer.secure());
            if let Ok(v) = c.parse() {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
            Ok(response)
        }
        Err(e) => Ok(failed(&viewer, &e)),
    }
}

/// The provider's answer.
#[derive(Deserialize)]
pub(super) struct Callback {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /ui/login/oidc/callback`: checks the answer, signs the person in (provisioning and
/// syncing their memberships) and returns to where they were going.
pub(super) async fn callback(
    State(ui): State<Arc<Ui>>,
    viewer: Viewer,
    headers: HeaderMap,
    Query(q): Query<Callback>,
) -> UiResult {
    let oidc = oidc(&ui)?;
    let gate = ui.gate()?;
    // The sign-in in progress is taken out of the database: used once, whatever happens next
    // and on whichever replica.
    let pending = match cookie(&headers, &cookie_name(PENDING_COOKIE, viewer.secure())) {
        Some(id) => gate.accounts.take_sign_in(id).await?,
        None => None,
    };
    let clear = set_cookie(PENDING_COOKIE, "", 0, viewer.secure());
    let result = async {
        if let Some(error) = &q.error {
            let detail = q.error_description.as_deref().unwrap_or("");
            return Err(OidcError::Exchange(format!("{error} {detail}")));
        }
        let (Some(pending), Some(state), Some(code)) = (&pending, &q.state, &q.code) else {
            return Err(OidcError::State);
        };
        let redirect = oidc.pending_redirect(pending).ok_or(OidcError::State)?;
        oidc.finish(redirect, pending, state, code).await
    }
    .await;
    let mut response = match result {
        Err(e) => failed(&viewer, &e),
        Ok(identity) => match gate
            .accounts
            .sign_in_external(&identity, &viewer.origin)
            .await
        {
            Err(SignInError::Meta(e)) => return Err(e.into()),
            Err(SignInError::Name(invalid)) => {
                tracing::info!(target: "berth::oidc", subject = %identity.subject, error = %invalid, "single sign-on refused: no valid user name");
                page(
                    &viewer,
                    StatusCode::FORBIDDEN,
                    &oidc.bad_name_message(&invalid),
                )
            }
            Err(e) => {
                tracing::info!(target: "berth::oidc", subject = %identity.subject, error = %e, "single sign-on refused");
                page(&viewer, StatusCode::FORBIDDEN, &e.to_string())
            }
            Ok(account) => match gate.accounts.open_session(&account).await {
                Ok(secret) => {
                    let next = pending.as_ref().map_or("/ui/", |p| safe_next(&p.next));
                    let mut r = Redirect::to(next).into_response();
                    let ttl = gate.accounts.session_ttl().as_secs();
                    if let Ok(v) = set_cookie(SESSION_COOKIE, &secret, ttl, viewer.secure()).parse()
                    {
                        r.headers_mut().append(header::SET_COOKIE, v);
                    }
                    r
                }
                Err(AuthError::Meta(e)) => return Err(e.into()),
                Err(e) => return Err(UiError::Internal(e.to_string())),
            },
        },
    };
    if let Ok(v) = clear.parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response)
}

/// A failed sign-in: logged with its cause, shown without the provider's details beyond
/// the kind of failure.
fn failed(viewer: &Viewer, e: &OidcError) -> Response {
    tracing::warn!(target: "berth::oidc", error = %e, "single sign-on failed");
    let (status, message) = match e {
        OidcError::Unavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Single sign-on is unavailable: the identity provider does not answer. Try again later; administrators can sign in with their password.",
        ),
        OidcError::State => (
            StatusCode::BAD_REQUEST,
            "This sign-in was not started here, was already used or has expired. Start again.",
        ),
        OidcError::Token(_) => (
            StatusCode::FORBIDDEN,
            "The identity provider's answer failed berth's checks; you are not signed in.",
        ),
        OidcError::NoName(_) => (
            StatusCode::FORBIDDEN,
            "The identity provider did not say which user name you have.",
        ),
        OidcError::Exchange(_) | OidcError::Config(_) => (
            StatusCode::BAD_GATEWAY,
            "The identity provider did not complete the sign-in.",
        ),
    };
    page(viewer, status, message)
}

fn page(_viewer: &Viewer, status: StatusCode, message: &str) -> Response {
    let mut response = layout::html_response(layout::error_page("Sign-in failed", message), None);
    *response.status_mut() = status;
    response
}
