//! `GET`/`HEAD`/`DELETE /v2/<name>/blobs/<digest>`.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;

use super::error::ApiError;
use super::hv;
use crate::domain::{Digest, RepoName};
use crate::service::{ByteRange, Registry};

/// Parses a single byte range (RFC 9110 §14.1.2). Multiple ranges and other units return
/// `None`, and the header is then ignored, as the RFC allows.
fn parse_range(value: &str) -> Option<ByteRange> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.trim().split_once('-')?;
    let num = |s: &str| s.trim().parse::<u64>().ok();
    match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, false) => Some(ByteRange::Suffix(num(b)?)),
        (false, true) => Some(ByteRange::From {
            start: num(a)?,
            end: None,
        }),
        (false, false) => {
            let (start, end) = (num(a)?, num(b)?);
            (end >= start).then_some(ByteRange::From {
                start,
                end: Some(end),
            })
        }
        (true, true) => None,
    }
}

/// `GET` or `HEAD` a blob, with single-range support.
pub async fn get(
    reg: &Registry,
    name: RepoName,
    digest: Digest,
    headers: &HeaderMap,
    head: bool,
) -> Result<Response, ApiError> {
    let common = |len: u64| {
        [
            (header::CONTENT_LENGTH, hv(len.to_string())),
            (header::CONTENT_TYPE, hv("application/octet-stream")),
            (header::ACCEPT_RANGES, hv("bytes")),
            (header::ETAG, hv(format!("\"{digest}\""))),
            (header::CACHE_CONTROL, hv("max-age=31536000")),
            (
                header::HeaderName::from_static("docker-content-digest"),
                hv(digest.to_string()),
            ),
        ]
    };
    let method = if head {
        http::Method::HEAD
    } else {
        http::Method::GET
    };
    if let Some(url) = reg.pull_blob_redirect(&name, &digest, method).await? {
        return Ok((
            StatusCode::TEMPORARY_REDIRECT,
            [
                (header::LOCATION, hv(url)),
                (
                    header::HeaderName::from_static("docker-content-digest"),
                    hv(digest.to_string()),
                ),
            ],
        )
            .into_response());
    }
    if head {
        let size = reg.pull_blob_size(&name, &digest).await?;
        return Ok((StatusCode::OK, common(size)).into_response());
    }
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_range);
    let blob = reg.pull_blob(&name, &digest, range).await?;
    let r = blob.read.range.clone();
    let body = Body::from_stream(blob.read.stream.map_err(std::io::Error::other));
    let len = r.end - r.start;
    if blob.partial {
        let content_range = format!("bytes {}-{}/{}", r.start, r.end - 1, blob.size);
        Ok((
            StatusCode::PARTIAL_CONTENT,
            common(len),
            [(header::CONTENT_RANGE, hv(content_range))],
            body,
        )
            .into_response())
    } else {
        Ok((StatusCode::OK, common(len), body).into_response())
    }
}

/// `DELETE` a blob from a repository.
pub async fn delete(reg: &Registry, name: RepoName, digest: Digest) -> Result<Response, ApiError> {
    reg.delete_blob(&name, &digest).await?;
    Ok((StatusCode::ACCEPTED, [(header::CONTENT_LENGTH, "0")]).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_byte_ranges() {
        assert_eq!(
            parse_range("bytes=0-9"),
            Some(ByteRange::From {
                start: 0,
                end: Some(9)
            })
        );
        assert_eq!(
            parse_range("bytes=5-"),
            Some(ByteRange::From {
                start: 5,
                end: None
            })
        );
        assert_eq!(parse_range("bytes=-3"), Some(ByteRange::Suffix(3)));
        for ignored in [
            "bytes=0-1,3-4",
            "items=0-1",
            "bytes=9-2",
            "bytes=-",
            "bytes=a-b",
            "0-9",
        ] {
            assert_eq!(parse_range(ignored), None, "{ignored}");
        }
    }
}
