//! Plugins: installed by uploading a package (multipart `package` + optional detached
//! `signature`, the same parts the agent API takes), then only the classifier and how many
//! past results it sees are editable; the rest comes from the package.

use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use prophasis_model::Plugin;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Body, PathParam};
use super::{actor, DeleteImpactView};
use crate::web::auth::AuthUser;
use crate::web::error::{ApiError, CommonErrors};
use crate::web::AppState;

/// Largest upload: the biggest package the package limits allow to unpack (64 MiB; a
/// compressed archive is smaller) plus room for a signature and the multipart framing.
pub const MAX_UPLOAD: usize = 65 * 1024 * 1024;

pub fn routes() -> OpenApiRouter<AppState> {
    let (schemas, paths, upload) = routes!(list_plugins, upload_plugin);
    OpenApiRouter::new()
        .routes((
            schemas,
            paths,
            upload.layer(DefaultBodyLimit::max(MAX_UPLOAD)),
        ))
        .routes(routes!(get_plugin, update_plugin, delete_plugin))
        .routes(routes!(plugin_package))
        .routes(routes!(plugin_delete_impact))
}

/// The multipart form of an upload (for the OpenAPI document).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PluginUpload {
    /// The `.tar.gz` made by `prophasis plugin pack`.
    #[schema(value_type = String, format = Binary)]
    package: Vec<u8>,
    /// A detached OpenPGP signature over the package, binary or armored.
    #[schema(value_type = Option<String>, format = Binary)]
    signature: Option<Vec<u8>>,
}

/// What may be edited on an installed plugin.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PluginUpdate {
    /// Lua code returning `ok`, `minor`, `major`, `critical` or `unknown`.
    pub classifier: String,
    /// How many results (newest last) the classifier sees.
    pub n_historical: u32,
}

/// Every installed plugin.
#[utoipa::path(get, path = "/api/v1/plugins", tag = "plugins",
    responses((status = 200, body = Vec<Plugin>), CommonErrors))]
async fn list_plugins(
    _user: AuthUser,
    State(state): State<AppState>,
) -> Result<Json<Vec<Plugin>>, ApiError> {
    Ok(Json(state.core.store.list_plugins().await?))
}

/// Installs a plugin package, or a new version of an installed plugin (admins only).
#[utoipa::path(post, path = "/api/v1/plugins", tag = "plugins",
    request_body(content = PluginUpload, content_type = "multipart/form-data"),
    responses((status = 201, body = Plugin, description = "The installed plugin"), CommonErrors))]
async fn upload_plugin(
    user: AuthUser,
    State(state): State<AppState>,
    mut form: Multipart,
) -> Result<(StatusCode, Json<Plugin>), ApiError> {
    let actor = actor(&user);
    if actor.role != prophasis_model::Role::Admin {
        return Err(ApiError::forbidden());
    }
    let (mut package, mut signature) = (None, None);
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| ApiError::invalid("package", format!("unreadable upload: {e}")))?
    {
        let name = field.name().unwrap_or_default().to_string();
        let bytes = field
            .bytes()
            .await
            .map_err(|e| ApiError::invalid(name.clone(), format!("unreadable part: {e}")))?;
        match name.as_str() {
            "package" => package = Some(bytes.to_vec()),
            "signature" if !bytes.is_empty() => signature = Some(bytes.to_vec()),
            _ => {}
        }
    }
    let package = package.ok_or_else(|| {
        ApiError::invalid(
            "package",
            "missing: send the .tar.gz as a multipart part named `package`",
        )
    })?;
    let plugin = state
        .actions
        .install_plugin(&actor, package, signature)
        .await?;
    Ok((StatusCode::CREATED, Json(plugin)))
}

/// One plugin.
#[utoipa::path(get, path = "/api/v1/plugins/{id}", tag = "plugins",
    params(("id" = String, Path, description = "The plugin id, e.g. `me.example.cpu`")),
    responses((status = 200, body = Plugin), CommonErrors))]
async fn get_plugin(
    _user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<String>,
) -> Result<Json<Plugin>, ApiError> {
    Ok(Json(state.core.store.get_plugin(&id).await?))
}

/// Changes a plugin's classifier and history length (admins only); the code must compile.
#[utoipa::path(put, path = "/api/v1/plugins/{id}", tag = "plugins",
    params(("id" = String, Path, description = "The plugin id")),
    request_body = PluginUpdate,
    responses((status = 200, body = Plugin, description = "The stored plugin"), CommonErrors))]
async fn update_plugin(
    user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<String>,
    Body(body): Body<PluginUpdate>,
) -> Result<Json<Plugin>, ApiError> {
    Ok(Json(
        state
            .actions
            .update_plugin_classifier(&actor(&user), &id, &body.classifier, body.n_historical)
            .await?,
    ))
}

/// Deletes a plugin with its results (admins only).
#[utoipa::path(delete, path = "/api/v1/plugins/{id}", tag = "plugins",
    params(("id" = String, Path, description = "The plugin id")),
    responses((status = 204, description = "Deleted"), CommonErrors))]
async fn delete_plugin(
    user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<String>,
) -> Result<StatusCode, ApiError> {
    state.actions.delete_plugin(&actor(&user), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The package as uploaded (what agents receive).
#[utoipa::path(get, path = "/api/v1/plugins/{id}/package", tag = "plugins",
    params(("id" = String, Path, description = "The plugin id")),
    responses((status = 200, content_type = "application/gzip", body = String,
        description = "The .tar.gz archive"), CommonErrors))]
async fn plugin_package(
    _user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<String>,
) -> Result<impl IntoResponse, ApiError> {
    let plugin = state.core.store.get_plugin(&id).await?;
    let package = state.core.store.plugin_package(&id).await?;
    let file = format!("{}-{}.tar.gz", plugin.id, plugin.version).replace(['"', '\\'], "_");
    Ok((
        [
            (header::CONTENT_TYPE, "application/gzip".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        package.archive,
    ))
}

/// What deleting this plugin would take with it, by kind.
#[utoipa::path(get, path = "/api/v1/plugins/{id}/delete-impact", tag = "plugins",
    params(("id" = String, Path, description = "The plugin id")),
    responses((status = 200, body = DeleteImpactView), CommonErrors))]
async fn plugin_delete_impact(
    _user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<String>,
) -> Result<Json<DeleteImpactView>, ApiError> {
    state.core.store.get_plugin(&id).await?;
    Ok(Json(state.actions.plugin_delete_impact(&id).await?.into()))
}
