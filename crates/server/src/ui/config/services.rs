//! Services: business functions built from hosts and host groups. A service works when
//! all its dependencies work, at least one member of each redundancy group works, and
//! its nested services work. Members come from searchable pickers that list hosts and host
//! groups together (values `h:ID` and `g:ID`); the list shows each service's structure as
//! nested lists.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use minijinja::{context, Value};
use prophasis_model::{Member, RedundancyGroup, Service};

use super::{
    action_errors, action_page_error, actor, choices, form_page, names, ok_page, FormData,
};
use crate::ui::session::{Admin, SessionUser};
use crate::ui::{confirm_delete, see_other, FormErrors, UiError};
use crate::web::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/configuration/services", get(list))
        .route("/configuration/services/new", get(new_form).post(create))
        .route(
            "/configuration/services/{id}/edit",
            get(edit_form).post(update),
        )
        .route(
            "/configuration/services/{id}/delete",
            get(confirm).post(delete),
        )
}

/// Hosts and host groups by id, to name members.
struct Names {
    hosts: BTreeMap<i64, String>,
    groups: BTreeMap<i64, String>,
    services: BTreeMap<i64, String>,
}

impl Names {
    async fn load(state: &AppState) -> Result<Names, UiError> {
        let store = &state.core.store;
        Ok(Names {
            hosts: names(&store.list_hosts().await?, |h| h.id, |h| &h.name),
            groups: names(&store.list_host_groups().await?, |g| g.id, |g| &g.name),
            services: names(&store.list_services().await?, |s| s.id, |s| &s.name),
        })
    }

    fn member(&self, m: &Member) -> String {
        match m {
            Member::Host(id) => self
                .hosts
                .get(id)
                .map(|n| format!("host {n}"))
                .unwrap_or_else(|| format!("host {id} (deleted)")),
            Member::HostGroup(id) => self
                .groups
                .get(id)
                .map(|n| format!("host group {n}"))
                .unwrap_or_else(|| format!("host group {id} (deleted)")),
        }
    }

    /// Member picker choices: hosts then host groups, ticked when in `selected`.
    fn member_choices(&self, selected: &[Member]) -> Vec<Value> {
        let mut out = Vec::new();
        let mut hosts: Vec<(&String, i64)> = self.hosts.iter().map(|(i, n)| (n, *i)).collect();
        hosts.sort();
        for (n, id) in hosts {
            out.push(
                context! { id => format!("h:{id}"), name => format!("host {n}"),
                selected => selected.contains(&Member::Host(id)) },
            );
        }
        let mut groups: Vec<(&String, i64)> = self.groups.iter().map(|(i, n)| (n, *i)).collect();
        groups.sort();
        for (n, id) in groups {
            out.push(
                context! { id => format!("g:{id}"), name => format!("host group {n}"),
                selected => selected.contains(&Member::HostGroup(id)) },
            );
        }
        out
    }
}

fn parse_member(s: &str) -> Option<Member> {
    let (kind, id) = s.split_once(':')?;
    let id = id.parse().ok()?;
    match kind {
        "h" => Some(Member::Host(id)),
        "g" => Some(Member::HostGroup(id)),
        _ => None,
    }
}

async fn list(user: SessionUser, State(state): State<AppState>) -> Result<Response, UiError> {
    let n = Names::load(&state).await?;
    let mut services = state.core.store.list_services().await?;
    services.sort_by(|a, b| a.name.cmp(&b.name));
    let services: Vec<Value> = services
        .iter()
        .map(|s| {
            let deps: Vec<String> = s.dependencies.iter().map(|m| n.member(m)).collect();
            let rgs: Vec<Value> = s
                .redundancy_groups
                .iter()
                .map(|rg| {
                    let members: Vec<String> = rg.members.iter().map(|m| n.member(m)).collect();
                    context! { name => &rg.name, members }
                })
                .collect();
            let nested: Vec<Value> = s
                .services
                .iter()
                .map(|id| context! { id, name => n.services.get(id) })
                .collect();
            context! { id => s.id, name => &s.name, description => &s.description, deps, rgs, nested }
        })
        .collect();
    ok_page(&state, &user, "config/services.html", context! { services })
}

/// Redundancy group blocks offered beyond the filled ones.
const BLANK_GROUPS: usize = 1;

async fn form(
    state: &AppState,
    user: &SessionUser,
    action: &str,
    service: &Service,
    errors: &FormErrors,
) -> Result<Response, UiError> {
    let n = Names::load(state).await?;
    let skip = (service.id != 0).then_some(service.id);
    let mut rgs: Vec<Value> = service
        .redundancy_groups
        .iter()
        .map(|rg| context! { name => &rg.name, choices => n.member_choices(&rg.members) })
        .collect();
    rgs.extend(
        (0..BLANK_GROUPS).map(|_| context! { name => "", choices => n.member_choices(&[]) }),
    );
    form_page(
        state,
        user,
        "config/service_form.html",
        errors,
        context! {
            action,
            editing => service.id != 0,
            values => context! { name => &service.name, description => &service.description },
            dependency_choices => n.member_choices(&service.dependencies),
            service_choices => choices(&n.services, &service.services, skip),
            rg_count => rgs.len(),
            rgs,
        },
    )
}

/// Reads the form; an unnamed redundancy group without members is an unused block.
fn read(f: &FormData, id: i64) -> Service {
    let members = |name: &str| -> Vec<Member> {
        f.all(name).iter().filter_map(|s| parse_member(s)).collect()
    };
    let count: usize = f.get("rg_count").parse().unwrap_or(0).min(100);
    let redundancy_groups = (0..count)
        .map(|i| RedundancyGroup {
            name: f.get(&format!("rg{i}_name")).trim().to_string(),
            members: members(&format!("rg{i}_members")),
        })
        .filter(|rg| !rg.name.is_empty() || !rg.members.is_empty())
        .collect();
    Service {
        id,
        name: f.get("name").to_string(),
        description: f.get("description").to_string(),
        dependencies: members("dependencies"),
        redundancy_groups,
        services: f.ids("services"),
    }
}

async fn save(state: &AppState, admin: &Admin, id: i64, body: &[u8]) -> Result<Response, UiError> {
    let service = read(&FormData::parse(body), id);
    let done = if id == 0 {
        state.actions.create_service(&actor(admin), &service).await
    } else {
        state.actions.update_service(&actor(admin), &service).await
    };
    let errors = match done {
        Ok(_) => return Ok(see_other("/configuration/services")),
        Err(e) => action_errors(e)?,
    };
    let action = if id == 0 {
        "/configuration/services/new".to_string()
    } else {
        format!("/configuration/services/{id}/edit")
    };
    form(state, &admin.0, &action, &service, &errors).await
}

async fn new_form(Admin(user): Admin, State(state): State<AppState>) -> Result<Response, UiError> {
    let action = "/configuration/services/new";
    form(
        &state,
        &user,
        action,
        &Service::default(),
        &FormErrors::default(),
    )
    .await
}

async fn create(
    admin: Admin,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, UiError> {
    save(&state, &admin, 0, &body).await
}

async fn edit_form(
    Admin(user): Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    let service = state.core.store.get_service(id).await?;
    let action = format!("/configuration/services/{id}/edit");
    form(&state, &user, &action, &service, &FormErrors::default()).await
}

async fn update(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Response, UiError> {
    state.core.store.get_service(id).await?;
    save(&state, &admin, id, &body).await
}

async fn confirm(
    Admin(user): Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    let s = state.core.store.get_service(id).await?;
    let impact = state
        .actions
        .service_delete_impact(id)
        .await
        .map_err(action_page_error)?;
    confirm_delete(
        &state,
        &user,
        "configuration",
        "service",
        &s.name,
        &impact,
        "/configuration/services",
    )
}

async fn delete(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    state
        .actions
        .delete_service(&actor(&admin), id)
        .await
        .map_err(action_page_error)?;
    Ok(see_other("/configuration/services"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_and_redundancy_groups_are_read() {
        let f = FormData::parse(
            b"name=shop&dependencies=h:1&dependencies=g:2&dependencies=x:3&rg_count=2&rg0_name=web&rg0_members=h:4&rg0_members=h:5&rg1_name=&services=7",
        );
        let s = read(&f, 0);
        assert_eq!(s.dependencies, vec![Member::Host(1), Member::HostGroup(2)]);
        assert_eq!(s.redundancy_groups.len(), 1, "the empty block is dropped");
        assert_eq!(
            s.redundancy_groups[0].members,
            vec![Member::Host(4), Member::Host(5)]
        );
        assert_eq!(s.services, vec![7]);
    }
}
