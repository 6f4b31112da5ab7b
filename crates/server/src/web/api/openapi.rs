//! `GET /api/v1/openapi.json`: the OpenAPI 3 document, built from the handlers'
//! annotations (see [`super::routes`]) plus the two ways to log in.

use std::sync::LazyLock;

use axum::Json;
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi;
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::web::error::ErrorBody;
use crate::web::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openapi_json))
}

/// The document, built once.
pub fn document() -> &'static OpenApi {
    static DOC: LazyLock<OpenApi> = LazyLock::new(build);
    &DOC
}

fn build() -> OpenApi {
    let (_, mut doc) = super::routes().split_for_parts();
    doc.info.title = "Prophasis API".into();
    doc.info.description = Some(
        "Configuration, health and results of a Prophasis monitoring server. Log in with \
         `Authorization: Bearer <API token>` or HTTP Basic with a user's name and password. \
         Errors are `{\"error\": {\"code\", \"message\", \"field\"?}}`."
            .into(),
    );
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    doc.info.license = Some(utoipa::openapi::License::new("AGPL-3.0-or-later"));
    let components = doc.components.get_or_insert_with(Default::default);
    // The error responses (`CommonErrors`) refer to these by name but do not carry them.
    let mut error_schemas = vec![(
        ErrorBody::name().into_owned(),
        <ErrorBody as PartialSchema>::schema(),
    )];
    <ErrorBody as ToSchema>::schemas(&mut error_schemas);
    components.schemas.extend(error_schemas);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("pph_… API token")
                .build(),
        ),
    );
    components.add_security_scheme(
        "basic",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
    );
    doc.security = Some(vec![
        SecurityRequirement::new("bearer", Vec::<String>::new()),
        SecurityRequirement::new("basic", Vec::<String>::new()),
    ]);
    doc
}

/// This document (no login needed, so clients can discover the API).
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", security(()),
    responses((status = 200, body = serde_json::Value, description = "The OpenAPI 3 document")))]
async fn openapi_json() -> Json<&'static OpenApi> {
    Json(document())
}
