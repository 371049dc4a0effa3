//! The administrator's API: accounts, tablet enrolment and revocation, tablets' health.

use axum::extract::State;
use axum::http::StatusCode;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::SignedIn;
use super::tablet::ENROLMENT_CODE_DIGITS;
use crate::app::AppState;
use crate::auth::{hash_password_blocking, normalise_code};
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::storage::{Directory, NewAccount, Role, Scope, TabletInfo};

/// The organisation; for administrators and observers, who see all of it.
pub async fn directory(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> ApiResult<ApiJson<Directory>> {
    match signed_in.0.role {
        Role::Admin | Role::Observer => {}
        _ => {
            return Err(ApiError::Forbidden(
                "the whole directory is for administrators and observers",
            ));
        }
    }
    Ok(ApiJson(state.db(|db| db.directory()).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum NewRole {
    Admin,
    Observer,
    HeadOfDepartment { department_id: i64 },
    HeadOfSection { section_id: i64 },
    Specialist { employee_id: i64 },
}

/// The role's fields sit beside the others (`"role": "specialist", "employee_id": 7`); serde
/// cannot refuse unknown fields across a flatten, so extra fields are ignored here.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateAccount {
    pub login: String,
    pub display_name: String,
    pub password: String,
    #[serde(flatten)]
    pub role: NewRole,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Created {
    pub id: i64,
}

/// Shortest password an account may have.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// Checks a new account's login and password; the one rule for the API and the command line.
pub fn check_new_credentials(login: &str, password: &str) -> Result<(), String> {
    let login_ok = (3..=64).contains(&login.chars().count())
        && login
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if !login_ok {
        return Err("a login has 3 to 64 letters, digits or the characters . _ - @".to_string());
    }
    if password.chars().count() < MIN_PASSWORD_CHARS || password.len() > 1000 {
        return Err(format!(
            "a password has at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    Ok(())
}

/// Hashes `password` off the runtime and stores the account: a taken login is
/// [`ApiError::Conflict`], a scope that names no row [`ApiError::NotFound`].
pub async fn store_new_account(
    state: &AppState,
    login: String,
    display_name: String,
    password: String,
    role: Role,
) -> ApiResult<i64> {
    let password_hash = hash_password_blocking(password)
        .await
        .map_err(ApiError::Internal)?;
    let account = NewAccount {
        login,
        display_name,
        password_hash,
        role,
        created_at: Timestamp::now(),
    };
    state.db(move |db| db.create_account(&account)).await
}

pub async fn create_account(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiJson(request): ApiJson<CreateAccount>,
) -> ApiResult<(StatusCode, ApiJson<Created>)> {
    signed_in.require_admin()?;
    let login = request.login.trim().to_string();
    check_new_credentials(&login, &request.password).map_err(ApiError::BadRequest)?;
    let display_name = request.display_name.trim().to_string();
    if display_name.is_empty() || display_name.chars().count() > 200 {
        return Err(ApiError::BadRequest(
            "a display name has 1 to 200 characters".into(),
        ));
    }
    let role = match request.role {
        NewRole::Admin => Role::Admin,
        NewRole::Observer => Role::Observer,
        NewRole::HeadOfDepartment { department_id } => Role::Head {
            scope: Scope::Department(department_id),
        },
        NewRole::HeadOfSection { section_id } => Role::Head {
            scope: Scope::Section(section_id),
        },
        NewRole::Specialist { employee_id } => Role::Specialist { employee_id },
    };
    let id = store_new_account(&state, login, display_name, request.password, role).await?;
    tracing::info!(id, by = signed_in.0.id, "account created");
    Ok((StatusCode::CREATED, ApiJson(Created { id })))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveEnrolment {
    /// The code the tablet shows.
    pub code: String,
    /// What to call the tablet (its desk or room).
    pub name: String,
}

pub async fn approve_enrolment(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiJson(request): ApiJson<ApproveEnrolment>,
) -> ApiResult<(StatusCode, ApiJson<Created>)> {
    signed_in.require_admin()?;
    let code = normalise_code(&request.code, ENROLMENT_CODE_DIGITS).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "an enrolment code has {ENROLMENT_CODE_DIGITS} digits"
        ))
    })?;
    let name = request.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::BadRequest(
            "a tablet name has 1 to 100 characters".into(),
        ));
    }
    let id = state
        .db(move |db| db.approve_enrolment(&code, &name, Timestamp::now()))
        .await
        .map_err(|error| match error {
            ApiError::NotFound(_) => ApiError::NotFound(
                "open enrolment with this code (it may have expired: restart enrolment on the tablet)",
            ),
            other => other,
        })?;
    tracing::info!(
        tablet_id = id,
        by = signed_in.0.id,
        "tablet enrolment approved"
    );
    Ok((StatusCode::CREATED, ApiJson(Created { id })))
}

pub async fn tablets(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> ApiResult<ApiJson<Vec<TabletInfo>>> {
    signed_in.require_admin()?;
    Ok(ApiJson(state.db(|db| db.tablets()).await?))
}

pub async fn revoke_tablet(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    signed_in.require_admin()?;
    state
        .db(move |db| db.revoke_tablet(id, Timestamp::now()))
        .await?;
    tracing::info!(tablet_id = id, by = signed_in.0.id, "tablet revoked");
    Ok(StatusCode::NO_CONTENT)
}
