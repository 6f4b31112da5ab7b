-- Each series' open (newest) 5-minute and hourly rollup buckets live in its latest row, so
-- a result costs a write to results and to latest, and a rollups row is written only when
-- a bucket closes (a result arrives in a later bucket) or late data lands in an older one.
-- Rule: a bucket is in exactly one place. The open bucket of a series is newer than every
-- rollups row of that series and resolution, and rollups holds no row for it; readers add
-- it to what they read from rollups. NULL m5_bucket / h1_bucket: no open bucket.
ALTER TABLE latest ADD COLUMN m5_bucket INTEGER;
ALTER TABLE latest ADD COLUMN m5_min REAL;
ALTER TABLE latest ADD COLUMN m5_max REAL;
ALTER TABLE latest ADD COLUMN m5_sum REAL;
ALTER TABLE latest ADD COLUMN m5_n_value INTEGER;
ALTER TABLE latest ADD COLUMN m5_n_all INTEGER;
ALTER TABLE latest ADD COLUMN m5_worst INTEGER;
ALTER TABLE latest ADD COLUMN h1_bucket INTEGER;
ALTER TABLE latest ADD COLUMN h1_min REAL;
ALTER TABLE latest ADD COLUMN h1_max REAL;
ALTER TABLE latest ADD COLUMN h1_sum REAL;
ALTER TABLE latest ADD COLUMN h1_n_value INTEGER;
ALTER TABLE latest ADD COLUMN h1_n_all INTEGER;
ALTER TABLE latest ADD COLUMN h1_worst INTEGER;

-- Existing data: the newest stored bucket of each series (resolution 1 = 5 minutes,
-- 2 = one hour) becomes its open bucket and leaves rollups.
UPDATE latest SET (m5_bucket, m5_min, m5_max, m5_sum, m5_n_value, m5_n_all, m5_worst) =
    (SELECT bucket, min_value, max_value, sum_value, n_value, n_all, worst FROM rollups r
     WHERE r.host_id = latest.host_id AND r.plugin_pk = latest.plugin_pk AND r.resolution = 1
     ORDER BY bucket DESC LIMIT 1);
UPDATE latest SET (h1_bucket, h1_min, h1_max, h1_sum, h1_n_value, h1_n_all, h1_worst) =
    (SELECT bucket, min_value, max_value, sum_value, n_value, n_all, worst FROM rollups r
     WHERE r.host_id = latest.host_id AND r.plugin_pk = latest.plugin_pk AND r.resolution = 2
     ORDER BY bucket DESC LIMIT 1);
DELETE FROM rollups WHERE resolution = 1 AND EXISTS (SELECT 1 FROM latest l
    WHERE l.host_id = rollups.host_id AND l.plugin_pk = rollups.plugin_pk AND l.m5_bucket = rollups.bucket);
DELETE FROM rollups WHERE resolution = 2 AND EXISTS (SELECT 1 FROM latest l
    WHERE l.host_id = rollups.host_id AND l.plugin_pk = rollups.plugin_pk AND l.h1_bucket = rollups.bucket);
