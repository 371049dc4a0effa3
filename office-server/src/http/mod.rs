//! What the JSON API and the pages share about HTTP: the session cookie, where a request comes
//! from (`origin`), who the client is (`client`), the caps on connections (`connections`),
//! each request's id (`request_id`) and the headers every response carries. `api` and `web` both use this module; neither uses the
//! other.

pub mod client;
pub mod connections;
pub mod origin;
pub mod request_id;

use axum::extract::State;
use axum::http::header::{COOKIE, SET_COOKIE, STRICT_TRANSPORT_SECURITY};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;

pub use client::ClientAddress;
pub use origin::{Origin, from_this_site, navigated_from_this_site};

use crate::app::AppState;

/// The cookie that carries a person's session token.
pub const SESSION_COOKIE: &str = "office_session";

/// The value of the cookie `name` in the request, if it sent one.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// The session token from the `Cookie` header, if there is one.
pub fn session_token(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, SESSION_COOKIE)
}

/// A `Set-Cookie` value for `name` on `path`: HttpOnly, SameSite=Lax, and `Secure` when
/// people reach the server over HTTPS (it terminates TLS itself, or its `public_url` is https).
pub fn cookie_value(
    name: &str,
    value: &str,
    path: &str,
    max_age: Option<i64>,
    secure: bool,
) -> String {
    let mut cookie = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Lax");
    if let Some(seconds) = max_age {
        cookie.push_str(&format!("; Max-Age={seconds}"));
    }
    if secure {
        cookie.push_str("; Secure");
    }
    cookie
}

/// The `Set-Cookie` value of a new session.
pub fn session_cookie(state: &AppState, token: &str) -> String {
    let max_age = i64::from(state.config.session_hours) * 3600;
    cookie_value(SESSION_COOKIE, token, "/", Some(max_age), state.https)
}

/// The `Set-Cookie` value that ends the session in the browser.
pub fn cleared_session_cookie(state: &AppState) -> String {
    cookie_value(SESSION_COOKIE, "", "/", Some(0), state.https)
}

/// Adds a `Set-Cookie` header.
pub fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(SET_COOKIE, value);
    }
    response
}

/// Sends `Strict-Transport-Security` when people reach the server over HTTPS.
pub async fn transport_security(State(state): State<AppState>, mut response: Response) -> Response {
    if state.https {
        response.headers_mut().insert(
            STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

/// Compares secrets in time that does not depend on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A text for a log line: control characters (a newline that would start a forged line)
/// escaped, and cut to `max` characters.
pub fn loggable(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max)
        .flat_map(char::escape_debug)
        .collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_in_constant_time() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, "a=1; office_session=tok; b=2".parse().unwrap());
        assert_eq!(session_token(&headers), Some("tok"));
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, "c"), None);
    }

    #[test]
    fn cookie_values_are_secure_over_https() {
        assert_eq!(
            cookie_value("a", "1", "/", Some(60), true),
            "a=1; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
        );
        assert!(!cookie_value("a", "1", "/login", None, false).contains("Secure"));
    }

    #[test]
    fn log_text_cannot_start_a_line() {
        assert_eq!(loggable("a\nINFO forged", 100), "a\\nINFO forged");
        assert_eq!(loggable("абвгд", 3), "абв…");
    }
}
