//! `GET /metrics`: the Prometheus exposition (OpenMetrics text), on the main listener or a
//! separate one, behind the access rule of `[metrics]`:
//!
//! - with a `token`, a scraper sending `Authorization: Bearer TOKEN` may read it;
//! - with `admins` (the main listener when authentication is on), so may an administrator
//!   signing in with HTTP Basic;
//! - with neither, anyone may: a registry without authentication (whose API is open anyway),
//!   or a separate listener on an address the operator chose for scraping.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::RouteName;
use super::auth::{Credentials, Gate, credentials};
use crate::auth::Principal;
use crate::auth::secret::{constant_time_eq, hash};
use crate::metrics::{CONTENT_TYPE, Metrics};
use crate::server::ConnInfo;
use crate::service::Registry;
use crate::service::accounts::AuthError;

/// What `/metrics` serves and who may read it.
pub struct Endpoint {
    /// The families.
    pub metrics: Arc<Metrics>,
    /// Where the storage gauges are read from.
    pub registry: Registry,
    /// The bearer token scrapers send; `None`: no token.
    pub token: Option<String>,
    /// Accounts whose administrators may read with HTTP Basic; `None`: nobody that way.
    pub admins: Option<Arc<Gate>>,
    /// The accounts service whose login throttle is sampled, when authentication is on.
    pub accounts: Option<Arc<crate::service::accounts::Accounts>>,
}

/// The `/metrics` route.
pub fn router(endpoint: Endpoint) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .with_state(Arc::new(endpoint))
}

async fn scrape(State(endpoint): State<Arc<Endpoint>>, request: Request) -> Response {
    let conn = request.extensions().get::<ConnInfo>().copied();
    let mut response = match endpoint.check(request.headers(), conn).await {
        Ok(()) => endpoint.exposition().await,
        Err(refusal) => refusal,
    };
    response.extensions_mut().insert(RouteName("metrics"));
    response
}

impl Endpoint {
    async fn exposition(&self) -> Response {
        self.metrics.sample_storage(&self.registry).await;
        if let Some(accounts) = &self.accounts {
            self.metrics.logins.set(accounts.throttle_sizes());
        }
        match self.metrics.encode() {
            Ok(text) => (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, CONTENT_TYPE),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                text,
            )
                .into_response(),
            Err(e) => {
                tracing::error!(error = %e, "could not encode the metrics");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n").into_response()
            }
        }
    }

    /// Lets the scrape through, or answers it.
    async fn check(&self, headers: &HeaderMap, conn: Option<ConnInfo>) -> Result<(), Response> {
        if self.token.is_none() && self.admins.is_none() {
            return Ok(());
        }
        match credentials(headers) {
            Credentials::Bearer(given) => match &self.token {
                // Hashes first: equal lengths, so the comparison's time tells nothing either.
                Some(token) if constant_time_eq(&hash(&given), &hash(token)) => Ok(()),
                _ => Err(self.unauthorized()),
            },
            Credentials::Basic(user, password) => {
                let Some(gate) = &self.admins else {
                    return Err(self.unauthorized());
                };
                let client = conn.map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.peer.ip());
                match gate.accounts.login(&user, &password, client).await {
                    Ok(Principal::User { admin: true, .. }) => Ok(()),
                    Ok(_) => Err((
                        StatusCode::FORBIDDEN,
                        "only administrators may read the metrics\n",
                    )
                        .into_response()),
                    Err(AuthError::Throttled(wait)) => Err((
                        StatusCode::TOO_MANY_REQUESTS,
                        [(header::RETRY_AFTER, wait.as_secs().max(1).to_string())],
                        "too many failed logins\n",
                    )
                        .into_response()),
                    Err(_) => Err(self.unauthorized()),
                }
            }
            Credentials::None | Credentials::Malformed => Err(self.unauthorized()),
        }
    }

    /// `401` with a challenge for each way in that is configured.
    fn unauthorized(&self) -> Response {
        let mut response = (StatusCode::UNAUTHORIZED, "unauthorized\n").into_response();
        let challenges = response.headers_mut();
        if self.token.is_some() {
            challenges.append(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"berth metrics\""),
            );
        }
        if self.admins.is_some() {
            challenges.append(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"berth\""),
            );
        }
        response
    }
}
