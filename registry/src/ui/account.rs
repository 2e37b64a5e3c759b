//! Signing in and out, and the account page: password and personal access tokens.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::form::Form;
use super::layout::{self, copy_box, csrf_field, page, when};
use super::viewer::{SESSION_COOKIE, Viewer, set_cookie};
use super::{Ui, UiError, UiResult};
use crate::api::auth::Gate;
use crate::meta::events::Origin;
use crate::meta::now_ms;
use crate::service::accounts::AuthError;

/// Where to go after signing in: only paths of this UI, never another site.
pub(super) fn safe_next(next: &str) -> &str {
    let ok = next.starts_with("/ui/")
        && !next.starts_with("//")
        && !next.contains('\\')
        && next.bytes().all(|b| b.is_ascii_graphic());
    if ok { next } else { "/ui/" }
}

/// A redirect to `to` that sets the session cookie (`max_age = 0` and an empty value sign
/// the browser out).
fn redirect_setting_session(to: &str, secret: &str, max_age: u64, secure: bool) -> Response {
    let mut response = Redirect::to(to).into_response();
    if let Ok(v) = set_cookie(SESSION_COOKIE, secret, max_age, secure).parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// Query of the sign-in page.
#[derive(Deserialize)]
pub(super) struct NextQuery {
    pub(super) next: Option<String>,
}

/// `GET /ui/login`.
pub(super) async fn login_page(
    State(ui): State<Arc<Ui>>,
    mut viewer: Viewer,
    Query(q): Query<NextQuery>,
) -> UiResult {
    ui.gate()?;
    let next = safe_next(q.next.as_deref().unwrap_or("/ui/")).to_owned();
    if viewer.user().is_some() {
        return Ok(Redirect::to(&next).into_response());
    }
    let cookie = viewer.prepare_forms()?;
    let sso = sso_button(&ui, &next).await;
    Ok(layout::html_response(
        login_form(&viewer, &next, None, sso),
        cookie,
    ))
}

/// The single sign-on button, or a notice that the provider is down; nothing without
/// `[auth.oidc]`.
async fn sso_button(ui: &Ui, next: &str) -> Option<Markup> {
    let oidc = ui.gate.as_ref()?.oidc.as_ref()?;
    let href = format!("/ui/login/oidc?next={}", super::form::encode(next));
    Some(if oidc.available().await {
        html! { p #sso { a.button.primary href=(href) { "Sign in with " (oidc.display_name()) } } }
    } else {
        html! { p #sso .notice.error role="alert" { "Single sign-on (" (oidc.display_name()) ") is unavailable: the identity provider does not answer. Administrators can sign in with their password below." } }
    })
}

fn login_form(viewer: &Viewer, next: &str, error: Option<&str>, sso: Option<Markup>) -> Markup {
    let body = html! {
        section.narrow {
            h1 { "Sign in" }
            @if let Some(e) = error { p.notice.error role="alert" { (e) } }
            @if let Some(sso) = sso { (sso) }
            form.stacked method="post" action="/ui/login" {
                (csrf_field(viewer))
                input type="hidden" name="next" value=(next);
                label for="username" { "Username" }
                input #username type="text" name="username" autocomplete="username" required autofocus maxlength="255";
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required maxlength="1024";
                button.primary type="submit" { "Sign in" }
            }
            p.meta { "Access tokens are for docker and other registry clients; sign in here with your password." }
        }
    };
    page(viewer, "Sign in", &[], body)
}

/// `POST /ui/login`: checks the password, starts a session and returns to `next`.
pub(super) async fn login(
    State(ui): State<Arc<Ui>>,
    viewer: Viewer,
    headers: HeaderMap,
    body: Body,
) -> UiResult {
    let gate = ui.gate()?;
    let form = Form::read(body).await?;
    viewer.check_form(&headers, &form)?;
    let next = safe_next(form.get("next")).to_owned();
    let user = form.get("username");
    match gate
        .accounts
        .start_session(user, form.raw("password"), viewer.client)
        .await
    {
        Ok((_, secret)) => {
            let ttl = gate.accounts.session_ttl().as_secs();
            Ok(redirect_setting_session(
                &next,
                &secret,
                ttl,
                viewer.secure(),
            ))
        }
        Err(AuthError::Throttled(wait)) => Err(UiError::Throttled(wait.as_secs().max(1))),
        Err(AuthError::Meta(e)) => Err(e.into()),
        Err(AuthError::Directory(_)) => {
            let sso = sso_button(&ui, &next).await;
            let page = login_form(
                &viewer,
                &next,
                Some("The sign-in directory (LDAP) is unavailable; try again later."),
                sso,
            );
            Ok((
                StatusCode::SERVICE_UNAVAILABLE,
                layout::html_response(page, None),
            )
                .into_response())
        }
        Err(_) => {
            let sso = sso_button(&ui, &next).await;
            let page = login_form(&viewer, &next, Some("Wrong username or password."), sso);
            Ok((StatusCode::UNAUTHORIZED, layout::html_response(page, None)).into_response())
        }
    }
}

/// `POST /ui/logout`: ends the session everywhere (it is deleted, not just forgotten).
pub(super) async fn logout(
    State(ui): State<Arc<Ui>>,
    viewer: Viewer,
    headers: HeaderMap,
    body: Body,
) -> UiResult {
    let gate = ui.gate()?;
    let form = Form::read(body).await?;
    viewer.check_form(&headers, &form)?;
    if let Some(secret) = viewer.session_secret() {
        gate.accounts.end_session(secret).await?;
    }
    // RP-initiated logout: an account of the provider signs out there too, if configured.
    if let Some(oidc) = &gate.oidc
        && let Some(user) = viewer.user()
        && gate.accounts.identity_provider(user).await?
            == Some(crate::service::identity::Provider::Oidc)
        && let Some(url) = oidc.logout_url(&viewer.base_url).await
    {
        return Ok(to_provider_logout(&url, viewer.secure()));
    }
    Ok(redirect_setting_session("/ui/", "", 0, viewer.secure()))
}

/// Signed out of berth, on to the provider's end-session page. Not a redirect: this answers
/// a form, and browsers hold the whole navigation of a form to its `form-action` policy
/// (`'self'`), so a redirect to the provider would be blocked. A refresh is not a form
/// navigation; the link is for browsers that do not follow it.
fn to_provider_logout(url: &str, secure: bool) -> Response {
    let markup = html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content=(format!("0; url={url}"));
                title { "Signed out" }
            }
            body {
                p {
                    "You are signed out of berth. "
                    a #provider-logout href=(url) { "Sign out at the identity provider too" }
                    "."
                }
            }
        }
    };
    layout::html_response(markup, Some(set_cookie(SESSION_COOKIE, "", 0, secure)))
}

/// `GET /ui/account`.
pub(super) async fn account_page(State(ui): State<Arc<Ui>>, viewer: Viewer) -> UiResult {
    ui.gate()?;
    let Some(_) = viewer.user() else {
        return Err(UiError::SignIn("/ui/account".into()));
    };
    render_account(&ui, &viewer, None, StatusCode::OK).await
}

/// What to show above the account page after an action.
enum Notice {
    Done(String),
    Failed(String),
    NewToken { name: String, secret: String },
}

async fn render_account(
    ui: &Ui,
    viewer: &Viewer,
    notice: Option<Notice>,
    status: StatusCode,
) -> UiResult {
    let gate = ui.gate()?;
    let user = viewer.user().ok_or(UiError::Forbidden)?;
    let tokens = gate.accounts.tokens(Some(&user.name)).await?;
    let provider = gate.accounts.identity_provider(user).await?;
    let now = now_ms();
    let host = viewer.registry_host();
    let body = html! {
        h1 { "Account " (user.name) }
        @if user.admin { p.meta { "Hub administrator" } }
        p.meta #identity-source {
            @match provider {
                Some(p) => { "You sign in through " (p.title()) ". Your organizations and teams follow your groups there, at every sign-in. Use an access token for docker and other clients." },
                None => { "A local account: berth keeps your password." },
            }
        }
        @match &notice {
            Some(Notice::Done(m)) => p.notice role="status" { (m) },
            Some(Notice::Failed(m)) => p.notice.error role="alert" { (m) },
            Some(Notice::NewToken { name, secret }) => section.notice role="status" {
                h2 { "Token " (name) " created" }
                p { "Copy it now: it is shown only once." }
                (copy_box("token", secret))
                p { "Log in with it: " }
                (copy_box("login command", &format!("docker login {host} -u {}", user.name)))
            },
            None => {},
        }
        section aria-labelledby="tokens" {
            h2 #tokens { "Access tokens" }
            p.meta { "Tokens let docker, CI jobs and other clients sign in without your password, limited to the scopes you give them." }
            @if tokens.is_empty() { p.empty { "No tokens yet." } }
            @else {
                table.list {
                    thead { tr {
                        th scope="col" { "Name" } th scope="col" { "Scopes" } th scope="col" { "Created" }
                        th scope="col" { "Expires" } th scope="col" { "Last used" } th scope="col" { "Status" }
                        th scope="col" { span.visually-hidden { "Actions" } }
                    } }
                    tbody {
                        @for t in &tokens {
                            @let active = t.revoked_at.is_none() && t.expires_at.is_none_or(|e| e > now);
                            tr {
                                th scope="row" { (t.name) }
                                td { @for s in &t.scopes { code { (s) } " " } }
                                td { (when(t.created_at)) }
                                td { @if let Some(e) = t.expires_at { (layout::iso_time(e)) } @else { "never" } }
                                td { @if let Some(u) = t.last_used_at { (when(u)) } @else { "never" } }
                                td { @if t.revoked_at.is_some() { "revoked" } @else if active { "active" } @else { "expired" } }
                                td {
                                    @if active {
                                        form.inline method="post" action="/ui/account/revoke" {
                                            (csrf_field(viewer))
                                            input type="hidden" name="name" value=(t.name);
                                            button.danger type="submit" aria-label={ "Revoke token " (t.name) } { "Revoke" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h3 { "New token" }
            form.stacked method="post" action="/ui/account/tokens" {
                (csrf_field(viewer))
                label for="token-name" { "Name" }
                input #token-name type="text" name="name" required maxlength="64" placeholder="ci-deploy";
                label for="token-scopes" { "Scopes, one per line (" code { "repository-or-pattern:actions" } ")" }
                textarea #token-scopes name="scopes" rows="3" required {
                    (user.name) "/*:pull,push"
                }
                label for="token-expiry" { "Expires" }
                select #token-expiry name="expires_days" {
                    option value="30" { "in 30 days" }
                    option value="90" selected { "in 90 days" }
                    option value="365" { "in a year" }
                    option value="" { "never" }
                }
                button.primary type="submit" { "Create token" }
            }
        }
        @if provider.is_none() { section aria-labelledby="password" {
            h2 #password { "Change password" }
            form.stacked method="post" action="/ui/account/password" {
                (csrf_field(viewer))
                label for="current" { "Current password" }
                input #current type="password" name="current" autocomplete="current-password" required maxlength="1024";
                label for="new" { "New password" }
                input #new type="password" name="new" autocomplete="new-password" required maxlength="1024";
                label for="confirm" { "New password again" }
                input #confirm type="password" name="confirm" autocomplete="new-password" required maxlength="1024";
                button.primary type="submit" { "Change password" }
            }
            p.meta { "Changing the password signs out every other browser and invalidates docker logins made with it." }
        } }
    };
    let mut response = layout::html_response(
        page(
            viewer,
            "Account",
            &[("Account".into(), "/ui/account".into())],
            body,
        ),
        None,
    );
    *response.status_mut() = status;
    Ok(response)
}

/// `POST /ui/account/{password|tokens|revoke}`.
pub(super) async fn account_post(
    State(ui): State<Arc<Ui>>,
    viewer: Viewer,
    Path(action): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> UiResult {
    let gate = ui.gate()?;
    let Some(user) = viewer.user() else {
        return Err(UiError::SignIn("/ui/account".into()));
    };
    let form = Form::read(body).await?;
    viewer.check_form(&headers, &form)?;
    let name = user.name.clone();
    let outcome = match action.as_str() {
        "tokens" => create_token(gate, &name, &form, &viewer.origin).await,
        "revoke" => {
            let token = form.required("name", "The token name")?;
            gate.accounts
                .revoke_token(&name, token, &viewer.origin)
                .await
                .map(|()| Notice::Done(format!("Token {token} revoked.")))
                .map_err(UiError::from)
        }
        "password" => {
            return change_password(&ui, gate, viewer, &form).await;
        }
        _ => return Err(UiError::NotFound),
    };
    match outcome {
        Ok(notice) => render_account(&ui, &viewer, Some(notice), StatusCode::OK).await,
        Err(UiError::BadRequest(m)) => {
            render_account(
                &ui,
                &viewer,
                Some(Notice::Failed(m)),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(e) => Err(e),
    }
}

async fn create_token(
    gate: &Gate,
    user: &str,
    form: &Form,
    by: &Origin,
) -> Result<Notice, UiError> {
    let name = form.required("name", "The token name")?;
    let scopes: Vec<String> = form
        .get("scopes")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let expires = match form.get("expires_days") {
        "" => None,
        days => {
            let days: u64 = days
                .parse()
                .ok()
                .filter(|d| (1..=3650).contains(d))
                .ok_or_else(|| UiError::BadRequest("expiry must be 1 to 3650 days".into()))?;
            Some(Duration::from_secs(days * 86_400))
        }
    };
    let token = gate
        .accounts
        .create_token(user, name, &scopes, expires, by)
        .await?;
    Ok(Notice::NewToken {
        name: token.record.name,
        secret: token.secret,
    })
}

async fn change_password(ui: &Ui, gate: &Gate, viewer: Viewer, form: &Form) -> UiResult {
    let Some(user) = viewer.user() else {
        return Err(UiError::Forbidden);
    };
    let name = user.name.clone();
    let (new, confirm) = (form.raw("new"), form.raw("confirm"));
    let failed = |m: &str| Some(Notice::Failed(m.to_owned()));
    if new != confirm {
        return render_account(
            ui,
            &viewer,
            failed("The new passwords differ."),
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    match gate
        .accounts
        .login(&name, form.raw("current"), viewer.client)
        .await
    {
        Ok(_) => {}
        Err(AuthError::Throttled(wait)) => return Err(UiError::Throttled(wait.as_secs().max(1))),
        Err(AuthError::Meta(e)) => return Err(e.into()),
        Err(_) => {
            return render_account(
                ui,
                &viewer,
                failed("The current password is wrong."),
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
    }
    if let Err(e) = gate.accounts.set_password(&name, new, &viewer.origin).await {
        return match UiError::from(e) {
            UiError::BadRequest(m) => {
                render_account(
                    ui,
                    &viewer,
                    Some(Notice::Failed(m)),
                    StatusCode::BAD_REQUEST,
                )
                .await
            }
            other => Err(other),
        };
    }
    // The change ended every session of the account, this one included: start a new one.
    let (_, secret) = gate
        .accounts
        .start_session(&name, new, viewer.client)
        .await
        .map_err(|e| UiError::Internal(e.to_string()))?;
    let ttl = gate.accounts.session_ttl().as_secs();
    Ok(redirect_setting_session(
        "/ui/account",
        &secret,
        ttl,
        viewer.secure(),
    ))
}
