//! The heads' dashboard: server-rendered pages in Russian (templates compiled into the binary by
//! askama, assets embedded), live updates over SSE, XLSX reports, the «Плохо» analysis with
//! recordings and verdicts, the administrator's pages and the specialist's pairing page.

mod account;
mod admin;
mod bad;
mod charts;
mod dashboard;
mod deputy;
pub mod error;
mod export;
mod feedback;
pub mod forms;
mod inbox;
mod live;
mod named;
mod pairing;
mod results;
mod review;
mod selection;
mod session;
pub mod strings;
mod tables;
pub mod visitor;

use askama::Template;
use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
/// How pages, downloads and e-mails show an instant: the office's local time.
pub use dashboard::local_time;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

pub use session::Viewer;
use strings::{RU, Strings};

use crate::app::AppState;
use crate::storage::{Role, Scope};

/// The dashboard's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/login",
            get(session::login_form).post(session::login_submit),
        )
        .route("/logout", post(session::logout_submit))
        .route("/dashboard", get(dashboard::home))
        .route("/dashboard/{tab}", get(dashboard::tab_page))
        .route("/dashboard/bad", get(bad::bad_page))
        .route("/dashboard/bad/{id}/verdict", post(bad::verdict_submit))
        .route("/dashboard/inbox", get(inbox::inbox_page))
        .route("/dashboard/inbox/cover/{head}", get(inbox::cover_page))
        .route(
            "/dashboard/deputy",
            get(deputy::deputy_page).post(deputy::deputy_submit),
        )
        .route("/dashboard/deputy/end", post(deputy::deputy_end))
        .route("/dashboard/recordings/{id}", get(bad::recording))
        .route("/dashboard/review", get(review::review_page))
        .route("/dashboard/feedback", get(feedback::feedback_page))
        .route(
            "/dashboard/feedback/{id}/answer",
            post(feedback::answer_submit),
        )
        .route("/dashboard/feedback/{id}/hide", post(feedback::hide_submit))
        .route("/dashboard/export", get(export::export))
        .route("/dashboard/events", get(live::events))
        .route("/dashboard/alerts", get(dashboard::alerts_page))
        .route(
            "/dashboard/alerts/{id}/acknowledge",
            post(dashboard::acknowledge_alert),
        )
        .route("/dashboard/results", get(results::page))
        .route("/dashboard/results/ready", post(results::ready_submit))
        .route(
            "/dashboard/results/sms/{id}/decide",
            post(results::decide_submit),
        )
        .route("/pairing", get(pairing::page).post(pairing::pair))
        .route("/pairing/{id}/end", post(pairing::end))
        .route("/pairing/visits/{id}/case", post(pairing::case_submit))
        .route("/pairing/visits/{id}/ready", post(pairing::ready_submit))
        .route("/admin", get(admin::overview))
        .route("/admin/directory", get(admin::directory_page))
        .route("/admin/departments", post(admin::create_department))
        .route("/admin/departments/{id}", post(admin::rename_department))
        .route("/admin/sections", post(admin::create_section))
        .route("/admin/sections/{id}", post(admin::rename_section))
        .route(
            "/admin/sections/{id}/services",
            post(admin::set_section_services),
        )
        .route("/admin/employees", post(admin::create_employee))
        .route("/admin/employees/{id}", post(admin::update_employee))
        .route("/admin/services", post(admin::create_service))
        .route("/admin/services/{id}", post(admin::rename_service))
        .route(
            "/admin/accounts",
            get(admin::accounts_page).post(admin::create_account),
        )
        .route("/admin/accounts/{id}/password", post(admin::reset_password))
        .route("/admin/accounts/{id}/mail", post(admin::set_mail))
        .route("/admin/tablets", get(admin::tablets_page))
        .route("/admin/tablets/enrol", post(admin::approve_enrolment))
        .route("/admin/tablets/{id}/rename", post(admin::rename_tablet))
        .route("/admin/tablets/{id}/revoke", post(admin::revoke_tablet))
        .route("/admin/audit", get(admin::audit_page))
        .route("/static/app.css", get(stylesheet))
        .route("/static/app.js", get(script))
        .route("/static/player.js", get(player_script))
        .layer(axum::middleware::map_response(page_headers))
}

/// Pages may load only this site's scripts, styles, media and images.
async fn page_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let is_html = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if is_html {
        headers.insert(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data:; style-src 'self'; \
                 frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
            ),
        );
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    response
}

const STYLESHEET: &str = include_str!("../../static/app.css");
const SCRIPT: &str = include_str!("../../static/app.js");
const PLAYER_SCRIPT: &str = include_str!("../../static/player.js");

async fn stylesheet() -> Response {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

async fn script() -> Response {
    javascript(SCRIPT)
}

async fn player_script() -> Response {
    javascript(PLAYER_SCRIPT)
}

fn javascript(source: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        source,
    )
        .into_response()
}

/// What every page's frame needs: language, title, the signed-in user, the navigation.
pub struct Layout {
    pub t: &'static Strings,
    pub title: String,
    pub user: Option<UserBox>,
    pub csrf: String,
    pub nav: Vec<NavItem>,
    /// Whether the page listens for live updates.
    pub live: bool,
}

pub struct UserBox {
    pub name: String,
    pub role: String,
}

pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub active: bool,
}

/// The main sections of the site a viewer may go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    Dashboard,
    Bad,
    Inbox,
    Review,
    Feedback,
    Alerts,
    Results,
    Admin,
    Pairing,
}

impl Layout {
    /// A page without a signed-in user (the sign-in page, errors).
    pub fn bare(t: &'static Strings, title: &str) -> Self {
        Self {
            t,
            title: title.to_string(),
            user: None,
            csrf: String::new(),
            nav: Vec::new(),
            live: false,
        }
    }

    pub fn for_viewer(viewer: &Viewer, title: &str, area: Area) -> Self {
        let t = &RU;
        let mut nav = Vec::new();
        let item = |href, label, this: Area| NavItem {
            href,
            label,
            active: this == area,
        };
        match viewer.account.role {
            Role::Specialist { .. } => nav.push(item("/pairing", t.nav_pairing, Area::Pairing)),
            role => {
                nav.push(item("/dashboard", t.nav_stats, Area::Dashboard));
                if crate::domain::scope::may_decide(&role) {
                    nav.push(item("/dashboard/inbox", t.nav_inbox, Area::Inbox));
                }
                nav.push(item("/dashboard/bad", t.nav_bad, Area::Bad));
                nav.push(item("/dashboard/review", t.nav_review, Area::Review));
                nav.push(item("/dashboard/feedback", t.nav_feedback, Area::Feedback));
                nav.push(item("/dashboard/alerts", t.nav_alerts, Area::Alerts));
                if crate::domain::scope::may_decide(&role) {
                    nav.push(item("/dashboard/results", t.nav_results, Area::Results));
                }
                if role == Role::Admin {
                    nav.push(item("/admin", t.nav_admin, Area::Admin));
                }
            }
        }
        Self {
            t,
            title: title.to_string(),
            user: Some(UserBox {
                name: viewer.account.display_name.clone(),
                role: role_label(t, &viewer.account.role).to_string(),
            }),
            csrf: viewer.csrf.clone(),
            nav,
            live: matches!(
                area,
                Area::Dashboard | Area::Bad | Area::Feedback | Area::Alerts
            ),
        }
    }
}

pub fn role_label(t: &'static Strings, role: &Role) -> &'static str {
    match role {
        Role::Admin => t.role_admin,
        Role::Observer => t.role_observer,
        Role::Head {
            scope: Scope::Department(_),
        } => t.role_head_department,
        Role::Head {
            scope: Scope::Section(_),
        } => t.role_head_section,
        Role::Specialist { .. } => t.role_specialist,
    }
}

/// Renders a template, or an error page if rendering fails.
pub fn html<T: Template>(page: &T) -> Response {
    match page.render() {
        Ok(body) => Html(body).into_response(),
        Err(error) => {
            tracing::error!(%error, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, RU.error_internal).into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    message: &'static str,
}

/// The page every error shows (see [`error::PageError`]).
pub fn error_page(status: StatusCode, message: &'static str) -> Response {
    let page = ErrorPage {
        layout: Layout::bare(&RU, RU.error_title),
        message,
    };
    (status, html(&page)).into_response()
}

/// Everything but the unreserved characters of RFC 3986.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes a URL query value.
pub fn percent_encode(text: &str) -> String {
    utf8_percent_encode(text, QUERY_VALUE).to_string()
}

/// `text` if it is a path of this site to send someone to (after sign-in, after a form):
/// one leading `/` and not two, no backslash, no whitespace or control character — judged on
/// the text and on its percent-decoded form, since browsers drop tabs and newlines from a
/// URL and some read `\` as `/`, which would turn `/\t/evil.example` into `//evil.example`.
pub fn site_path(text: &str) -> Option<&str> {
    let decoded = percent_decode_str(text).decode_utf8_lossy();
    let safe = |path: &str| {
        path.starts_with('/')
            && !path[1..].starts_with(['/', '\\'])
            && !path
                .chars()
                .any(|c| c == '\\' || c.is_whitespace() || c.is_control())
    };
    (safe(text) && safe(&decoded)).then_some(text)
}

/// A redirect after a successful form (POST → 303 → GET). Only ever given a path of this
/// site; anything else sends to the start page rather than fail.
pub fn see_other(location: &str) -> Response {
    let location = site_path(location).unwrap_or("/dashboard");
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_of_this_site_are_places_to_go() {
        for good in [
            "/dashboard",
            "/dashboard/bad?department=1&date=2026-12-01",
            "/admin#x",
        ] {
            assert_eq!(site_path(good), Some(good), "{good}");
        }
        for bad in [
            "",
            "dashboard",
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/\t/evil.example/x",
            "/%09/evil.example/x",
            "/%2F/evil.example",
            "/%5c/evil.example",
            "/\n/evil.example",
            "/dashboard\r\nX-Injected: 1",
            "/ /evil.example",
            "https://evil.example/",
            "/\u{7f}",
        ] {
            assert_eq!(site_path(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_redirect_never_fails() {
        let response = see_other("/dashboard\n");
        assert_eq!(response.headers()[LOCATION], "/dashboard");
        assert_eq!(see_other("/admin").headers()[LOCATION], "/admin");
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(
            percent_encode("Отдел a/b&c"),
            "%D0%9E%D1%82%D0%B4%D0%B5%D0%BB%20a%2Fb%26c"
        );
    }
}
