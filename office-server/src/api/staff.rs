//! What people do over HTTP: sign in and out, and specialists pair tablets to themselves.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use shared_model::{ErrorBody, Pairing};
use utoipa::ToSchema;
use uuid::Uuid;

use super::admin::invalid;
use super::error::{ApiJson, ApiPath, ApiResult};
use super::extract::{FromThisSite, SignedIn};
use crate::app::AppState;
use crate::domain::{PairingCode, Password};
use crate::http::{
    ClientAddress, cleared_session_cookie, session_cookie, session_token, with_cookie,
};
use crate::ops;
use crate::ops::pairing::specialist_of;
use crate::storage::Account;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub login: String,
    pub password: String,
}

#[utoipa::path(
    post, path = "/api/auth/login", tag = "people",
    summary = "Sign in: a session cookie for the account",
    request_body = LoginRequest,
    responses(
        (status = 200, body = Account, description = "Signed in; `Set-Cookie` carries the session"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody, description = "Wrong login or password"),
        (status = 403, body = ErrorBody, description = "Sent by another site"),
        (status = 429, body = ErrorBody, description = "Too many attempts for this account or address"),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    _from_this_site: FromThisSite,
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
                client,
                SignedDuration::from_hours(i64::from(s.config.session_hours)),
                Timestamp::now(),
            )
        })
        .await??;
    let cookie = session_cookie(&state, &session.token);
    Ok(with_cookie(
        ApiJson(session.account).into_response(),
        &cookie,
    ))
}

#[utoipa::path(
    post, path = "/api/auth/logout", tag = "people",
    summary = "Sign out: the session ends",
    security(("session_cookie" = [])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 403, body = ErrorBody, description = "Sent by another site"),
    )
)]
pub async fn logout(
    State(state): State<AppState>,
    _from_this_site: FromThisSite,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if let Some(token) = session_token(&headers).map(str::to_string) {
        state
            .db(move |db| ops::accounts::sign_out(db, &token))
            .await?;
    }
    Ok(with_cookie(
        StatusCode::NO_CONTENT.into_response(),
        &cleared_session_cookie(&state),
    ))
}

#[utoipa::path(
    get, path = "/api/auth/me", tag = "people",
    summary = "The signed-in account",
    security(("session_cookie" = [])),
    responses((status = 200, body = Account), (status = 401, body = ErrorBody))
)]
pub async fn me(SignedIn(account): SignedIn) -> ApiJson<Account> {
    ApiJson(account)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PairRequest {
    /// The code the tablet shows.
    pub code: String,
}

#[utoipa::path(
    post, path = "/api/pairings", tag = "pairing",
    summary = "A specialist pairs the tablet that shows this code to their working session",
    request_body = PairRequest,
    security(("session_cookie" = [])),
    responses(
        (status = 200, body = Pairing, description = "Paired until the end of the working day"),
        (status = 400, body = ErrorBody, description = "Not a code of 6 digits"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "Not a specialist, or sent by another site"),
        (status = 404, body = ErrorBody, description = "No tablet shows this code"),
        (status = 429, body = ErrorBody),
    )
)]
/// A specialist enters the code their tablet shows; the tablet is then theirs until the end of
/// the working day.
pub async fn pair(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
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
                client,
                &code,
                &s.workday(),
                Timestamp::now(),
            )
        })
        .await??;
    Ok(ApiJson(pairing))
}

#[utoipa::path(
    get, path = "/api/pairings", tag = "pairing",
    summary = "The signed-in specialist's pairings that are on",
    security(("session_cookie" = [])),
    responses(
        (status = 200, body = Vec<Pairing>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "Not a specialist"),
    )
)]
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

#[utoipa::path(
    post, path = "/api/pairings/{id}/end", tag = "pairing",
    summary = "End a pairing: its specialist or an administrator may",
    params(("id" = Uuid, Path)),
    security(("session_cookie" = [])),
    responses(
        (status = 204, description = "Ended"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "Already ended"),
    )
)]
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
