//! The one error type of the store, so callers (the REST API above all) can map each kind
//! of refusal to a status code and a field without parsing database messages.

use prophasis_model::ValidationError;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The entity failed its own validation; nothing was written.
    #[error("invalid value for {}: {}", .0.field, .0.message)]
    Invalid(#[from] ValidationError),
    /// Another entity of the same type already uses this value.
    #[error("{field}: another {entity} is already called {value:?}")]
    Duplicate {
        entity: &'static str,
        field: String,
        value: String,
    },
    #[error("{entity} {id} does not exist")]
    NotFound { entity: &'static str, id: String },
    /// The entity refers to another one that does not exist; nothing was written.
    #[error("{field}: refers to {entity} {id}, which does not exist")]
    MissingReference {
        field: String,
        entity: &'static str,
        id: String,
    },
    /// The database holds something else; it was not modified.
    #[error("{location} is not a Prophasis database ({reason}); it was left untouched. Point Prophasis at a new file or an empty database")]
    NotProphasis { location: String, reason: String },
    /// The database was written by a newer Prophasis; it was not modified.
    #[error("{location} has Prophasis schema version {found}, but this binary only knows versions up to {supported}; it was left untouched. Upgrade Prophasis to use it")]
    TooNew {
        location: String,
        found: i64,
        supported: i64,
    },
    #[error("unsupported database URL {0:?}: use sqlite://PATH, a bare file path, sqlite::memory: or postgres://USER@HOST:PORT/DB")]
    BadUrl(String),
    /// A stored value this binary cannot interpret (e.g. an unknown code).
    #[error("stored data cannot be read: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    /// The field a person should look at, when there is one (for `{"error": {"field": …}}`).
    pub fn field(&self) -> Option<&str> {
        match self {
            StoreError::Invalid(v) => Some(&v.field),
            StoreError::Duplicate { field, .. } | StoreError::MissingReference { field, .. } => {
                Some(field)
            }
            _ => None,
        }
    }

    pub(crate) fn not_found(entity: &'static str, id: impl ToString) -> Self {
        StoreError::NotFound {
            entity,
            id: id.to_string(),
        }
    }

    pub(crate) fn missing(
        field: impl Into<String>,
        entity: &'static str,
        id: impl ToString,
    ) -> Self {
        StoreError::MissingReference {
            field: field.into(),
            entity,
            id: id.to_string(),
        }
    }
}

/// Turns a unique-constraint violation into `Duplicate`; anything else stays a database
/// error. Used where the only unique constraint a statement can hit is the one named.
pub(crate) fn unique_as_duplicate(
    e: sqlx::Error,
    entity: &'static str,
    field: &str,
    value: &str,
) -> StoreError {
    if let Some(db) = e.as_database_error() {
        if db.is_unique_violation() {
            return StoreError::Duplicate {
                entity,
                field: field.to_string(),
                value: value.to_string(),
            };
        }
    }
    StoreError::Database(e)
}

/// Turns a foreign-key violation of a child row into `MissingReference`: the parent row
/// was inserted by the same transaction, so the only reference that can be missing is the
/// member's.
pub(crate) fn fk_as_missing(
    e: sqlx::Error,
    field: &str,
    entity: &'static str,
    id: impl ToString,
) -> StoreError {
    if let Some(db) = e.as_database_error() {
        if db.is_foreign_key_violation() {
            return StoreError::missing(field, entity, id);
        }
    }
    StoreError::Database(e)
}
