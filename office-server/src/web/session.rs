//! Who is looking at the dashboard: the signed-in person, what they may see, and the per-session
//! CSRF token that every state-changing form carries (checked by [`super::forms`]). The
//! sign-in and sign-out pages.

use askama::Template;
use axum::Form;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::error::{PageError, PageResult};
use super::forms::{AnyRole, StaffForm};
use super::strings::{RU, Strings};
use super::{Layout, html};
use crate::app::AppState;
use crate::auth::{form_token, random_token, token_digest};
use crate::domain::{Password, Visibility, scope};
use crate::http::{
    ClientAddress, cleared_session_cookie, constant_time_eq, cookie, cookie_value, from_this_site,
    session_cookie, session_token, with_cookie,
};
use crate::ops;
use crate::ops::accounts::SignInError;
use crate::storage::{Account, Role};

/// The cookie that carries the sign-in form's CSRF token before there is a session.
const LOGIN_CSRF_COOKIE: &str = "office_login_csrf";

/// A signed-in person on a dashboard page.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub account: Account,
    /// Tells this session apart in the audit log without revealing its token.
    pub session_tag: String,
    /// The session token's digest: what the session is stored under.
    pub session: [u8; 32],
    /// The token every form of this session must send back.
    pub csrf: String,
}

impl Viewer {
    /// What the dashboard shows this viewer; specialists have no dashboard.
    pub fn visibility(&self) -> PageResult<Visibility> {
        Visibility::of(&self.account.role).ok_or(PageError::Forbidden)
    }

    /// Heads and administrators decide on Плохо visits and acknowledge alerts; observers only
    /// read.
    pub fn may_decide(&self) -> bool {
        scope::may_decide(&self.account.role)
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

/// The staff session's CSRF token (the same value as before [`form_token`] was shared).
fn csrf_of(token: &str) -> String {
    form_token("csrf", token)
}

fn session_tag_of(token: &str) -> String {
    hex::encode(&Sha256::digest(token_digest(token))[..8])
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
            && !from_this_site(&parts.headers, &parts.uri, state.public_origin.as_ref())
        {
            return Err(PageError::StaleForm);
        }
        let Some(token) = session_token(&parts.headers).map(str::to_string) else {
            return Err(PageError::SignIn { next });
        };
        let lookup = token.clone();
        let account = state
            .db(move |db| ops::accounts::session_account(db, &lookup, Timestamp::now()))
            .await?;
        let Some(account) = account else {
            return Err(PageError::SignIn { next });
        };
        Ok(Viewer {
            account,
            session: token_digest(&token),
            session_tag: session_tag_of(&token),
            csrf: csrf_of(&token),
        })
    }
}

/// A form with no fields but its CSRF token.
#[derive(Debug, Default, Deserialize)]
pub struct NoFields {}

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

/// Where sign-in may send people: a path of this site (see [`super::site_path`]).
fn safe_next(next: &str) -> Option<&str> {
    super::site_path(next)
}

fn login_page(
    state: &AppState,
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
    let cookie = cookie_value(LOGIN_CSRF_COOKIE, &login_csrf, "/login", None, state.https);
    with_cookie((status, html(&page)).into_response(), &cookie)
}

pub async fn login_form(
    State(state): State<AppState>,
    Query(query): Query<LoginQuery>,
) -> Response {
    let next = query
        .next
        .as_deref()
        .and_then(safe_next)
        .unwrap_or("")
        .to_string();
    login_page(&state, &RU, StatusCode::OK, &next, "", None)
}

pub async fn login_submit(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    uri: Uri,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let t = &RU;
    // Every field is checked before anything is done: an unsafe `next` is dropped here.
    let next = safe_next(&form.next).unwrap_or("").to_string();
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if !from_this_site(&headers, &uri, state.public_origin.as_ref())
        || expected.is_empty()
        || !constant_time_eq(expected.as_bytes(), form.csrf.as_bytes())
    {
        return login_page(
            &state,
            t,
            StatusCode::FORBIDDEN,
            &next,
            &form.login,
            Some(t.login_stale),
        );
    }
    let wrong = || {
        login_page(
            &state,
            t,
            StatusCode::UNAUTHORIZED,
            &next,
            &form.login,
            Some(t.login_wrong),
        )
    };
    let Ok(password) = Password::typed(&form.password) else {
        return wrong();
    };
    let typed = form.login.clone();
    let signed_in = state
        .blocking(move |s| {
            ops::accounts::sign_in(
                s.storage.as_ref(),
                &s.login_throttle,
                &typed,
                &password,
                client,
                SignedDuration::from_hours(i64::from(s.config.session_hours)),
                Timestamp::now(),
            )
        })
        .await;
    match signed_in {
        Ok(Ok(session)) => {
            let target = if next.is_empty() {
                home_of(&session.account).to_string()
            } else {
                next
            };
            let response = super::see_other(&target);
            let response = with_cookie(response, &session_cookie(&state, &session.token));
            with_cookie(
                response,
                &cookie_value(LOGIN_CSRF_COOKIE, "", "/login", Some(0), state.https),
            )
        }
        Ok(Err(SignInError::Throttled)) => login_page(
            &state,
            t,
            StatusCode::TOO_MANY_REQUESTS,
            &next,
            &form.login,
            Some(t.login_throttled),
        ),
        Ok(Err(SignInError::WrongCredentials)) => wrong(),
        Ok(Err(SignInError::Storage(error))) => PageError::from(error).into_response(),
        Err(panicked) => PageError::from(panicked).into_response(),
    }
}

pub async fn logout_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: StaffForm<AnyRole, NoFields>,
) -> PageResult<Response> {
    if let Some(token) = session_token(&headers).map(str::to_string) {
        state
            .db(move |db| ops::accounts::sign_out(db, &token))
            .await?;
    }
    tracing::info!(account_id = form.viewer.account.id, "signed out");
    Ok(with_cookie(
        super::see_other("/login"),
        &cleared_session_cookie(&state),
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
    fn csrf_is_per_session() {
        assert_ne!(csrf_of("a"), csrf_of("b"));
        assert_eq!(csrf_of("a"), csrf_of("a"));
    }
}
