//! Plugins: upload a package (`.tar.gz` made by `prophasis plugin pack`, plus its detached
//! signature when agents require signed plugins), list the installed versions, show a
//! manifest, delete. Installing goes through `Actions::install_plugin`, which checks the
//! package the same way the API and CLI do.

use axum::extract::{Multipart, Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use minijinja::{context, Value};

use super::{action_errors, action_page_error, actor, form_page, ok_page};
use crate::ui::session::{Admin, SessionUser};
use crate::ui::{confirm_delete, see_other, FormErrors, UiError};
use crate::web::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/configuration/plugins", get(list).post(upload))
        .route("/configuration/plugins/{id}", get(show))
        .route(
            "/configuration/plugins/{id}/delete",
            get(confirm).post(delete),
        )
}

async fn list_page(
    state: &AppState,
    user: &SessionUser,
    errors: &FormErrors,
) -> Result<Response, UiError> {
    let mut plugins = state.core.store.list_plugins().await?;
    plugins.sort_by(|a, b| a.name.cmp(&b.name));
    let plugins: Vec<Value> = plugins
        .iter()
        .map(|p| {
            context! { id => &p.id, name => &p.name, version => p.version,
            description => &p.description, view => &p.view }
        })
        .collect();
    form_page(
        state,
        user,
        "config/plugins.html",
        errors,
        context! { plugins },
    )
}

async fn list(user: SessionUser, State(state): State<AppState>) -> Result<Response, UiError> {
    list_page(&state, &user, &FormErrors::default()).await
}

/// Reads the multipart upload; a part that breaks off is reported at the package field.
async fn read_upload(mut mp: Multipart) -> Result<(Vec<u8>, Option<Vec<u8>>), String> {
    let mut archive = Vec::new();
    let mut signature = None;
    while let Some(field) = mp
        .next_field()
        .await
        .map_err(|e| format!("the upload broke off: {e}; try again"))?
    {
        let name = field.name().unwrap_or("").to_string();
        let bytes = field
            .bytes()
            .await
            .map_err(|e| format!("the upload broke off: {e}; try again"))?;
        match name.as_str() {
            "package" => archive = bytes.to_vec(),
            "signature" if !bytes.is_empty() => signature = Some(bytes.to_vec()),
            _ => {}
        }
    }
    Ok((archive, signature))
}

async fn upload(
    admin: Admin,
    State(state): State<AppState>,
    mp: Multipart,
) -> Result<Response, UiError> {
    let errors = match read_upload(mp).await {
        Ok((archive, signature)) => {
            match state
                .actions
                .install_plugin(&actor(&admin), archive, signature)
                .await
            {
                Ok(p) => {
                    return Ok(see_other(&format!(
                        "/configuration/plugins/{}",
                        urlencode(&p.id)
                    )))
                }
                Err(e) => action_errors(e)?,
            }
        }
        Err(message) => {
            let mut e = FormErrors::default();
            e.add("package", message);
            e
        }
    };
    list_page(&state, &admin.0, &errors).await
}

/// Plugin ids are letters, digits, `.`, `_` and `-`, all safe in a path; this only guards
/// against a stored id that is not.
fn urlencode(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn show(
    user: SessionUser,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let p = state.core.store.get_plugin(&id).await?;
    let manifest = serde_json::to_string_pretty(&p.manifest).unwrap_or_default();
    ok_page(
        &state,
        &user,
        "config/plugin.html",
        context! {
            plugin => context! { id => &p.id, name => &p.name, version => p.version,
                description => &p.description, view => &p.view, n_historical => p.n_historical,
                classifier => &p.classifier, path_id => urlencode(&p.id) },
            manifest,
        },
    )
}

async fn confirm(
    Admin(user): Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let p = state.core.store.get_plugin(&id).await?;
    let impact = state
        .actions
        .plugin_delete_impact(&id)
        .await
        .map_err(action_page_error)?;
    confirm_delete(
        &state,
        &user,
        "configuration",
        "plugin",
        &p.name,
        &impact,
        &format!("/configuration/plugins/{}", urlencode(&id)),
    )
}

async fn delete(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    state
        .actions
        .delete_plugin(&actor(&admin), &id)
        .await
        .map_err(action_page_error)?;
    Ok(see_other("/configuration/plugins"))
}
