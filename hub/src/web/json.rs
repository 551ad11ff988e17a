//! Request bodies: JSON only, refused in the API's own error shape.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::error::ApiError;

/// The largest request body the hub reads. Every body is a small JSON object;
/// anything bigger is refused before it is buffered further.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON body, like `axum::Json`, whose refusals are [`ApiError`]s. serde's
/// message is not passed on: it can quote the submitted value, which may be a
/// code or a password.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::UnsupportedMediaType),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::TooLarge)
            }
            Err(_) => Err(ApiError::BadRequest),
        }
    }
}

/// The `{}` body of a POST that needs no fields. Unknown fields are ignored.
#[derive(Debug, Deserialize)]
pub struct Empty {}
