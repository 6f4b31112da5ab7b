//! Storage for Prophasis: one API over SQLite (embedded default) and PostgreSQL.
