-- Placeholder until PostgreSQL gets its own tiers: the number is recorded so both
-- backends have the same schema version.
SELECT 1;
