//! The web UI: server-rendered pages for browsing repositories, tags and images, searching,
//! signing in, managing access tokens, organizations and repository settings.
//!
//! Depends on `service` (the same calls as the API) and `auth` for who is looking. Handlers
//! parse the request, call the service and render with `maud`, which escapes every value it
//! interpolates. The stylesheet and script are embedded; pages work without the script.
//!
//! Routes (repository names contain `/`, so everything after a name follows `/-/`, which no
//! name component can be):
//!
//! ```text
//! GET  /ui/                          recent repositories, all repositories, search box
//! GET  /ui/search?q=                 repositories and tags by name
//! GET  /ui/n/{namespace}             a user's or organization's repositories
//! GET  /ui/r/{name}                  tags: sort, filter, pages
//! GET  /ui/r/{name}/-/manifest/{d}   an image or index
//! GET  /ui/r/{name}/-/findings/{d}   its vulnerabilities: ?severity=&fixable=&page=
//! GET  /ui/r/{name}/-/packages/{d}   its packages and SBOMs: ?page=
//! GET  /ui/r/{name}/-/settings       visibility, deleting tags and manifests
//! GET  /ui/r/{name}/-/history        tag history: ?tag=&before=
//! POST /ui/r/{name}/-/{action}       visibility | delete-tag | delete-manifest | restore
//! GET  /ui/login, POST /ui/login, POST /ui/logout
//! GET  /ui/login/oidc, GET /ui/login/oidc/callback    single sign-on
//! GET  /ui/account, POST /ui/account/{password|tokens|revoke}
//! GET  /ui/orgs/{org}, POST /ui/orgs/{org}   members, teams, grants, immutable-tag rules,
//!                                          retention rules, webhooks, robot accounts,
//!                                          accepted vulnerabilities
//! GET  /ui/orgs/{org}/usage, POST (admins)  storage usage against the organization's quotas
//! GET  /ui/admin/usage, POST /ui/admin/usage  every namespace's usage; quotas set, removed
//! GET  /ui/admin/maintenance             garbage-collection passes, scrub progress, findings
//! GET  /ui/audit                     the audit log, for administrators: ?repository=&actor=
//!                                    &action=&since=&until=&before=
//! GET  /ui/orgs/{org}/audit          an organization's audit log, for its owners
//! GET  /ui/static/{file}
//! ```

mod account;
mod audit;
mod browse;
mod form;
mod history;
mod layout;
mod maintenance;
mod manage;
mod org_allowlist;
mod org_policy;
mod org_robots;
mod org_webhooks;
mod scans;
mod sso;
mod usage;
mod viewer;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::api::RouteName;
use crate::api::auth::Gate;
use crate::api::caller::Refusal;
use crate::service::{Registry, RegistryError};
use crate::telemetry::error_chain;

pub use viewer::Viewer;

/// What the pages work with.
pub struct Ui {
    registry: Registry,
    gate: Option<Arc<Gate>>,
    trust_forwarded: bool,
}

impl Ui {
    /// The accounts' gate; without authentication there are no accounts, and pages about
    /// them are not there.
    fn gate(&self) -> Result<&Arc<Gate>, UiError> {
        self.gate.as_ref().ok_or(UiError::NotFound)
    }
}

/// The UI's routes. With `gate = None` (authentication off) everyone may see and do
/// everything, as on the API, and there is no signing in.
pub fn router(registry: Registry, gate: Option<Arc<Gate>>, trust_forwarded: bool) -> Router {
    let ui = Arc::new(Ui {
        registry,
        gate,
        trust_forwarded,
    });
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(browse::home))
        .route("/ui/search", get(browse::search))
        .route("/ui/n/{namespace}", get(browse::namespace))
        .route(
            "/ui/r/{*rest}",
            get(browse::repository_get).post(manage::repository_post),
        )
        .route("/ui/login", get(account::login_page).post(account::login))
        .route("/ui/login/oidc", get(sso::start))
        .route("/ui/login/oidc/callback", get(sso::callback))
        .route("/ui/logout", post(account::logout))
        .route("/ui/account", get(account::account_page))
        .route("/ui/account/{action}", post(account::account_post))
        .route(
            "/ui/orgs/{org}",
            get(manage::org_page).post(manage::org_post),
        )
        .route(
            "/ui/orgs/{org}/usage",
            get(usage::org_usage).post(usage::org_usage_post),
        )
        .route(
            "/ui/admin/usage",
            get(usage::admin_usage).post(usage::admin_usage_post),
        )
        .route("/ui/admin/maintenance", get(maintenance::page_get))
        .route("/ui/audit", get(audit::admin_page))
        .route("/ui/orgs/{org}/audit", get(audit::org_page))
        .route("/ui/static/{file}", get(asset))
        .route(
            "/ui/{*rest}",
            get(|| async { UiError::NotFound }).post(|| async { UiError::NotFound }),
        )
        .with_state(ui)
        .layer(axum::middleware::map_response(security_headers))
}

/// Headers on every UI response: a strict content security policy (no inline script or
/// style, no framing, forms post only here), no MIME sniffing, no referrer to elsewhere.
async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        // Pages depend on who is signed in: never store them in shared caches.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response.extensions_mut().insert(RouteName("ui"));
    response
}

/// The embedded stylesheet and script.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "berth.css",
        "text/css; charset=utf-8",
        include_str!("assets/berth.css"),
    ),
    (
        "berth.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/berth.js"),
    ),
];

/// A short fingerprint of the assets, appended to their URLs so browsers may cache them
/// for good and still see a new release at once.
fn asset_version() -> &'static str {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION.get_or_init(|| {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        for (_, _, body) in ASSETS {
            h.update(body.as_bytes());
        }
        hex::encode(&h.finalize()[..6])
    })
}

#[derive(serde::Deserialize)]
struct AssetQuery {
    v: Option<String>,
}

async fn asset(Path(file): Path<String>, Query(q): Query<AssetQuery>) -> Response {
    let Some((_, content_type, body)) = ASSETS.iter().find(|(name, _, _)| *name == file) else {
        return UiError::NotFound.into_response();
    };
    let cache = if q.v.as_deref() == Some(asset_version()) {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    (
        [
            (header::CONTENT_TYPE, *content_type),
            (header::CACHE_CONTROL, cache),
        ],
        *body,
    )
        .into_response()
}

/// Why a page could not be shown; each renders as a page with a matching status.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// Nothing here, or nothing the viewer may see (the two look the same on purpose).
    #[error("not found")]
    NotFound,
    /// The viewer may see this but not do it.
    #[error("you may not do this")]
    Forbidden,
    /// The form or query is invalid.
    #[error("{0}")]
    BadRequest(String),
    /// The form did not carry this session's anti-forgery token.
    #[error("the form has expired or did not come from this site; go back, reload and try again")]
    Csrf,
    /// Signing in is needed first; carries where to return.
    #[error("sign in first")]
    SignIn(String),
    /// Too many failed sign-ins.
    #[error("too many failed sign-ins; try again in {0} seconds")]
    Throttled(u64),
    /// The registry, database or storage failed (logged; not shown).
    #[error("internal error")]
    Internal(String),
}

impl From<RegistryError> for UiError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::NameUnknown(_)
            | RegistryError::ManifestUnknown
            | RegistryError::BlobUnknown(_) => UiError::NotFound,
            other => UiError::Internal(error_chain(&other)),
        }
    }
}

impl From<crate::meta::MetaError> for UiError {
    fn from(e: crate::meta::MetaError) -> Self {
        UiError::Internal(error_chain(&e))
    }
}

/// The API's refusals as pages. A refusal of something named in a form (not found, taken,
/// invalid) is the form's error: shown on the form's page.
impl From<Refusal> for UiError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::SignIn | Refusal::TokenLogin | Refusal::Forbidden(_) => UiError::Forbidden,
            Refusal::Throttled(wait) => UiError::Throttled(wait.as_secs().max(1)),
            Refusal::NotFound(_)
            | Refusal::Exists(_)
            | Refusal::NamespaceHeld(_)
            | Refusal::Invalid(_)
            | Refusal::TooLarge => UiError::BadRequest(r.to_string()),
            Refusal::Internal(cause) => UiError::Internal(cause),
        }
    }
}

impl From<crate::service::accounts::AdminError> for UiError {
    fn from(e: crate::service::accounts::AdminError) -> Self {
        Refusal::from(e).into()
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let status = match &self {
            UiError::NotFound => StatusCode::NOT_FOUND,
            UiError::Forbidden | UiError::Csrf => StatusCode::FORBIDDEN,
            UiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            UiError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            UiError::SignIn(next) => {
                let to = format!("/ui/login?next={}", form::encode(next));
                return Redirect::to(&to).into_response();
            }
            UiError::Internal(cause) => {
                tracing::error!(target: "berth::ui", error = %cause, "page failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let title = match status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::BAD_REQUEST => "Invalid request",
            StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
            _ => "Something went wrong",
        };
        let message = match &self {
            UiError::NotFound => {
                "There is nothing here, or you may not see it. Signing in may help.".to_owned()
            }
            other => other.to_string(),
        };
        let mut response = layout::html_response(layout::error_page(title, &message), None);
        *response.status_mut() = status;
        response
    }
}

/// Result of a page handler.
pub type UiResult = Result<Response, UiError>;
