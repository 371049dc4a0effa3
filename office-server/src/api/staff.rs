//! What people do over HTTP: sign in and out, and specialists pair tablets to themselves.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use shared_model::Pairing;
use utoipa::ToSchema;
use uuid::Uuid;

use super::admin::invalid;
use super::error::{ApiJson, ApiPath, ApiResult};
use super::extract::SignedIn;
use crate::app::AppState;
use crate::domain::{PairingCode, Password};
use crate::http::{cleared_session_cookie, session_cookie, session_token, with_cookie};
use crate::ops;
use crate::ops::pairing::{Workday, specialist_of};
use crate::storage::Account;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub login: String,
    pub password: String,
}

pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(request): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let password = Password::typed(&request.password).map_err(|e| invalid("the password", e))?;
    let session = state
        .blocking(move |s| {
            ops::accounts::sign_in(
                s.storage.as_ref(),
                &s.login_throttle,
                &request.login,
                &password,
                peer.ip(),
                SignedDuration::from_hours(i64::from(s.config.session_hours)),
                Timestamp::now(),
            )
        })
        .await??;
    let cookie = session_cookie(&state.config, &session.token);
    Ok(with_cookie(
        ApiJson(session.account).into_response(),
        &cookie,
    ))
}

pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    if let Some(token) = session_token(&headers).map(str::to_string) {
        state
            .db(move |db| ops::accounts::sign_out(db, &token))
            .await?;
    }
    Ok(with_cookie(
        StatusCode::NO_CONTENT.into_response(),
        &cleared_session_cookie(),
    ))
}

pub async fn me(SignedIn(account): SignedIn) -> ApiJson<Account> {
    ApiJson(account)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PairRequest {
    /// The code the tablet shows.
    pub code: String,
}

/// A specialist enters the code their tablet shows; the tablet is then theirs until the end of
/// the working day.
pub async fn pair(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    SignedIn(account): SignedIn,
    ApiJson(request): ApiJson<PairRequest>,
) -> ApiResult<ApiJson<Pairing>> {
    specialist_of(&account)?;
    let code =
        PairingCode::parse(&request.code).map_err(|e| invalid("the code the tablet shows", e))?;
    let pairing = state
        .blocking(move |s| {
            ops::pairing::pair(
                s.storage.as_ref(),
                &s.pairing_throttle,
                &account,
                peer.ip(),
                &code,
                &Workday {
                    zone: &s.zone,
                    hours: &s.config.working_hours,
                },
                Timestamp::now(),
            )
        })
        .await??;
    Ok(ApiJson(pairing))
}

/// The signed-in specialist's active pairings.
pub async fn my_pairings(
    State(state): State<AppState>,
    SignedIn(account): SignedIn,
) -> ApiResult<ApiJson<Vec<Pairing>>> {
    let pairings = state
        .blocking(move |s| {
            ops::pairing::active_pairings(s.storage.as_ref(), &account, Timestamp::now())
        })
        .await??;
    Ok(ApiJson(pairings))
}

/// Ends a pairing: its specialist or an administrator may.
pub async fn end_pairing(
    State(state): State<AppState>,
    SignedIn(account): SignedIn,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    state
        .blocking(move |s| {
            ops::pairing::end_pairing(s.storage.as_ref(), &account, id, Timestamp::now())
        })
        .await??;
    Ok(StatusCode::NO_CONTENT)
}
