//! The administrator's pages: the directory (departments, sections, employees, services and
//! which sections provide them), accounts and roles, tablets and their health, the audit log.
//! Every page takes [`Staff<Admin>`], every form [`AdminForm`]; the changes are the use cases
//! of [`crate::ops`]. Bad input is answered on the same page, next to the form it came from.

use std::collections::HashSet;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::Deserialize;

use super::dashboard::local_time;
use super::error::{PageError, PagePath, PageResult};
use super::forms::{Admin, Staff, StaffForm};
use super::session::Viewer;
use super::strings::{RU, Strings, fill};
use super::{Area, Layout, html, role_label, see_other};
use crate::app::AppState;
use crate::domain::tablets::silent_tablets;
use crate::domain::{
    DirectoryName, DisplayName, EnrolmentCode, Login, Password, Position, TabletName,
};
use crate::ops;
use crate::ops::accounts::{
    CreateAccountError, NewAccountRequest, ResetPasswordError, SetMailError,
};
use crate::ops::directory::{DirectoryChange, DirectoryError};
use crate::ops::tablets::{ApproveError, TabletError};
use crate::storage::{
    AccountSummary, AuditAction, AuditEntry, Directory, MailMode, Role, Scope, TabletInfo,
};

/// A form of the administrator's pages.
type AdminForm<T> = StaffForm<Admin, T>;

/// A message for one form of a page.
pub struct FormError {
    pub form: String,
    pub message: String,
}

/// The message of `error` when it belongs to the form `form`.
fn error_for<'a>(error: &'a Option<FormError>, form: &str) -> Option<&'a str> {
    error
        .as_ref()
        .filter(|e| e.form == form)
        .map(|e| e.message.as_str())
}

fn form_error(form: &str, message: impl Into<String>) -> Option<FormError> {
    Some(FormError {
        form: form.to_string(),
        message: message.into(),
    })
}

#[derive(Debug, Deserialize)]
pub struct OkQuery {
    ok: Option<String>,
}

fn notice(t: &'static Strings, ok: &OkQuery) -> Option<&'static str> {
    match ok.ok.as_deref() {
        Some("password") => Some(t.admin_password_reset),
        Some("mail") => Some(t.admin_mail_saved),
        Some("enrolled") => Some(t.tablets_enrolled),
        Some(_) => Some(t.admin_saved),
        None => None,
    }
}

fn parse_id(text: &str) -> Option<i64> {
    text.trim().parse().ok()
}

// --- overview ----------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin_overview.html")]
struct OverviewPage {
    layout: Layout,
    silent: Vec<String>,
    counts: crate::storage::Counts,
}

pub async fn overview(
    State(state): State<AppState>,
    Staff { viewer, .. }: Staff<Admin>,
) -> PageResult<Response> {
    let t = &RU;
    let (tablets, counts) = state.db(|db| Ok((db.tablets()?, db.counts()?))).await?;
    let page = OverviewPage {
        layout: Layout::for_viewer(&viewer, t.admin_title, Area::Admin),
        silent: silence_messages(&state, &tablets),
        counts,
    };
    Ok(html(&page))
}

fn silence_messages(state: &AppState, tablets: &[TabletInfo]) -> Vec<String> {
    let t = &RU;
    silent_tablets(
        tablets,
        Timestamp::now(),
        &state.calendar,
        &state.config.working_hours,
        state.config.tablet_silent_minutes,
    )
    .into_iter()
    .map(|tablet| {
        fill(
            t.tablets_silent,
            &[
                ("name", &tablet.name),
                ("minutes", &state.config.tablet_silent_minutes.to_string()),
            ],
        )
    })
    .collect()
}

// --- directory ---------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin_directory.html")]
struct DirectoryPage {
    layout: Layout,
    directory: Directory,
    notice: Option<&'static str>,
    error: Option<FormError>,
}

impl DirectoryPage {
    fn error_for(&self, form: &str) -> Option<&str> {
        error_for(&self.error, form)
    }

    fn offers(&self, section: &crate::storage::SectionEntry, service: &i64) -> bool {
        section.service_ids.contains(service)
    }
}

async fn directory_response(
    state: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<FormError>,
) -> PageResult<Response> {
    let t = &RU;
    let directory = state.db(|db| db.directory()).await?;
    let page = DirectoryPage {
        layout: Layout::for_viewer(viewer, t.admin_directory, Area::Admin),
        directory,
        notice,
        error,
    };
    Ok((status, html(&page)).into_response())
}

pub async fn directory_page(
    State(state): State<AppState>,
    Staff { viewer, .. }: Staff<Admin>,
    Query(ok): Query<OkQuery>,
) -> PageResult<Response> {
    directory_response(&state, &viewer, StatusCode::OK, notice(&RU, &ok), None).await
}

/// Makes a directory change, answered on the form `key`: a refused field (`Err` from the
/// form's parsing), a taken name or a vanished row is shown there.
async fn directory_change(
    state: &AppState,
    viewer: &Viewer,
    key: &str,
    change: Result<DirectoryChange, &'static str>,
) -> PageResult<Response> {
    let t = &RU;
    let change = match change {
        Ok(change) => change,
        Err(message) => {
            return directory_response(
                state,
                viewer,
                StatusCode::BAD_REQUEST,
                None,
                form_error(key, message),
            )
            .await;
        }
    };
    let by = viewer.account.id;
    let result = state
        .blocking(move |s| ops::directory::change_directory(s.storage.as_ref(), &change, by))
        .await?;
    let (status, message) = match result {
        Ok(_) => return Ok(see_other("/admin/directory?ok=1")),
        Err(DirectoryError::NameTaken) => (StatusCode::CONFLICT, t.admin_name_taken),
        Err(DirectoryError::NotFound(_)) => (StatusCode::NOT_FOUND, t.admin_not_found),
        Err(DirectoryError::Storage(error)) => return Err(error.into()),
    };
    directory_response(state, viewer, status, None, form_error(key, message)).await
}

/// A name typed into a directory form.
fn directory_name(text: &str) -> Result<DirectoryName, &'static str> {
    DirectoryName::parse(text).map_err(|_| RU.admin_name_required)
}

#[derive(Debug, Deserialize)]
pub struct NameForm {
    #[serde(default)]
    name: String,
}

pub async fn create_department(
    State(state): State<AppState>,
    form: AdminForm<NameForm>,
) -> PageResult<Response> {
    let change =
        directory_name(&form.fields.name).map(|name| DirectoryChange::CreateDepartment { name });
    directory_change(&state, &form.viewer, "department-new", change).await
}

pub async fn rename_department(
    State(state): State<AppState>,
    PagePath(id): PagePath<i64>,
    form: AdminForm<NameForm>,
) -> PageResult<Response> {
    let change = directory_name(&form.fields.name)
        .map(|name| DirectoryChange::RenameDepartment { id, name });
    directory_change(&state, &form.viewer, &format!("department-{id}"), change).await
}

#[derive(Debug, Deserialize)]
pub struct SectionForm {
    #[serde(default)]
    department_id: String,
    #[serde(default)]
    name: String,
}

pub async fn create_section(
    State(state): State<AppState>,
    form: AdminForm<SectionForm>,
) -> PageResult<Response> {
    let fields = &form.fields;
    let change = parse_id(&fields.department_id)
        .ok_or(RU.admin_pick_department)
        .and_then(|department_id| {
            Ok(DirectoryChange::CreateSection {
                department_id,
                name: directory_name(&fields.name)?,
            })
        });
    directory_change(&state, &form.viewer, "section-new", change).await
}

pub async fn rename_section(
    State(state): State<AppState>,
    PagePath(id): PagePath<i64>,
    form: AdminForm<NameForm>,
) -> PageResult<Response> {
    let change =
        directory_name(&form.fields.name).map(|name| DirectoryChange::RenameSection { id, name });
    directory_change(&state, &form.viewer, &format!("section-{id}"), change).await
}

/// `csrf=…&service=3&service=7`: the services a section provides.
pub async fn set_section_services(
    State(state): State<AppState>,
    PagePath(id): PagePath<i64>,
    form: AdminForm<Vec<(String, String)>>,
) -> PageResult<Response> {
    let service_ids = form
        .fields
        .iter()
        .filter(|(k, _)| k == "service")
        .filter_map(|(_, v)| parse_id(v))
        .collect();
    let change = Ok(DirectoryChange::SetSectionServices {
        section_id: id,
        service_ids,
    });
    directory_change(
        &state,
        &form.viewer,
        &format!("section-services-{id}"),
        change,
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct EmployeeForm {
    #[serde(default)]
    section_id: String,
    #[serde(default)]
    full_name: String,
    #[serde(default)]
    position: String,
}

impl EmployeeForm {
    fn parse(&self) -> Result<(i64, DirectoryName, Position), &'static str> {
        let t = &RU;
        let section = parse_id(&self.section_id).ok_or(t.admin_pick_section)?;
        let name = directory_name(&self.full_name)?;
        let position = Position::parse(&self.position).map_err(|_| t.admin_name_required)?;
        Ok((section, name, position))
    }
}

pub async fn create_employee(
    State(state): State<AppState>,
    form: AdminForm<EmployeeForm>,
) -> PageResult<Response> {
    let change = form
        .fields
        .parse()
        .map(
            |(section_id, full_name, position)| DirectoryChange::CreateEmployee {
                section_id,
                full_name,
                position,
            },
        );
    directory_change(&state, &form.viewer, "employee-new", change).await
}

pub async fn update_employee(
    State(state): State<AppState>,
    PagePath(id): PagePath<i64>,
    form: AdminForm<EmployeeForm>,
) -> PageResult<Response> {
    let change = form
        .fields
        .parse()
        .map(
            |(section_id, full_name, position)| DirectoryChange::UpdateEmployee {
                id,
                section_id,
                full_name,
                position,
            },
        );
    directory_change(&state, &form.viewer, &format!("employee-{id}"), change).await
}

pub async fn create_service(
    State(state): State<AppState>,
    form: AdminForm<NameForm>,
) -> PageResult<Response> {
    let change =
        directory_name(&form.fields.name).map(|name| DirectoryChange::CreateService { name });
    directory_change(&state, &form.viewer, "service-new", change).await
}

pub async fn rename_service(
    State(state): State<AppState>,
    PagePath(id): PagePath<i64>,
    form: AdminForm<NameForm>,
) -> PageResult<Response> {
    let change =
        directory_name(&form.fields.name).map(|name| DirectoryChange::RenameService { id, name });
    directory_change(&state, &form.viewer, &format!("service-{id}"), change).await
}

// --- accounts ----------------------------------------------------------------------------------

pub struct AccountRow {
    pub id: i64,
    pub login: String,
    pub name: String,
    pub role: &'static str,
    pub scope: String,
    pub created: String,
    pub email: String,
    pub mail_mode: &'static str,
}

#[derive(Template)]
#[template(path = "admin_accounts.html")]
struct AccountsPage {
    layout: Layout,
    accounts: Vec<AccountRow>,
    directory: Directory,
    notice: Option<&'static str>,
    error: Option<FormError>,
    draft_login: String,
    draft_name: String,
}

impl AccountsPage {
    fn error_for(&self, form: &str) -> Option<&str> {
        error_for(&self.error, form)
    }
}

fn scope_text(directory: &Directory, role: &Role) -> String {
    let section_name = |id: i64| {
        directory
            .departments
            .iter()
            .flat_map(|d| &d.sections)
            .find(|s| s.id == id)
            .map(|s| s.name.clone())
            .unwrap_or_default()
    };
    match role {
        Role::Admin | Role::Observer => RU.scope_organisation.to_string(),
        Role::Head {
            scope: Scope::Department(id),
        } => directory
            .departments
            .iter()
            .find(|d| d.id == *id)
            .map(|d| d.name.clone())
            .unwrap_or_default(),
        Role::Head {
            scope: Scope::Section(id),
        } => section_name(*id),
        Role::Specialist { employee_id } => directory
            .departments
            .iter()
            .flat_map(|d| &d.sections)
            .flat_map(|s| &s.employees)
            .find(|e| e.id == *employee_id)
            .map(|e| e.full_name.clone())
            .unwrap_or_default(),
    }
}

async fn accounts_response(
    state: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<FormError>,
    draft: (String, String),
) -> PageResult<Response> {
    let t = &RU;
    let (accounts, directory): (Vec<AccountSummary>, Directory) =
        state.db(|db| Ok((db.accounts()?, db.directory()?))).await?;
    let rows = accounts
        .iter()
        .map(|summary| AccountRow {
            id: summary.account.id,
            login: summary.account.login.clone(),
            name: summary.account.display_name.clone(),
            role: role_label(t, &summary.account.role),
            scope: scope_text(&directory, &summary.account.role),
            created: local_time(&state.zone, summary.created_at),
            email: summary.mail.email.clone().unwrap_or_default(),
            mail_mode: summary.mail.mode.as_str(),
        })
        .collect();
    let page = AccountsPage {
        layout: Layout::for_viewer(viewer, t.admin_accounts, Area::Admin),
        accounts: rows,
        directory,
        notice,
        error,
        draft_login: draft.0,
        draft_name: draft.1,
    };
    Ok((status, html(&page)).into_response())
}

/// The accounts page again, with `message` on the form `key` and the form's draft kept.
async fn accounts_refusal(
    state: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    key: &str,
    message: impl Into<String>,
    draft: (String, String),
) -> PageResult<Response> {
    accounts_response(state, viewer, status, None, form_error(key, message), draft).await
}

pub async fn accounts_page(
    State(state): State<AppState>,
    Staff { viewer, .. }: Staff<Admin>,
    Query(ok): Query<OkQuery>,
) -> PageResult<Response> {
    accounts_response(
        &state,
        &viewer,
        StatusCode::OK,
        notice(&RU, &ok),
        None,
        (String::new(), String::new()),
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct AccountForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    role: String,
    /// `department:3`, `section:5` or `employee:9`, as the scope picker sends it.
    #[serde(default)]
    scope: String,
}

fn role_of(role: &str, scope: &str) -> Option<Role> {
    let (kind, id) = scope
        .split_once(':')
        .and_then(|(k, v)| Some((k, v.trim().parse::<i64>().ok()?)))
        .unwrap_or(("", 0));
    match (role, kind) {
        ("admin", _) => Some(Role::Admin),
        ("observer", _) => Some(Role::Observer),
        ("head", "department") => Some(Role::Head {
            scope: Scope::Department(id),
        }),
        ("head", "section") => Some(Role::Head {
            scope: Scope::Section(id),
        }),
        ("specialist", "employee") => Some(Role::Specialist { employee_id: id }),
        _ => None,
    }
}

/// A new password, or the page's words for what is wrong with it.
fn new_password(text: &str) -> Result<Password, String> {
    Password::new_secret(text).map_err(|_| {
        fill(
            RU.admin_bad_password,
            &[("min", &Password::MIN_CHARS.to_string())],
        )
    })
}

impl AccountForm {
    /// The account to create, or the page's words for the first thing wrong with the form.
    fn parse(&self) -> Result<NewAccountRequest, String> {
        let t = &RU;
        let login = Login::parse(&self.login).map_err(|_| t.admin_bad_login.to_string())?;
        let password = new_password(&self.password)?;
        let display_name = DisplayName::parse(&self.display_name)
            .map_err(|_| t.admin_name_required.to_string())?;
        let role =
            role_of(&self.role, &self.scope).ok_or_else(|| t.admin_role_needs_scope.to_string())?;
        Ok(NewAccountRequest {
            login,
            display_name,
            password,
            role,
        })
    }
}

pub async fn create_account(
    State(state): State<AppState>,
    form: AdminForm<AccountForm>,
) -> PageResult<Response> {
    let t = &RU;
    let (viewer, fields) = (form.viewer, form.fields);
    let draft = (
        fields.login.trim().to_string(),
        fields.display_name.trim().to_string(),
    );
    let refuse = |status, message: String| {
        accounts_refusal(
            &state,
            &viewer,
            status,
            "account-new",
            message,
            draft.clone(),
        )
    };
    let request = match fields.parse() {
        Ok(request) => request,
        Err(message) => return refuse(StatusCode::BAD_REQUEST, message).await,
    };
    let by = viewer.account.id;
    let created = state
        .blocking(move |s| {
            ops::accounts::create_account(s.storage.as_ref(), &request, Some(by), Timestamp::now())
        })
        .await?;
    match created {
        Ok(_) => Ok(see_other("/admin/accounts?ok=1")),
        Err(CreateAccountError::LoginTaken) => {
            refuse(StatusCode::CONFLICT, t.admin_login_taken.to_string()).await
        }
        Err(CreateAccountError::ScopeNotFound) => {
            refuse(
                StatusCode::BAD_REQUEST,
                t.admin_role_needs_scope.to_string(),
            )
            .await
        }
        Err(other) => Err(PageError::internal(other)),
    }
}

#[derive(Debug, Deserialize)]
pub struct MailForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    mode: String,
}

pub async fn set_mail(
    State(state): State<AppState>,
    PagePath(id): PagePath<i64>,
    form: AdminForm<MailForm>,
) -> PageResult<Response> {
    let (viewer, fields) = (form.viewer, form.fields);
    let key = format!("mail-{id}");
    let refuse = || {
        accounts_refusal(
            &state,
            &viewer,
            StatusCode::BAD_REQUEST,
            &key,
            RU.admin_bad_mail,
            (String::new(), String::new()),
        )
    };
    let Some(mode) = MailMode::parse(&fields.mode) else {
        return refuse().await;
    };
    let by = viewer.account.id;
    let email = fields.email.clone();
    let set = state
        .blocking(move |s| ops::accounts::set_mail(s.storage.as_ref(), id, &email, mode, by))
        .await?;
    match set {
        Ok(()) => Ok(see_other("/admin/accounts?ok=mail")),
        Err(SetMailError::BadAddress) => refuse().await,
        Err(SetMailError::NotFound) => Err(PageError::not_found("account")),
        Err(other) => Err(PageError::internal(other)),
    }
}

#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    password: String,
}

pub async fn reset_password(
    State(state): State<AppState>,
    PagePath(id): PagePath<i64>,
    form: AdminForm<PasswordForm>,
) -> PageResult<Response> {
    let viewer = form.viewer;
    let password = match new_password(&form.fields.password) {
        Ok(password) => password,
        Err(message) => {
            return accounts_refusal(
                &state,
                &viewer,
                StatusCode::BAD_REQUEST,
                &format!("password-{id}"),
                message,
                (String::new(), String::new()),
            )
            .await;
        }
    };
    let by = viewer.account.id;
    let reset = state
        .blocking(move |s| ops::accounts::reset_password(s.storage.as_ref(), id, &password, by))
        .await?;
    match reset {
        Ok(()) => Ok(see_other("/admin/accounts?ok=password")),
        Err(ResetPasswordError::NotFound) => Err(PageError::not_found("account")),
        Err(other) => Err(PageError::internal(other)),
    }
}

// --- tablets -----------------------------------------------------------------------------------

pub struct TabletRow {
    pub id: i64,
    pub name: String,
    pub device: String,
    pub last_seen: String,
    pub version: String,
    pub queue: String,
    pub storage: String,
    pub microphone: String,
    pub clock: String,
    pub revoked: bool,
    pub silent: bool,
}

#[derive(Template)]
#[template(path = "admin_tablets.html")]
struct TabletsPage {
    layout: Layout,
    tablets: Vec<TabletRow>,
    silent: Vec<String>,
    notice: Option<&'static str>,
    error: Option<FormError>,
    draft_code: String,
    draft_name: String,
    /// Revoked tablets an enrolment may bring back: id and name.
    revoked: Vec<(i64, String)>,
}

impl TabletsPage {
    fn error_for(&self, form: &str) -> Option<&str> {
        error_for(&self.error, form)
    }
}

fn bytes_text(bytes: i64) -> String {
    const GB: f64 = 1024.0 * 1024.0 * 1024.0;
    const MB: f64 = 1024.0 * 1024.0;
    let b = bytes as f64;
    if b >= GB {
        format!("{:.1} ГБ", b / GB).replace('.', ",")
    } else {
        format!("{:.0} МБ", b / MB)
    }
}

fn offset_text(ms: i64) -> String {
    let seconds = ms as f64 / 1000.0;
    format!("{seconds:+.1} с").replace('.', ",")
}

async fn tablets_response(
    state: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<FormError>,
    draft: (String, String),
) -> PageResult<Response> {
    let t = &RU;
    let tablets = state.db(|db| db.tablets()).await?;
    let silent_ids: HashSet<i64> = silent_tablets(
        &tablets,
        Timestamp::now(),
        &state.calendar,
        &state.config.working_hours,
        state.config.tablet_silent_minutes,
    )
    .iter()
    .map(|tablet| tablet.id)
    .collect();
    let rows = tablets
        .iter()
        .map(|tablet| TabletRow {
            id: tablet.id,
            name: tablet.name.clone(),
            device: tablet.device_description.clone(),
            last_seen: tablet.last_seen_at.map_or_else(
                || t.tablets_never.to_string(),
                |at| local_time(&state.zone, at),
            ),
            version: tablet.app_version.clone().unwrap_or_default(),
            queue: match (tablet.queue_length, tablet.recordings_pending) {
                (Some(q), Some(r)) => format!("{q} / {r}"),
                (Some(q), None) => q.to_string(),
                _ => String::new(),
            },
            storage: tablet
                .free_storage_bytes
                .map(bytes_text)
                .unwrap_or_default(),
            microphone: match tablet.microphone.as_deref() {
                Some("ok") => t.mic_ok,
                Some("permission_denied") => t.mic_denied,
                Some("unavailable") => t.mic_unavailable,
                Some(_) => t.mic_unknown,
                None => "",
            }
            .to_string(),
            clock: tablet.clock_offset_ms.map(offset_text).unwrap_or_default(),
            revoked: tablet.revoked_at.is_some(),
            silent: silent_ids.contains(&tablet.id),
        })
        .collect();
    let page = TabletsPage {
        layout: Layout::for_viewer(viewer, t.admin_tablets, Area::Admin),
        tablets: rows,
        silent: silence_messages(state, &tablets),
        notice,
        error,
        draft_code: draft.0,
        draft_name: draft.1,
        revoked: tablets
            .iter()
            .filter(|tablet| tablet.revoked_at.is_some())
            .map(|tablet| (tablet.id, tablet.name.clone()))
            .collect(),
    };
    Ok((status, html(&page)).into_response())
}

/// The tablets page again, with `message` on the form `key` and the form's draft kept.
async fn tablets_refusal(
    state: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    key: &str,
    message: impl Into<String>,
    draft: (String, String),
) -> PageResult<Response> {
    tablets_response(state, viewer, status, None, form_error(key, message), draft).await
}

pub async fn tablets_page(
    State(state): State<AppState>,
    Staff { viewer, .. }: Staff<Admin>,
    Query(ok): Query<OkQuery>,
) -> PageResult<Response> {
    tablets_response(
        &state,
        &viewer,
        StatusCode::OK,
        notice(&RU, &ok),
        None,
        (String::new(), String::new()),
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct EnrolForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    name: String,
    /// A revoked tablet's id: this enrolment brings it back as the same tablet.
    #[serde(default)]
    readmit: String,
}

pub async fn approve_enrolment(
    State(state): State<AppState>,
    form: AdminForm<EnrolForm>,
) -> PageResult<Response> {
    let t = &RU;
    let (viewer, fields) = (form.viewer, form.fields);
    let draft = (fields.code.clone(), fields.name.clone());
    let parsed = EnrolmentCode::parse(&fields.code)
        .map_err(|_| {
            fill(
                t.tablets_bad_code,
                &[("digits", &EnrolmentCode::DIGITS.to_string())],
            )
        })
        .and_then(|code| {
            let name =
                TabletName::parse(&fields.name).map_err(|_| t.tablets_name_required.to_string())?;
            let readmit = match fields.readmit.trim() {
                "" => None,
                id => Some(parse_id(id).ok_or_else(|| t.tablets_not_revoked.to_string())?),
            };
            Ok((code, name, readmit))
        });
    let (code, name, readmit) = match parsed {
        Ok(parsed) => parsed,
        Err(message) => {
            return tablets_refusal(
                &state,
                &viewer,
                StatusCode::BAD_REQUEST,
                "enrol",
                message,
                draft,
            )
            .await;
        }
    };
    let by = viewer.account.id;
    let approved = state
        .blocking(move |s| {
            ops::tablets::approve_enrolment(
                s.storage.as_ref(),
                &code,
                &name,
                readmit,
                by,
                Timestamp::now(),
            )
        })
        .await?;
    match approved {
        Ok(_) => Ok(see_other("/admin/tablets?ok=enrolled")),
        Err(ApproveError::UnknownCode) => {
            tablets_refusal(
                &state,
                &viewer,
                StatusCode::NOT_FOUND,
                "enrol",
                t.tablets_unknown_code,
                draft,
            )
            .await
        }
        Err(ApproveError::NotRevoked) => {
            tablets_refusal(
                &state,
                &viewer,
                StatusCode::NOT_FOUND,
                "enrol",
                t.tablets_not_revoked,
                draft,
            )
            .await
        }
        Err(ApproveError::Storage(error)) => Err(error.into()),
    }
}

/// A tablet change's answer: back to the page, or "not found" for a tablet that is not there.
fn tablet_changed(result: Result<(), TabletError>) -> PageResult<Response> {
    match result {
        Ok(()) => Ok(see_other("/admin/tablets?ok=1")),
        Err(TabletError::NotFound) => Err(PageError::not_found("tablet")),
        Err(TabletError::Storage(error)) => Err(error.into()),
    }
}

pub async fn rename_tablet(
    State(state): State<AppState>,
    PagePath(id): PagePath<i64>,
    form: AdminForm<NameForm>,
) -> PageResult<Response> {
    let viewer = form.viewer;
    let Ok(name) = TabletName::parse(&form.fields.name) else {
        return tablets_refusal(
            &state,
            &viewer,
            StatusCode::BAD_REQUEST,
            &format!("tablet-{id}"),
            RU.tablets_name_required,
            (String::new(), String::new()),
        )
        .await;
    };
    let by = viewer.account.id;
    tablet_changed(
        state
            .blocking(move |s| ops::tablets::rename_tablet(s.storage.as_ref(), id, &name, by))
            .await?,
    )
}

pub async fn revoke_tablet(
    State(state): State<AppState>,
    PagePath(id): PagePath<i64>,
    form: AdminForm<super::session::NoFields>,
) -> PageResult<Response> {
    let by = form.viewer.account.id;
    tablet_changed(
        state
            .blocking(move |s| {
                ops::tablets::revoke_tablet(s.storage.as_ref(), id, by, Timestamp::now())
            })
            .await?,
    )
}

// --- audit -------------------------------------------------------------------------------------

pub struct AuditRow {
    pub at: String,
    pub who: String,
    pub action: &'static str,
    pub object: String,
}

#[derive(Template)]
#[template(path = "admin_audit.html")]
struct AuditPage {
    layout: Layout,
    entries: Vec<AuditRow>,
    older: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    before: Option<String>,
}

const AUDIT_PAGE: u32 = 200;

pub async fn audit_page(
    State(state): State<AppState>,
    Staff { viewer, .. }: Staff<Admin>,
    Query(query): Query<AuditQuery>,
) -> PageResult<Response> {
    let t = &RU;
    let before = query.before.as_deref().and_then(parse_id);
    let entries: Vec<AuditEntry> = state.db(move |db| db.audit_log(AUDIT_PAGE, before)).await?;
    let older = (entries.len() == AUDIT_PAGE as usize)
        .then(|| {
            entries
                .last()
                .map(|e| format!("/admin/audit?before={}", e.id))
        })
        .flatten();
    let page = AuditPage {
        layout: Layout::for_viewer(&viewer, t.admin_audit, Area::Admin),
        entries: entries
            .iter()
            .map(|entry| AuditRow {
                at: local_time(&state.zone, entry.at),
                who: if entry.account_login.is_empty() {
                    t.audit_command_line.to_string()
                } else {
                    format!("{} ({})", entry.account_name, entry.account_login)
                },
                action: match entry.action {
                    AuditAction::Play => t.audit_play,
                    AuditAction::Download => t.audit_download,
                    AuditAction::Export => t.audit_export,
                    AuditAction::DirectoryChange => t.audit_directory_change,
                    AuditAction::AccountCreate => t.audit_account_create,
                    AuditAction::PasswordReset => t.audit_password_reset,
                    AuditAction::TabletApprove => t.audit_tablet_approve,
                    AuditAction::TabletReadmit => t.audit_tablet_readmit,
                    AuditAction::TabletRename => t.audit_tablet_rename,
                    AuditAction::TabletRevoke => t.audit_tablet_revoke,
                    AuditAction::FeedbackAnswer => t.audit_feedback_answer,
                    AuditAction::FeedbackHide => t.audit_feedback_hide,
                    AuditAction::FeedbackShow => t.audit_feedback_show,
                    AuditAction::VisitorShown => t.audit_visitor_shown,
                    AuditAction::ResultReady => t.audit_result_ready,
                    AuditAction::SmsResend => t.audit_sms_resend,
                    AuditAction::SmsCancel => t.audit_sms_cancel,
                    AuditAction::DeputyNamed => t.audit_deputy_named,
                    AuditAction::DeputyEnded => t.audit_deputy_ended,
                    AuditAction::AccountMail => t.audit_account_mail,
                },
                object: match entry.visit_id {
                    Some(visit) => format!("{} · {visit}", entry.detail),
                    None => entry.detail.clone(),
                },
            })
            .collect(),
        older,
    };
    Ok(html(&page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_problems_are_told_in_russian() {
        let form = |login: &str, password: &str| AccountForm {
            login: login.into(),
            display_name: "Новая учетная запись".into(),
            password: password.into(),
            role: "admin".into(),
            scope: String::new(),
        };
        assert_eq!(
            form("a", "long enough password").parse().unwrap_err(),
            RU.admin_bad_login
        );
        assert_eq!(
            form("head.new", "short").parse().unwrap_err(),
            "Пароль должен содержать не менее 10 знаков."
        );
        assert!(form("head.new", "long enough password").parse().is_ok());
    }

    #[test]
    fn roles_need_their_scope() {
        assert_eq!(role_of("admin", ""), Some(Role::Admin));
        assert_eq!(
            role_of("head", "section:5"),
            Some(Role::Head {
                scope: Scope::Section(5)
            })
        );
        assert_eq!(role_of("head", ""), None);
        assert_eq!(role_of("specialist", "section:5"), None);
        assert_eq!(
            role_of("specialist", "employee:9"),
            Some(Role::Specialist { employee_id: 9 })
        );
    }
}
