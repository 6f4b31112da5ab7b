-- Results in two tiers. A batch of 10,000 different series written into `results`
-- (clustered by series) dirties about 10,000 pages once each series has more than a page of
-- history, and WAL mode writes every dirty page at commit. Batches therefore land in
-- `results_recent`, clustered by minute (bucket = ts div 60,000) first, so a batch appends
-- near the end of one tree; the ingest path moves older minutes into `results` in series
-- order every few minutes (compaction), where a 30-day read of one series stays contiguous.
-- Rule: every row with bucket < the watermark `results_compacted_before` (in
-- prophasis_meta) is in `results`, every other row in `results_recent`; one place per row.
CREATE TABLE results_recent (
    bucket INTEGER NOT NULL,
    host_id INTEGER NOT NULL,
    plugin_pk INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    check_id INTEGER,
    value REAL,
    message TEXT NOT NULL,
    result_type INTEGER NOT NULL,
    classification INTEGER NOT NULL,
    PRIMARY KEY (bucket, host_id, plugin_pk, ts)
) WITHOUT ROWID;

-- Existing results stay where they are: the watermark starts after their newest minute.
-- `latest` holds each series' newest timestamp, so this reads one small table instead of
-- scanning every result. (Integer division truncates towards zero, which for a negative
-- time only moves the watermark later: still above every stored row.)
INSERT INTO prophasis_meta (key, value)
    SELECT 'results_compacted_before', CAST(COALESCE(MAX(ts) / 60000 + 1, 0) AS TEXT) FROM latest;
