//! Users: who may log in, as admin (changes everything) or viewer (looks at everything).
//! Admins add users, change roles, reset passwords and delete users; the rule that one
//! admin must remain comes from the actions layer. Every user may change their own
//! password here after giving the current one, so a stolen session alone cannot.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use minijinja::{context, Value};
use prophasis_model::Role;

use super::{action_errors, action_page_error, actor, actor_of, form_page, ok_page, FormData};
use crate::ui::session::{Admin, SessionUser};
use crate::ui::{confirm_delete, see_other, FormErrors, UiError};
use crate::web::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/configuration/users", get(list))
        .route("/configuration/users/new", get(new_form).post(create))
        .route(
            "/configuration/users/{id}/edit",
            get(edit_form).post(update),
        )
        .route(
            "/configuration/users/{id}/password",
            get(reset_form).post(reset),
        )
        .route(
            "/configuration/users/{id}/delete",
            get(confirm).post(delete),
        )
        .route(
            "/configuration/account/password",
            get(own_form).post(own_change),
        )
}

const ROLES: [(&str, &str); 2] = [
    ("viewer", "Viewer — may look at everything, change nothing"),
    ("admin", "Admin — may change the configuration and users"),
];

fn role(s: &str) -> Option<Role> {
    match s {
        "admin" => Some(Role::Admin),
        "viewer" => Some(Role::Viewer),
        _ => None,
    }
}

async fn list(user: SessionUser, State(state): State<AppState>) -> Result<Response, UiError> {
    let mut users = state.core.store.list_users().await?;
    users.sort_by(|a, b| a.name.cmp(&b.name));
    let users: Vec<Value> = users
        .iter()
        .map(|u| context! { id => u.id, name => &u.name, role => u.role.as_str(), me => u.id == user.id })
        .collect();
    ok_page(&state, &user, "config/users.html", context! { users })
}

fn user_form(
    state: &AppState,
    user: &SessionUser,
    action: &str,
    editing: bool,
    values: Value,
    errors: &FormErrors,
) -> Result<Response, UiError> {
    form_page(
        state,
        user,
        "config/user_form.html",
        errors,
        context! { action, editing, values, roles => ROLES },
    )
}

async fn new_form(Admin(user): Admin, State(state): State<AppState>) -> Result<Response, UiError> {
    let values = context! { name => "", role => "viewer" };
    let action = "/configuration/users/new";
    user_form(&state, &user, action, false, values, &FormErrors::default())
}

async fn create(
    admin: Admin,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, UiError> {
    let f = FormData::parse(&body);
    let mut errors = FormErrors::default();
    match role(f.get("role")) {
        None => errors.add("role", "choose admin or viewer"),
        Some(r) => {
            let done = state
                .actions
                .create_user(&actor(&admin), f.get("name"), r, f.get("password"))
                .await;
            match done {
                Ok(_) => return Ok(see_other("/configuration/users")),
                Err(e) => errors = action_errors(e)?,
            }
        }
    }
    // The password is not sent back: the browser would keep it in the page.
    let values = context! { name => f.get("name"), role => f.get("role") };
    let action = "/configuration/users/new";
    user_form(&state, &admin.0, action, false, values, &errors)
}

async fn edit_form(
    Admin(user): Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    let u = state.core.store.get_user(id).await?;
    let values = context! { name => &u.name, role => u.role.as_str() };
    let action = format!("/configuration/users/{id}/edit");
    user_form(&state, &user, &action, true, values, &FormErrors::default())
}

async fn update(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Response, UiError> {
    state.core.store.get_user(id).await?;
    let f = FormData::parse(&body);
    let mut errors = FormErrors::default();
    match role(f.get("role")) {
        None => errors.add("role", "choose admin or viewer"),
        Some(r) => {
            let done = state
                .actions
                .update_user(&actor(&admin), id, f.get("name"), r)
                .await;
            match done {
                Ok(_) => return Ok(see_other("/configuration/users")),
                Err(e) => errors = action_errors(e)?,
            }
        }
    }
    let values = context! { name => f.get("name"), role => f.get("role") };
    let action = format!("/configuration/users/{id}/edit");
    user_form(&state, &admin.0, &action, true, values, &errors)
}

fn password_form(
    state: &AppState,
    user: &SessionUser,
    action: &str,
    whose: &str,
    own: bool,
    errors: &FormErrors,
) -> Result<Response, UiError> {
    form_page(
        state,
        user,
        "config/password_form.html",
        errors,
        context! { action, whose, own, min => crate::actions::MIN_PASSWORD_LEN },
    )
}

async fn reset_form(
    Admin(user): Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    let u = state.core.store.get_user(id).await?;
    let action = format!("/configuration/users/{id}/password");
    password_form(
        &state,
        &user,
        &action,
        &u.name,
        false,
        &FormErrors::default(),
    )
}

/// Both password fields must match: a typo in a password nobody can read back locks the
/// user out.
fn matching(f: &FormData, errors: &mut FormErrors) {
    if f.get("password") != f.get("confirm") {
        errors.add("confirm", "does not match the new password: type it again");
    }
}

async fn reset(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Response, UiError> {
    let u = state.core.store.get_user(id).await?;
    let f = FormData::parse(&body);
    let mut errors = FormErrors::default();
    matching(&f, &mut errors);
    if errors.is_empty() {
        match state
            .actions
            .set_password(&actor(&admin), id, f.get("password"))
            .await
        {
            Ok(()) => return Ok(see_other("/configuration/users")),
            Err(e) => errors = action_errors(e)?,
        }
    }
    let action = format!("/configuration/users/{id}/password");
    password_form(&state, &admin.0, &action, &u.name, false, &errors)
}

async fn own_form(user: SessionUser, State(state): State<AppState>) -> Result<Response, UiError> {
    let action = "/configuration/account/password";
    password_form(
        &state,
        &user,
        action,
        &user.name,
        true,
        &FormErrors::default(),
    )
}

async fn own_change(
    user: SessionUser,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, UiError> {
    let f = FormData::parse(&body);
    let mut errors = FormErrors::default();
    if crate::web::auth::authenticate(&state, &user.name, f.get("current"))
        .await
        .is_err()
    {
        errors.add("current", "is not your current password");
    }
    matching(&f, &mut errors);
    if errors.is_empty() {
        match state
            .actions
            .set_password(&actor_of(&user), user.id, f.get("password"))
            .await
        {
            Ok(()) => {
                let page = ok_page(
                    &state,
                    &user,
                    "config/password_form.html",
                    context! { done => true, own => true, whose => &user.name },
                );
                return page;
            }
            Err(e) => errors = action_errors(e)?,
        }
    }
    let action = "/configuration/account/password";
    password_form(&state, &user, action, &user.name, true, &errors)
}

async fn confirm(
    Admin(user): Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    let u = state.core.store.get_user(id).await?;
    confirm_delete(
        &state,
        &user,
        "configuration",
        "user",
        &u.name,
        &Default::default(),
        "/configuration/users",
    )
}

async fn delete(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    state
        .actions
        .delete_user(&actor(&admin), id)
        .await
        .map_err(action_page_error)?;
    Ok(see_other("/configuration/users"))
}
