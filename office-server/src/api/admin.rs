//! The administrator's API: accounts, tablet enrolment and revocation, tablets' health.

use axum::extract::State;
use axum::http::StatusCode;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use shared_model::ErrorBody;
use utoipa::ToSchema;

use super::error::{ApiError, ApiJson, ApiPath, ApiResult};
use super::extract::{AdminSession, SignedIn};
use crate::app::AppState;
use crate::domain::{DisplayName, EnrolmentCode, InvalidText, Login, Password, TabletName};
use crate::ops;
use crate::ops::accounts::NewAccountRequest;
use crate::storage::{Directory, Role, Scope, TabletInfo};

#[utoipa::path(
    get, path = "/api/directory", tag = "administration",
    summary = "The organisation: departments, sections, employees, services",
    security(("session_cookie" = [])),
    responses(
        (status = 200, body = Directory),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "Not an administrator or observer"),
    )
)]
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

impl NewRole {
    fn role(&self) -> Role {
        match *self {
            NewRole::Admin => Role::Admin,
            NewRole::Observer => Role::Observer,
            NewRole::HeadOfDepartment { department_id } => Role::Head {
                scope: Scope::Department(department_id),
            },
            NewRole::HeadOfSection { section_id } => Role::Head {
                scope: Scope::Section(section_id),
            },
            NewRole::Specialist { employee_id } => Role::Specialist { employee_id },
        }
    }
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

/// A field that did not parse, as a 400 naming the field.
pub fn invalid(field: &str, error: impl std::fmt::Display) -> ApiError {
    ApiError::BadRequest(format!("{field} {error}"))
}

#[utoipa::path(
    post, path = "/api/admin/accounts", tag = "administration",
    summary = "Create an account with its role",
    request_body = CreateAccount,
    security(("session_cookie" = [])),
    responses(
        (status = 201, body = Created),
        (status = 400, body = ErrorBody, description = "A field that does not parse, named in the message"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "The role's department, section or employee does not exist"),
        (status = 409, body = ErrorBody, description = "The login is taken"),
    )
)]
pub async fn create_account(
    State(state): State<AppState>,
    AdminSession(admin): AdminSession,
    ApiJson(body): ApiJson<CreateAccount>,
) -> ApiResult<(StatusCode, ApiJson<Created>)> {
    let request = NewAccountRequest {
        login: Login::parse(&body.login).map_err(|e| invalid("login", e))?,
        password: Password::new_secret(&body.password).map_err(|e| invalid("password", e))?,
        display_name: DisplayName::parse(&body.display_name)
            .map_err(|e: InvalidText| invalid("display_name", e))?,
        role: body.role.role(),
    };
    let id = state
        .blocking(move |s| {
            ops::accounts::create_account(
                s.storage.as_ref(),
                &request,
                Some(admin.id),
                Timestamp::now(),
            )
        })
        .await??;
    Ok((StatusCode::CREATED, ApiJson(Created { id })))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveEnrolment {
    /// The code the tablet shows.
    pub code: String,
    /// What to call the tablet (its desk or room).
    pub name: String,
    /// A revoked tablet's id: the enrolment brings it back as that tablet, so the visits it
    /// kept queued are accepted under their pairings.
    #[serde(default)]
    pub readmit_tablet_id: Option<i64>,
}

#[utoipa::path(
    post, path = "/api/admin/enrolments", tag = "administration",
    summary = "Approve the enrolment whose code a tablet shows",
    request_body = ApproveEnrolment,
    security(("session_cookie" = [])),
    responses(
        (status = 201, body = Created, description = "The new tablet's id"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "No open enrolment has this code"),
    )
)]
pub async fn approve_enrolment(
    State(state): State<AppState>,
    AdminSession(admin): AdminSession,
    ApiJson(body): ApiJson<ApproveEnrolment>,
) -> ApiResult<(StatusCode, ApiJson<Created>)> {
    let code = EnrolmentCode::parse(&body.code).map_err(|e| invalid("the enrolment code", e))?;
    let name = TabletName::parse(&body.name).map_err(|e| invalid("the tablet name", e))?;
    let id = state
        .blocking(move |s| {
            ops::tablets::approve_enrolment(
                s.storage.as_ref(),
                &code,
                &name,
                body.readmit_tablet_id,
                admin.id,
                Timestamp::now(),
            )
        })
        .await??;
    Ok((StatusCode::CREATED, ApiJson(Created { id })))
}

#[utoipa::path(
    get, path = "/api/admin/tablets", tag = "administration",
    summary = "Every tablet with the health it last reported",
    security(("session_cookie" = [])),
    responses(
        (status = 200, body = Vec<TabletInfo>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    )
)]
pub async fn tablets(
    State(state): State<AppState>,
    _admin: AdminSession,
) -> ApiResult<ApiJson<Vec<TabletInfo>>> {
    Ok(ApiJson(state.db(|db| db.tablets()).await?))
}

#[utoipa::path(
    post, path = "/api/admin/tablets/{id}/revoke", tag = "administration",
    summary = "Revoke a tablet: its credential stops working, its pairings end",
    params(("id" = i64, Path)),
    security(("session_cookie" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "No such tablet, or already revoked"),
    )
)]
pub async fn revoke_tablet(
    State(state): State<AppState>,
    AdminSession(admin): AdminSession,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    state
        .blocking(move |s| {
            ops::tablets::revoke_tablet(s.storage.as_ref(), id, admin.id, Timestamp::now())
        })
        .await??;
    Ok(StatusCode::NO_CONTENT)
}
