//! Every state-changing form of the dashboard arrives through [`StaffForm`]: it resolves the
//! session (and, in [`Viewer`]'s extractor, the same-origin rule), checks the session's CSRF
//! token, checks the role, and only then parses the form's fields. A handler that takes a
//! `StaffForm<Admin, _>` cannot forget any of these. Pages that only read take [`Staff`], which
//! checks the session and the role.

use std::marker::PhantomData;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::error::PageError;
use super::session::Viewer;
use crate::app::AppState;
use crate::domain::scope;
use crate::storage::Role;

/// Which roles may use a page or send a form.
pub trait Requirement: Send + Sync + 'static {
    fn allows(role: &Role) -> bool;
}

/// Administrators.
pub struct Admin;
/// Those who decide on Плохо visits and alerts: heads and administrators.
pub struct Decider;
/// Specialists, who pair tablets to themselves.
pub struct Specialist;
/// Anyone signed in.
pub struct AnyRole;

impl Requirement for Admin {
    fn allows(role: &Role) -> bool {
        matches!(role, Role::Admin)
    }
}

impl Requirement for Decider {
    fn allows(role: &Role) -> bool {
        scope::may_decide(role)
    }
}

impl Requirement for Specialist {
    fn allows(role: &Role) -> bool {
        matches!(role, Role::Specialist { .. })
    }
}

impl Requirement for AnyRole {
    fn allows(_: &Role) -> bool {
        true
    }
}

/// A signed-in viewer whose role meets `R`.
pub struct Staff<R> {
    pub viewer: Viewer,
    role: PhantomData<R>,
}

impl<R: Requirement> FromRequestParts<AppState> for Staff<R> {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let viewer = Viewer::from_request_parts(parts, state).await?;
        if !R::allows(&viewer.account.role) {
            return Err(PageError::Forbidden);
        }
        Ok(Self {
            viewer,
            role: PhantomData,
        })
    }
}

/// A form sent by a signed-in viewer whose role meets `R`, with this session's CSRF token.
pub struct StaffForm<R, T> {
    pub viewer: Viewer,
    pub fields: T,
    role: PhantomData<R>,
}

#[derive(Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

impl<R, T> FromRequest<AppState> for StaffForm<R, T>
where
    R: Requirement,
    T: DeserializeOwned + Send,
{
    type Rejection = PageError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, PageError> {
        let (mut parts, body) = request.into_parts();
        let viewer = Viewer::from_request_parts(&mut parts, state).await?;
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|rejection| PageError::bad_request(rejection.body_text()))?;
        let sent: CsrfField = serde_urlencoded::from_bytes(&body)
            .map_err(|error| PageError::bad_request(error.to_string()))?;
        viewer.check_csrf(&sent.csrf)?;
        if !R::allows(&viewer.account.role) {
            return Err(PageError::Forbidden);
        }
        let fields = serde_urlencoded::from_bytes(&body)
            .map_err(|error| PageError::bad_request(error.to_string()))?;
        Ok(Self {
            viewer,
            fields,
            role: PhantomData,
        })
    }
}
