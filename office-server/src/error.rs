//! The HTTP boundary's one error type, and the one place it becomes a response.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use shared_model::ErrorBody;

use crate::storage::StorageError;
use crate::threegp::InvalidRecording;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("the request body is not valid: {0}")]
    InvalidBody(String),
    #[error("{0}")]
    Unauthenticated(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("{0}")]
    Unprocessable(String),
    #[error("the recording was refused: {0}")]
    InvalidRecording(#[from] InvalidRecording),
    #[error("{0}")]
    TooLarge(String),
    #[error("too many attempts; try again in a minute")]
    TooManyAttempts,
    #[error(
        "tablet protocol version {found} is older than the oldest supported ({oldest}); update the tablet app"
    )]
    ProtocolTooOld { found: u32, oldest: u32 },
    #[error(
        "tablet protocol version {found} is newer than this server ({newest}); update the office server"
    )]
    ProtocolTooNew { found: u32, newest: u32 },
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub(crate) fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::InvalidBody(_) => (StatusCode::BAD_REQUEST, "invalid_body"),
            ApiError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            ApiError::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable"),
            ApiError::InvalidRecording(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_recording")
            }
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            ApiError::TooManyAttempts => (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"),
            ApiError::ProtocolTooOld { .. } => (StatusCode::UPGRADE_REQUIRED, "protocol_too_old"),
            ApiError::ProtocolTooNew { .. } => (StatusCode::BAD_REQUEST, "protocol_too_new"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Conflict {
            code,
            message: message.into(),
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::NotFound(what) => ApiError::NotFound(what),
            StorageError::AlreadyExists(what) => {
                ApiError::conflict("already_exists", format!("{what} already exists"))
            }
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::BytesRejection(bytes)
                if bytes.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                ApiError::TooLarge("the request body is too large".into())
            }
            other => ApiError::InvalidBody(other.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::BadRequest(rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::BadRequest(rejection.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let ApiError::Internal(source) = &self {
            tracing::error!(error = ?source, "request failed");
        }
        let body = ErrorBody {
            error: code.to_string(),
            message: self.to_string(),
        };
        let mut response = (status, Json(body)).into_response();
        if matches!(self, ApiError::TooManyAttempts) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        }
        response
    }
}

/// `axum::Json` whose rejections are [`ApiError`]s, so a bad body gets the same JSON error shape.
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

/// `axum::extract::Path` with [`ApiError`] rejections.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

pub type ApiResult<T> = Result<T, ApiError>;

/// An error on a dashboard page: the API's errors, shown as a page in the office's language; a
/// visitor who is not signed in is sent to the sign-in page and brought back afterwards.
#[derive(Debug)]
pub enum PageError {
    /// Not signed in (or the session ended): sign in, then go to `next`.
    SignIn {
        next: String,
    },
    /// A form without this session's CSRF token, or from another origin.
    StaleForm,
    Api(ApiError),
}

impl From<ApiError> for PageError {
    fn from(error: ApiError) -> Self {
        PageError::Api(error)
    }
}

impl From<StorageError> for PageError {
    fn from(error: StorageError) -> Self {
        PageError::Api(error.into())
    }
}

impl PageError {
    pub fn forbidden() -> Self {
        PageError::Api(ApiError::Forbidden("not allowed for this role"))
    }

    pub fn not_found(what: &'static str) -> Self {
        PageError::Api(ApiError::NotFound(what))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        PageError::Api(ApiError::BadRequest(message.into()))
    }

    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        PageError::Api(ApiError::Internal(error.into()))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let t = &crate::web::strings::RU;
        match self {
            PageError::SignIn { next } => {
                let location = format!("/login?next={}", crate::web::percent_encode(&next));
                let mut response = StatusCode::SEE_OTHER.into_response();
                if let Ok(value) = HeaderValue::from_str(&location) {
                    response.headers_mut().insert(header::LOCATION, value);
                }
                response
            }
            PageError::StaleForm => {
                crate::web::error_page(StatusCode::FORBIDDEN, t.error_stale_form)
            }
            PageError::Api(error) => {
                let (status, _) = error.status_and_code();
                if let ApiError::Internal(source) = &error {
                    tracing::error!(error = ?source, "page failed");
                }
                let message = match status {
                    StatusCode::FORBIDDEN => t.error_forbidden,
                    StatusCode::NOT_FOUND => t.error_not_found,
                    StatusCode::CONFLICT => t.error_conflict,
                    StatusCode::TOO_MANY_REQUESTS => t.error_too_many,
                    StatusCode::INTERNAL_SERVER_ERROR => t.error_internal,
                    _ => t.error_bad_request,
                };
                crate::web::error_page(status, message)
            }
        }
    }
}

pub type PageResult<T> = Result<T, PageError>;
