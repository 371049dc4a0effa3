//! The OpenAPI 3.1 document of the tablet API, generated from the handlers and wire types.

use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{tablet, upload};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Office server: tablet API",
        description = "What the kiosk tablets call. Every request carries `x-protocol-version`; \
                       all but enrolment carry `Authorization: Bearer <device token>`."
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
    ),
    modifiers(&DeviceToken),
)]
pub struct TabletApi;

struct DeviceToken;

impl Modify for DeviceToken {
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
    }
}

pub async fn document() -> Response {
    axum::Json(TabletApi::openapi()).into_response()
}
