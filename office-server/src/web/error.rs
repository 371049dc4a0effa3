//! What goes wrong on a dashboard page, and the one place it becomes a page in the office's
//! language. A viewer who is not signed in is sent to the sign-in page and brought back after.

use axum::extract::FromRequestParts;
use axum::extract::rejection::PathRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::strings::RU;
use crate::app::{DbError, Panicked};
use crate::storage::StorageError;

#[derive(Debug)]
pub enum PageError {
    /// Not signed in (or the session ended): sign in, then go to `next`.
    SignIn {
        next: String,
    },
    /// A form without this session's CSRF token, or from another origin.
    StaleForm,
    /// Not for this role.
    Forbidden,
    /// Nothing there — or nothing this viewer may see, which looks the same.
    NotFound(&'static str),
    BadRequest(String),
    Conflict,
    TooManyAttempts,
    Internal(anyhow::Error),
}

pub type PageResult<T> = Result<T, PageError>;

impl PageError {
    pub fn not_found(what: &'static str) -> Self {
        PageError::NotFound(what)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        PageError::BadRequest(message.into())
    }

    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        PageError::Internal(error.into())
    }
}

impl From<StorageError> for PageError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::NotFound(what) => PageError::NotFound(what),
            StorageError::AlreadyExists(_) => PageError::Conflict,
            other => PageError::Internal(other.into()),
        }
    }
}

impl From<DbError> for PageError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Storage(error) => error.into(),
            DbError::Panicked(error) => error.into(),
        }
    }
}

impl From<Panicked> for PageError {
    fn from(error: Panicked) -> Self {
        PageError::Internal(error.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let t = &RU;
        let (status, message) = match self {
            PageError::SignIn { next } => {
                let location = format!("/login?next={}", super::percent_encode(&next));
                let mut response = StatusCode::SEE_OTHER.into_response();
                if let Ok(value) = HeaderValue::from_str(&location) {
                    response.headers_mut().insert(header::LOCATION, value);
                }
                return response;
            }
            PageError::StaleForm => (StatusCode::FORBIDDEN, t.error_stale_form),
            PageError::Forbidden => (StatusCode::FORBIDDEN, t.error_forbidden),
            PageError::NotFound(_) => (StatusCode::NOT_FOUND, t.error_not_found),
            PageError::BadRequest(_) => (StatusCode::BAD_REQUEST, t.error_bad_request),
            PageError::Conflict => (StatusCode::CONFLICT, t.error_conflict),
            PageError::TooManyAttempts => (StatusCode::TOO_MANY_REQUESTS, t.error_too_many),
            PageError::Internal(source) => {
                tracing::error!(error = ?source, "page failed");
                (StatusCode::INTERNAL_SERVER_ERROR, t.error_internal)
            }
        };
        super::error_page(status, message)
    }
}

impl From<PathRejection> for PageError {
    fn from(rejection: PathRejection) -> Self {
        PageError::BadRequest(rejection.body_text())
    }
}

/// `axum::extract::Path` whose rejection is a page.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(PageError))]
pub struct PagePath<T>(pub T);
