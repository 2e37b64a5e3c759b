//! API errors: the spec's error codes, the one table from each failure to its code and HTTP
//! status, and the JSON envelope on the wire.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::route::RouteError;
use crate::blob::BlobError;
use crate::domain::{DigestError, NameError};
use crate::service::RegistryError;

/// The error codes of the OCI distribution spec ("Error Codes"), plus `UNKNOWN` for server
/// failures (5xx responses, which the spec leaves open; Distribution uses the same code).
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

impl From<RouteError> for ApiError {
    fn from(e: RouteError) -> Self {
        match e {
            RouteError::NotFound => Self::new(
                StatusCode::NOT_FOUND,
                ErrorCode::Unsupported,
                "no such endpoint in the registry API",
            ),
            RouteError::Name(e) => e.into(),
            RouteError::Tag(e) => Self::bad_request(ErrorCode::NameInvalid, e.to_string()),
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
        Self::bad_request(ErrorCode::NameInvalid, e.to_string())
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
            (ErrorCode::TooManyRequests, "TOOMANYREQUESTS"),
            (ErrorCode::Unknown, "UNKNOWN"),
        ];
        for (code, text) in cases {
            assert_eq!(serde_json::to_value(code).unwrap(), serde_json::json!(text));
        }
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
