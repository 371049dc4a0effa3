//! The administrator's pages: the directory (departments, sections, employees, services and
//! which sections provide them), accounts and roles, tablets and their health, the audit log.
//! Bad input is answered on the same page, next to the form it came from.

use std::collections::HashSet;

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;

use super::dashboard::local_time;
use super::session::Viewer;
use super::strings::{RU, Strings, fill};
use super::{Area, Layout, html, role_label, see_other};
use crate::api::admin::{MIN_PASSWORD_CHARS, store_new_account};
use crate::api::check_new_credentials;
use crate::api::tablet::ENROLMENT_CODE_DIGITS;
use crate::app::AppState;
use crate::auth::{hash_password_blocking, normalise_code};
use crate::config::WorkingHours;
use crate::error::{ApiError, ApiPath, PageError, PageResult};
use crate::storage::{
    AccountSummary, AuditAction, AuditEntry, Directory, Role, Scope, StorageError, TabletInfo,
};

/// What is wrong with a new login or password, in the page's words (the rule is the API's).
fn credentials_problem(login: Option<&str>, password: &str) -> Option<String> {
    let t = &RU;
    if let Some(login) = login
        && check_new_credentials(login, "0123456789abcdef").is_err()
    {
        return Some(t.admin_bad_login.to_string());
    }
    check_new_credentials("login", password).err().map(|_| {
        fill(
            t.admin_bad_password,
            &[("min", &MIN_PASSWORD_CHARS.to_string())],
        )
    })
}

/// The longest directory name.
const MAX_NAME: usize = 300;

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
        Some("enrolled") => Some(t.tablets_enrolled),
        Some(_) => Some(t.admin_saved),
        None => None,
    }
}

/// A name typed into a form: trimmed, 1 to [`MAX_NAME`] characters.
fn clean_name(name: &str) -> Option<String> {
    let name = name.trim();
    (!name.is_empty() && name.chars().count() <= MAX_NAME).then(|| name.to_string())
}

/// A tablet's name typed into a form: trimmed, 1 to 100 characters.
fn tablet_name(name: &str) -> Option<String> {
    let name = name.trim();
    (!name.is_empty() && name.chars().count() <= 100).then(|| name.to_string())
}

fn parse_id(text: &str) -> Option<i64> {
    text.trim().parse().ok()
}

// --- the tablets' silence ----------------------------------------------------------------------

/// Tablets not heard from for `minutes` while the office is open (Monday to Friday, within the
/// working hours). Revoked tablets are left out; one never heard from counts from its
/// enrolment.
pub fn silent_tablets<'a>(
    tablets: &'a [TabletInfo],
    now: Timestamp,
    zone: &TimeZone,
    hours: &WorkingHours,
    minutes: u32,
) -> Vec<&'a TabletInfo> {
    let local = zone.to_datetime(now);
    let weekday = local.date().weekday().to_monday_one_offset();
    let open = weekday <= 5 && local.time() >= hours.start && local.time() < hours.end;
    if !open {
        return Vec::new();
    }
    let limit = SignedDuration::from_mins(i64::from(minutes));
    tablets
        .iter()
        .filter(|tablet| tablet.revoked_at.is_none())
        .filter(|tablet| {
            let heard = tablet.last_seen_at.unwrap_or(tablet.enrolled_at);
            now.duration_since(heard) > limit
        })
        .collect()
}

// --- overview ----------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin_overview.html")]
struct OverviewPage {
    layout: Layout,
    silent: Vec<String>,
    counts: crate::storage::Counts,
}

pub async fn overview(State(state): State<AppState>, viewer: Viewer) -> PageResult<Response> {
    let t = &RU;
    viewer.require_admin()?;
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
        &state.zone,
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
    viewer: Viewer,
    Query(ok): Query<OkQuery>,
) -> PageResult<Response> {
    viewer.require_admin()?;
    directory_response(&state, &viewer, StatusCode::OK, notice(&RU, &ok), None).await
}

/// Runs a directory change; a bad name, a taken name or a vanished row is shown on the form.
async fn directory_change<F>(
    state: &AppState,
    viewer: &Viewer,
    form: &str,
    work: F,
) -> PageResult<Response>
where
    F: FnOnce(&dyn crate::storage::Storage) -> Result<(), StorageError> + Send + 'static,
{
    let t = &RU;
    match state.db(work).await {
        Ok(()) => Ok(see_other("/admin/directory?ok=1")),
        Err(ApiError::Conflict { .. }) => {
            directory_response(
                state,
                viewer,
                StatusCode::CONFLICT,
                None,
                form_error(form, t.admin_name_taken),
            )
            .await
        }
        Err(ApiError::NotFound(_)) => {
            directory_response(
                state,
                viewer,
                StatusCode::NOT_FOUND,
                None,
                form_error(form, t.admin_not_found),
            )
            .await
        }
        Err(other) => Err(PageError::Api(other)),
    }
}

async fn refuse(
    state: &AppState,
    viewer: &Viewer,
    form: &str,
    message: &str,
) -> PageResult<Response> {
    directory_response(
        state,
        viewer,
        StatusCode::BAD_REQUEST,
        None,
        form_error(form, message),
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct NameForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

/// A form with one name (a new department or service, or a new name for a row): the name is
/// checked, then `work` runs as a directory change answered on the form `key`.
async fn named_change<F>(
    state: &AppState,
    viewer: &Viewer,
    key: &str,
    form: NameForm,
    work: F,
) -> PageResult<Response>
where
    F: FnOnce(&dyn crate::storage::Storage, &str) -> Result<(), StorageError> + Send + 'static,
{
    viewer.check_csrf(&form.csrf)?;
    viewer.require_admin()?;
    let Some(name) = clean_name(&form.name) else {
        return refuse(state, viewer, key, RU.admin_name_required).await;
    };
    directory_change(state, viewer, key, move |db| work(db, &name)).await
}

pub async fn create_department(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(form): Form<NameForm>,
) -> PageResult<Response> {
    named_change(&state, &viewer, "department-new", form, |db, name| {
        db.create_department(name).map(|_| ())
    })
    .await
}

pub async fn rename_department(
    State(state): State<AppState>,
    viewer: Viewer,
    ApiPath(id): ApiPath<i64>,
    Form(form): Form<NameForm>,
) -> PageResult<Response> {
    let key = format!("department-{id}");
    named_change(&state, &viewer, &key, form, move |db, name| {
        db.rename_department(id, name)
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct SectionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    department_id: String,
    #[serde(default)]
    name: String,
}

pub async fn create_section(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(form): Form<SectionForm>,
) -> PageResult<Response> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_admin()?;
    let key = "section-new";
    let Some(department_id) = parse_id(&form.department_id) else {
        return refuse(&state, &viewer, key, RU.admin_pick_department).await;
    };
    let Some(name) = clean_name(&form.name) else {
        return refuse(&state, &viewer, key, RU.admin_name_required).await;
    };
    directory_change(&state, &viewer, key, move |db| {
        db.create_section(department_id, &name).map(|_| ())
    })
    .await
}

pub async fn rename_section(
    State(state): State<AppState>,
    viewer: Viewer,
    ApiPath(id): ApiPath<i64>,
    Form(form): Form<NameForm>,
) -> PageResult<Response> {
    let key = format!("section-{id}");
    named_change(&state, &viewer, &key, form, move |db, name| {
        db.rename_section(id, name)
    })
    .await
}

/// `csrf=…&service=3&service=7`: the services a section provides.
pub async fn set_section_services(
    State(state): State<AppState>,
    viewer: Viewer,
    ApiPath(id): ApiPath<i64>,
    Form(fields): Form<Vec<(String, String)>>,
) -> PageResult<Response> {
    let csrf = fields
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    viewer.check_csrf(csrf)?;
    viewer.require_admin()?;
    let mut seen = HashSet::new();
    let services: Vec<i64> = fields
        .iter()
        .filter(|(k, _)| k == "service")
        .filter_map(|(_, v)| parse_id(v))
        .filter(|id| seen.insert(*id))
        .collect();
    let key = format!("section-services-{id}");
    directory_change(&state, &viewer, &key, move |db| {
        if !db
            .directory()?
            .departments
            .iter()
            .flat_map(|d| &d.sections)
            .any(|s| s.id == id)
        {
            return Err(StorageError::NotFound("section"));
        }
        db.set_section_services(id, &services)
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct EmployeeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    section_id: String,
    #[serde(default)]
    full_name: String,
    #[serde(default)]
    position: String,
}

fn employee_fields(form: &EmployeeForm) -> Result<(i64, String, String), &'static str> {
    let t = &RU;
    let section = parse_id(&form.section_id).ok_or(t.admin_pick_section)?;
    let name = clean_name(&form.full_name).ok_or(t.admin_name_required)?;
    let position = form.position.trim();
    if position.chars().count() > MAX_NAME {
        return Err(t.admin_name_required);
    }
    Ok((section, name, position.to_string()))
}

pub async fn create_employee(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(form): Form<EmployeeForm>,
) -> PageResult<Response> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_admin()?;
    let key = "employee-new";
    let (section, name, position) = match employee_fields(&form) {
        Ok(fields) => fields,
        Err(message) => return refuse(&state, &viewer, key, message).await,
    };
    directory_change(&state, &viewer, key, move |db| {
        db.create_employee(section, &name, &position).map(|_| ())
    })
    .await
}

pub async fn update_employee(
    State(state): State<AppState>,
    viewer: Viewer,
    ApiPath(id): ApiPath<i64>,
    Form(form): Form<EmployeeForm>,
) -> PageResult<Response> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_admin()?;
    let key = format!("employee-{id}");
    let (section, name, position) = match employee_fields(&form) {
        Ok(fields) => fields,
        Err(message) => return refuse(&state, &viewer, &key, message).await,
    };
    directory_change(&state, &viewer, &key, move |db| {
        db.update_employee(id, section, &name, &position)
    })
    .await
}

pub async fn create_service(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(form): Form<NameForm>,
) -> PageResult<Response> {
    named_change(&state, &viewer, "service-new", form, |db, name| {
        db.create_service(name).map(|_| ())
    })
    .await
}

pub async fn rename_service(
    State(state): State<AppState>,
    viewer: Viewer,
    ApiPath(id): ApiPath<i64>,
    Form(form): Form<NameForm>,
) -> PageResult<Response> {
    let key = format!("service-{id}");
    named_change(&state, &viewer, &key, form, move |db, name| {
        db.rename_service(id, name)
    })
    .await
}

// --- accounts ----------------------------------------------------------------------------------

pub struct AccountRow {
    pub id: i64,
    pub login: String,
    pub name: String,
    pub role: &'static str,
    pub scope: String,
    pub created: String,
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
    viewer: Viewer,
    Query(ok): Query<OkQuery>,
) -> PageResult<Response> {
    viewer.require_admin()?;
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
    csrf: String,
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

pub async fn create_account(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(form): Form<AccountForm>,
) -> PageResult<Response> {
    let t = &RU;
    viewer.check_csrf(&form.csrf)?;
    viewer.require_admin()?;
    let login = form.login.trim().to_string();
    let display_name = form.display_name.trim().to_string();
    let draft = (login.clone(), display_name.clone());
    let problem = if let Some(message) = credentials_problem(Some(&login), &form.password) {
        Some(message)
    } else if display_name.is_empty() || display_name.chars().count() > 200 {
        Some(t.admin_name_required.to_string())
    } else {
        None
    };
    if let Some(message) = problem {
        return accounts_refusal(
            &state,
            &viewer,
            StatusCode::BAD_REQUEST,
            "account-new",
            message,
            draft,
        )
        .await;
    }
    let Some(role) = role_of(&form.role, &form.scope) else {
        return accounts_refusal(
            &state,
            &viewer,
            StatusCode::BAD_REQUEST,
            "account-new",
            t.admin_role_needs_scope,
            draft,
        )
        .await;
    };
    match store_new_account(&state, login, display_name, form.password, role).await {
        Ok(id) => {
            tracing::info!(id, by = viewer.account.id, "account created");
            Ok(see_other("/admin/accounts?ok=1"))
        }
        Err(ApiError::Conflict { .. }) => {
            accounts_refusal(
                &state,
                &viewer,
                StatusCode::CONFLICT,
                "account-new",
                t.admin_login_taken,
                draft,
            )
            .await
        }
        Err(ApiError::NotFound(_)) => {
            accounts_refusal(
                &state,
                &viewer,
                StatusCode::BAD_REQUEST,
                "account-new",
                t.admin_role_needs_scope,
                draft,
            )
            .await
        }
        Err(other) => Err(PageError::Api(other)),
    }
}

#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
}

pub async fn reset_password(
    State(state): State<AppState>,
    viewer: Viewer,
    ApiPath(id): ApiPath<i64>,
    Form(form): Form<PasswordForm>,
) -> PageResult<Response> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_admin()?;
    let key = format!("password-{id}");
    if let Some(message) = credentials_problem(None, &form.password) {
        return accounts_refusal(
            &state,
            &viewer,
            StatusCode::BAD_REQUEST,
            &key,
            message,
            (String::new(), String::new()),
        )
        .await;
    }
    let hash = hash_password_blocking(form.password)
        .await
        .map_err(PageError::internal)?;
    match state.db(move |db| db.set_password(id, &hash)).await {
        Ok(()) => {
            tracing::info!(account = id, by = viewer.account.id, "password reset");
            Ok(see_other("/admin/accounts?ok=password"))
        }
        Err(ApiError::NotFound(_)) => Err(PageError::not_found("account")),
        Err(other) => Err(PageError::Api(other)),
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
        &state.zone,
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
    viewer: Viewer,
    Query(ok): Query<OkQuery>,
) -> PageResult<Response> {
    viewer.require_admin()?;
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
    csrf: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    name: String,
}

pub async fn approve_enrolment(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(form): Form<EnrolForm>,
) -> PageResult<Response> {
    let t = &RU;
    viewer.check_csrf(&form.csrf)?;
    viewer.require_admin()?;
    let draft = (form.code.clone(), form.name.clone());
    let refuse = |status: StatusCode, message: String| {
        let draft = draft.clone();
        let state = state.clone();
        let viewer = viewer.clone();
        async move { tablets_refusal(&state, &viewer, status, "enrol", message, draft).await }
    };
    let Some(code) = normalise_code(&form.code, ENROLMENT_CODE_DIGITS) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            fill(
                t.tablets_bad_code,
                &[("digits", &ENROLMENT_CODE_DIGITS.to_string())],
            ),
        )
        .await;
    };
    let Some(name) = tablet_name(&form.name) else {
        return refuse(StatusCode::BAD_REQUEST, t.tablets_name_required.to_string()).await;
    };
    match state
        .db(move |db| db.approve_enrolment(&code, &name, Timestamp::now()))
        .await
    {
        Ok(id) => {
            tracing::info!(
                tablet_id = id,
                by = viewer.account.id,
                "tablet enrolment approved"
            );
            Ok(see_other("/admin/tablets?ok=enrolled"))
        }
        Err(ApiError::NotFound(_)) => {
            refuse(StatusCode::NOT_FOUND, t.tablets_unknown_code.to_string()).await
        }
        Err(other) => Err(PageError::Api(other)),
    }
}

pub async fn rename_tablet(
    State(state): State<AppState>,
    viewer: Viewer,
    ApiPath(id): ApiPath<i64>,
    Form(form): Form<NameForm>,
) -> PageResult<Response> {
    let t = &RU;
    viewer.check_csrf(&form.csrf)?;
    viewer.require_admin()?;
    let Some(name) = tablet_name(&form.name) else {
        return tablets_refusal(
            &state,
            &viewer,
            StatusCode::BAD_REQUEST,
            &format!("tablet-{id}"),
            t.tablets_name_required,
            (String::new(), String::new()),
        )
        .await;
    };
    match state.db(move |db| db.rename_tablet(id, &name)).await {
        Ok(()) => Ok(see_other("/admin/tablets?ok=1")),
        Err(ApiError::NotFound(_)) => Err(PageError::not_found("tablet")),
        Err(other) => Err(PageError::Api(other)),
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn revoke_tablet(
    State(state): State<AppState>,
    viewer: Viewer,
    ApiPath(id): ApiPath<i64>,
    Form(form): Form<CsrfForm>,
) -> PageResult<Response> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_admin()?;
    match state
        .db(move |db| db.revoke_tablet(id, Timestamp::now()))
        .await
    {
        Ok(()) => {
            tracing::info!(tablet_id = id, by = viewer.account.id, "tablet revoked");
            Ok(see_other("/admin/tablets?ok=1"))
        }
        Err(ApiError::NotFound(_)) => Err(PageError::not_found("tablet")),
        Err(other) => Err(PageError::Api(other)),
    }
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
    viewer: Viewer,
    Query(query): Query<AuditQuery>,
) -> PageResult<Response> {
    let t = &RU;
    viewer.require_admin()?;
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
                who: format!("{} ({})", entry.account_name, entry.account_login),
                action: match entry.action {
                    AuditAction::Play => t.audit_play,
                    AuditAction::Download => t.audit_download,
                    AuditAction::Export => t.audit_export,
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
    use jiff::civil::Time;

    fn tablet(id: i64, last_seen: Option<&str>, revoked: bool) -> TabletInfo {
        TabletInfo {
            id,
            name: format!("t{id}"),
            device_description: String::new(),
            enrolled_at: "2026-11-01T00:00:00Z".parse().unwrap(),
            revoked_at: revoked.then(|| "2026-11-02T00:00:00Z".parse().unwrap()),
            last_seen_at: last_seen.map(|s| s.parse().unwrap()),
            app_version: None,
            queue_length: None,
            recordings_pending: None,
            free_storage_bytes: None,
            microphone: None,
            clock_offset_ms: None,
        }
    }

    #[test]
    fn a_tablet_silent_in_working_hours_is_reported() {
        let zone = TimeZone::get("Asia/Yekaterinburg").unwrap();
        let hours = WorkingHours {
            start: Time::constant(8, 0, 0, 0),
            end: Time::constant(18, 0, 0, 0),
        };
        let tablets = vec![
            tablet(1, Some("2026-11-24T05:50:00Z"), false), // 10:50 local: 10 min ago
            tablet(2, Some("2026-11-24T04:00:00Z"), false), // 09:00 local: 2 h ago
            tablet(3, Some("2026-11-24T04:00:00Z"), true),  // revoked
            tablet(4, None, false),                         // never heard from
        ];
        // Tuesday 11:00 in Yekaterinburg.
        let now: Timestamp = "2026-11-24T06:00:00Z".parse().unwrap();
        let silent: Vec<i64> = silent_tablets(&tablets, now, &zone, &hours, 30)
            .iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(silent, vec![2, 4]);
        // 20:00 local: the office is closed, nobody is expected to sync.
        let evening: Timestamp = "2026-11-24T15:00:00Z".parse().unwrap();
        assert!(silent_tablets(&tablets, evening, &zone, &hours, 30).is_empty());
        // Saturday.
        let saturday: Timestamp = "2026-11-28T06:00:00Z".parse().unwrap();
        assert!(silent_tablets(&tablets, saturday, &zone, &hours, 30).is_empty());
    }

    #[test]
    fn credential_problems_are_told_in_russian() {
        assert_eq!(
            credentials_problem(Some("a"), "long enough password"),
            Some(RU.admin_bad_login.to_string())
        );
        assert_eq!(
            credentials_problem(Some("head.new"), "short"),
            Some("Пароль должен содержать не менее 10 знаков.".to_string())
        );
        assert_eq!(credentials_problem(None, "long enough password"), None);
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
