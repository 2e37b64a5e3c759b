//! `GET`/`HEAD`/`PUT`/`DELETE /v2/<name>/manifests/<reference>`.

use axum::body::{Body, HttpBody};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Limited};

use super::error::{ApiError, ErrorCode};
use super::hv;
use super::query::Query;
use super::route::OciRoute;
use crate::domain::{Reference, RepoName, Tag};
use crate::meta::events::Origin;
use crate::service::{Registry, RegistryError};

/// Tags accepted in one `PUT ?tag=` request; the spec asks for at least 10.
const MAX_TAGS_PER_PUT: usize = 100;

fn docker_content_digest() -> header::HeaderName {
    header::HeaderName::from_static("docker-content-digest")
}

/// `GET` or `HEAD` a manifest by tag or digest.
pub async fn get(
    reg: &Registry,
    name: RepoName,
    reference: Reference,
    head: bool,
    by: &Origin,
) -> Result<Response, ApiError> {
    let m = reg.pull_manifest_as(&name, &reference, !head, by).await?;
    let headers = [
        (header::CONTENT_TYPE, hv(&m.media_type)),
        (header::CONTENT_LENGTH, hv(m.size.to_string())),
        (docker_content_digest(), hv(m.digest.to_string())),
        (header::ETAG, hv(format!("\"{}\"", m.digest))),
    ];
    Ok((StatusCode::OK, headers, m.content).into_response())
}

/// `PUT` a manifest, optionally with extra tags (`?tag=a&tag=b`).
pub async fn put(
    reg: &Registry,
    name: RepoName,
    reference: Reference,
    query: &Query,
    headers: &HeaderMap,
    body: Body,
    by: &Origin,
) -> Result<Response, ApiError> {
    let tags = query
        .all("tag")
        .map(Tag::parse)
        .collect::<Result<Vec<_>, _>>()?;
    if tags.len() > MAX_TAGS_PER_PUT {
        return Err(ApiError::new(
            StatusCode::URI_TOO_LONG,
            ErrorCode::Unsupported,
            format!("at most {MAX_TAGS_PER_PUT} tags per request"),
        ));
    }
    let limit = reg.limits().max_manifest_bytes;
    let too_large = || ApiError::from(RegistryError::ManifestTooLarge { limit });
    if body.size_hint().lower() > limit {
        return Err(too_large());
    }
    let content = Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX))
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                ApiError::from(RegistryError::BodyIncomplete(std::io::Error::other(e)))
            }
        })?
        .to_bytes();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let pushed = reg
        .put_manifest(&name, &reference, content_type, content, tags, by)
        .await?;
    let mut response = (
        StatusCode::CREATED,
        [
            (
                header::LOCATION,
                hv(OciRoute::Manifest(name, Reference::Digest(pushed.digest.clone())).to_path()),
            ),
            (docker_content_digest(), hv(pushed.digest.to_string())),
            (header::CONTENT_LENGTH, hv("0")),
        ],
    )
        .into_response();
    let out = response.headers_mut();
    if let Some(subject) = &pushed.subject {
        out.insert("oci-subject", hv(subject.to_string()));
    }
    for tag in &pushed.tags {
        out.append("oci-tag", hv(tag.as_str()));
    }
    Ok(response)
}

/// `DELETE` by digest (the manifest and its tags) or by tag (the tag only).
pub async fn delete(
    reg: &Registry,
    name: RepoName,
    reference: Reference,
    by: &Origin,
) -> Result<Response, ApiError> {
    reg.delete_manifest(&name, &reference, by).await?;
    Ok((StatusCode::ACCEPTED, [(header::CONTENT_LENGTH, "0")]).into_response())
}
