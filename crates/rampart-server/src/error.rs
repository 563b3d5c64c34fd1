//! The one error type of this crate, rendered in the OCI distribution error format.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rampart_core::Digest;
use serde_json::{Value, json};

/// Why a request failed. 4xx variants are shown to the client with an OCI error code; 5xx details are
/// logged and never shown.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The repository name breaks the OCI grammar (checked before it touches any path).
    #[error("invalid repository name: {0}")]
    NameInvalid(String),
    /// The repository does not exist.
    #[error("repository name not known to registry")]
    NameUnknown,
    /// The tag breaks the OCI grammar.
    #[error("invalid tag: {0}")]
    TagInvalid(String),
    /// A digest is malformed or does not match the content.
    #[error("provided digest did not match uploaded content: {0}")]
    DigestInvalid(String),
    /// The blob is not in this repository.
    #[error("blob unknown to registry")]
    BlobUnknown(Digest),
    /// The upload session does not exist (or belongs to another repository).
    #[error("blob upload unknown to registry")]
    BlobUploadUnknown,
    /// The upload request is malformed.
    #[error("blob upload invalid: {0}")]
    BlobUploadInvalid(String),
    /// A chunk does not start where the upload ends, or a `Range` cannot be satisfied.
    #[error("requested range not satisfiable")]
    RangeInvalid {
        /// Bytes received so far (upload) or the blob size (download).
        size: u64,
        /// Whether this concerns an upload (reply `Range: 0-<last>`) or a download.
        upload: bool,
    },
    /// The manifest is not in this repository.
    #[error("manifest unknown to registry")]
    ManifestUnknown,
    /// The manifest does not parse or is of an unsupported type.
    #[error("manifest invalid: {0}")]
    ManifestInvalid(String),
    /// The manifest references blobs or manifests the repository lacks.
    #[error("manifest references unknown blobs")]
    ManifestBlobUnknown(Vec<Digest>),
    /// The body is larger than the limit.
    #[error("content larger than the limit of {0} bytes")]
    TooLarge(u64),
    /// `n` is not a number.
    #[error("invalid number of results requested")]
    PaginationNumberInvalid,
    /// No valid credentials.
    #[error("authentication required")]
    Unauthorized,
    /// Valid credentials without the right.
    #[error("requested access to the resource is denied")]
    Denied,
    /// The operation is not supported.
    #[error("the operation is unsupported")]
    Unsupported,
    /// Anything else: logged, answered with a generic 500.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<rampart_store::Error> for Error {
    fn from(e: rampart_store::Error) -> Self {
        use rampart_store::Error as S;
        match e {
            S::DigestMismatch { expected, .. } => Error::DigestInvalid(expected.to_string()),
            S::UploadUnknown => Error::BlobUploadUnknown,
            S::OutOfOrder { expected, .. } => Error::RangeInvalid {
                size: expected,
                upload: true,
            },
            S::TooLarge { limit } => Error::TooLarge(limit),
            S::Body(e) => Error::BlobUploadInvalid(format!("request body: {e}")),
            other => Error::Internal(other.to_string()),
        }
    }
}

impl Error {
    fn parts(&self) -> (StatusCode, &'static str, Value) {
        match self {
            Error::NameInvalid(_) => (StatusCode::BAD_REQUEST, "NAME_INVALID", Value::Null),
            Error::NameUnknown => (StatusCode::NOT_FOUND, "NAME_UNKNOWN", Value::Null),
            Error::TagInvalid(_) => (StatusCode::BAD_REQUEST, "TAG_INVALID", Value::Null),
            Error::DigestInvalid(d) => (StatusCode::BAD_REQUEST, "DIGEST_INVALID", json!(d)),
            Error::BlobUnknown(d) => (StatusCode::NOT_FOUND, "BLOB_UNKNOWN", json!(d)),
            Error::BlobUploadUnknown => (StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN", Value::Null),
            Error::BlobUploadInvalid(_) => {
                (StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID", Value::Null)
            }
            Error::RangeInvalid { .. } => (
                StatusCode::RANGE_NOT_SATISFIABLE,
                "RANGE_INVALID",
                Value::Null,
            ),
            Error::ManifestUnknown => (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN", Value::Null),
            Error::ManifestInvalid(_) => (StatusCode::BAD_REQUEST, "MANIFEST_INVALID", Value::Null),
            Error::ManifestBlobUnknown(_) => (
                StatusCode::BAD_REQUEST,
                "MANIFEST_BLOB_UNKNOWN",
                Value::Null,
            ),
            Error::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID", Value::Null),
            Error::PaginationNumberInvalid => (
                StatusCode::BAD_REQUEST,
                "PAGINATION_NUMBER_INVALID",
                Value::Null,
            ),
            Error::Unauthorized => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED", Value::Null),
            Error::Denied => (StatusCode::FORBIDDEN, "DENIED", Value::Null),
            Error::Unsupported => (StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED", Value::Null),
            Error::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", Value::Null),
        }
    }
}

/// An OCI error body with one entry.
pub(crate) fn body(code: &str, message: &str, detail: Value) -> Value {
    let mut entry = json!({ "code": code, "message": message });
    if !detail.is_null()
        && let Some(obj) = entry.as_object_mut()
    {
        obj.insert("detail".into(), detail);
    }
    json!({ "errors": [entry] })
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code, detail) = self.parts();
        let json = match &self {
            Error::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                body(code, "internal server error", Value::Null)
            }
            Error::ManifestBlobUnknown(digests) => json!({
                "errors": digests.iter().map(|d| json!({
                    "code": code,
                    "message": "blob unknown to registry",
                    "detail": { "digest": d },
                })).collect::<Vec<_>>()
            }),
            other => body(code, &other.to_string(), detail),
        };
        let mut resp = (status, axum::Json(json)).into_response();
        let headers = resp.headers_mut();
        match self {
            Error::Unauthorized => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"rampart\", charset=\"UTF-8\""),
                );
            }
            Error::RangeInvalid { size, upload } => {
                let value = if upload {
                    format!("0-{}", size.saturating_sub(1))
                } else {
                    format!("bytes */{size}")
                };
                let name = if upload {
                    header::RANGE
                } else {
                    header::CONTENT_RANGE
                };
                if let Ok(v) = HeaderValue::from_str(&value) {
                    headers.insert(name, v);
                }
            }
            _ => {}
        }
        headers.insert(
            "docker-distribution-api-version",
            HeaderValue::from_static("registry/2.0"),
        );
        resp
    }
}
