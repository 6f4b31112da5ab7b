//! The configuration entities whose API shape is the domain type itself (host groups,
//! checks, schedules, services, classifier overrides): list, get, create, update, delete
//! and what a delete takes with it. Written out per entity rather than by a macro so each
//! handler carries its own OpenAPI documentation, which `routes!` requires.
//!
//! Writes go through [`crate::actions::Actions`]; reads use the store directly.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use prophasis_model::{
    Check, CheckId, ClassifierOverride, HostGroup, HostGroupId, OverrideId, Schedule, ScheduleId,
    Service, ServiceId,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Body, PathParam};
use super::{actor, DeleteImpactView};
use crate::web::auth::AuthUser;
use crate::web::error::{ApiError, CommonErrors};
use crate::web::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_host_groups, create_host_group))
        .routes(routes!(
            get_host_group,
            update_host_group,
            delete_host_group
        ))
        .routes(routes!(host_group_delete_impact))
        .routes(routes!(list_checks, create_check))
        .routes(routes!(get_check, update_check, delete_check))
        .routes(routes!(check_delete_impact))
        .routes(routes!(list_schedules, create_schedule))
        .routes(routes!(get_schedule, update_schedule, delete_schedule))
        .routes(routes!(schedule_delete_impact))
        .routes(routes!(list_services, create_service))
        .routes(routes!(get_service, update_service, delete_service))
        .routes(routes!(service_delete_impact))
        .routes(routes!(list_overrides, create_override))
        .routes(routes!(get_override, update_override, delete_override))
}

// ---- host groups

/// Every host group.
#[utoipa::path(get, path = "/api/v1/host-groups", tag = "host-groups",
    responses((status = 200, body = Vec<HostGroup>), CommonErrors))]
async fn list_host_groups(
    _user: AuthUser,
    State(state): State<AppState>,
) -> Result<Json<Vec<HostGroup>>, ApiError> {
    Ok(Json(state.core.store.list_host_groups().await?))
}

/// One host group.
#[utoipa::path(get, path = "/api/v1/host-groups/{id}", tag = "host-groups",
    params(("id" = i64, Path, description = "The host group's id")),
    responses((status = 200, body = HostGroup), CommonErrors))]
async fn get_host_group(
    _user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<HostGroupId>,
) -> Result<Json<HostGroup>, ApiError> {
    Ok(Json(state.core.store.get_host_group(id).await?))
}

/// Adds a host group (admins only). An `id` in the body is ignored.
#[utoipa::path(post, path = "/api/v1/host-groups", tag = "host-groups",
    request_body = HostGroup,
    responses((status = 201, body = HostGroup, description = "The stored host group"), CommonErrors))]
async fn create_host_group(
    user: AuthUser,
    State(state): State<AppState>,
    Body(body): Body<HostGroup>,
) -> Result<(StatusCode, Json<HostGroup>), ApiError> {
    let stored = state
        .actions
        .create_host_group(&actor(&user), &body)
        .await?;
    Ok((StatusCode::CREATED, Json(stored)))
}

/// Replaces a host group (admins only). The id comes from the path.
#[utoipa::path(put, path = "/api/v1/host-groups/{id}", tag = "host-groups",
    params(("id" = i64, Path, description = "The host group's id")),
    request_body = HostGroup,
    responses((status = 200, body = HostGroup, description = "The stored host group"), CommonErrors))]
async fn update_host_group(
    user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<HostGroupId>,
    Body(mut body): Body<HostGroup>,
) -> Result<Json<HostGroup>, ApiError> {
    body.id = id;
    Ok(Json(
        state
            .actions
            .update_host_group(&actor(&user), &body)
            .await?,
    ))
}

/// Deletes a host group (admins only); see `delete-impact` for what goes with it.
#[utoipa::path(delete, path = "/api/v1/host-groups/{id}", tag = "host-groups",
    params(("id" = i64, Path, description = "The host group's id")),
    responses((status = 204, description = "Deleted"), CommonErrors))]
async fn delete_host_group(
    user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<HostGroupId>,
) -> Result<StatusCode, ApiError> {
    state.actions.delete_host_group(&actor(&user), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What deleting this host group would take with it, by kind (every kind listed).
#[utoipa::path(get, path = "/api/v1/host-groups/{id}/delete-impact", tag = "host-groups",
    params(("id" = i64, Path, description = "The host group's id")),
    responses((status = 200, body = DeleteImpactView), CommonErrors))]
async fn host_group_delete_impact(
    _user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<HostGroupId>,
) -> Result<Json<DeleteImpactView>, ApiError> {
    state.core.store.get_host_group(id).await?;
    Ok(Json(
        state.actions.host_group_delete_impact(id).await?.into(),
    ))
}

// ---- checks

/// Every check.
#[utoipa::path(get, path = "/api/v1/checks", tag = "checks",
    responses((status = 200, body = Vec<Check>), CommonErrors))]
async fn list_checks(
    _user: AuthUser,
    State(state): State<AppState>,
) -> Result<Json<Vec<Check>>, ApiError> {
    Ok(Json(state.core.store.list_checks().await?))
}

/// One check.
#[utoipa::path(get, path = "/api/v1/checks/{id}", tag = "checks",
    params(("id" = i64, Path, description = "The check's id")),
    responses((status = 200, body = Check), CommonErrors))]
async fn get_check(
    _user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<CheckId>,
) -> Result<Json<Check>, ApiError> {
    Ok(Json(state.core.store.get_check(id).await?))
}

/// Adds a check (admins only). An `id` in the body is ignored.
#[utoipa::path(post, path = "/api/v1/checks", tag = "checks",
    request_body = Check,
    responses((status = 201, body = Check, description = "The stored check"), CommonErrors))]
async fn create_check(
    user: AuthUser,
    State(state): State<AppState>,
    Body(body): Body<Check>,
) -> Result<(StatusCode, Json<Check>), ApiError> {
    let stored = state.actions.create_check(&actor(&user), &body).await?;
    Ok((StatusCode::CREATED, Json(stored)))
}

/// Replaces a check (admins only). The id comes from the path.
#[utoipa::path(put, path = "/api/v1/checks/{id}", tag = "checks",
    params(("id" = i64, Path, description = "The check's id")),
    request_body = Check,
    responses((status = 200, body = Check, description = "The stored check"), CommonErrors))]
async fn update_check(
    user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<CheckId>,
    Body(mut body): Body<Check>,
) -> Result<Json<Check>, ApiError> {
    body.id = id;
    Ok(Json(
        state.actions.update_check(&actor(&user), &body).await?,
    ))
}

/// Deletes a check (admins only); see `delete-impact` for what goes with it.
#[utoipa::path(delete, path = "/api/v1/checks/{id}", tag = "checks",
    params(("id" = i64, Path, description = "The check's id")),
    responses((status = 204, description = "Deleted"), CommonErrors))]
async fn delete_check(
    user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<CheckId>,
) -> Result<StatusCode, ApiError> {
    state.actions.delete_check(&actor(&user), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What deleting this check would take with it, by kind (every kind listed).
#[utoipa::path(get, path = "/api/v1/checks/{id}/delete-impact", tag = "checks",
    params(("id" = i64, Path, description = "The check's id")),
    responses((status = 200, body = DeleteImpactView), CommonErrors))]
async fn check_delete_impact(
    _user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<CheckId>,
) -> Result<Json<DeleteImpactView>, ApiError> {
    state.core.store.get_check(id).await?;
    Ok(Json(state.actions.check_delete_impact(id).await?.into()))
}

// ---- schedules

/// Every schedule.
#[utoipa::path(get, path = "/api/v1/schedules", tag = "schedules",
    responses((status = 200, body = Vec<Schedule>), CommonErrors))]
async fn list_schedules(
    _user: AuthUser,
    State(state): State<AppState>,
) -> Result<Json<Vec<Schedule>>, ApiError> {
    Ok(Json(state.core.store.list_schedules().await?))
}

/// One schedule.
#[utoipa::path(get, path = "/api/v1/schedules/{id}", tag = "schedules",
    params(("id" = i64, Path, description = "The schedule's id")),
    responses((status = 200, body = Schedule), CommonErrors))]
async fn get_schedule(
    _user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<ScheduleId>,
) -> Result<Json<Schedule>, ApiError> {
    Ok(Json(state.core.store.get_schedule(id).await?))
}

/// Adds a schedule (admins only). An `id` in the body is ignored.
#[utoipa::path(post, path = "/api/v1/schedules", tag = "schedules",
    request_body = Schedule,
    responses((status = 201, body = Schedule, description = "The stored schedule"), CommonErrors))]
async fn create_schedule(
    user: AuthUser,
    State(state): State<AppState>,
    Body(body): Body<Schedule>,
) -> Result<(StatusCode, Json<Schedule>), ApiError> {
    let stored = state.actions.create_schedule(&actor(&user), &body).await?;
    Ok((StatusCode::CREATED, Json(stored)))
}

/// Replaces a schedule (admins only). The id comes from the path.
#[utoipa::path(put, path = "/api/v1/schedules/{id}", tag = "schedules",
    params(("id" = i64, Path, description = "The schedule's id")),
    request_body = Schedule,
    responses((status = 200, body = Schedule, description = "The stored schedule"), CommonErrors))]
async fn update_schedule(
    user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<ScheduleId>,
    Body(mut body): Body<Schedule>,
) -> Result<Json<Schedule>, ApiError> {
    body.id = id;
    Ok(Json(
        state.actions.update_schedule(&actor(&user), &body).await?,
    ))
}

/// Deletes a schedule (admins only); see `delete-impact` for what goes with it.
#[utoipa::path(delete, path = "/api/v1/schedules/{id}", tag = "schedules",
    params(("id" = i64, Path, description = "The schedule's id")),
    responses((status = 204, description = "Deleted"), CommonErrors))]
async fn delete_schedule(
    user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<ScheduleId>,
) -> Result<StatusCode, ApiError> {
    state.actions.delete_schedule(&actor(&user), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What deleting this schedule would take with it, by kind (every kind listed).
#[utoipa::path(get, path = "/api/v1/schedules/{id}/delete-impact", tag = "schedules",
    params(("id" = i64, Path, description = "The schedule's id")),
    responses((status = 200, body = DeleteImpactView), CommonErrors))]
async fn schedule_delete_impact(
    _user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<ScheduleId>,
) -> Result<Json<DeleteImpactView>, ApiError> {
    state.core.store.get_schedule(id).await?;
    Ok(Json(state.actions.schedule_delete_impact(id).await?.into()))
}

// ---- services

/// Every service.
#[utoipa::path(get, path = "/api/v1/services", tag = "services",
    responses((status = 200, body = Vec<Service>), CommonErrors))]
async fn list_services(
    _user: AuthUser,
    State(state): State<AppState>,
) -> Result<Json<Vec<Service>>, ApiError> {
    Ok(Json(state.core.store.list_services().await?))
}

/// One service.
#[utoipa::path(get, path = "/api/v1/services/{id}", tag = "services",
    params(("id" = i64, Path, description = "The service's id")),
    responses((status = 200, body = Service), CommonErrors))]
async fn get_service(
    _user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<ServiceId>,
) -> Result<Json<Service>, ApiError> {
    Ok(Json(state.core.store.get_service(id).await?))
}

/// Adds a service (admins only). An `id` in the body is ignored.
#[utoipa::path(post, path = "/api/v1/services", tag = "services",
    request_body = Service,
    responses((status = 201, body = Service, description = "The stored service"), CommonErrors))]
async fn create_service(
    user: AuthUser,
    State(state): State<AppState>,
    Body(body): Body<Service>,
) -> Result<(StatusCode, Json<Service>), ApiError> {
    let stored = state.actions.create_service(&actor(&user), &body).await?;
    Ok((StatusCode::CREATED, Json(stored)))
}

/// Replaces a service (admins only). The id comes from the path.
#[utoipa::path(put, path = "/api/v1/services/{id}", tag = "services",
    params(("id" = i64, Path, description = "The service's id")),
    request_body = Service,
    responses((status = 200, body = Service, description = "The stored service"), CommonErrors))]
async fn update_service(
    user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<ServiceId>,
    Body(mut body): Body<Service>,
) -> Result<Json<Service>, ApiError> {
    body.id = id;
    Ok(Json(
        state.actions.update_service(&actor(&user), &body).await?,
    ))
}

/// Deletes a service (admins only); see `delete-impact` for what goes with it.
#[utoipa::path(delete, path = "/api/v1/services/{id}", tag = "services",
    params(("id" = i64, Path, description = "The service's id")),
    responses((status = 204, description = "Deleted"), CommonErrors))]
async fn delete_service(
    user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<ServiceId>,
) -> Result<StatusCode, ApiError> {
    state.actions.delete_service(&actor(&user), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What deleting this service would take with it, by kind (every kind listed).
#[utoipa::path(get, path = "/api/v1/services/{id}/delete-impact", tag = "services",
    params(("id" = i64, Path, description = "The service's id")),
    responses((status = 200, body = DeleteImpactView), CommonErrors))]
async fn service_delete_impact(
    _user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<ServiceId>,
) -> Result<Json<DeleteImpactView>, ApiError> {
    state.core.store.get_service(id).await?;
    Ok(Json(state.actions.service_delete_impact(id).await?.into()))
}

// ---- classifier overrides

/// Every classifier override.
#[utoipa::path(get, path = "/api/v1/classifier-overrides", tag = "classifier-overrides",
    responses((status = 200, body = Vec<ClassifierOverride>), CommonErrors))]
async fn list_overrides(
    _user: AuthUser,
    State(state): State<AppState>,
) -> Result<Json<Vec<ClassifierOverride>>, ApiError> {
    Ok(Json(state.core.store.list_overrides().await?))
}

/// One classifier override.
#[utoipa::path(get, path = "/api/v1/classifier-overrides/{id}", tag = "classifier-overrides",
    params(("id" = i64, Path, description = "The classifier override's id")),
    responses((status = 200, body = ClassifierOverride), CommonErrors))]
async fn get_override(
    _user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<OverrideId>,
) -> Result<Json<ClassifierOverride>, ApiError> {
    Ok(Json(state.core.store.get_override(id).await?))
}

/// Adds a classifier override (admins only). An `id` in the body is ignored.
#[utoipa::path(post, path = "/api/v1/classifier-overrides", tag = "classifier-overrides",
    request_body = ClassifierOverride,
    responses((status = 201, body = ClassifierOverride, description = "The stored classifier override"), CommonErrors))]
async fn create_override(
    user: AuthUser,
    State(state): State<AppState>,
    Body(body): Body<ClassifierOverride>,
) -> Result<(StatusCode, Json<ClassifierOverride>), ApiError> {
    let stored = state.actions.create_override(&actor(&user), &body).await?;
    Ok((StatusCode::CREATED, Json(stored)))
}

/// Replaces a classifier override (admins only). The id comes from the path.
#[utoipa::path(put, path = "/api/v1/classifier-overrides/{id}", tag = "classifier-overrides",
    params(("id" = i64, Path, description = "The classifier override's id")),
    request_body = ClassifierOverride,
    responses((status = 200, body = ClassifierOverride, description = "The stored classifier override"), CommonErrors))]
async fn update_override(
    user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<OverrideId>,
    Body(mut body): Body<ClassifierOverride>,
) -> Result<Json<ClassifierOverride>, ApiError> {
    body.id = id;
    Ok(Json(
        state.actions.update_override(&actor(&user), &body).await?,
    ))
}

/// Deletes a classifier override (admins only).
#[utoipa::path(delete, path = "/api/v1/classifier-overrides/{id}", tag = "classifier-overrides",
    params(("id" = i64, Path, description = "The classifier override's id")),
    responses((status = 204, description = "Deleted"), CommonErrors))]
async fn delete_override(
    user: AuthUser,
    State(state): State<AppState>,
    PathParam(id): PathParam<OverrideId>,
) -> Result<StatusCode, ApiError> {
    state.actions.delete_override(&actor(&user), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
