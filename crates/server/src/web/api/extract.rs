//! Extractors that answer a bad request with the API's error shape: axum's own `Json`,
//! `Path` and `Query` reply in plain text, which API clients (and the OpenAPI document's
//! promise) cannot parse.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::web::error::ApiError;

fn bad(status: StatusCode, field: &str, text: String) -> ApiError {
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid",
        _ => "bad_request",
    };
    let mut e = ApiError::new(status, code, text);
    if status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::BAD_REQUEST {
        e.field = Some(field.to_string());
    }
    e
}

/// A JSON request body.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Body(v)),
            Err(r @ JsonRejection::JsonDataError(_)) => {
                Err(bad(StatusCode::UNPROCESSABLE_ENTITY, "body", r.body_text()))
            }
            Err(r) => Err(bad(r.status(), "body", r.body_text())),
        }
    }
}

/// Path parameters.
pub struct PathParam<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParam<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(PathParam(v)),
            Err(r) => {
                let r: PathRejection = r;
                // A malformed id names nothing that exists.
                Err(ApiError::not_found(format!(
                    "no such entity: {}",
                    r.body_text()
                )))
            }
        }
    }
}

/// Query string parameters.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(QueryParams(v)),
            Err(r) => {
                let r: QueryRejection = r;
                Err(bad(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "query",
                    r.body_text(),
                ))
            }
        }
    }
}
