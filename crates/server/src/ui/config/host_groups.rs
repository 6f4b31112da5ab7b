//! Host groups: named sets of hosts and other groups, so a check or a service can name
//! many machines at once. Members are chosen from searchable pickers; the group itself is
//! left out of its own picker (and the model refuses it anyway).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use minijinja::context;
use prophasis_model::HostGroup;

use super::{
    action_errors, action_page_error, actor, choices, form_page, names, ok_page, FormData,
};
use crate::ui::session::{Admin, SessionUser};
use crate::ui::{confirm_delete, see_other, FormErrors, UiError};
use crate::web::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/configuration/host-groups", get(list))
        .route("/configuration/host-groups/new", get(new_form).post(create))
        .route(
            "/configuration/host-groups/{id}/edit",
            get(edit_form).post(update),
        )
        .route(
            "/configuration/host-groups/{id}/delete",
            get(confirm).post(delete),
        )
}

async fn list(user: SessionUser, State(state): State<AppState>) -> Result<Response, UiError> {
    let store = &state.core.store;
    let hosts = store.list_hosts().await?;
    let mut groups = store.list_host_groups().await?;
    let host_names = names(&hosts, |h| h.id, |h| &h.name);
    let group_names = names(&groups, |g| g.id, |g| &g.name);
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    let groups: Vec<_> = groups
        .iter()
        .map(|g| {
            let hosts: Vec<&String> = g.member_hosts.iter().filter_map(|id| host_names.get(id)).collect();
            let subgroups: Vec<&String> = g.member_groups.iter().filter_map(|id| group_names.get(id)).collect();
            context! { id => g.id, name => &g.name, description => &g.description, hosts, groups => subgroups }
        })
        .collect();
    ok_page(
        &state,
        &user,
        "config/host_groups.html",
        context! { groups },
    )
}

async fn form(
    state: &AppState,
    user: &SessionUser,
    action: &str,
    group: &HostGroup,
    errors: &FormErrors,
) -> Result<Response, UiError> {
    let store = &state.core.store;
    let hosts = names(&store.list_hosts().await?, |h| h.id, |h| &h.name);
    let groups = names(&store.list_host_groups().await?, |g| g.id, |g| &g.name);
    let skip = (group.id != 0).then_some(group.id);
    form_page(
        state,
        user,
        "config/host_group_form.html",
        errors,
        context! {
            action,
            editing => group.id != 0,
            values => context! { name => &group.name, description => &group.description },
            host_choices => choices(&hosts, &group.member_hosts, None),
            group_choices => choices(&groups, &group.member_groups, skip),
        },
    )
}

fn read(f: &FormData, id: i64) -> HostGroup {
    HostGroup {
        id,
        name: f.get("name").to_string(),
        description: f.get("description").to_string(),
        member_hosts: f.ids("member_hosts"),
        member_groups: f.ids("member_groups"),
    }
}

async fn new_form(Admin(user): Admin, State(state): State<AppState>) -> Result<Response, UiError> {
    let blank = read(&FormData::default(), 0);
    form(
        &state,
        &user,
        "/configuration/host-groups/new",
        &blank,
        &FormErrors::default(),
    )
    .await
}

async fn create(
    admin: Admin,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, UiError> {
    let group = read(&FormData::parse(&body), 0);
    let errors = match state
        .actions
        .create_host_group(&actor(&admin), &group)
        .await
    {
        Ok(_) => return Ok(see_other("/configuration/host-groups")),
        Err(e) => action_errors(e)?,
    };
    let action = "/configuration/host-groups/new";
    form(&state, &admin.0, action, &group, &errors).await
}

async fn edit_form(
    Admin(user): Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    let group = state.core.store.get_host_group(id).await?;
    let action = format!("/configuration/host-groups/{id}/edit");
    form(&state, &user, &action, &group, &FormErrors::default()).await
}

async fn update(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Response, UiError> {
    state.core.store.get_host_group(id).await?;
    let group = read(&FormData::parse(&body), id);
    let errors = match state
        .actions
        .update_host_group(&actor(&admin), &group)
        .await
    {
        Ok(_) => return Ok(see_other("/configuration/host-groups")),
        Err(e) => action_errors(e)?,
    };
    let action = format!("/configuration/host-groups/{id}/edit");
    form(&state, &admin.0, &action, &group, &errors).await
}

async fn confirm(
    Admin(user): Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    let group = state.core.store.get_host_group(id).await?;
    let impact = state
        .actions
        .host_group_delete_impact(id)
        .await
        .map_err(action_page_error)?;
    confirm_delete(
        &state,
        &user,
        "configuration",
        "host group",
        &group.name,
        &impact,
        "/configuration/host-groups",
    )
}

async fn delete(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    state
        .actions
        .delete_host_group(&actor(&admin), id)
        .await
        .map_err(action_page_error)?;
    Ok(see_other("/configuration/host-groups"))
}
