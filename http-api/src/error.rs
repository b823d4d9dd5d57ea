//! [`ApiError`] and the response envelope: every response, errors included, is JSON.

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sairex_store::StoreError;
use serde::Serialize;

/// An error answered to the client: an HTTP status, a stable machine-readable `code` and a
/// message for people, in the envelope `{"success": false, "error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code ("INVALID_PHONE", "RATE_LIMITED", …).
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: Cow<'static, str>,
    /// For a duplicate idempotency key: the message that already has it.
    pub message_id: Option<u64>,
    /// Seconds for the `Retry-After` header (429, 503).
    pub retry_after: Option<u64>,
    /// The request field at fault (`recipients[2].to`), when one is.
    pub field: Option<Cow<'static, str>>,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            message_id: None,
            retry_after: None,
            field: None,
        }
    }

    /// 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 400 for a field that fails validation.
    pub fn invalid(message: impl Into<Cow<'static, str>>) -> Self {
        Self::bad_request("VALIDATION_ERROR", message)
    }

    /// 401.
    pub fn unauthorized(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
    }

    /// 403 for a key without the scope a route needs.
    pub fn forbidden(scope: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            format!("this API key lacks the scope {scope}"),
        )
    }

    /// 404 for a record of the organization that does not exist (or is another's).
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("{what} not found"),
        )
    }

    /// 500: the cause is logged, never shown.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error answering a request");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "internal error; see the gateway's log",
        )
    }

    /// With a `Retry-After`.
    #[must_use]
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound { entity, .. } => Self::not_found(entity),
            StoreError::Conflict { entity, what, .. } => Self::new(
                StatusCode::CONFLICT,
                "CONFLICT",
                format!("a {entity} with this {what} already exists"),
            ),
            StoreError::Invalid { field, problem } => Self::invalid(format!("{field}: {problem}")),
            StoreError::Closed => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "the gateway is shutting down",
            )
            .retry_after(5),
            StoreError::MasterKeyRequired => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "NO_MASTER_KEY",
                "the gateway has no master key configured, so it cannot keep secrets",
            ),
            other => Self::internal(other),
        }
    }
}

/// Path of the error catalogue (docs/errors.md, served by the API itself).
pub(crate) const ERRORS_DOC_PATH: &str = "/docs/errors";

/// The catalogue's anchor for `code`: `/docs/errors#invalid_type` (GitHub-style heading ids).
pub(crate) fn docs_link(code: &str) -> String {
    format!("{ERRORS_DOC_PATH}#{}", code.to_ascii_lowercase())
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    success: bool,
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    /// Where this code's cause and fix are explained, on this server.
    docs: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            success: false,
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
                message_id: self.message_id,
                retry_after: self.retry_after,
                field: self.field.as_deref(),
                docs: docs_link(self.code),
            },
        };
        let mut response = json_response(self.status, &body);
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

#[derive(Serialize)]
struct Success<'a, T> {
    success: bool,
    data: &'a T,
}

/// `{"success": true, "data": data}` with a status.
pub(crate) fn envelope<T: Serialize>(status: StatusCode, data: &T) -> Response {
    json_response(
        status,
        &Success {
            success: true,
            data,
        },
    )
}

/// 200 with the envelope.
pub(crate) fn ok<T: Serialize>(data: &T) -> Response {
    envelope(StatusCode::OK, data)
}

fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            bytes,
        )
            .into_response(),
        // Only a map with non-string keys fails; our types have none.
        Err(e) => {
            tracing::error!(error = %e, "response did not serialise");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                r#"{"success":false,"error":{"code":"INTERNAL","message":"internal error"}}"#,
            )
                .into_response()
        }
    }
}

/// Result of handlers.
pub(crate) type ApiResult<T = Response> = Result<T, ApiError>;
