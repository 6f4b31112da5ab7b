-- From this version a batch only appends to `results_recent`; `latest` (with its open
-- buckets) and `rollups` describe exactly the results below the watermark, and compaction
-- folds recent results into them as it moves them into `results`, whole hours at a time
-- (see src/sqlite/write.rs).
--
-- `results` becomes clustered by hour first: a compaction then appends an hour of every
-- series at the end of the tree instead of writing into each series' own pages (10,000
-- series, 10,000 scattered pages per compaction), and retention deletes a prefix. A series
-- is read an hour at a time (one seek per hour that holds results).
CREATE TABLE results_by_hour (
    hour INTEGER NOT NULL,
    host_id INTEGER NOT NULL,
    plugin_pk INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    check_id INTEGER,
    value REAL,
    message TEXT NOT NULL,
    result_type INTEGER NOT NULL,
    classification INTEGER NOT NULL,
    PRIMARY KEY (hour, host_id, plugin_pk, ts)
) WITHOUT ROWID;

-- Until now every result was folded on arrival, so the recent tier moves too and the
-- watermark goes past it: everything stored is below it, in `results`, and folded. The
-- hour is rounded down also for times before 1970 (SQLite's division truncates).
INSERT INTO results_by_hour
    SELECT (ts - ((ts % 3600000) + 3600000) % 3600000) / 3600000, host_id, plugin_pk, ts,
           check_id, value, message, result_type, classification
    FROM results
    UNION ALL
    SELECT (ts - ((ts % 3600000) + 3600000) % 3600000) / 3600000, host_id, plugin_pk, ts,
           check_id, value, message, result_type, classification
    FROM results_recent
    ORDER BY 1, 2, 3, 4;
UPDATE prophasis_meta
    SET value = CAST(MAX(CAST(value AS INTEGER),
                         COALESCE((SELECT MAX(bucket) + 1 FROM results_recent), 0)) AS TEXT)
    WHERE key = 'results_compacted_before';
DELETE FROM results_recent;
DROP TABLE results;
ALTER TABLE results_by_hour RENAME TO results;
