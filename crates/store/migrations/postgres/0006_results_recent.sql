-- Migration 0006 splits results into two tiers on SQLite only (see
-- migrations/sqlite/0006_results_recent.sql). PostgreSQL keeps one `results` table; this
-- number is recorded so both backends have the same schema version.
SELECT 1;
