//! The one parser from a `/v2/...` request path to a typed route, and back.
//!
//! Repository names contain any number of `/`, which path-pattern routers cannot express in
//! the middle of a route, so the whole `/v2/` tree is matched here by its last segments. The
//! raw (still percent-encoded) path is parsed: `%2e%2e`, `..`, empty segments and any other
//! character outside the name grammar make the name invalid instead of being normalised.

use crate::domain::{
    Digest, DigestError, NameError, Reference, ReferenceError, RepoName, UploadId,
};

/// The methods a manifest endpoint answers.
pub const MANIFEST_METHODS: &str = "GET, HEAD, PUT, DELETE";

/// A registry API endpoint with its typed parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OciRoute {
    /// `/v2/`: API version check.
    Base,
    /// `/v2/_catalog`: repository listing.
    Catalog,
    /// `/v2/<name>/tags/list`.
    Tags(RepoName),
    /// `/v2/<name>/manifests/<reference>`.
    Manifest(RepoName, Reference),
    /// `/v2/<name>/blobs/<digest>`.
    Blob(RepoName, Digest),
    /// `/v2/<name>/blobs/uploads/`: start an upload.
    Uploads(RepoName),
    /// `/v2/<name>/blobs/uploads/<id>`: an upload session.
    Upload(RepoName, UploadId),
    /// `/v2/<name>/referrers/<digest>`.
    Referrers(RepoName, Digest),
}

/// Why a path is not a route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// No endpoint has this shape.
    #[error("no such endpoint")]
    NotFound,
    /// The repository name is invalid.
    #[error(transparent)]
    Name(NameError),
    /// The manifest reference is neither a valid tag nor a valid digest. What the client is
    /// told depends on the method (see `ApiError::route`), so the route keeps the whole error.
    #[error(transparent)]
    Reference(ReferenceError),
    /// The blob or subject digest is invalid.
    #[error(transparent)]
    Digest(DigestError),
    /// The upload id is not one of ours.
    #[error(transparent)]
    UploadId(NameError),
}

impl OciRoute {
    /// Parses a request path.
    pub fn parse(path: &str) -> Result<Self, RouteError> {
        let rest = match path.strip_prefix("/v2") {
            Some("" | "/") => return Ok(Self::Base),
            Some(r) => r.strip_prefix('/').ok_or(RouteError::NotFound)?,
            None => return Err(RouteError::NotFound),
        };
        if rest == "_catalog" {
            return Ok(Self::Catalog);
        }
        let segments: Vec<&str> = rest.split('/').collect();
        let name = |n: usize| -> Result<RepoName, RouteError> {
            if n == 0 {
                return Err(RouteError::NotFound);
            }
            RepoName::parse(&segments[..n].join("/")).map_err(RouteError::Name)
        };
        let digest = |s: &str| Digest::parse(s).map_err(RouteError::Digest);
        match segments.as_slice() {
            [.., "blobs", "uploads", ""] | [.., "blobs", "uploads"] => {
                let n = segments.len() - if segments.last() == Some(&"") { 3 } else { 2 };
                Ok(Self::Uploads(name(n)?))
            }
            [.., "blobs", "uploads", id] => {
                let repo = name(segments.len() - 3)?;
                Ok(Self::Upload(
                    repo,
                    UploadId::parse(id).map_err(RouteError::UploadId)?,
                ))
            }
            [.., "tags", "list"] => Ok(Self::Tags(name(segments.len() - 2)?)),
            [.., "manifests", r] => {
                let repo = name(segments.len() - 2)?;
                let reference = Reference::parse(r).map_err(RouteError::Reference)?;
                Ok(Self::Manifest(repo, reference))
            }
            [.., "blobs", d] => {
                let repo = name(segments.len() - 2)?;
                Ok(Self::Blob(repo, digest(d)?))
            }
            [.., "referrers", d] => {
                let repo = name(segments.len() - 2)?;
                Ok(Self::Referrers(repo, digest(d)?))
            }
            _ => Err(RouteError::NotFound),
        }
    }

    /// The canonical path of this route.
    pub fn to_path(&self) -> String {
        match self {
            Self::Base => "/v2/".into(),
            Self::Catalog => "/v2/_catalog".into(),
            Self::Tags(n) => format!("/v2/{n}/tags/list"),
            Self::Manifest(n, r) => format!("/v2/{n}/manifests/{r}"),
            Self::Blob(n, d) => format!("/v2/{n}/blobs/{d}"),
            Self::Uploads(n) => format!("/v2/{n}/blobs/uploads/"),
            Self::Upload(n, id) => format!("/v2/{n}/blobs/uploads/{id}"),
            Self::Referrers(n, d) => format!("/v2/{n}/referrers/{d}"),
        }
    }

    /// The HTTP methods this endpoint answers, for `405` responses.
    pub fn allowed_methods(&self) -> &'static str {
        match self {
            Self::Base | Self::Catalog | Self::Tags(_) | Self::Referrers(..) => "GET, HEAD",
            Self::Manifest(..) => MANIFEST_METHODS,
            Self::Blob(..) => "GET, HEAD, DELETE",
            Self::Uploads(_) => "POST",
            Self::Upload(..) => "GET, PATCH, PUT, DELETE",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn repo(s: &str) -> RepoName {
        RepoName::parse(s).unwrap()
    }

    #[test]
    fn round_trips_every_route() {
        let id = UploadId::new_random();
        let deep = repo("a/b/c/d/e/f/g/h/i/j");
        let routes = [
            OciRoute::Base,
            OciRoute::Catalog,
            OciRoute::Tags(deep.clone()),
            OciRoute::Manifest(deep.clone(), Reference::parse("latest").unwrap()),
            OciRoute::Manifest(repo("x"), Reference::parse(D).unwrap()),
            OciRoute::Blob(deep.clone(), Digest::parse(D).unwrap()),
            OciRoute::Uploads(deep.clone()),
            OciRoute::Upload(deep.clone(), id),
            OciRoute::Referrers(repo("r"), Digest::parse(D).unwrap()),
        ];
        for route in routes {
            assert_eq!(
                OciRoute::parse(&route.to_path()),
                Ok(route.clone()),
                "{route:?}"
            );
        }
    }

    #[test]
    fn names_may_contain_endpoint_words() {
        assert_eq!(
            OciRoute::parse("/v2/blobs/manifests/tags/manifests/v1"),
            Ok(OciRoute::Manifest(
                repo("blobs/manifests/tags"),
                Reference::parse("v1").unwrap()
            ))
        );
        assert_eq!(
            OciRoute::parse("/v2/x/blobs/uploads"),
            Ok(OciRoute::Uploads(repo("x")))
        );
    }

    #[test]
    fn path_tricks_are_invalid_names() {
        for path in [
            "/v2/a/../b/manifests/latest",
            "/v2/a/%2e%2e/b/manifests/latest",
            "/v2/a//b/manifests/latest",
            "/v2/../manifests/latest",
            "/v2/A/manifests/latest",
            "/v2/a%2fb/manifests/latest",
        ] {
            assert!(
                matches!(OciRoute::parse(path), Err(RouteError::Name(_))),
                "{path}"
            );
        }
    }

    #[test]
    fn bad_parameters_are_reported_by_kind() {
        assert!(matches!(
            OciRoute::parse("/v2/a/manifests/sha256:nothex"),
            Err(RouteError::Reference(ReferenceError::Digest(_)))
        ));
        assert!(matches!(
            OciRoute::parse("/v2/a/manifests/-bad"),
            Err(RouteError::Reference(ReferenceError::Tag(_)))
        ));
        assert!(matches!(
            OciRoute::parse("/v2/a/manifests/.INVALID_MANIFEST_NAME"),
            Err(RouteError::Reference(ReferenceError::Tag(_)))
        ));
        assert!(matches!(
            OciRoute::parse("/v2/a/blobs/latest"),
            Err(RouteError::Digest(_))
        ));
        assert!(matches!(
            OciRoute::parse("/v2/a/blobs/uploads/not-a-uuid"),
            Err(RouteError::UploadId(_))
        ));
    }

    #[test]
    fn unknown_shapes_are_not_found() {
        for path in [
            "/v1/",
            "/v2x",
            "/v2/a",
            "/v2/a/b",
            "/v2/manifests/latest",
            "/v2/a/tags",
            "/",
        ] {
            assert_eq!(OciRoute::parse(path), Err(RouteError::NotFound), "{path}");
        }
    }
}
