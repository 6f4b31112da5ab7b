//! The one layer every change to the configuration goes through. The REST API, the web UI
//! and the CLI all call these functions, so a change is validated the same way, refused
//! with the same error (naming the field), allowed only to admins, recorded in the system
//! log with who made it, and picked up by the running core without a restart.
//!
//! Reads that need no permission beyond "logged in" stay with the callers (they read the
//! store or the current catalog directly); everything that writes lives here.
//!
//! The web layers turn [`ActionError`] into their own shapes: the API into
//! `{"error": {"code", "message", "field"}}`, the UI into a message next to the field.

mod alerts;
mod users;

pub use alerts::AlertSettingsBody;
pub use users::{check_password, MIN_PASSWORD_LEN};

use prophasis_model::{
    Check, CheckId, ClassifierOverride, Host, HostGroup, HostGroupId, HostId, LogCategory,
    OverrideId, Plugin, Role, Schedule, ScheduleId, Service, ServiceId, UserId, Validate,
    ValidationError,
};
use prophasis_protocol::package::PackageError;
use prophasis_store::{DeleteImpact, StoreError};

use std::sync::Arc;

use prophasis_classifier::{EngineConfig, EnginePool};
use prophasis_model::SystemLogMessage;
use prophasis_store::{now_millis, Store};

use crate::app::Core;
use crate::plugins::{self, UploadError};
use crate::web::auth::CredentialCache;

/// Who is making a change: checked for permission and named in the system log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user: Option<UserId>,
    pub name: String,
    pub role: Role,
}

impl Actor {
    pub fn user(id: UserId, name: impl Into<String>, role: Role) -> Actor {
        Actor {
            user: Some(id),
            name: name.into(),
            role,
        }
    }

    /// The command line on the server machine: whoever can run it can edit the database
    /// directly, so it acts as an admin.
    pub fn command_line() -> Actor {
        Actor {
            user: None,
            name: "command line".into(),
            role: Role::Admin,
        }
    }

    fn require_admin(&self) -> Result<(), ActionError> {
        if self.role == Role::Admin {
            Ok(())
        } else {
            Err(ActionError::Forbidden)
        }
    }
}

/// Why a change was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("this needs an admin user; viewers may only read")]
    Forbidden,
    #[error("{0}")]
    Invalid(#[from] ValidationError),
    /// A rule about the whole system rather than one value, e.g. keeping one admin.
    #[error("{message}")]
    Conflict {
        field: Option<String>,
        message: String,
    },
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// The kind of refusal, for status codes and error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Forbidden,
    Invalid,
    Duplicate,
    NotFound,
    MissingReference,
    Conflict,
    Internal,
}

impl ActionError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ActionError::Forbidden => ErrorKind::Forbidden,
            ActionError::Invalid(_) => ErrorKind::Invalid,
            ActionError::Conflict { .. } => ErrorKind::Conflict,
            ActionError::Store(e) => match e {
                StoreError::Invalid(_) => ErrorKind::Invalid,
                StoreError::Duplicate { .. } => ErrorKind::Duplicate,
                StoreError::NotFound { .. } => ErrorKind::NotFound,
                StoreError::MissingReference { .. } => ErrorKind::MissingReference,
                _ => ErrorKind::Internal,
            },
        }
    }

    /// The field a person should look at, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            ActionError::Invalid(v) => Some(&v.field),
            ActionError::Conflict { field, .. } => field.as_deref(),
            ActionError::Store(e) => e.field(),
            ActionError::Forbidden => None,
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ActionError {
        ActionError::Invalid(ValidationError::new(field, message))
    }

    fn conflict(field: Option<&str>, message: impl Into<String>) -> ActionError {
        ActionError::Conflict {
            field: field.map(str::to_string),
            message: message.into(),
        }
    }
}

impl From<PackageError> for ActionError {
    fn from(e: PackageError) -> Self {
        ActionError::invalid("package", e.to_string())
    }
}

impl From<UploadError> for ActionError {
    fn from(e: UploadError) -> Self {
        match e {
            UploadError::Package(p) => p.into(),
            UploadError::Store(s) => s.into(),
        }
    }
}

pub type Result<T, E = ActionError> = std::result::Result<T, E>;

/// The configuration actions, bound to the running core.
#[derive(Clone)]
pub struct Actions {
    store: Arc<Store>,
    engines: Arc<EnginePool>,
    /// The running core to reload after a change; `None` for the command line, which
    /// edits the database while no core runs in its process.
    core: Option<Core>,
    credentials: Arc<CredentialCache>,
}

impl Actions {
    /// Actions on a running core. `credentials` is the API's cache of verified passwords,
    /// emptied whenever a user changes.
    pub fn new(core: Core, credentials: Arc<CredentialCache>) -> Actions {
        Actions {
            store: core.store.clone(),
            engines: core.engines.clone(),
            core: Some(core),
            credentials,
        }
    }

    /// Actions on a database with no core running in this process (the command line).
    pub fn offline(store: Arc<Store>) -> Actions {
        Actions {
            store,
            engines: Arc::new(EnginePool::new(EngineConfig::default(), 1)),
            core: None,
            credentials: Arc::default(),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Writes who changed what to the system log. Written directly rather than through
    /// the folding system log task: ten hosts added in a row are ten entries.
    async fn audit(&self, category: LogCategory, actor: &Actor, title: &str, detail: String) {
        let msg = SystemLogMessage {
            id: 0,
            time: now_millis(),
            category,
            title: title.to_string(),
            message: format!("{detail} (by {})", actor.name),
            read: true,
        };
        if let Err(e) = self.store.add_log(&msg).await {
            tracing::error!("could not record a configuration change: {e}: {title}: {detail}");
        }
    }

    /// Records the change and makes the core use the new configuration.
    async fn changed(&self, actor: &Actor, title: &str, detail: String) -> Result<()> {
        self.audit(LogCategory::System, actor, title, detail).await;
        if let Some(core) = &self.core {
            core.reload().await?;
        }
        Ok(())
    }

    /// Refuses classifier code that does not compile, naming the line, so a typo is found
    /// when it is saved rather than as `unknown` results later.
    async fn compiles(&self, field: &str, code: &str) -> Result<()> {
        let engines = self.engines.clone();
        let code = code.to_string();
        let checked = tokio::task::spawn_blocking(move || engines.with(|e| e.check(&code)))
            .await
            .map_err(|e| {
                ActionError::conflict(None, format!("the classifier check stopped: {e}"))
            })?;
        match checked {
            Ok(Ok(())) => Ok(()),
            Ok(Err(d)) => Err(ActionError::invalid(
                field,
                format!("the Lua code does not compile: {d}"),
            )),
            Err(e) => Err(ActionError::conflict(
                None,
                format!("no classifier engine is available: {e}"),
            )),
        }
    }

    // ---- hosts -------------------------------------------------------------------

    pub async fn create_host(&self, actor: &Actor, host: &Host) -> Result<Host> {
        actor.require_admin()?;
        host.validate()?;
        let id = self.store.create_host(host).await?;
        self.changed(
            actor,
            "Host added",
            format!("host {:?} ({}:{})", host.name, host.address, host.port),
        )
        .await?;
        Ok(self.store.get_host(id).await?)
    }

    /// Updates a host. An empty `auth_key` keeps the stored key, so forms and API clients
    /// that never see the key (it is masked) do not wipe it.
    pub async fn update_host(&self, actor: &Actor, host: &Host) -> Result<Host> {
        actor.require_admin()?;
        let stored = self.store.get_host(host.id).await?;
        let mut host = host.clone();
        if host.auth_key.is_empty() {
            host.auth_key = stored.auth_key.clone();
        }
        host.validate()?;
        self.store.update_host(&host).await?;
        self.changed(actor, "Host changed", format!("host {:?}", host.name))
            .await?;
        Ok(self.store.get_host(host.id).await?)
    }

    pub async fn host_delete_impact(&self, id: HostId) -> Result<DeleteImpact> {
        Ok(self.store.host_delete_impact(id).await?)
    }

    pub async fn delete_host(&self, actor: &Actor, id: HostId) -> Result<()> {
        actor.require_admin()?;
        let host = self.store.get_host(id).await?;
        self.store.delete_host(id).await?;
        if let Some(core) = &self.core {
            core.forget_host_results(id);
        }
        self.changed(
            actor,
            "Host deleted",
            format!("host {:?} and its results", host.name),
        )
        .await
    }

    // ---- host groups ---------------------------------------------------------------

    pub async fn create_host_group(&self, actor: &Actor, group: &HostGroup) -> Result<HostGroup> {
        actor.require_admin()?;
        group.validate()?;
        let id = self.store.create_host_group(group).await?;
        self.changed(
            actor,
            "Host group added",
            format!("host group {:?}", group.name),
        )
        .await?;
        Ok(self.store.get_host_group(id).await?)
    }

    pub async fn update_host_group(&self, actor: &Actor, group: &HostGroup) -> Result<HostGroup> {
        actor.require_admin()?;
        group.validate()?;
        self.store.update_host_group(group).await?;
        self.changed(
            actor,
            "Host group changed",
            format!("host group {:?}", group.name),
        )
        .await?;
        Ok(self.store.get_host_group(group.id).await?)
    }

    pub async fn host_group_delete_impact(&self, id: HostGroupId) -> Result<DeleteImpact> {
        Ok(self.store.host_group_delete_impact(id).await?)
    }

    pub async fn delete_host_group(&self, actor: &Actor, id: HostGroupId) -> Result<()> {
        actor.require_admin()?;
        let group = self.store.get_host_group(id).await?;
        self.store.delete_host_group(id).await?;
        self.changed(
            actor,
            "Host group deleted",
            format!("host group {:?}", group.name),
        )
        .await
    }

    // ---- plugins -------------------------------------------------------------------

    /// Installs an uploaded package (new plugin or new version). Agents receive it the
    /// next time one of their checks runs it.
    pub async fn install_plugin(
        &self,
        actor: &Actor,
        archive: Vec<u8>,
        signature: Option<Vec<u8>>,
    ) -> Result<Plugin> {
        actor.require_admin()?;
        if archive.is_empty() {
            return Err(ActionError::invalid(
                "package",
                "is empty: choose a plugin package (.tar.gz) made with `prophasis plugin pack`",
            ));
        }
        let plugin = plugins::install_package(&self.store, archive, signature).await?;
        self.changed(
            actor,
            "Plugin installed",
            format!("plugin {} version {}", plugin.id, plugin.version),
        )
        .await?;
        Ok(plugin)
    }

    /// Changes what a person may edit on a plugin: its classifier code and how many past
    /// results the classifier sees. The rest comes from the package.
    pub async fn update_plugin_classifier(
        &self,
        actor: &Actor,
        id: &str,
        classifier: &str,
        n_historical: u32,
    ) -> Result<Plugin> {
        actor.require_admin()?;
        let mut plugin = self.store.get_plugin(id).await?;
        plugin.classifier = classifier.to_string();
        plugin.n_historical = n_historical;
        plugin.validate()?;
        self.compiles("classifier", classifier).await?;
        self.store.update_plugin(&plugin, None).await?;
        self.changed(
            actor,
            "Classifier changed",
            format!("default classifier of plugin {id}"),
        )
        .await?;
        Ok(plugin)
    }

    pub async fn plugin_delete_impact(&self, id: &str) -> Result<DeleteImpact> {
        Ok(self.store.plugin_delete_impact(id).await?)
    }

    pub async fn delete_plugin(&self, actor: &Actor, id: &str) -> Result<()> {
        actor.require_admin()?;
        self.store.delete_plugin(id).await?;
        self.changed(
            actor,
            "Plugin deleted",
            format!("plugin {id} and its results"),
        )
        .await
    }

    // ---- checks --------------------------------------------------------------------

    pub async fn create_check(&self, actor: &Actor, check: &Check) -> Result<Check> {
        actor.require_admin()?;
        check.validate()?;
        let id = self.store.create_check(check).await?;
        self.changed(actor, "Check added", format!("check {:?}", check.name))
            .await?;
        Ok(self.store.get_check(id).await?)
    }

    pub async fn update_check(&self, actor: &Actor, check: &Check) -> Result<Check> {
        actor.require_admin()?;
        check.validate()?;
        self.store.update_check(check).await?;
        self.changed(actor, "Check changed", format!("check {:?}", check.name))
            .await?;
        Ok(self.store.get_check(check.id).await?)
    }

    pub async fn check_delete_impact(&self, id: CheckId) -> Result<DeleteImpact> {
        Ok(self.store.check_delete_impact(id).await?)
    }

    pub async fn delete_check(&self, actor: &Actor, id: CheckId) -> Result<()> {
        actor.require_admin()?;
        let check = self.store.get_check(id).await?;
        self.store.delete_check(id).await?;
        self.changed(actor, "Check deleted", format!("check {:?}", check.name))
            .await
    }

    // ---- schedules -----------------------------------------------------------------

    pub async fn create_schedule(&self, actor: &Actor, schedule: &Schedule) -> Result<Schedule> {
        actor.require_admin()?;
        schedule.validate()?;
        let id = self.store.create_schedule(schedule).await?;
        self.changed(
            actor,
            "Schedule added",
            format!("schedule {:?}", schedule.name),
        )
        .await?;
        Ok(self.store.get_schedule(id).await?)
    }

    pub async fn update_schedule(&self, actor: &Actor, schedule: &Schedule) -> Result<Schedule> {
        actor.require_admin()?;
        schedule.validate()?;
        self.store.update_schedule(schedule).await?;
        self.changed(
            actor,
            "Schedule changed",
            format!("schedule {:?}", schedule.name),
        )
        .await?;
        Ok(self.store.get_schedule(schedule.id).await?)
    }

    pub async fn schedule_delete_impact(&self, id: ScheduleId) -> Result<DeleteImpact> {
        Ok(self.store.schedule_delete_impact(id).await?)
    }

    pub async fn delete_schedule(&self, actor: &Actor, id: ScheduleId) -> Result<()> {
        actor.require_admin()?;
        let schedule = self.store.get_schedule(id).await?;
        self.store.delete_schedule(id).await?;
        self.changed(
            actor,
            "Schedule deleted",
            format!("schedule {:?}", schedule.name),
        )
        .await
    }

    // ---- services ------------------------------------------------------------------

    pub async fn create_service(&self, actor: &Actor, service: &Service) -> Result<Service> {
        actor.require_admin()?;
        service.validate()?;
        let id = self.store.create_service(service).await?;
        self.changed(
            actor,
            "Service added",
            format!("service {:?}", service.name),
        )
        .await?;
        Ok(self.store.get_service(id).await?)
    }

    pub async fn update_service(&self, actor: &Actor, service: &Service) -> Result<Service> {
        actor.require_admin()?;
        service.validate()?;
        self.store.update_service(service).await?;
        self.changed(
            actor,
            "Service changed",
            format!("service {:?}", service.name),
        )
        .await?;
        Ok(self.store.get_service(service.id).await?)
    }

    pub async fn service_delete_impact(&self, id: ServiceId) -> Result<DeleteImpact> {
        Ok(self.store.service_delete_impact(id).await?)
    }

    pub async fn delete_service(&self, actor: &Actor, id: ServiceId) -> Result<()> {
        actor.require_admin()?;
        let service = self.store.get_service(id).await?;
        self.store.delete_service(id).await?;
        self.changed(
            actor,
            "Service deleted",
            format!("service {:?}", service.name),
        )
        .await
    }

    // ---- classifier overrides ------------------------------------------------------

    pub async fn create_override(
        &self,
        actor: &Actor,
        o: &ClassifierOverride,
    ) -> Result<ClassifierOverride> {
        actor.require_admin()?;
        o.validate()?;
        self.compiles("code", &o.code).await?;
        let id = self.store.create_override(o).await?;
        self.changed(
            actor,
            "Classifier override added",
            format!("override of plugin {} for {:?}", o.plugin_id, o.target),
        )
        .await?;
        Ok(self.store.get_override(id).await?)
    }

    pub async fn update_override(
        &self,
        actor: &Actor,
        o: &ClassifierOverride,
    ) -> Result<ClassifierOverride> {
        actor.require_admin()?;
        o.validate()?;
        self.compiles("code", &o.code).await?;
        self.store.update_override(o).await?;
        self.changed(
            actor,
            "Classifier override changed",
            format!("override of plugin {} for {:?}", o.plugin_id, o.target),
        )
        .await?;
        Ok(self.store.get_override(o.id).await?)
    }

    pub async fn delete_override(&self, actor: &Actor, id: OverrideId) -> Result<()> {
        actor.require_admin()?;
        let o = self.store.get_override(id).await?;
        self.store.delete_override(id).await?;
        self.changed(
            actor,
            "Classifier override deleted",
            format!("override of plugin {} for {:?}", o.plugin_id, o.target),
        )
        .await
    }
}
