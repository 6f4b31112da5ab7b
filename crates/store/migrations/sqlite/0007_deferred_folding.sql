-- From this version a batch only appends to `results_recent`; `latest` (with its open
-- buckets) and `rollups` describe exactly the results below the watermark, and compaction
-- folds the recent results into them as it moves them into `results` (see
-- src/sqlite/write.rs). Until now every recent result was folded on arrival, so the recent
-- tier moves into `results` here and the watermark goes past it: everything stored is
-- below it, in `results`, and folded.
UPDATE prophasis_meta
    SET value = CAST(MAX(CAST(value AS INTEGER),
                         COALESCE((SELECT MAX(bucket) + 1 FROM results_recent), 0)) AS TEXT)
    WHERE key = 'results_compacted_before';
INSERT INTO results (host_id, plugin_pk, ts, check_id, value, message, result_type, classification)
    SELECT host_id, plugin_pk, ts, check_id, value, message, result_type, classification
    FROM results_recent WHERE true ORDER BY host_id, plugin_pk, ts
    ON CONFLICT (host_id, plugin_pk, ts) DO UPDATE SET
        check_id = excluded.check_id, value = excluded.value, message = excluded.message,
        result_type = excluded.result_type, classification = excluded.classification;
DELETE FROM results_recent;
