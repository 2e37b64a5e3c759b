//! `GET /.well-known/jwks.json`: the public keys of registry tokens as a JSON Web Key Set
//! (RFC 7517), so that other services can verify the tokens berth issues.
//!
//! Every key accepted for registry tokens now is listed: the one signing, the next one (a
//! rotation publishes it before it signs) and those retiring. Responses may be cached for one
//! key reload interval (`auth.key_reload_secs`), no longer than replicas themselves wait.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::RouteName;
use super::auth::Gate;

/// `GET /.well-known/jwks.json`.
pub async fn jwks(State(gate): State<Arc<Gate>>) -> Response {
    let body = serde_json::to_vec(&gate.accounts.keys().jwks()).unwrap_or_default();
    let mut response = (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (
                header::CACHE_CONTROL,
                format!("public, max-age={}", gate.jwks_max_age_secs),
            ),
        ],
        body,
    )
        .into_response();
    response.extensions_mut().insert(RouteName("jwks"));
    response
}
