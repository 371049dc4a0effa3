//! The kiosk screen: one HTML page served on 127.0.0.1 under a per-launch secret token. The
//! page receives the view over server-sent events and posts taps back; it holds no state and
//! no text of its own (see [`strings`]).

pub mod strings;
mod view;

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::Stream;
use serde::Deserialize;
use tokio::sync::{mpsc, watch};

pub use view::{ScreenView, StaffStatus, View};

/// What a tap on the page asks for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    Start,
    ChooseService { service_id: i64 },
    Cancel,
    End,
    Rate { position: usize },
    EndSession,
}

#[derive(Clone)]
struct ScreenState {
    token: String,
    views: watch::Receiver<View>,
    actions: mpsc::Sender<Action>,
    page: String,
}

/// A bound screen server, ready to serve.
pub struct Screen {
    listener: tokio::net::TcpListener,
    token: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ScreenError {
    #[error("cannot listen for the kiosk screen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the kiosk screen server failed: {0}")]
    Serve(std::io::Error),
}

impl Screen {
    /// Binds 127.0.0.1 on `port` (0 picks a free one) with a fresh secret token.
    pub async fn bind(port: u16) -> Result<Self, ScreenError> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ScreenError::Bind { addr, source })?;
        let mut secret = [0u8; 24];
        rand::fill(&mut secret);
        Ok(Self {
            listener,
            token: hex::encode(secret),
        })
    }

    /// The address a browser or WebView opens.
    pub fn url(&self) -> String {
        let port = self.listener.local_addr().map(|a| a.port()).unwrap_or(0);
        format!("http://127.0.0.1:{port}/k/{}/", self.token)
    }

    /// Serves until `shutdown` resolves.
    pub async fn serve(
        self,
        views: watch::Receiver<View>,
        actions: mpsc::Sender<Action>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ScreenError> {
        let state = ScreenState {
            token: self.token,
            views,
            actions,
            page: page_html(&strings::RU),
        };
        let app = Router::new()
            .route("/k/{token}/", get(page))
            .route("/k/{token}/events", get(events))
            .route("/k/{token}/view", get(current_view))
            .route("/k/{token}/action", post(action))
            .fallback(|| async { StatusCode::NOT_FOUND })
            .with_state(state);
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(ScreenError::Serve)
    }
}

/// The kiosk page for one language: `kiosk.html` with its `<html lang>` and `<title>` from the
/// catalogue, `kiosk.css` and `kiosk.js` inlined (the CSP allows inline code only), and the
/// catalogue as JSON in the script. The script and styles are separate files so that
/// scripts/lint-page.sh can check them against Chrome 58.
fn page_html(strings: &strings::Strings) -> String {
    // As JSON inside a <script>: `<` escaped, so no string can close the element.
    let catalogue = serde_json::to_string(strings)
        .unwrap_or_else(|_| "{}".into())
        .replace('<', "\\u003c");
    include_str!("kiosk.html")
        .replace("{{lang}}", &html_escape(strings.lang))
        .replace("{{title}}", &html_escape(strings.title))
        .replace("{{style}}", include_str!("kiosk.css"))
        .replace(
            "{{script}}",
            &include_str!("kiosk.js").replace("/*STRINGS*/{}", &catalogue),
        )
}

/// Text for an HTML attribute or element.
fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// A wrong token gets the same answer as a wrong path: nothing to learn from it.
fn authorised(state: &ScreenState, token: &str) -> Result<(), StatusCode> {
    let matches = token.len() == state.token.len()
        && token
            .bytes()
            .zip(state.token.bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0;
    if matches {
        Ok(())
    } else {
        Err(StatusCode::NOT_FOUND)
    }
}

async fn page(State(state): State<ScreenState>, Path(token): Path<String>) -> Response {
    if let Err(status) = authorised(&state, &token) {
        return status.into_response();
    }
    let mut response = Html(state.page.clone()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             img-src data:",
        ),
    );
    response
}

async fn events(
    State(state): State<ScreenState>,
    Path(token): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, StatusCode> {
    authorised(&state, &token)?;
    let mut views = state.views.clone();
    // The current view at once, then every change.
    views.mark_changed();
    let stream = futures_util::stream::unfold(views, |mut views| async move {
        views.changed().await.ok()?;
        let view = views.borrow_and_update().clone();
        let json = serde_json::to_string(&view).unwrap_or_else(|_| "{}".into());
        Some((Ok(SseEvent::default().data(json)), views))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// The current view as JSON, for tools that do not speak server-sent events.
async fn current_view(
    State(state): State<ScreenState>,
    Path(token): Path<String>,
) -> Result<axum::Json<View>, StatusCode> {
    authorised(&state, &token)?;
    Ok(axum::Json(state.views.borrow().clone()))
}

async fn action(
    State(state): State<ScreenState>,
    Path(token): Path<String>,
    axum::Json(action): axum::Json<Action>,
) -> StatusCode {
    if let Err(status) = authorised(&state, &token) {
        return status;
    }
    match state.actions.send(action).await {
        Ok(()) => StatusCode::NO_CONTENT,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_declares_the_catalogue_language_and_inlines_its_script_and_styles() {
        let page = page_html(&strings::RU);
        assert!(
            page.starts_with("<!doctype html>\n<html lang=\"ru\">"),
            "{page}"
        );
        assert!(page.contains("<title>Оценка качества обслуживания</title>"));
        let english = strings::Strings {
            lang: "en",
            title: "Service <rating> & \"feedback\"",
            ..strings::RU
        };
        let page = page_html(&english);
        assert!(page.contains("<html lang=\"en\">"), "follows the locale");
        assert!(page.contains("<title>Service &lt;rating&gt; &amp; &quot;feedback&quot;</title>"));
        // The catalogue is in the script, with `<` escaped.
        assert!(page.contains(r#""lang":"en""#));
        assert!(page.contains(r#""title":"Service \u003crating>"#), "{page}");
        // Every placeholder was filled; the styles and the script are inline.
        for marker in ["{{", "/*STRINGS*/"] {
            assert!(!page.contains(marker), "{marker} left in the page");
        }
        assert!(page.contains("#staff.open { display: flex; }"));
        assert!(page.contains("function render()"));
    }
}
