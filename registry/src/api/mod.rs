//! The HTTP API: the OCI Distribution Spec v1.1 and Docker Registry HTTP API V2.
//!
//! Depends on `service` (one call per request), `domain` (typed parameters) and axum. Every
//! `/v2` path goes through [`route::OciRoute::parse`]; handlers parse headers and query into
//! typed values, call one service method and build the response. Errors become the spec's
//! JSON envelope in `error`.

mod admin;
pub mod auth;
mod blobs;
pub mod caller;
mod cve_allowlist;
pub mod error;
mod events;
mod hub;
mod json;
mod jwks;
mod listing;
mod maintenance;
mod manifests;
pub mod metrics;
mod middleware;
mod org_policy;
mod policies;
mod query;
mod quotas;
pub mod ratelimit;
pub mod route;
mod scans;
mod uploads;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::time::Duration;

use futures_util::StreamExt;

use crate::service::{ByteStream, Registry};
use error::ApiError;
use query::Query;
use route::OciRoute;

pub use middleware::RouteName;

/// What the `/v2` dispatcher works with.
struct App {
    registry: Registry,
    gate: Option<Arc<auth::Gate>>,
    rate_limits: Option<Arc<ratelimit::RateLimits>>,
    metrics: Arc<crate::metrics::Metrics>,
    /// Whether `X-Forwarded-For` names the client (for the audit log).
    trust_forwarded: bool,
}

/// What [`router`] serves and with which settings.
pub struct RouterParts {
    /// The registry service.
    pub registry: Registry,
    /// Authentication and access control, when on.
    pub gate: Option<Arc<auth::Gate>>,
    /// Cleared when the process starts shutting down.
    pub ready: Arc<AtomicBool>,
    /// The web UI.
    pub pages: Router,
    /// Request rate limits, if any.
    pub rate_limits: Option<Arc<ratelimit::RateLimits>>,
    /// Where requests are counted.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// `/metrics`, when served on this listener.
    pub scrape: Option<metrics::Endpoint>,
    /// Whether a proxy's `X-Forwarded-*` headers describe the client.
    pub trust_forwarded: bool,
}

/// Builds the router for the registry API, the token endpoint (when `gate` is set, which
/// turns authentication on), the health probes, `pages` (the web UI) and `scrape` (the
/// `/metrics` endpoint, when served here), all behind the same logging, metrics, panic and
/// draining layers. `ready` is cleared when the process starts shutting down, so load
/// balancers stop sending it requests. `trust_forwarded` says whether a proxy's
/// `X-Forwarded-*` headers describe the client.
pub fn router(parts: RouterParts) -> Router {
    let RouterParts {
        registry,
        gate,
        ready,
        pages,
        rate_limits,
        metrics,
        scrape,
        trust_forwarded,
    } = parts;
    let token = match &gate {
        Some(gate) => Router::new()
            .route("/token", axum::routing::any(auth::token))
            .route("/.well-known/jwks.json", axum::routing::get(jwks::jwks))
            .with_state(gate.clone())
            .merge(admin::router(gate.clone()))
            .merge(policies::router(registry.clone(), gate.clone()))
            .merge(org_policy::router(registry.clone(), gate.clone()))
            .merge(cve_allowlist::router(registry.clone(), gate.clone()))
            .merge(quotas::router(registry.clone(), gate.clone()))
            .merge(maintenance::router(registry.clone(), gate.clone())),
        None => Router::new(),
    };
    let health = Router::new()
        .route("/healthz", axum::routing::get(healthz))
        .route("/readyz", axum::routing::get(readyz))
        .with_state(Arc::new(Probe {
            registry: registry.clone(),
            ready: ready.clone(),
        }));
    let hub = hub::router(registry.clone(), gate.clone(), trust_forwarded);
    let scrape = scrape.map_or_else(Router::new, metrics::router);
    let state = Arc::new(App {
        registry,
        gate,
        rate_limits,
        metrics: metrics.clone(),
        trust_forwarded,
    });
    Router::new()
        .route("/v2", axum::routing::any(dispatch))
        .route("/v2/", axum::routing::any(dispatch))
        .route("/v2/{*rest}", axum::routing::any(dispatch))
        .fallback(not_found)
        .with_state(state)
        .merge(health)
        .merge(token)
        .merge(hub)
        .merge(scrape)
        .route(
            "/api/{*rest}",
            axum::routing::any(|| async {
                let mut r = json::error(StatusCode::NOT_FOUND, "not_found", "no such API endpoint");
                r.extensions_mut().insert(RouteName("unknown"));
                r
            }),
        )
        .merge(pages)
        // Blob bodies are streamed, never buffered; manifest bodies have their own limit.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(middleware::api_version))
        .layer(axum::middleware::from_fn_with_state(
            ready,
            middleware::close_when_draining,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            middleware::panic_response,
        ))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            middleware::request_log,
        ))
}

/// What the health probes look at.
struct Probe {
    registry: Registry,
    ready: Arc<AtomicBool>,
}

/// `GET /healthz`: the process is alive and serving HTTP.
async fn healthz() -> Response {
    let mut response = (StatusCode::OK, "ok\n").into_response();
    response.extensions_mut().insert(RouteName("healthz"));
    response
}

/// `GET /readyz`: the database and blob storage answer and the process is not shutting
/// down; `503` otherwise (with the reason, never backend details).
async fn readyz(State(probe): State<Arc<Probe>>) -> Response {
    let verdict = if !probe.ready.load(Ordering::Acquire) {
        Err("shutting down")
    } else {
        probe.registry.ping().await
    };
    let mut response = match verdict {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()).into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        )
            .into_response(),
    };
    response.extensions_mut().insert(RouteName("readyz"));
    response
}

async fn not_found() -> Response {
    let mut response = ApiError::no_such_endpoint().into_response();
    response.extensions_mut().insert(RouteName("unknown"));
    response
}

/// Routes one `/v2` request by its parsed path and method.
async fn dispatch(State(app): State<Arc<App>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let method = parts.method;
    let headers = parts.headers;
    let conn = parts.extensions.get::<crate::server::ConnInfo>().copied();
    let route = match OciRoute::parse(parts.uri.path()) {
        Ok(route) => route,
        Err(e) => {
            let mut response = ApiError::route(e, &method).into_response();
            response.extensions_mut().insert(RouteName("invalid"));
            return response;
        }
    };
    let mut query = Query::parse(parts.uri.query());
    let name = RouteName(route_name(&route, &method));
    if let Some(limits) = &app.rate_limits {
        let class = if matches!(method, Method::GET | Method::HEAD) {
            ratelimit::Class::Pull
        } else {
            ratelimit::Class::Push
        };
        let rp = auth::RequestParts {
            headers: &headers,
            conn,
            authority: None,
        };
        if let Err(refusal) = limits.check_address(class, rp.client_addr(app.trust_forwarded)) {
            let mut response = refusal.into_response();
            response.extensions_mut().insert(name);
            return response;
        }
    }
    let mut catalog_filter = None;
    let rp = auth::RequestParts {
        headers: &headers,
        conn,
        authority: parts.uri.authority().map(|a| a.as_str()),
    };
    // Without authentication every client is anonymous.
    let mut origin = rp.origin(String::new(), app.trust_forwarded);
    if let Some(gate) = &app.gate {
        match gate.check_as(&rp, &auth::Need::of(&route, &method)).await {
            Ok((allowed, by)) => {
                origin = by;
                if let auth::Allowed::Catalog(filter) = allowed {
                    catalog_filter = Some(filter);
                }
            }
            Err(mut response) => {
                response.extensions_mut().insert(name);
                return response;
            }
        }
        if matches!(route, OciRoute::Uploads(_)) && query.get("mount").is_some() {
            // A mount also reads its source. Without pull there (or without a named source,
            // which would let anyone probe every repository for a digest) it becomes a plain
            // upload, as the spec prescribes for blobs that cannot be mounted.
            let source_readable = match query.get("from") {
                Some(from) => {
                    let need = auth::Need::Repositories(vec![(
                        from.to_owned(),
                        crate::auth::Actions::PULL,
                    )]);
                    gate.check_unmetered(&rp, &need).await.is_ok()
                }
                None => false,
            };
            if !source_readable {
                query = query.without("mount");
            }
        }
    }
    let reg = &app.registry;
    let head = method == Method::HEAD;
    // Requests that carry blob bytes count as uploads in progress while they are served.
    let _uploading = matches!(
        (&route, &method),
        (OciRoute::Uploads(_), &Method::POST)
            | (OciRoute::Upload(..), &Method::PATCH | &Method::PUT)
    )
    .then(|| app.metrics.upload_in_flight());
    let result = match (route, method) {
        (OciRoute::Base, Method::GET | Method::HEAD) => Ok(base()),
        (OciRoute::Catalog, Method::GET | Method::HEAD) => {
            listing::catalog(reg, &query, catalog_filter.as_deref()).await
        }
        (OciRoute::Tags(n), Method::GET | Method::HEAD) => listing::tags(reg, n, &query).await,
        (OciRoute::Referrers(n, d), Method::GET | Method::HEAD) => {
            listing::referrers(reg, n, d, &query).await
        }
        (OciRoute::Manifest(n, r), Method::GET | Method::HEAD) => {
            manifests::get(reg, n, r, head, &origin).await
        }
        (OciRoute::Manifest(n, r), Method::PUT) => {
            manifests::put(reg, n, r, &query, &headers, body, &origin).await
        }
        (OciRoute::Manifest(n, r), Method::DELETE) => manifests::delete(reg, n, r, &origin).await,
        (OciRoute::Blob(n, d), Method::GET | Method::HEAD) => {
            blobs::get(reg, n, d, &headers, head).await
        }
        (OciRoute::Blob(n, d), Method::DELETE) => blobs::delete(reg, n, d).await,
        (OciRoute::Uploads(n), Method::POST) => uploads::start(reg, n, &query, body).await,
        (OciRoute::Upload(n, id), Method::GET) => uploads::status(reg, n, id).await,
        (OciRoute::Upload(n, id), Method::PATCH) => {
            uploads::patch(reg, n, id, &headers, body).await
        }
        (OciRoute::Upload(n, id), Method::PUT) => {
            uploads::put(reg, n, id, &query, &headers, body).await
        }
        (OciRoute::Upload(n, id), Method::DELETE) => uploads::cancel(reg, n, id).await,
        (route, _) => Err(ApiError::method_not_allowed(route.allowed_methods())),
    };
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    response.extensions_mut().insert(name);
    response
}

/// A stable name for logs and metrics: the endpoint and method, never the raw path.
fn route_name(route: &OciRoute, method: &Method) -> &'static str {
    macro_rules! by_method {
        ($($m:ident => $name:literal),* $(,)?) => {
            match *method { $(Method::$m => $name,)* _ => "method_not_allowed" }
        };
    }
    match route {
        OciRoute::Base => "base",
        OciRoute::Catalog => "catalog",
        OciRoute::Tags(_) => "tags_list",
        OciRoute::Referrers(..) => "referrers",
        OciRoute::Manifest(..) => {
            by_method!(GET => "manifest_get", HEAD => "manifest_head", PUT => "manifest_put", DELETE => "manifest_delete")
        }
        OciRoute::Blob(..) => {
            by_method!(GET => "blob_get", HEAD => "blob_head", DELETE => "blob_delete")
        }
        OciRoute::Uploads(_) => "upload_start",
        OciRoute::Upload(..) => {
            by_method!(GET => "upload_status", PATCH => "upload_patch", PUT => "upload_finish", DELETE => "upload_cancel")
        }
    }
}

/// `GET /v2/`: the registry implements the API.
fn base() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        "{}",
    )
        .into_response()
}

/// A request body as the service's byte stream. A body that stalls for `idle` ends with a
/// `TimedOut` error, so a vanished client cannot hold an upload session forever.
fn byte_stream(body: Body, idle: Duration) -> ByteStream {
    let frames = body.into_data_stream();
    Box::pin(futures_util::stream::unfold(
        Some(frames),
        move |frames| async move {
            let mut frames = frames?;
            match tokio::time::timeout(idle, frames.next()).await {
                Ok(Some(Ok(bytes))) => Some((Ok(bytes), Some(frames))),
                Ok(Some(Err(e))) => Some((Err(std::io::Error::other(e)), None)),
                Ok(None) => None,
                Err(_) => Some((
                    Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "request body stalled",
                    )),
                    None,
                )),
            }
        },
    ))
}

/// Builds a header value from a string we produced (digests, ranges, paths); these are always
/// valid header values, and an invalid one degrades to an empty value rather than a panic.
fn hv(s: impl AsRef<str>) -> header::HeaderValue {
    header::HeaderValue::from_str(s.as_ref())
        .unwrap_or_else(|_| header::HeaderValue::from_static(""))
}
