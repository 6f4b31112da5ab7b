-- PLACEHOLDER on branch pg-tiers only: schema version 7 is PostgreSQL's result chunks
-- (migrations/postgres/0007_result_chunks.sql); SQLite's real 0007 is written on main.
-- At the merge, take main's SQLite 0007 and drop this file.
SELECT 1;
