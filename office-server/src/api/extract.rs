//! Who is calling: a tablet with its device credential, or a person with a session cookie
//! (any role, or an administrator).

use axum::extract::FromRequestParts;
use axum::http::Method;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jiff::Timestamp;
use shared_model::{MIN_SUPPORTED_PROTOCOL, PROTOCOL_HEADER, PROTOCOL_VERSION};

use super::error::ApiError;
use crate::app::AppState;
use crate::auth::token_digest;
use crate::http::{from_this_site, session_token};
use crate::ops::accounts::session_account;
use crate::storage::{Account, Role, TabletIdentity};

/// A request from a tablet app that speaks a protocol version this server accepts (which).
pub struct TabletProtocol(pub u32);

impl<S: Send + Sync> FromRequestParts<S> for TabletProtocol {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let value = parts.headers.get(PROTOCOL_HEADER).ok_or_else(|| {
            ApiError::BadRequest(format!("the {PROTOCOL_HEADER} header is missing"))
        })?;
        let version: u32 = value
            .to_str()
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .ok_or_else(|| ApiError::BadRequest(format!("{PROTOCOL_HEADER} must be a number")))?;
        if version < MIN_SUPPORTED_PROTOCOL {
            return Err(ApiError::ProtocolTooOld {
                found: version,
                oldest: MIN_SUPPORTED_PROTOCOL,
            });
        }
        if version > PROTOCOL_VERSION {
            return Err(ApiError::ProtocolTooNew {
                found: version,
                newest: PROTOCOL_VERSION,
            });
        }
        Ok(Self(version))
    }
}

/// An enrolled, unrevoked tablet, identified by `Authorization: Bearer <device token>`, and the
/// protocol version it speaks. Its request is noted (`ops::pairing::tablet_request`).
pub struct TabletAuth(pub TabletIdentity, pub u32);

impl FromRequestParts<AppState> for TabletAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let TabletProtocol(protocol) = TabletProtocol::from_request_parts(parts, state).await?;
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthenticated(
                "a tablet request needs Authorization: Bearer <device token>",
            ))?;
        let digest = token_digest(token.trim());
        let tablet = state
            .db(move |db| {
                let now = Timestamp::now();
                let tablet = db.authenticate_tablet(&digest, now)?;
                if let Some(tablet) = &tablet {
                    crate::ops::pairing::tablet_request(db, tablet.id, now)?;
                }
                Ok(tablet)
            })
            .await?
            .ok_or(ApiError::Unauthenticated(
                "unknown or revoked device token; enrol the tablet again",
            ))?;
        Ok(Self(tablet, protocol))
    }
}

/// The office's case-management system, identified by `Authorization: Bearer <token>` whose
/// SHA-256 is one of `case_system.tokens_sha256`.
pub struct CaseSystemAuth;

/// The SHA-256 of the token in `Authorization: Bearer <token>`, if the request sent one: what
/// a system's configured token digests are compared with.
pub fn bearer_digest(headers: &axum::http::HeaderMap) -> Option<[u8; 32]> {
    headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(|token| token_digest(token.trim()))
}

impl FromRequestParts<AppState> for CaseSystemAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match bearer_digest(&parts.headers) {
            Some(digest) if state.case_tokens.contains(&digest) => Ok(Self),
            _ => Err(ApiError::Unauthenticated(
                "the case-management system's request needs Authorization: Bearer <token>",
            )),
        }
    }
}

/// A request that a browser would not send from another site: what every cookie-authenticated
/// state change must be (see [`crate::http::from_this_site`]). Reading is always allowed.
pub struct FromThisSite;

impl FromRequestParts<AppState> for FromThisSite {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let reads = parts.method == Method::GET || parts.method == Method::HEAD;
        if reads || from_this_site(&parts.headers, &parts.uri, state.public_origin.as_ref()) {
            Ok(Self)
        } else {
            Err(ApiError::Forbidden(
                "a request that changes something must come from this site",
            ))
        }
    }
}

/// A person signed in with a session cookie; a state change must also come from this site.
pub struct SignedIn(pub Account);

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        FromThisSite::from_request_parts(parts, state).await?;
        let token = session_token(&parts.headers)
            .ok_or(ApiError::Unauthenticated("please sign in"))?
            .to_string();
        let account = state
            .db(move |db| session_account(db, &token, Timestamp::now()))
            .await?
            .ok_or(ApiError::Unauthenticated(
                "the session has expired or ended; please sign in again",
            ))?;
        Ok(Self(account))
    }
}

/// An administrator signed in with a session cookie.
pub struct AdminSession(pub Account);

impl FromRequestParts<AppState> for AdminSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let SignedIn(account) = SignedIn::from_request_parts(parts, state).await?;
        match account.role {
            Role::Admin => Ok(Self(account)),
            _ => Err(ApiError::Forbidden("only an administrator may do this")),
        }
    }
}
