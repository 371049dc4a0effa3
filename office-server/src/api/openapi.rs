//! The OpenAPI 3.1 document of the whole JSON API — what tablets call (device token) and what
//! people call (session cookie) — generated from the handlers and wire types.

use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{admin, results, staff, tablet, upload};
use crate::http::SESSION_COOKIE;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Office server: JSON API",
        description = "What the kiosk tablets call — every request carries `x-protocol-version`, \
                       all but enrolment `Authorization: Bearer <device token>` — and what \
                       people's programs call with a session cookie from `/api/auth/login`. A \
                       cookie-authenticated request that changes something must not come from \
                       another site (`Origin`, `Sec-Fetch-Site`)."
    ),
    paths(
        tablet::start_enrolment,
        tablet::enrolment_status,
        tablet::request_pairing_code,
        tablet::pairing_code_status,
        tablet::pairing_status,
        tablet::end_own_pairing,
        tablet::sync,
        upload::progress,
        upload::append,
        staff::login,
        staff::logout,
        staff::me,
        staff::pair,
        staff::my_pairings,
        staff::end_pairing,
        admin::directory,
        admin::create_account,
        admin::approve_enrolment,
        admin::tablets,
        admin::revoke_tablet,
        results::give_case,
        results::case_ready,
        results::delivery_report,
    ),
    modifiers(&SecuritySchemes),
)]
pub struct JsonApi;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "device_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The tablet's device credential, issued at enrolment"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "case_system_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The office's case-management system: a token whose SHA-256 is in \
                         case_system.tokens_sha256 (made by `office-server case-token`)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "A person's session, from POST /api/auth/login",
            ))),
        );
    }
}

pub async fn document() -> Response {
    axum::Json(JsonApi::openapi()).into_response()
}
