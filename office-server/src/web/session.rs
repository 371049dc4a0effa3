//! Who is looking at the dashboard: the signed-in person, what they may see, and the per-session
//! CSRF token that every state-changing form carries. The sign-in and sign-out pages.

use std::net::SocketAddr;

use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::header::{HOST, ORIGIN};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::strings::{RU, Strings};
use super::{Layout, html};
use crate::api::extract::session_token;
use crate::api::staff::{cleared_session_cookie, session_cookie, sign_in, sign_out, with_cookie};
use crate::app::AppState;
use crate::auth::{random_token, token_digest};
use crate::error::{ApiError, PageError, PageResult};
use crate::storage::{Account, ReportFilter, Role, Scope};

/// The cookie that carries the sign-in form's CSRF token before there is a session.
const LOGIN_CSRF_COOKIE: &str = "office_login_csrf";

/// What part of the organisation a dashboard viewer may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    All,
    Department(i64),
    Section(i64),
}

impl Visibility {
    /// Whether a visit of this department and section is in view.
    pub fn sees(&self, department_id: i64, section_id: i64) -> bool {
        match *self {
            Visibility::All => true,
            Visibility::Department(id) => id == department_id,
            Visibility::Section(id) => id == section_id,
        }
    }

    /// The filter that keeps a report within view.
    pub fn filter(&self) -> ReportFilter {
        match *self {
            Visibility::All => ReportFilter::default(),
            Visibility::Department(id) => ReportFilter {
                department_id: Some(id),
                ..ReportFilter::default()
            },
            Visibility::Section(id) => ReportFilter {
                section_id: Some(id),
                ..ReportFilter::default()
            },
        }
    }
}

/// A signed-in person on a dashboard page.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub account: Account,
    /// Tells this session apart in the audit log without revealing its token.
    pub session_tag: String,
    /// The token every form of this session must send back.
    pub csrf: String,
}

impl Viewer {
    /// What the dashboard shows this viewer; specialists have no dashboard.
    pub fn visibility(&self) -> PageResult<Visibility> {
        match self.account.role {
            Role::Admin | Role::Observer => Ok(Visibility::All),
            Role::Head {
                scope: Scope::Department(id),
            } => Ok(Visibility::Department(id)),
            Role::Head {
                scope: Scope::Section(id),
            } => Ok(Visibility::Section(id)),
            Role::Specialist { .. } => Err(PageError::forbidden()),
        }
    }

    /// Heads and administrators decide on Плохо visits and acknowledge alerts; observers only
    /// read.
    pub fn may_decide(&self) -> bool {
        matches!(self.account.role, Role::Admin | Role::Head { .. })
    }

    pub fn require_decider(&self) -> PageResult<()> {
        if self.may_decide() {
            Ok(())
        } else {
            Err(PageError::forbidden())
        }
    }

    pub fn require_admin(&self) -> PageResult<()> {
        match self.account.role {
            Role::Admin => Ok(()),
            _ => Err(PageError::forbidden()),
        }
    }

    pub fn employee_id(&self) -> Option<i64> {
        match self.account.role {
            Role::Specialist { employee_id } => Some(employee_id),
            _ => None,
        }
    }

    /// Checks the CSRF token a form sent.
    pub fn check_csrf(&self, sent: &str) -> PageResult<()> {
        if constant_time_eq(sent.as_bytes(), self.csrf.as_bytes()) {
            Ok(())
        } else {
            Err(PageError::StaleForm)
        }
    }

    /// Where this viewer starts.
    pub fn home(&self) -> &'static str {
        home_of(&self.account)
    }
}

pub fn home_of(account: &Account) -> &'static str {
    match account.role {
        Role::Specialist { .. } => "/pairing",
        _ => "/dashboard",
    }
}

/// The session's CSRF token: derived from the session token, which only the browser holding the
/// cookie knows, so nothing more needs storing.
fn csrf_of(token: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"office-server csrf\0");
    hasher.update(token.as_bytes());
    URL_SAFE_NO_PAD.encode(hasher.finalize())
}

fn session_tag_of(token: &str) -> String {
    hex::encode(&Sha256::digest(token_digest(token))[..8])
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A state-changing request must come from this site: browsers send `Origin` on POST, and it
/// must name the host the request went to.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let Some(host) = headers.get(HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest.trim_end_matches('/') == host)
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> PageResult<Self> {
        let next = parts
            .uri
            .path_and_query()
            .map_or("/dashboard", |pq| pq.as_str())
            .to_string();
        let next = if parts.method == Method::GET {
            next
        } else {
            "/dashboard".to_string()
        };
        if parts.method != Method::GET
            && parts.method != Method::HEAD
            && !same_origin(&parts.headers)
        {
            return Err(PageError::StaleForm);
        }
        let Some(token) = session_token(&parts.headers).map(str::to_string) else {
            return Err(PageError::SignIn { next });
        };
        let digest = token_digest(&token);
        let account = state
            .db(move |db| db.session_account(&digest, Timestamp::now()))
            .await?;
        let Some(account) = account else {
            return Err(PageError::SignIn { next });
        };
        Ok(Viewer {
            account,
            session_tag: session_tag_of(&token),
            csrf: csrf_of(&token),
        })
    }
}

/// The form's CSRF field.
#[derive(Debug, Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    pub csrf: String,
}

// --- sign-in and sign-out ---------------------------------------------------------------------

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    next: String,
    login: String,
    error: Option<&'static str>,
    login_csrf: String,
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    csrf: String,
}

/// Only a path on this site: never `//host` or `https://…`.
fn safe_next(next: &str) -> Option<&str> {
    (next.starts_with('/') && !next.starts_with("//") && !next.contains('\\')).then_some(next)
}

fn login_cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == LOGIN_CSRF_COOKIE)
        .map(|(_, value)| value.to_string())
}

fn login_page(
    t: &'static Strings,
    status: StatusCode,
    next: &str,
    login: &str,
    error: Option<&'static str>,
) -> Response {
    let login_csrf = random_token();
    let page = LoginPage {
        layout: Layout::bare(t, t.login_title),
        next: next.to_string(),
        login: login.to_string(),
        error,
        login_csrf: login_csrf.clone(),
    };
    let cookie = format!("{LOGIN_CSRF_COOKIE}={login_csrf}; Path=/login; HttpOnly; SameSite=Lax");
    with_cookie((status, html(&page)).into_response(), &cookie)
}

pub async fn login_form(Query(query): Query<LoginQuery>) -> Response {
    let next = query
        .next
        .as_deref()
        .and_then(safe_next)
        .unwrap_or("")
        .to_string();
    login_page(&RU, StatusCode::OK, &next, "", None)
}

pub async fn login_submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let t = &RU;
    let next = safe_next(&form.next).unwrap_or("").to_string();
    let expected = login_cookie_value(&headers).unwrap_or_default();
    if !same_origin(&headers)
        || expected.is_empty()
        || !constant_time_eq(expected.as_bytes(), form.csrf.as_bytes())
    {
        return login_page(
            t,
            StatusCode::FORBIDDEN,
            &next,
            &form.login,
            Some(t.login_stale),
        );
    }
    match sign_in(&state, peer, &form.login, form.password).await {
        Ok((account, token)) => {
            let target = if next.is_empty() {
                home_of(&account).to_string()
            } else {
                next
            };
            let response = Redirect::to(&target).into_response();
            let response = with_cookie(response, &session_cookie(&state, &token));
            with_cookie(
                response,
                &format!("{LOGIN_CSRF_COOKIE}=; Path=/login; HttpOnly; SameSite=Lax; Max-Age=0"),
            )
        }
        Err(ApiError::TooManyAttempts) => login_page(
            t,
            StatusCode::TOO_MANY_REQUESTS,
            &next,
            &form.login,
            Some(t.login_throttled),
        ),
        Err(ApiError::Unauthenticated(_) | ApiError::BadRequest(_)) => login_page(
            t,
            StatusCode::UNAUTHORIZED,
            &next,
            &form.login,
            Some(t.login_wrong),
        ),
        Err(other) => PageError::Api(other).into_response(),
    }
}

pub async fn logout_submit(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Form(form): Form<CsrfOnly>,
) -> PageResult<Response> {
    viewer.check_csrf(&form.csrf)?;
    sign_out(&state, &headers).await?;
    tracing::info!(account_id = viewer.account.id, "signed out");
    Ok(with_cookie(
        Redirect::to("/login").into_response(),
        &cleared_session_cookie(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_must_stay_on_this_site() {
        assert_eq!(safe_next("/dashboard?x=1"), Some("/dashboard?x=1"));
        assert_eq!(safe_next("//evil.example/"), None);
        assert_eq!(safe_next("https://evil.example/"), None);
        assert_eq!(safe_next("/\\evil"), None);
    }

    #[test]
    fn origin_check() {
        let mut headers = HeaderMap::new();
        assert!(same_origin(&headers));
        headers.insert(HOST, "127.0.0.1:8080".parse().unwrap());
        headers.insert(ORIGIN, "http://127.0.0.1:8080".parse().unwrap());
        assert!(same_origin(&headers));
        headers.insert(ORIGIN, "http://evil.example".parse().unwrap());
        assert!(!same_origin(&headers));
    }

    #[test]
    fn csrf_is_per_session_and_checked_in_constant_time() {
        assert_ne!(csrf_of("a"), csrf_of("b"));
        assert_eq!(csrf_of("a"), csrf_of("a"));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
