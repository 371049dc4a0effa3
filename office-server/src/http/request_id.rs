//! Every request gets an id of the server's own making: a span around its handling carries it
//! (with the method and the route's pattern — never the path itself, which may hold a link's
//! token), so every line logged for the request names it, and the response tells it in
//! `X-Request-Id` for a support call to quote. An id a client sends is ignored: it would be
//! theirs to forge.

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;
use uuid::Uuid;

pub const HEADER: &str = "x-request-id";

pub async fn trace(request: Request, next: Next) -> Response {
    let id = Uuid::new_v4();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("(no route)", MatchedPath::as_str)
        .to_owned();
    let span = tracing::info_span!("request", id = %id, method = %request.method(), route);
    let mut response = next.run(request).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&id.to_string()) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}
