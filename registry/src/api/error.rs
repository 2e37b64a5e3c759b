//! API errors: the spec's error codes, the one table from each failure to its code and HTTP
//! status, and the JSON envelope on the wire.

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::route::{MANIFEST_METHODS, RouteError};
use crate::blob::BlobError;
use crate::domain::{DigestError, NameError, ReferenceError};
use crate::service::RegistryError;

/// The error codes of the OCI distribution spec ("Error Codes"), plus two of Distribution's:
/// `UNKNOWN` for server failures (5xx responses, which the spec leaves open) and `TAG_INVALID`
/// for a push to a tag outside the tag grammar (`NAME_INVALID` is the repository name's code).
///
/// `oci_spec::distribution::ErrorCode` has no code for server failures, hence this enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// Blob unknown to registry.
    BlobUnknown,
    /// Blob upload invalid.
    BlobUploadInvalid,
    /// Blob upload unknown to registry.
    BlobUploadUnknown,
    /// Provided digest did not match uploaded content.
    DigestInvalid,
    /// Manifest references a manifest or blob unknown to registry.
    ManifestBlobUnknown,
    /// Manifest invalid.
    ManifestInvalid,
    /// Manifest unknown to registry.
    ManifestUnknown,
    /// Invalid repository name.
    NameInvalid,
    /// Repository name not known to registry.
    NameUnknown,
    /// The tag does not match the tag grammar (Distribution's code).
    TagInvalid,
    /// Provided length did not match content length.
    SizeInvalid,
    /// Authentication required.
    Unauthorized,
    /// Requested access to the resource is denied.
    Denied,
    /// The operation is unsupported.
    Unsupported,
    /// Too many requests.
    #[serde(rename = "TOOMANYREQUESTS")]
    TooManyRequests,
    /// An internal failure; details are logged, never sent.
    Unknown,
}

/// One entry of the error envelope.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorEntry {
    /// The spec code.
    pub code: ErrorCode,
    /// A human-readable explanation.
    pub message: String,
    /// Structured detail, when useful to a client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

/// An error response: status, extra headers and the `{"errors": [...]}` envelope.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    errors: Vec<ErrorEntry>,
    headers: Vec<(header::HeaderName, HeaderValue)>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    errors: &'a [ErrorEntry],
}

impl ApiError {
    /// An error with one entry.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            errors: vec![ErrorEntry {
                code,
                message: message.into(),
                detail: None,
            }],
            headers: Vec::new(),
        }
    }

    /// Attaches detail to the first entry.
    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        if let Some(e) = self.errors.first_mut() {
            e.detail = Some(detail);
        }
        self
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: header::HeaderName, value: impl ToString) -> Self {
        if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
            self.headers.push((name, v));
        }
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// `405` for a method the endpoint does not answer.
    pub fn method_not_allowed(allowed: &'static str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::Unsupported,
            format!("method not allowed; this endpoint answers {allowed}"),
        )
        .with_header(header::ALLOW, allowed)
    }

    /// `400` for a malformed request parameter.
    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// `500` with no detail: the cause is logged here and never sent to the client.
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        let chain = crate::telemetry::error_chain(cause);
        tracing::error!(error = %chain, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Unknown,
            "internal server error",
        )
    }
}

/// `Range` value reporting `received` bytes, as upload responses carry it: the inclusive index
/// of the last byte, `0-0` before any byte (as Distribution and clients expect).
pub fn upload_range(received: u64) -> String {
    format!("0-{}", received.saturating_sub(1))
}

/// The table from registry failures to spec codes and statuses.
impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        use ErrorCode as C;
        use StatusCode as S;
        let msg = e.to_string();
        match &e {
            RegistryError::NameUnknown(name) => {
                Self::new(S::NOT_FOUND, C::NameUnknown, msg).with_detail(serde_json::json!({ "name": name.as_str() }))
            }
            RegistryError::BlobUnknown(d) => {
                Self::new(S::NOT_FOUND, C::BlobUnknown, msg).with_detail(serde_json::json!({ "digest": d.to_string() }))
            }
            RegistryError::UploadUnknown => Self::new(S::NOT_FOUND, C::BlobUploadUnknown, msg),
            RegistryError::UploadOutOfOrder { received, .. } | RegistryError::UploadBusy { received } => {
                Self::new(S::RANGE_NOT_SATISFIABLE, C::BlobUploadInvalid, msg)
                    .with_header(header::RANGE, upload_range(*received))
            }
            RegistryError::RangeNotSatisfiable { size } => {
                Self::new(S::RANGE_NOT_SATISFIABLE, C::SizeInvalid, msg)
                    .with_header(header::CONTENT_RANGE, format!("bytes */{size}"))
            }
            RegistryError::SizeInvalid(_) | RegistryError::BodyIncomplete(_) => {
                Self::new(S::BAD_REQUEST, C::SizeInvalid, msg)
            }
            RegistryError::DigestMismatch { expected, actual } => Self::new(S::BAD_REQUEST, C::DigestInvalid, msg)
                .with_detail(serde_json::json!({ "expected": expected.to_string(), "actual": actual.to_string() })),
            RegistryError::ManifestInvalid(_) | RegistryError::ManifestSizeMismatch { .. } => {
                Self::new(S::BAD_REQUEST, C::ManifestInvalid, msg)
            }
            RegistryError::ManifestTooLarge { .. } => Self::new(S::PAYLOAD_TOO_LARGE, C::ManifestInvalid, msg),
            RegistryError::ManifestBlobUnknown(digests) => Self {
                status: S::BAD_REQUEST,
                errors: digests
                    .iter()
                    .map(|d| ErrorEntry {
                        code: C::ManifestBlobUnknown,
                        message: format!("manifest references {d}, which is not in the repository"),
                        detail: Some(serde_json::json!({ "digest": d.to_string() })),
                    })
                    .collect(),
                headers: Vec::new(),
            },
            RegistryError::Denied(_) => Self::new(S::FORBIDDEN, C::Denied, msg),
            RegistryError::ManifestUnknown
            | RegistryError::RestoreImpossible(_)
            | RegistryError::WebhookUnknown(_) => {
                Self::new(S::NOT_FOUND, C::ManifestUnknown, msg)
            }
            RegistryError::Blob(BlobError::Unsupported(reason)) => {
                Self::new(S::BAD_REQUEST, C::DigestInvalid, *reason)
            }
            // The cause was logged with the upstream's address; the client learns which kind.
            RegistryError::Upstream(_) => Self::new(S::BAD_GATEWAY, C::Unknown, msg),
            RegistryError::Meta(_) | RegistryError::Blob(_) | RegistryError::HashState(_) => Self::internal(&e),
        }
    }
}

impl ApiError {
    /// `404` for a path that is no endpoint of the registry API.
    pub fn no_such_endpoint() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ErrorCode::Unsupported,
            "no such endpoint in the registry API",
        )
    }

    /// The answer to a `method` request on a path that did not parse.
    ///
    /// A manifest reference that is neither a tag nor a digest names nothing that can exist,
    /// so reading it is `404 MANIFEST_UNKNOWN` (what the conformance suite asks of
    /// `.INVALID_MANIFEST_NAME`, and Distribution's `404`). Writing to it is the client's
    /// mistake: `400 TAG_INVALID` or `400 DIGEST_INVALID`. `DELETE` answers as Distribution
    /// does: `404` for a bad tag (nothing to delete), `400 DIGEST_INVALID` for a bad digest.
    pub fn route(e: RouteError, method: &Method) -> Self {
        match e {
            RouteError::NotFound => Self::no_such_endpoint(),
            RouteError::Name(e) => e.into(),
            RouteError::Reference(e) => match (method, e) {
                (&Method::GET | &Method::HEAD, e)
                | (&Method::DELETE, e @ ReferenceError::Tag(_)) => Self::new(
                    StatusCode::NOT_FOUND,
                    ErrorCode::ManifestUnknown,
                    e.to_string(),
                ),
                (&Method::PUT, ReferenceError::Tag(e)) => e.into(),
                (&Method::PUT | &Method::DELETE, ReferenceError::Digest(e)) => e.into(),
                _ => Self::method_not_allowed(MANIFEST_METHODS),
            },
            RouteError::Digest(e) => e.into(),
            RouteError::UploadId(e) => Self::new(
                StatusCode::NOT_FOUND,
                ErrorCode::BlobUploadUnknown,
                e.to_string(),
            ),
        }
    }
}

impl From<NameError> for ApiError {
    fn from(e: NameError) -> Self {
        let code = match e {
            NameError::Tag(_) => ErrorCode::TagInvalid,
            NameError::Repository(_) | NameError::TooLong(_) | NameError::UploadId(_) => {
                ErrorCode::NameInvalid
            }
        };
        Self::bad_request(code, e.to_string())
    }
}

impl From<DigestError> for ApiError {
    fn from(e: DigestError) -> Self {
        Self::bad_request(ErrorCode::DigestInvalid, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&Envelope {
            errors: &self.errors,
        })
        .unwrap_or_default();
        let mut response = (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response();
        response.headers_mut().extend(self.headers);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_the_spec_spells_them() {
        let cases = [
            (ErrorCode::BlobUnknown, "BLOB_UNKNOWN"),
            (ErrorCode::BlobUploadInvalid, "BLOB_UPLOAD_INVALID"),
            (ErrorCode::ManifestBlobUnknown, "MANIFEST_BLOB_UNKNOWN"),
            (ErrorCode::TagInvalid, "TAG_INVALID"),
            (ErrorCode::TooManyRequests, "TOOMANYREQUESTS"),
            (ErrorCode::Unknown, "UNKNOWN"),
        ];
        for (code, text) in cases {
            assert_eq!(serde_json::to_value(code).unwrap(), serde_json::json!(text));
        }
    }

    #[test]
    fn unparsable_paths_answer_by_what_is_wrong_and_the_method() {
        use super::super::route::OciRoute;
        use ErrorCode as C;
        use StatusCode as S;
        let bad_tag = "/v2/a/manifests/.INVALID_MANIFEST_NAME";
        let bad_digest = "/v2/a/manifests/sha256:nothex";
        let cases = [
            (bad_tag, Method::GET, S::NOT_FOUND, C::ManifestUnknown),
            (bad_tag, Method::HEAD, S::NOT_FOUND, C::ManifestUnknown),
            (bad_tag, Method::DELETE, S::NOT_FOUND, C::ManifestUnknown),
            (bad_tag, Method::PUT, S::BAD_REQUEST, C::TagInvalid),
            (bad_tag, Method::POST, S::METHOD_NOT_ALLOWED, C::Unsupported),
            (bad_digest, Method::GET, S::NOT_FOUND, C::ManifestUnknown),
            (bad_digest, Method::HEAD, S::NOT_FOUND, C::ManifestUnknown),
            (bad_digest, Method::DELETE, S::BAD_REQUEST, C::DigestInvalid),
            (bad_digest, Method::PUT, S::BAD_REQUEST, C::DigestInvalid),
            (
                "/v2/A/manifests/latest",
                Method::GET,
                S::BAD_REQUEST,
                C::NameInvalid,
            ),
            (
                "/v2/A/manifests/latest",
                Method::PUT,
                S::BAD_REQUEST,
                C::NameInvalid,
            ),
            (
                "/v2/a/blobs/sha256:nothex",
                Method::GET,
                S::BAD_REQUEST,
                C::DigestInvalid,
            ),
            (
                "/v2/a/blobs/sha256:nothex",
                Method::DELETE,
                S::BAD_REQUEST,
                C::DigestInvalid,
            ),
            ("/v2/a/nothing", Method::GET, S::NOT_FOUND, C::Unsupported),
        ];
        for (path, method, status, code) in cases {
            let e = ApiError::route(OciRoute::parse(path).unwrap_err(), &method);
            assert_eq!(
                (e.status, e.errors[0].code),
                (status, code),
                "{method} {path}"
            );
        }
        let e = ApiError::route(OciRoute::parse(bad_tag).unwrap_err(), &Method::PUT);
        assert!(
            e.errors[0]
                .message
                .contains("[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}"),
            "{}",
            e.errors[0].message
        );
    }

    #[test]
    fn upload_ranges_are_inclusive() {
        assert_eq!(upload_range(0), "0-0");
        assert_eq!(upload_range(1), "0-0");
        assert_eq!(upload_range(10), "0-9");
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let e = ApiError::internal(&std::io::Error::other("/secret/path/db.sqlite is locked"));
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.errors[0].message, "internal server error");
        assert!(e.errors[0].detail.is_none());
    }
}
