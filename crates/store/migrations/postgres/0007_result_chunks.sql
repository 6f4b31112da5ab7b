-- Results in two tiers (see src/pg_tiers.rs).
-- `results_recent`: where a batch lands. Writing there is all a batch does (no latest row,
-- no rollups): it is small (the last hour or so) and its index stays in memory.
-- `result_chunks`: one row per series and hour holding that hour's results as arrays
-- sorted by time, so 30 days of one series are ~720 rows instead of 43,200 rows scattered
-- over as many pages. Compaction (after a batch, under the ingest lock) moves whole minutes
-- from the recent tier into chunks and only then folds them into `latest` and `rollups`.
-- Rule: the watermark `results_compacted_before` (a minute number in prophasis_meta) splits
-- the tiers: a result whose minute is below it is in `result_chunks` and counted in
-- latest/rollups; any other is in `results_recent` and in neither.
CREATE TABLE results_recent (
    ts BIGINT NOT NULL,
    host_id BIGINT NOT NULL,
    check_id BIGINT,
    value DOUBLE PRECISION,
    plugin_pk INTEGER NOT NULL,
    result_type SMALLINT NOT NULL,
    classification SMALLINT NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (host_id, plugin_pk, ts)
);

-- `ts`: the chunk's times (for counts, retention and checks in SQL); `checks`: the check ids
-- it mentions (to find the chunks a check delete rewrites); `data`: the results themselves
-- in time order, encoded as `pg_tiers::ELEMENT_SQL` says (one bytea per chunk, which the
-- server sends as is; arrays cost a send function call per element). An hour of one-minute
-- results is about 3 kB: kept inline and uncompressed (the default would compress every
-- row above 2 kB, on every write and every read).
CREATE TABLE result_chunks (
    host_id BIGINT NOT NULL,
    hour BIGINT NOT NULL,
    plugin_pk INTEGER NOT NULL,
    ts BIGINT[] NOT NULL,
    checks BIGINT[] NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (host_id, plugin_pk, hour)
) WITH (toast_tuple_target = 8160);

-- Existing results are already in latest and rollups: all of them become chunks (hour =
-- floor(ts / 3,600,000), also for times before 1970) and the watermark starts after their
-- newest minute, which `latest` holds without a scan of every result. (Integer division
-- truncates towards zero: for a negative time that only moves the watermark later, still
-- above every stored row.)
INSERT INTO result_chunks (host_id, plugin_pk, hour, ts, checks, data)
SELECT host_id, plugin_pk, hour, array_agg(ts ORDER BY ts),
       COALESCE(array_agg(DISTINCT check_id) FILTER (WHERE check_id IS NOT NULL), '{}'),
       string_agg(int8send(ts)
           || set_byte('\x00'::bytea, 0, (CASE WHEN check_id IS NULL THEN 0 ELSE 1 END)
              + (CASE WHEN value IS NULL THEN 0 ELSE 2 END))
           || COALESCE(int8send(check_id), ''::bytea) || COALESCE(float8send(value), ''::bytea)
           || int2send(result_type) || int2send(classification)
           || int4send(octet_length(convert_to(message, 'UTF8'))) || convert_to(message, 'UTF8'),
           ''::bytea ORDER BY ts)
FROM (SELECT *, (ts - ((ts % 3600000) + 3600000) % 3600000) / 3600000 AS hour FROM results) r
GROUP BY host_id, plugin_pk, hour;

DROP TABLE results;

INSERT INTO prophasis_meta (key, value)
    SELECT 'results_compacted_before', CAST(COALESCE(MAX(ts) / 60000 + 1, 0) AS TEXT) FROM latest;
