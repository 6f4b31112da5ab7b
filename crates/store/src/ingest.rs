//! Turning a batch of results into the rows the store writes: deduplicated, sorted, with
//! the newest result per (host, plugin) for the `latest` table, the batch's own rollup
//! buckets, and ([`merge`]) what those buckets do to the open buckets kept in `latest`.
//!
//! This is pure Rust so both backends write exactly the same thing, and so the work that
//! can be done without the database (sorting, aggregating, deciding which bucket closes)
//! is not paid for inside the write transaction's SQL.
//!
//! # Open buckets
//! Each series keeps its newest 5-minute and hourly buckets in its `latest` row; `rollups`
//! only holds buckets older than those (migration 0005). A result in the open bucket
//! changes only the latest row; a result in a later bucket closes the open one (it is
//! written to `rollups`) and opens its own; a late result, in a bucket older than the open
//! one, is merged into `rollups` as before. So a series reporting every minute costs two
//! B-tree writes per result plus a rollup row every 5th and 60th result, not four writes.
//! The merge reads the stored latest rows first, so writers must not interleave: see the
//! crate doc on serialised ingest.

use std::collections::HashMap;

use prophasis_model::{CheckResult, Resolution, Rollup};

use crate::codes::{classification_code, resolution_code, result_type_code};

/// One results row, borrowing the message from the caller's batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row<'a> {
    pub host_id: i64,
    pub plugin_pk: i32,
    pub ts: i64,
    pub check_id: Option<i64>,
    pub value: Option<f64>,
    pub message: &'a str,
    pub result_type: i16,
    pub classification: i16,
}

/// The batch's contribution to one rollup bucket, merged into the stored bucket by an
/// upsert (min of mins, max of maxes, sums of sums and counts, worst of worsts).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Agg {
    pub host_id: i64,
    pub plugin_pk: i32,
    pub resolution: i16,
    pub bucket: i64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub sum: f64,
    pub n_value: i64,
    pub n_all: i64,
    pub worst: i16,
}

impl Agg {
    fn add(&mut self, r: &Row<'_>) {
        self.n_all += 1;
        self.worst = self.worst.max(r.classification);
        if let Some(v) = r.value {
            self.n_value += 1;
            self.sum += v;
            self.min = Some(self.min.map_or(v, |m| m.min(v)));
            self.max = Some(self.max.map_or(v, |m| m.max(v)));
        }
    }

    /// Merges another aggregate of the same bucket into this one (what the SQL upsert of
    /// `rollups` does, done here for an open bucket).
    pub fn absorb(&mut self, o: &Agg) {
        fn pick(a: Option<f64>, b: Option<f64>, f: fn(f64, f64) -> f64) -> Option<f64> {
            match (a, b) {
                (Some(a), Some(b)) => Some(f(a, b)),
                (a, b) => a.or(b),
            }
        }
        self.min = pick(self.min, o.min, f64::min);
        self.max = pick(self.max, o.max, f64::max);
        self.sum += o.sum;
        self.n_value += o.n_value;
        self.n_all += o.n_all;
        self.worst = self.worst.max(o.worst);
    }

    /// The bucket as readers get it: the average from sum and count, the worst
    /// classification by name.
    pub fn to_rollup(&self, plugin: &str, resolution: Resolution) -> crate::Result<Rollup> {
        Ok(Rollup {
            host_id: self.host_id,
            plugin_id: plugin.to_string(),
            resolution,
            bucket_start: self.bucket,
            min: self.min,
            max: self.max,
            avg: (self.n_value > 0).then(|| self.sum / self.n_value as f64),
            count: self.n_all,
            worst: crate::codes::classification_from(self.worst)?,
        })
    }
}

/// The open buckets of one series as stored in its latest row, by resolution in the order
/// of [`Resolution::ALL`] (5 minutes, one hour).
pub(crate) type OpenBuckets = [Option<Agg>; 2];

pub(crate) struct Prepared<'a> {
    /// Sorted by (host, plugin, time), at most one row per key (the last one given wins).
    pub rows: Vec<Row<'a>>,
    /// Indexes into `rows` of the newest row of each (host, plugin).
    pub latest: Vec<usize>,
    pub rollups: Vec<Agg>,
}

/// [`rows_of`] then [`prepare_rows`]: how the tests build a prepared batch.
#[cfg(test)]
pub(crate) fn prepare<'a>(
    results: &'a [CheckResult],
    plugin_pks: &HashMap<&str, i32>,
) -> Prepared<'a> {
    prepare_rows(rows_of(results, plugin_pks))
}

/// The batch as rows, in the caller's order (not yet sorted or deduplicated).
pub(crate) fn rows_of<'a>(
    results: &'a [CheckResult],
    plugin_pks: &HashMap<&str, i32>,
) -> Vec<Row<'a>> {
    results
        .iter()
        .map(|r| Row {
            host_id: r.host_id,
            plugin_pk: plugin_pks[r.plugin_id.as_str()],
            ts: r.timestamp,
            check_id: r.check_id,
            // NaN and infinities cannot be graphed or aggregated (and SQLite would turn NaN
            // into NULL anyway), so they are stored as "no value".
            value: r.value.filter(|v| v.is_finite()),
            message: &r.message,
            result_type: result_type_code(r.result_type),
            classification: classification_code(r.classification),
        })
        .collect()
}

/// Sorted by (host, plugin, time) with one row per key, the last one given winning.
pub(crate) fn sort_dedup<'a>(mut rows: Vec<Row<'a>>) -> Vec<Row<'a>> {
    // Stable sort, then keep the last of equal keys: a result given twice for the same
    // millisecond replaces the earlier one, as it would against a stored row.
    rows.sort_by_key(|r| (r.host_id, r.plugin_pk, r.ts));
    let mut deduped: Vec<Row<'a>> = Vec::with_capacity(rows.len());
    for r in rows {
        match deduped.last_mut() {
            Some(last)
                if (last.host_id, last.plugin_pk, last.ts) == (r.host_id, r.plugin_pk, r.ts) =>
            {
                *last = r
            }
            _ => deduped.push(r),
        }
    }
    deduped
}

/// [`prepare`] for rows that are already rows (PostgreSQL's compaction reads them back
/// from the recent tier): sorted, deduplicated, with their latest rows and rollups.
pub(crate) fn prepare_rows<'a>(rows: Vec<Row<'a>>) -> Prepared<'a> {
    let rows = sort_dedup(rows);

    let mut latest = Vec::new();
    for i in 0..rows.len() {
        let next_is_other_series = rows
            .get(i + 1)
            .is_none_or(|n| (n.host_id, n.plugin_pk) != (rows[i].host_id, rows[i].plugin_pk));
        if next_is_other_series {
            latest.push(i);
        }
    }

    let mut rollups = Vec::new();
    for resolution in Resolution::ALL {
        let code = resolution_code(resolution);
        let mut current: Option<Agg> = None;
        for r in &rows {
            let bucket = resolution.bucket_start(r.ts);
            let same = current.as_ref().is_some_and(|a| {
                (a.host_id, a.plugin_pk, a.bucket) == (r.host_id, r.plugin_pk, bucket)
            });
            if !same {
                if let Some(done) = current.take() {
                    rollups.push(done);
                }
                current = Some(Agg {
                    host_id: r.host_id,
                    plugin_pk: r.plugin_pk,
                    resolution: code,
                    bucket,
                    min: None,
                    max: None,
                    sum: 0.0,
                    n_value: 0,
                    n_all: 0,
                    worst: r.classification,
                });
            }
            current.as_mut().expect("set above").add(r);
        }
        if let Some(done) = current {
            rollups.push(done);
        }
    }
    Prepared {
        rows,
        latest,
        rollups,
    }
}

/// What a prepared batch writes besides its results rows.
pub(crate) struct Merged {
    /// Parallel to [`Prepared::latest`]: the open buckets each series' latest row gets.
    pub open: Vec<OpenBuckets>,
    /// Parallel to [`Prepared::latest`]: whether the series has a latest row already.
    pub exists: Vec<bool>,
    /// Buckets to merge into `rollups` (closed open buckets, the batch's own buckets older
    /// than the open one or closed within the batch), in primary key order.
    pub rollups: Vec<Agg>,
}

/// Decides, per series and resolution, what the batch's buckets do to the stored open
/// bucket (`stored`, keyed by (host, plugin); a series absent from it has none): a bucket
/// older than the open one is late data for `rollups`; the same bucket merges into it; a
/// newer one closes it (to `rollups`) and becomes the open bucket. Buckets are visited in
/// time order, so several newer buckets in one batch close one after the other.
pub(crate) fn merge(p: &Prepared<'_>, stored: &HashMap<(i64, i32), OpenBuckets>) -> Merged {
    let key = |i: usize| (p.rows[i].host_id, p.rows[i].plugin_pk);
    let mut open: Vec<OpenBuckets> = p
        .latest
        .iter()
        .map(|&i| stored.get(&key(i)).cloned().unwrap_or_default())
        .collect();
    let exists = p
        .latest
        .iter()
        .map(|&i| stored.contains_key(&key(i)))
        .collect();
    let mut rollups = Vec::new();
    for (slot_of, resolution) in Resolution::ALL.into_iter().enumerate() {
        let code = resolution_code(resolution);
        // `p.rollups` and `p.latest` are both in (host, plugin) order.
        let mut series = 0;
        for a in p.rollups.iter().filter(|a| a.resolution == code) {
            while key(p.latest[series]) != (a.host_id, a.plugin_pk) {
                series += 1;
            }
            let slot = &mut open[series][slot_of];
            match slot {
                None => *slot = Some(a.clone()),
                Some(o) if a.bucket < o.bucket => rollups.push(a.clone()),
                Some(o) if a.bucket == o.bucket => o.absorb(a),
                Some(o) => rollups.push(std::mem::replace(o, a.clone())),
            }
        }
    }
    rollups.sort_by_key(|a| (a.host_id, a.plugin_pk, a.resolution, a.bucket));
    Merged {
        open,
        exists,
        rollups,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prophasis_model::{Classification, ResultType};

    fn result(
        host: i64,
        plugin: &str,
        ts: i64,
        value: Option<f64>,
        c: Classification,
    ) -> CheckResult {
        CheckResult {
            host_id: host,
            plugin_id: plugin.into(),
            check_id: None,
            timestamp: ts,
            value,
            message: format!("{ts}"),
            result_type: ResultType::Plugin,
            classification: c,
        }
    }

    #[test]
    fn batch_is_deduplicated_and_aggregated_per_bucket() {
        use Classification::*;
        let pks = HashMap::from([("a.b", 1), ("c.d", 2)]);
        let batch = vec![
            result(1, "a.b", 60_000, Some(5.0), Ok),
            result(1, "a.b", 0, Some(1.0), Minor),
            result(1, "a.b", 60_000, Some(7.0), Ok), // replaces the first
            result(1, "a.b", 300_000, None, Critical), // next 5-minute bucket
            result(1, "c.d", 10, Some(f64::NAN), Ok),
            result(2, "a.b", 10, Some(3.0), Ok),
        ];
        let p = prepare(&batch, &pks);
        assert_eq!(p.rows.len(), 5);
        assert_eq!(p.rows[1].value, Some(7.0));
        assert_eq!(p.rows[3].value, None, "NaN is stored as no value");
        let latest: Vec<i64> = p.latest.iter().map(|i| p.rows[*i].ts).collect();
        assert_eq!(latest, vec![300_000, 10, 10]);
        let five: Vec<&Agg> = p.rollups.iter().filter(|a| a.resolution == 1).collect();
        assert_eq!(five.len(), 4);
        assert_eq!(
            (five[0].min, five[0].max, five[0].sum),
            (Some(1.0), Some(7.0), 8.0)
        );
        assert_eq!((five[0].n_value, five[0].n_all), (2, 2));
        assert_eq!(five[0].worst, classification_code(Minor));
        assert_eq!((five[1].min, five[1].n_value, five[1].n_all), (None, 0, 1));
        let hour: Vec<&Agg> = p.rollups.iter().filter(|a| a.resolution == 2).collect();
        assert_eq!(hour.len(), 3);
        assert_eq!(
            (hour[0].n_all, hour[0].worst),
            (3, classification_code(Critical))
        );
    }
}

#[cfg(test)]
mod merge_tests {
    use super::*;
    use prophasis_model::{Classification, ResultType};

    const MIN: i64 = 60_000;
    const FIVE: i64 = 5 * MIN;
    const HOUR: i64 = 60 * MIN;

    fn batch(points: &[(i64, f64)]) -> Vec<CheckResult> {
        points
            .iter()
            .map(|&(ts, v)| CheckResult {
                host_id: 1,
                plugin_id: "a.b".into(),
                check_id: None,
                timestamp: ts,
                value: Some(v),
                message: String::new(),
                result_type: ResultType::Plugin,
                classification: Classification::Ok,
            })
            .collect()
    }

    fn agg(resolution: i16, bucket: i64, values: &[f64]) -> Agg {
        let mut a = Agg {
            host_id: 1,
            plugin_pk: 7,
            resolution,
            bucket,
            min: None,
            max: None,
            sum: 0.0,
            n_value: 0,
            n_all: 0,
            worst: classification_code(Classification::Ok),
        };
        for v in values {
            a.absorb(&Agg {
                min: Some(*v),
                max: Some(*v),
                sum: *v,
                n_value: 1,
                n_all: 1,
                ..a.clone()
            });
        }
        a
    }

    fn run(points: &[(i64, f64)], stored: Option<OpenBuckets>) -> Merged {
        let results = batch(points);
        let pks = HashMap::from([("a.b", 7)]);
        let p = prepare(&results, &pks);
        let stored: HashMap<(i64, i32), OpenBuckets> =
            stored.into_iter().map(|o| ((1, 7), o)).collect();
        merge(&p, &stored)
    }

    #[test]
    fn a_new_series_opens_its_newest_buckets_and_closes_the_others() {
        let m = run(
            &[(0, 1.0), (MIN, 3.0), (FIVE, 5.0), (HOUR + FIVE, 7.0)],
            None,
        );
        assert_eq!(
            m.open,
            vec![[
                Some(agg(1, HOUR + FIVE, &[7.0])),
                Some(agg(2, HOUR, &[7.0]))
            ]]
        );
        assert_eq!(
            m.rollups,
            vec![
                agg(1, 0, &[1.0, 3.0]),
                agg(1, FIVE, &[5.0]),
                agg(2, 0, &[1.0, 3.0, 5.0])
            ]
        );
    }

    #[test]
    fn a_result_in_the_open_bucket_writes_no_rollup() {
        let stored = [Some(agg(1, FIVE, &[2.0])), Some(agg(2, 0, &[1.0, 2.0]))];
        let m = run(&[(FIVE + MIN, 4.0)], Some(stored));
        assert!(m.rollups.is_empty());
        assert_eq!(
            m.open,
            vec![[
                Some(agg(1, FIVE, &[2.0, 4.0])),
                Some(agg(2, 0, &[1.0, 2.0, 4.0]))
            ]]
        );
    }

    #[test]
    fn a_newer_bucket_closes_the_open_one_per_resolution() {
        let stored = [Some(agg(1, FIVE, &[2.0])), Some(agg(2, 0, &[2.0]))];
        let m = run(&[(2 * FIVE, 4.0)], Some(stored.clone()));
        assert_eq!(
            m.rollups,
            vec![stored[0].clone().unwrap()],
            "the hour stays open"
        );
        assert_eq!(
            m.open,
            vec![[Some(agg(1, 2 * FIVE, &[4.0])), Some(agg(2, 0, &[2.0, 4.0]))]]
        );
    }

    #[test]
    fn late_data_goes_to_rollups_and_leaves_the_open_bucket() {
        let stored = [
            Some(agg(1, 2 * HOUR, &[9.0])),
            Some(agg(2, 2 * HOUR, &[9.0])),
        ];
        // Late (two buckets), the open bucket itself, and a newer one, in one batch.
        let m = run(
            &[
                (HOUR + FIVE, 1.0),
                (0, 2.0),
                (2 * HOUR + MIN, 3.0),
                (2 * HOUR + FIVE, 4.0),
            ],
            Some(stored),
        );
        assert_eq!(
            m.rollups,
            vec![
                agg(1, 0, &[2.0]),
                agg(1, HOUR + FIVE, &[1.0]),
                agg(1, 2 * HOUR, &[9.0, 3.0]),
                agg(2, 0, &[2.0]),
                agg(2, HOUR, &[1.0]),
            ]
        );
        assert_eq!(
            m.open,
            vec![[
                Some(agg(1, 2 * HOUR + FIVE, &[4.0])),
                Some(agg(2, 2 * HOUR, &[9.0, 3.0, 4.0]))
            ]]
        );
    }

    #[test]
    fn absorb_keeps_missing_values_missing() {
        let mut a = agg(1, 0, &[]);
        a.absorb(&agg(1, 0, &[]));
        assert_eq!((a.min, a.max, a.n_value), (None, None, 0));
        a.absorb(&agg(1, 0, &[-3.0, 5.0]));
        assert_eq!(
            (a.min, a.max, a.sum, a.n_value),
            (Some(-3.0), Some(5.0), 2.0, 2)
        );
    }
}

/// The upserts both backends use to write a prepared batch; only how the rows are passed
/// (multi-row VALUES for SQLite, arrays for PostgreSQL) differs.
pub(crate) mod sql {
    pub const UPSERT_RESULTS: &str = "ON CONFLICT (host_id, plugin_pk, ts) DO UPDATE SET \
        check_id = excluded.check_id, value = excluded.value, message = excluded.message, \
        result_type = excluded.result_type, classification = excluded.classification";
    pub const INSERT_LATEST: &str = "INSERT INTO latest (host_id, plugin_pk, ts, check_id, value, message, result_type, classification, \
        m5_bucket, m5_min, m5_max, m5_sum, m5_n_value, m5_n_all, m5_worst, \
        h1_bucket, h1_min, h1_max, h1_sum, h1_n_value, h1_n_all, h1_worst)";
    /// The open buckets are always the merged ones; the result columns only change when
    /// the batch's newest result is not older than the stored one (a batch that arrives
    /// late must not replace a newer latest result).
    pub const UPSERT_LATEST: &str = "ON CONFLICT (host_id, plugin_pk) DO UPDATE SET \
        ts = CASE WHEN excluded.ts >= latest.ts THEN excluded.ts ELSE latest.ts END, \
        check_id = CASE WHEN excluded.ts >= latest.ts THEN excluded.check_id ELSE latest.check_id END, \
        value = CASE WHEN excluded.ts >= latest.ts THEN excluded.value ELSE latest.value END, \
        message = CASE WHEN excluded.ts >= latest.ts THEN excluded.message ELSE latest.message END, \
        result_type = CASE WHEN excluded.ts >= latest.ts THEN excluded.result_type ELSE latest.result_type END, \
        classification = CASE WHEN excluded.ts >= latest.ts THEN excluded.classification ELSE latest.classification END, \
        m5_bucket = excluded.m5_bucket, m5_min = excluded.m5_min, m5_max = excluded.m5_max, \
        m5_sum = excluded.m5_sum, m5_n_value = excluded.m5_n_value, m5_n_all = excluded.m5_n_all, \
        m5_worst = excluded.m5_worst, \
        h1_bucket = excluded.h1_bucket, h1_min = excluded.h1_min, h1_max = excluded.h1_max, \
        h1_sum = excluded.h1_sum, h1_n_value = excluded.h1_n_value, h1_n_all = excluded.h1_n_all, \
        h1_worst = excluded.h1_worst";
    /// The open buckets of a latest row, in the order `OpenBuckets` takes them.
    pub const OPEN_COLUMNS: &str =
        "m5_bucket, m5_min, m5_max, m5_sum, m5_n_value, m5_n_all, m5_worst, \
        h1_bucket, h1_min, h1_max, h1_sum, h1_n_value, h1_n_all, h1_worst";
    /// The prefix of the open bucket columns of one resolution (by `resolution_code`).
    pub fn open_prefix(resolution_code: i16) -> &'static str {
        if resolution_code == 1 {
            "m5"
        } else {
            "h1"
        }
    }
    pub const INSERT_ROLLUPS: &str = "INSERT INTO rollups (host_id, plugin_pk, resolution, bucket, min_value, max_value, sum_value, n_value, n_all, worst)";
    pub const UPSERT_ROLLUPS: &str = "ON CONFLICT (host_id, plugin_pk, resolution, bucket) DO UPDATE SET \
        min_value = CASE WHEN rollups.min_value IS NULL OR excluded.min_value < rollups.min_value \
            THEN excluded.min_value ELSE rollups.min_value END, \
        max_value = CASE WHEN rollups.max_value IS NULL OR excluded.max_value > rollups.max_value \
            THEN excluded.max_value ELSE rollups.max_value END, \
        sum_value = rollups.sum_value + excluded.sum_value, \
        n_value = rollups.n_value + excluded.n_value, \
        n_all = rollups.n_all + excluded.n_all, \
        worst = CASE WHEN excluded.worst > rollups.worst THEN excluded.worst ELSE rollups.worst END";
}
