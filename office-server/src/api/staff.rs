//! What people do over HTTP: sign in and out, and specialists pair tablets to themselves.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use shared_model::{Pairing, PairingEndReason};
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::{SESSION_COOKIE, SignedIn, session_token};
use super::tablet::PAIRING_CODE_DIGITS;
use crate::app::AppState;
use crate::auth::{decoy_hash, normalise_code, random_token, token_digest, verify_password};
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::storage::{Account, PairingClaim, Role};
use crate::workday::pairing_ends_at;

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
    let (account, token) = sign_in(&state, peer, &request.login, request.password).await?;
    let cookie = session_cookie(&state, &token);
    Ok(with_cookie(ApiJson(account).into_response(), &cookie))
}

/// Checks a login and password (throttled, in constant work whether the login exists) and opens
/// a session; returns the account and the session token for the cookie.
pub async fn sign_in(
    state: &AppState,
    peer: SocketAddr,
    login: &str,
    password: String,
) -> ApiResult<(Account, String)> {
    if login.len() > 100 || password.len() > 1000 {
        return Err(ApiError::BadRequest("login or password is too long".into()));
    }
    if !state.login_throttle.attempt(login, peer.ip()) {
        tracing::warn!(login = %login, peer = %peer.ip(), "login throttled");
        return Err(ApiError::TooManyAttempts);
    }
    let login = login.trim().to_string();
    let found = state.db(move |db| db.account_credentials(&login)).await?;
    let account = tokio::task::spawn_blocking(move || match found {
        Some((account, hash)) if verify_password(&hash, &password) => Some(account),
        Some(_) => None,
        None => {
            // Same work as a real check, so timing does not reveal which logins exist.
            verify_password(decoy_hash(), &password);
            None
        }
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?
    .ok_or(ApiError::Unauthenticated("wrong login or password"))?;

    let token = random_token();
    let digest = token_digest(&token);
    let now = Timestamp::now();
    let expires_at = now + SignedDuration::from_hours(i64::from(state.config.session_hours));
    let account_id = account.id;
    state
        .db(move |db| db.create_session(&digest, account_id, now, expires_at))
        .await?;
    tracing::info!(account_id, "signed in");
    Ok((account, token))
}

/// The `Set-Cookie` value of a new session.
pub fn session_cookie(state: &AppState, token: &str) -> String {
    let secure = if state.config.tls.is_some() {
        "; Secure"
    } else {
        ""
    };
    let max_age = i64::from(state.config.session_hours) * 3600;
    format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
}

/// The `Set-Cookie` value that ends the session in the browser.
pub fn cleared_session_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")
}

/// Ends the session whose token the request carries, if any.
pub async fn sign_out(state: &AppState, headers: &HeaderMap) -> ApiResult<()> {
    if let Some(token) = session_token(headers) {
        let digest = token_digest(token);
        state.db(move |db| db.delete_session(&digest)).await?;
    }
    Ok(())
}

pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    sign_out(&state, &headers).await?;
    Ok(with_cookie(
        StatusCode::NO_CONTENT.into_response(),
        &cleared_session_cookie(),
    ))
}

pub fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(SET_COOKIE, value);
    }
    response
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

fn specialist(account: &Account) -> ApiResult<i64> {
    match account.role {
        Role::Specialist { employee_id } => Ok(employee_id),
        _ => Err(ApiError::Forbidden(
            "only a specialist can pair a tablet to their working session",
        )),
    }
}

/// A specialist enters the code their tablet shows; the tablet is then theirs until the end of
/// the working day.
pub async fn pair(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    SignedIn(account): SignedIn,
    ApiJson(request): ApiJson<PairRequest>,
) -> ApiResult<ApiJson<Pairing>> {
    Ok(ApiJson(
        pair_tablet(&state, peer, &account, &request.code).await?,
    ))
}

/// Pairs the tablet that shows `code` to the specialist `account` until the end of the working
/// day. Refused for other roles, throttled per account and address.
pub async fn pair_tablet(
    state: &AppState,
    peer: SocketAddr,
    account: &Account,
    code: &str,
) -> ApiResult<Pairing> {
    let employee_id = specialist(account)?;
    if !state.pairing_throttle.attempt(&account.login, peer.ip()) {
        return Err(ApiError::TooManyAttempts);
    }
    let code = normalise_code(code, PAIRING_CODE_DIGITS).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "the code the tablet shows has {PAIRING_CODE_DIGITS} digits"
        ))
    })?;
    let now = Timestamp::now();
    let claim = PairingClaim {
        code,
        employee_id,
        pairing_id: Uuid::now_v7(),
        now,
        ends_at: pairing_ends_at(now, &state.zone, &state.config.working_hours),
    };
    let pairing = state
        .db(move |db| db.claim_pairing_code(&claim))
        .await
        .map_err(|error| match error {
            ApiError::NotFound("pairing code") => ApiError::NotFound(
                "pairing code (it may have expired: ask the tablet for a new one)",
            ),
            other => other,
        })?;
    tracing::info!(pairing = %pairing.id, employee_id, "tablet paired");
    Ok(pairing)
}

/// The signed-in specialist's active pairings.
pub async fn my_pairings(
    State(state): State<AppState>,
    SignedIn(account): SignedIn,
) -> ApiResult<ApiJson<Vec<Pairing>>> {
    let employee_id = specialist(&account)?;
    let now = Timestamp::now();
    Ok(ApiJson(
        state
            .db(move |db| db.active_pairings_of_employee(employee_id, now))
            .await?,
    ))
}

/// Ends a pairing: its specialist or an administrator may.
pub async fn end_pairing(
    State(state): State<AppState>,
    SignedIn(account): SignedIn,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    end_pairing_as(&state, &account, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends the pairing `id` on behalf of `account` (its specialist or an administrator).
pub async fn end_pairing_as(state: &AppState, account: &Account, id: Uuid) -> ApiResult<()> {
    let record = state
        .db(move |db| db.pairing(id))
        .await?
        .ok_or(ApiError::NotFound("pairing"))?;
    let allowed = match account.role {
        Role::Admin => true,
        Role::Specialist { employee_id } => employee_id == record.pairing.employee.id,
        _ => false,
    };
    if !allowed {
        return Err(ApiError::Forbidden(
            "only its specialist or an administrator can end a pairing",
        ));
    }
    let now = Timestamp::now();
    let ended = state
        .db(move |db| db.end_pairing(id, PairingEndReason::EndedByStaff, now))
        .await?;
    if !ended {
        return Err(ApiError::conflict(
            "already_ended",
            "this pairing has already ended",
        ));
    }
    tracing::info!(pairing = %id, by = account.id, "pairing ended");
    Ok(())
}
