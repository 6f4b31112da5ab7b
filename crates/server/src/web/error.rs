//! The API's one error type: every failure becomes `{"error": {"code", "message",
//! "field"?}}` with a 4xx/5xx status (DESIGN.md contract). Server-side failures show a
//! generic message; the detail goes to the process log, never to the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use prophasis_store::StoreError;
use serde::Serialize;
use serde_json::json;

use crate::actions::{ActionError, ErrorKind};

/// The error body every failing API call answers with (for the OpenAPI document; the
/// response itself is built in `into_response`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `invalid`, `duplicate`, `not_found`, `forbidden`, …
    pub code: String,
    /// For people: what went wrong and what to do.
    pub message: String,
    /// The request field at fault, for validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// The failures any authenticated call may answer with, for the OpenAPI document.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum CommonErrors {
    /// No or wrong credentials.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// A viewer asked for a change.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// No such entity.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// The same name exists, or a rule about the whole system refuses it.
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// The body could not be read (not JSON, wrong content type).
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// The body is too large.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// The content type is not JSON.
    #[response(status = 415)]
    UnsupportedMediaType(ErrorBody),
    /// A value is invalid; `field` names it.
    #[response(status = 422)]
    Invalid(ErrorBody),
    /// A failure of the server; the detail is in its log.
    #[response(status = 500)]
    Internal(ErrorBody),
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            field: Some(field.into()),
            ..ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unauthorized() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "log in: send HTTP Basic credentials of a Prophasis user or an API token",
        )
    }

    pub fn forbidden() -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this needs an admin user; viewers may only read",
        )
    }

    /// A failure of ours: logged in full, shown generically.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {detail}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "something went wrong on the server; the details are in its log",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let field = e.field().map(str::to_string);
        let (status, code) = match &e {
            StoreError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            StoreError::Duplicate { .. } => (StatusCode::CONFLICT, "duplicate"),
            StoreError::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found"),
            StoreError::MissingReference { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "missing_reference")
            }
            _ => return ApiError::internal(e),
        };
        ApiError {
            status,
            code,
            message: e.to_string(),
            field,
        }
    }
}

impl From<ActionError> for ApiError {
    fn from(e: ActionError) -> Self {
        let (status, code) = match e.kind() {
            ErrorKind::Forbidden => return ApiError::forbidden(),
            ErrorKind::Invalid => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            ErrorKind::Duplicate => (StatusCode::CONFLICT, "duplicate"),
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ErrorKind::MissingReference => (StatusCode::UNPROCESSABLE_ENTITY, "missing_reference"),
            ErrorKind::Conflict => (StatusCode::CONFLICT, "conflict"),
            ErrorKind::Internal => return ApiError::internal(e),
        };
        ApiError {
            status,
            code,
            field: e.field().map(str::to_string),
            message: e.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(f) = self.field {
            error["field"] = json!(f);
        }
        let mut resp = (self.status, Json(json!({ "error": error }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Basic realm=\"Prophasis\""),
            );
        }
        resp
    }
}
