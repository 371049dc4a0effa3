//! HTTP routes. `tablet` is what tablets call (device credential), `staff` is what people call
//! (session cookie), `admin` is the administrator's part of it.

pub mod admin;
pub mod claims;
pub mod error;
pub mod extract;
mod metrics;
mod openapi;
pub mod results;
pub mod staff;
mod status;
pub mod tablet;
mod upload;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use extract::{SignedIn, TabletAuth};
pub use openapi::JsonApi;

use crate::app::AppState;
use error::ApiError;

/// The largest JSON body: a full sync batch of 500 visits is about 150 KB.
const JSON_BODY_LIMIT: usize = 1024 * 1024;

pub fn router(state: AppState) -> Router {
    let json_routes = Router::new()
        .route("/healthz", get(status::healthz))
        .route("/", get(status::index))
        .route("/api/openapi.json", get(openapi::document))
        .route("/api/tablet/enrolments", post(tablet::start_enrolment))
        .route("/api/tablet/enrolments/{id}", get(tablet::enrolment_status))
        .route(
            "/api/tablet/pairing-codes",
            post(tablet::request_pairing_code),
        )
        .route(
            "/api/tablet/pairing-codes/{id}",
            get(tablet::pairing_code_status),
        )
        .route("/api/tablet/pairing", get(tablet::pairing_status))
        .route("/api/tablet/pairing/end", post(tablet::end_own_pairing))
        .route(
            "/api/tablet/sync",
            post(tablet::sync).route_layer(axum::middleware::from_fn(metrics::measure_sync)),
        )
        .route("/metrics", get(metrics::metrics))
        .route("/api/tablet/visits/{id}/recording", get(upload::progress))
        .route("/api/auth/login", post(staff::login))
        .route("/api/auth/logout", post(staff::logout))
        .route("/api/auth/me", get(staff::me))
        .route("/api/pairings", post(staff::pair).get(staff::my_pairings))
        .route("/api/pairings/{id}/end", post(staff::end_pairing))
        .route("/api/directory", get(admin::directory))
        .route("/api/admin/accounts", post(admin::create_account))
        .route("/api/admin/enrolments", post(admin::approve_enrolment))
        .route("/api/admin/tablets", get(admin::tablets))
        .route("/api/admin/tablets/{id}/revoke", post(admin::revoke_tablet))
        .route("/api/cases/{case}", put(results::give_case))
        .route("/api/cases/{case}/ready", post(results::case_ready))
        .route("/api/sms/reports/{id}", get(results::delivery_report))
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            state.config.request_timeout(),
        ));
    // Uploads stream their body to disk and may take long on a slow network.
    let upload_routes = Router::new()
        .route("/api/tablet/visits/{id}/recording", post(upload::append))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            state.config.upload_timeout(),
        ));
    // Dashboard pages; the recordings they play stream for as long as the player needs.
    let page_routes = crate::web::router().layer(TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        state.config.request_timeout(),
    ));
    // The visitor's feedback page: public, reached from phones through the tablet's QR code.
    let visitor_routes = crate::web::visitor::router().layer(TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        state.config.request_timeout(),
    ));
    json_routes
        .merge(upload_routes)
        .merge(page_routes)
        .merge(visitor_routes)
        .fallback(|| async { ApiError::NotFound("route") })
        .method_not_allowed_fallback(|| async {
            ApiError::BadRequest("this method is not allowed on this route".into())
        })
        .layer(
            ServiceBuilder::new()
                .layer(TraceLayer::new_for_http())
                .layer(axum::middleware::from_fn(crate::http::request_id::trace))
                .layer(axum::middleware::map_response_with_state(
                    state.clone(),
                    crate::http::transport_security,
                ))
                .layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    crate::http::client::limit_requests_per_client,
                ))
                // A last line of defence: a bug must cost one request, never the process.
                .layer(CatchPanicLayer::custom(|_| {
                    axum::response::IntoResponse::into_response(ApiError::Internal(
                        anyhow::anyhow!("a request handler panicked"),
                    ))
                })),
        )
        .with_state(state)
}
