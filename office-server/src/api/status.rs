//! `/healthz` for probes, and `/`: a page that says the server runs and where to sign in —
//! nothing about the organisation, which is for signed-in people only.

use axum::response::Html;

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn index() -> Html<&'static str> {
    Html(include_str!("status.html"))
}
