//! Upload sessions: `POST /v2/<name>/blobs/uploads/` (start, monolithic, mount) and
//! `GET`/`PATCH`/`PUT`/`DELETE` on the session URL.

use axum::body::{Body, HttpBody};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, ErrorCode, upload_range};
use super::query::Query;
use super::route::OciRoute;
use super::{byte_stream, hv};
use crate::domain::{Algorithm, Digest, RepoName, UploadId};
use crate::service::{ChunkRange, Registry, UploadState};

fn docker_upload_uuid() -> header::HeaderName {
    header::HeaderName::from_static("docker-upload-uuid")
}

/// `201 Created` for a blob now available in `name`.
fn blob_created(name: RepoName, digest: Digest) -> Response {
    let digest_header = hv(digest.to_string());
    let location = hv(OciRoute::Blob(name, digest).to_path());
    (
        StatusCode::CREATED,
        [
            (header::LOCATION, location),
            (
                header::HeaderName::from_static("docker-content-digest"),
                digest_header,
            ),
            (header::CONTENT_LENGTH, hv("0")),
        ],
    )
        .into_response()
}

/// A response describing an open session: `202` after `POST`/`PATCH`, `204` for status.
fn session(status: StatusCode, name: RepoName, state: UploadState) -> Response {
    (
        status,
        [
            (
                header::LOCATION,
                hv(OciRoute::Upload(name, state.id).to_path()),
            ),
            (header::RANGE, hv(upload_range(state.received))),
            (docker_upload_uuid(), hv(state.id.to_string())),
            (header::CONTENT_LENGTH, hv("0")),
        ],
    )
        .into_response()
}

fn digest_param(query: &Query, key: &str) -> Result<Option<Digest>, ApiError> {
    Ok(query.get(key).map(Digest::parse).transpose()?)
}

/// `POST`: mount (`?mount=&from=`), monolithic upload (`?digest=`), or a new session.
pub async fn start(
    reg: &Registry,
    name: RepoName,
    query: &Query,
    body: Body,
) -> Result<Response, ApiError> {
    if let Some(digest) = digest_param(query, "mount")? {
        let from = query.get("from").map(RepoName::parse).transpose()?;
        if reg
            .mount_blob(&name, &digest, from.as_ref())
            .await?
            .is_some()
        {
            return Ok(blob_created(name, digest));
        }
        // Not mountable: the spec says to answer with a new session instead.
    } else if let Some(digest) = digest_param(query, "digest")? {
        reg.upload_monolithic(
            &name,
            &digest,
            byte_stream(body, reg.limits().body_idle_timeout),
        )
        .await?;
        return Ok(blob_created(name, digest));
    }
    let algorithm = match query.get("digest-algorithm") {
        None | Some("sha256") => Algorithm::Sha256,
        Some("sha512") => Algorithm::Sha512,
        Some(other) => {
            return Err(ApiError::bad_request(
                ErrorCode::DigestInvalid,
                format!("unsupported digest-algorithm {other:?}: use sha256 or sha512"),
            ));
        }
    };
    let started = reg.start_upload(&name, algorithm).await?;
    let state = UploadState {
        id: started.id,
        received: 0,
    };
    Ok(session(StatusCode::ACCEPTED, name, state))
}

/// `GET` the session's status.
pub async fn status(reg: &Registry, name: RepoName, id: UploadId) -> Result<Response, ApiError> {
    let state = reg.upload_status(&name, id).await?;
    Ok(session(StatusCode::NO_CONTENT, name, state))
}

/// Parses `Content-Range: <start>-<end>` (inclusive; an optional `bytes=`/`bytes ` prefix and
/// `/<total>` suffix are tolerated) and checks it against `Content-Length`.
fn chunk_range(headers: &HeaderMap) -> Result<Option<ChunkRange>, ApiError> {
    let Some(value) = headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::bad_request(
            ErrorCode::BlobUploadInvalid,
            "invalid Content-Range: expected <start>-<end>, inclusive",
        )
    };
    let text = value.to_str().map_err(|_| invalid())?.trim();
    let text = text
        .strip_prefix("bytes=")
        .or_else(|| text.strip_prefix("bytes "))
        .unwrap_or(text);
    let text = text.split('/').next().unwrap_or(text);
    let (a, b) = text.split_once('-').ok_or_else(invalid)?;
    let (start, end) = (
        a.parse::<u64>().map_err(|_| invalid())?,
        b.parse::<u64>().map_err(|_| invalid())?,
    );
    if end < start {
        return Err(invalid());
    }
    let range = ChunkRange { start, end };
    if let Some(len) = content_length(headers)?
        && len != end - start + 1
    {
        return Err(ApiError::bad_request(
            ErrorCode::SizeInvalid,
            format!("Content-Length {len} does not match Content-Range {start}-{end}"),
        ));
    }
    Ok(Some(range))
}

fn content_length(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    headers
        .get(header::CONTENT_LENGTH)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::bad_request(ErrorCode::SizeInvalid, "invalid Content-Length")
                })
        })
        .transpose()
}

/// `PATCH` a chunk, or a whole streamed body (no `Content-Range`, possibly chunked encoding).
pub async fn patch(
    reg: &Registry,
    name: RepoName,
    id: UploadId,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let range = chunk_range(headers)?;
    let state = reg
        .upload_chunk(
            &name,
            id,
            range,
            byte_stream(body, reg.limits().body_idle_timeout),
        )
        .await?;
    Ok(session(StatusCode::ACCEPTED, name, state))
}

/// `PUT ?digest=`: close the session, with an optional last chunk.
pub async fn put(
    reg: &Registry,
    name: RepoName,
    id: UploadId,
    query: &Query,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let digest = digest_param(query, "digest")?.ok_or_else(|| {
        ApiError::bad_request(
            ErrorCode::DigestInvalid,
            "closing an upload needs the digest of the whole blob: PUT <location>?digest=<digest>",
        )
    })?;
    let range = chunk_range(headers)?;
    // A known-empty body (Content-Length: 0 or none) means the last chunk came by PATCH.
    let body = (body.size_hint().exact() != Some(0))
        .then(|| byte_stream(body, reg.limits().body_idle_timeout));
    reg.finish_upload(&name, id, &digest, range, body).await?;
    Ok(blob_created(name, digest))
}

/// `DELETE` the session.
pub async fn cancel(reg: &Registry, name: RepoName, id: UploadId) -> Result<Response, ApiError> {
    reg.cancel_upload(&name, id).await?;
    Ok((StatusCode::NO_CONTENT, [(header::CONTENT_LENGTH, "0")]).into_response())
}
