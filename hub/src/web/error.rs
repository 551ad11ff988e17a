//! How the web API says no: a status, a stable code and a plain message.
//!
//! The parent sees `{"error": CODE, "message": "..."}`; the codes are part of
//! the API and never change. The detail of a failure on the hub's side goes to
//! the log, never to the parent. Refusals caused by the request itself are
//! ordinary and logged at DEBUG, not as errors.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::accounts::AccountError;
use crate::audit::AuditError;
use crate::codes::CodeError;
use crate::consent::ConsentError;
use crate::render::RenderError;
use crate::review::ReviewError;
use crate::store::StoreError;

/// Every way a request to the web API can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON of the expected shape.
    #[error("the request is not valid; send a JSON body with the expected fields")]
    BadRequest,

    /// The code does not match the one sent for this request.
    #[error(
        "that code is not right; check the SMS and type all six digits ({} left)",
        crate::wording::count(*tries_left, "try", "tries")
    )]
    WrongCode { tries_left: i64 },

    /// No session, or it expired or ended.
    #[error("please log in")]
    LoginRequired,

    /// Unknown phone number or wrong password (deliberately not told apart).
    #[error("the phone number or the password is not right")]
    BadLogin,

    /// The Origin header names another site than the hub (a cross-site request).
    #[error("this request came from another site and was refused")]
    ForeignOrigin,

    /// The route exists but not for this account's role (a teacher on a
    /// parents' route, a parent on a teacher's).
    #[error("this page is not for your kind of account")]
    WrongRole,

    /// Nothing here for this parent: no such id, or not theirs.
    #[error("there is nothing here")]
    NotFound,

    #[error("this address does not accept that method")]
    MethodNotAllowed,

    /// The code or download link is out of date.
    #[error("this code or link has expired; ask for the original again")]
    Expired,

    /// The code or download link was already used once.
    #[error("this code or link was already used; ask for the original again")]
    Used,

    #[error("the request body is too large")]
    TooLarge,

    /// A POST without `Content-Type: application/json`.
    #[error("send the request as JSON with Content-Type: application/json")]
    UnsupportedMediaType,

    #[error("too many wrong codes for this request; ask for the original again")]
    TooManyTries,

    #[error("you asked for too many originals in the last 24 hours; try again tomorrow")]
    TooManyRequests,

    /// Too many failed logins for this phone number or from this address.
    #[error("too many failed logins; wait 15 minutes and try again")]
    TooManyLogins,

    /// Every password check is busy (many logins at once).
    #[error("the hub is busy; try again in a moment")]
    Busy,

    #[error(
        "too many wrong codes: originals are locked for your account; ask the school to unlock it"
    )]
    Locked,

    /// A child the original would show has no consent for originals (or it
    /// was withdrawn since the request).
    #[error(
        "this original cannot be released: not every child shown in it has consent for originals"
    )]
    OriginalNotAllowed,

    /// A child named on a face is not in the photo's classroom.
    #[error("that child is not in the classroom this photo was taken in")]
    UnknownChild,

    /// A face box drawn outside the photo or too small.
    #[error("{0}")]
    BadBox(String),

    #[error("this photo has as many faces as it may have")]
    TooManyFaces,

    /// Releasing a photo without faces needs `{"no_faces": true}`.
    #[error("no face was found in this photo; confirm that there is none before releasing it")]
    NoFacesUnconfirmed,

    /// The SMS provider did not take the code; the request was cancelled.
    #[error("the code could not be sent by SMS; try again in a few minutes")]
    SmsFailed,

    /// Something failed on the hub's side. The string is for the log only.
    #[error("something went wrong on the hub; try again later")]
    Internal(String),
}

impl ApiError {
    /// A failure on the hub's side, with the detail for the log.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::Internal(detail.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest | Self::WrongCode { .. } => StatusCode::BAD_REQUEST,
            Self::LoginRequired | Self::BadLogin => StatusCode::UNAUTHORIZED,
            Self::ForeignOrigin | Self::WrongRole | Self::OriginalNotAllowed => {
                StatusCode::FORBIDDEN
            }
            Self::UnknownChild | Self::BadBox(_) | Self::TooManyFaces => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::NoFacesUnconfirmed => StatusCode::CONFLICT,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Expired | Self::Used => StatusCode::GONE,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyTries
            | Self::TooManyRequests
            | Self::TooManyLogins
            | Self::Busy
            | Self::Locked => StatusCode::TOO_MANY_REQUESTS,
            Self::SmsFailed => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code in the body's `error` field.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::WrongCode { .. } => "wrong_code",
            Self::LoginRequired => "login_required",
            Self::BadLogin => "bad_login",
            Self::ForeignOrigin => "foreign_origin",
            Self::WrongRole => "wrong_role",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Expired => "expired",
            Self::Used => "used",
            Self::TooLarge => "too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::TooManyTries | Self::TooManyLogins => "too_many_tries",
            Self::TooManyRequests | Self::Busy => "too_many_requests",
            Self::Locked => "locked",
            Self::OriginalNotAllowed => "original_not_allowed",
            Self::UnknownChild => "unknown_child",
            Self::BadBox(_) => "bad_box",
            Self::TooManyFaces => "too_many_faces",
            Self::NoFacesUnconfirmed => "no_faces_unconfirmed",
            Self::SmsFailed => "sms_failed",
            Self::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Internal(detail) => tracing::error!(error = %detail, "request failed"),
            Self::SmsFailed => tracing::warn!(code = self.code(), "request refused"),
            _ => tracing::debug!(code = self.code(), "request refused"),
        }

        let body = json!({ "error": self.code(), "message": self.to_string() });
        let mut response = (self.status(), Json(body)).into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

impl From<CodeError> for ApiError {
    fn from(error: CodeError) -> Self {
        match error {
            CodeError::NotFound => Self::NotFound,
            CodeError::WrongCode { tries_left } => Self::WrongCode { tries_left },
            CodeError::TooManyTries => Self::TooManyTries,
            CodeError::TooManyRequests => Self::TooManyRequests,
            CodeError::Locked => Self::Locked,
            CodeError::Used => Self::Used,
            CodeError::Expired => Self::Expired,
            CodeError::NotAllowed => Self::OriginalNotAllowed,
            CodeError::Database(_) | CodeError::Audit(_) => Self::internal(error),
        }
    }
}

impl From<ConsentError> for ApiError {
    fn from(error: ConsentError) -> Self {
        match error {
            ConsentError::UnknownChild(_) => Self::NotFound,
            ConsentError::UnknownPurpose(_) => Self::BadRequest,
            ConsentError::Database(_) | ConsentError::Audit(_) => Self::internal(error),
        }
    }
}

impl From<ReviewError> for ApiError {
    fn from(error: ReviewError) -> Self {
        match error {
            ReviewError::UnknownPhoto(_) | ReviewError::UnknownFace { .. } => Self::NotFound,
            ReviewError::ChildNotInClassroom { .. } => Self::UnknownChild,
            ReviewError::BadBox { .. } => Self::BadBox(error.to_string()),
            ReviewError::TooManyFaces => Self::TooManyFaces,
            ReviewError::NoFacesUnconfirmed => Self::NoFacesUnconfirmed,
            ReviewError::Open(_)
            | ReviewError::Store(_)
            | ReviewError::Database(_)
            | ReviewError::Audit(_) => Self::internal(error),
        }
    }
}

impl From<RenderError> for ApiError {
    fn from(error: RenderError) -> Self {
        Self::internal(error)
    }
}

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        Self::internal(error)
    }
}

impl From<AuditError> for ApiError {
    fn from(error: AuditError) -> Self {
        Self::internal(error)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        Self::internal(error)
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(error: rusqlite::Error) -> Self {
        Self::internal(format!("database error: {error}"))
    }
}

/// The fallback for unknown paths.
pub async fn not_found() -> ApiError {
    ApiError::NotFound
}
