//! `GET /v2/<name>/tags/list`, `GET /v2/_catalog` and `GET /v2/<name>/referrers/<digest>`.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error::{ApiError, ErrorCode};
use super::hv;
use super::query::{Query, encode};
use super::route::OciRoute;
use crate::domain::{Digest, MediaType, OCI_INDEX, RepoName};
use crate::service::{Page, Registry};

/// `Link: <url>; rel="next"` (RFC 5988), as the spec asks for paginated listings.
fn link_next(url: &str) -> (header::HeaderName, header::HeaderValue) {
    (header::LINK, hv(format!("<{url}>; rel=\"next\"")))
}

fn json_response<T: Serialize>(
    body: &T,
    content_type: &'static str,
    next: Option<String>,
) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type)],
        bytes,
    )
        .into_response();
    if let Some(url) = next {
        let (k, v) = link_next(&url);
        response.headers_mut().insert(k, v);
    }
    response
}

/// The next-page URL of a name listing, when there is a next page.
fn next_url(base: String, page: &Page<String>, n: Option<u32>) -> Option<String> {
    let last = page.items.last().filter(|_| page.more)?;
    let n = n.map(|n| format!("n={n}&")).unwrap_or_default();
    Some(format!("{base}?{n}last={}", encode(last)))
}

#[derive(Serialize)]
struct TagList<'a> {
    name: &'a str,
    tags: &'a [String],
}

/// Lists tags in byte order, paginated with `n` and `last`.
pub async fn tags(reg: &Registry, name: RepoName, query: &Query) -> Result<Response, ApiError> {
    let n = query.page_size()?;
    let page = reg.tags(&name, query.get("last"), n).await?;
    let next = next_url(OciRoute::Tags(name.clone()).to_path(), &page, n);
    let body = TagList {
        name: name.as_str(),
        tags: &page.items,
    };
    Ok(json_response(&body, "application/json", next))
}

#[derive(Serialize)]
struct Catalog<'a> {
    repositories: &'a [String],
}

/// Lists repositories in byte order, paginated with `n` and `last`.
pub async fn catalog(
    reg: &Registry,
    query: &Query,
    readable: Option<&(dyn Fn(&str) -> bool + Send + Sync)>,
) -> Result<Response, ApiError> {
    let n = query.page_size()?;
    let page = match readable {
        None => reg.catalog(query.get("last"), n).await?,
        Some(readable) => reg.catalog_readable(query.get("last"), n, readable).await?,
    };
    let next = next_url(OciRoute::Catalog.to_path(), &page, n);
    Ok(json_response(
        &Catalog {
            repositories: &page.items,
        },
        "application/json",
        next,
    ))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor<'a> {
    media_type: &'a str,
    digest: String,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifact_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Index<'a> {
    schema_version: u32,
    media_type: &'static str,
    manifests: Vec<Descriptor<'a>>,
}

/// Lists the manifests whose subject is `digest` as an OCI image index; always `200`.
pub async fn referrers(
    reg: &Registry,
    name: RepoName,
    digest: Digest,
    query: &Query,
) -> Result<Response, ApiError> {
    let artifact_type = query
        .get("artifactType")
        .map(|a| {
            MediaType::parse(a).ok_or_else(|| {
                ApiError::bad_request(
                    ErrorCode::Unsupported,
                    format!("invalid artifactType filter {a:?}"),
                )
            })
        })
        .transpose()?;
    let page = reg
        .referrers(&name, &digest, artifact_type.as_ref(), query.get("last"))
        .await?;
    let index = Index {
        schema_version: 2,
        media_type: OCI_INDEX,
        manifests: page
            .items
            .iter()
            .map(|r| Descriptor {
                media_type: &r.media_type,
                digest: r.digest.to_string(),
                size: r.size,
                artifact_type: r.artifact_type.as_deref(),
                annotations: r.annotations.as_ref(),
            })
            .collect(),
    };
    let next = page.items.last().filter(|_| page.more).map(|last| {
        let filter = artifact_type
            .as_ref()
            .map(|a| format!("artifactType={}&", encode(a.as_str())))
            .unwrap_or_default();
        format!(
            "{}?{filter}last={}",
            OciRoute::Referrers(name.clone(), digest.clone()).to_path(),
            encode(&last.digest.to_string())
        )
    });
    let mut response = json_response(&index, OCI_INDEX, next);
    if artifact_type.is_some() {
        response
            .headers_mut()
            .insert("oci-filters-applied", hv("artifactType"));
    }
    Ok(response)
}
