//! The JSON API's one error type, and the one place it becomes a response: the use cases'
//! errors are turned into it here.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use shared_model::ErrorBody;

use crate::app::{DbError, Panicked};
use crate::ops::accounts::{CreateAccountError, ResetPasswordError, SignInError};
use crate::ops::directory::DirectoryError;
use crate::ops::pairing::PairingError;
use crate::ops::sync::SyncError;
use crate::ops::tablets::{ApproveError, EnrolmentError, TabletError};
use crate::ops::verdicts::DecisionError;
use crate::storage::StorageError;
use threegp::InvalidRecording;

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
    /// The server cannot take this now (its disk is full, a code space or a queue is full);
    /// nothing was done: try again later.
    #[error("{0}")]
    Unavailable(String),
    /// The server's storage is low: no new recording upload is taken.
    #[error("{0}")]
    InsufficientStorage(String),
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
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::InsufficientStorage(_) => {
                (StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage")
            }
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
            // Nothing was written (the transaction rolled back): the client may try again.
            full if full.is_disk_full() => ApiError::Unavailable(
                "the server's disk is full; nothing was kept, try again later".into(),
            ),
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<DbError> for ApiError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Storage(error) => error.into(),
            DbError::Panicked(error) => error.into(),
        }
    }
}

impl From<Panicked> for ApiError {
    fn from(error: Panicked) -> Self {
        ApiError::Internal(error.into())
    }
}

impl From<CreateAccountError> for ApiError {
    fn from(error: CreateAccountError) -> Self {
        match error {
            CreateAccountError::LoginTaken => {
                ApiError::conflict("already_exists", "account already exists")
            }
            CreateAccountError::ScopeNotFound => {
                ApiError::NotFound("department, section or employee")
            }
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<ResetPasswordError> for ApiError {
    fn from(error: ResetPasswordError) -> Self {
        match error {
            ResetPasswordError::NotFound => ApiError::NotFound("account"),
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<SignInError> for ApiError {
    fn from(error: SignInError) -> Self {
        match error {
            SignInError::Throttled => ApiError::TooManyAttempts,
            SignInError::WrongCredentials => ApiError::Unauthenticated("wrong login or password"),
            SignInError::Storage(error) => error.into(),
        }
    }
}

impl From<DirectoryError> for ApiError {
    fn from(error: DirectoryError) -> Self {
        match error {
            DirectoryError::NameTaken => ApiError::conflict("already_exists", error.to_string()),
            DirectoryError::NotFound(what) => ApiError::NotFound(what),
            DirectoryError::Storage(error) => error.into(),
        }
    }
}

impl From<EnrolmentError> for ApiError {
    fn from(error: EnrolmentError) -> Self {
        match error {
            EnrolmentError::TextTooLong { .. } | EnrolmentError::BadFeedbackKey => {
                ApiError::BadRequest(error.to_string())
            }
            EnrolmentError::NotFound => ApiError::NotFound("enrolment"),
            EnrolmentError::Throttled => ApiError::TooManyAttempts,
            EnrolmentError::TooManyWaiting(_) | EnrolmentError::NoFreeCode => {
                ApiError::Unavailable(error.to_string())
            }
            EnrolmentError::Storage(error) => error.into(),
        }
    }
}

impl From<ApproveError> for ApiError {
    fn from(error: ApproveError) -> Self {
        match error {
            ApproveError::UnknownCode => ApiError::NotFound(
                "open enrolment with this code (it may have expired: restart enrolment on the tablet)",
            ),
            ApproveError::NotRevoked => ApiError::NotFound("revoked tablet with this id"),
            ApproveError::Storage(error) => error.into(),
        }
    }
}

impl From<TabletError> for ApiError {
    fn from(error: TabletError) -> Self {
        match error {
            TabletError::NotFound => ApiError::NotFound("tablet"),
            TabletError::Storage(error) => error.into(),
        }
    }
}

impl From<PairingError> for ApiError {
    fn from(error: PairingError) -> Self {
        match error {
            PairingError::NotFound(what) => ApiError::NotFound(what),
            PairingError::UnknownCode => ApiError::NotFound(
                "pairing code (it may have expired: ask the tablet for a new one)",
            ),
            PairingError::Throttled => ApiError::TooManyAttempts,
            PairingError::NotASpecialist => {
                ApiError::Forbidden("only a specialist can pair a tablet to their working session")
            }
            PairingError::NotYours => {
                ApiError::Forbidden("only its specialist or an administrator can end a pairing")
            }
            PairingError::AlreadyEnded => {
                ApiError::conflict("already_ended", "this pairing has already ended")
            }
            PairingError::NoFreeCode => ApiError::Unavailable(error.to_string()),
            PairingError::Storage(error) => error.into(),
        }
    }
}

impl From<SyncError> for ApiError {
    fn from(error: SyncError) -> Self {
        match error {
            SyncError::TooManyVisits(_) => ApiError::TooLarge(error.to_string()),
            SyncError::BadHealth(message) => ApiError::BadRequest(message),
            SyncError::BadFeedbackKey => ApiError::BadRequest(error.to_string()),
            SyncError::StorageFull => ApiError::Unavailable(error.to_string()),
            SyncError::Storage(error) => error.into(),
        }
    }
}

impl From<crate::ops::results::ResultError> for ApiError {
    fn from(error: crate::ops::results::ResultError) -> Self {
        use crate::ops::results::ResultError;
        match error {
            ResultError::NotFound(what) => ApiError::NotFound(what),
            ResultError::Storage(error) => error.into(),
            ResultError::CaseTaken => ApiError::conflict("case_taken", error.to_string()),
            ResultError::AlreadyReady => ApiError::conflict("already_ready", error.to_string()),
            other => ApiError::Unprocessable(other.to_string()),
        }
    }
}

impl From<DecisionError> for ApiError {
    fn from(error: DecisionError) -> Self {
        match error {
            DecisionError::NotFound(what) => ApiError::NotFound(what),
            DecisionError::Storage(error) => error.into(),
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
        let retry_after = match self {
            ApiError::TooManyAttempts => Some("60"),
            ApiError::Unavailable(_) | ApiError::InsufficientStorage(_) => Some("300"),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(seconds));
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
