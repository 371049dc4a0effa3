//! `/metrics` for the office's Prometheus: answered to the configured networks and to the
//! holders of a metrics token; to anyone else the page does not exist. The sync route's
//! request count and latency are measured here too, around the whole request, refusals
//! included.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{counter, histogram};

use super::error::{ApiError, ApiResult};
use super::extract::bearer_digest;
use crate::app::AppState;
use crate::http::ClientAddress;
use crate::metrics::{SYNC_REQUESTS, SYNC_SECONDS, render};

pub async fn metrics(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let by_address = state
        .metrics_networks
        .iter()
        .any(|net| net.contains(&client));
    let by_token = bearer_digest(&headers).is_some_and(|d| state.metrics_tokens.contains(&d));
    if !by_address && !by_token {
        return Err(ApiError::NotFound("route"));
    }
    let text = state.blocking(render).await??;
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
        .into_response())
}

/// Counts a sync request by its answer's status, and how long it took.
pub async fn measure_sync(request: Request, next: Next) -> Response {
    let began = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    counter!(SYNC_REQUESTS, "status" => status).increment(1);
    histogram!(SYNC_SECONDS).record(began.elapsed().as_secs_f64());
    response
}
