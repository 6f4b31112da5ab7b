//! Turning a batch of results into the rows the store writes: deduplicated, sorted, with
//! the newest result per (host, plugin) for the `latest` table and the batch's own rollups.
//!
//! This is pure Rust so both backends write exactly the same thing, and so the work that
//! can be done without the database (sorting, aggregating) is not paid for inside the
//! write transaction's SQL.

use std::collections::HashMap;

use prophasis_model::{CheckResult, Resolution};

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

pub(crate) struct Prepared<'a> {
    /// Sorted by (host, plugin, time), at most one row per key (the last one given wins).
    pub rows: Vec<Row<'a>>,
    /// Indexes into `rows` of the newest row of each (host, plugin).
    pub latest: Vec<usize>,
    pub rollups: Vec<Agg>,
}

pub(crate) fn prepare<'a>(
    results: &'a [CheckResult],
    plugin_pks: &HashMap<&str, i32>,
) -> Prepared<'a> {
    let mut rows: Vec<Row<'a>> = results
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
        .collect();
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
    let rows = deduped;

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
            let a = current.as_mut().expect("set above");
            a.n_all += 1;
            a.worst = a.worst.max(r.classification);
            if let Some(v) = r.value {
                a.n_value += 1;
                a.sum += v;
                a.min = Some(a.min.map_or(v, |m| m.min(v)));
                a.max = Some(a.max.map_or(v, |m| m.max(v)));
            }
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

/// The upserts both backends use to write a prepared batch; only how the rows are passed
/// (multi-row VALUES for SQLite, arrays for PostgreSQL) differs.
pub(crate) mod sql {
    pub const INSERT_RESULTS: &str = "INSERT INTO results (host_id, plugin_pk, ts, check_id, value, message, result_type, classification)";
    pub const UPSERT_RESULTS: &str = "ON CONFLICT (host_id, plugin_pk, ts) DO UPDATE SET \
        check_id = excluded.check_id, value = excluded.value, message = excluded.message, \
        result_type = excluded.result_type, classification = excluded.classification";
    pub const INSERT_LATEST: &str = "INSERT INTO latest (host_id, plugin_pk, ts, check_id, value, message, result_type, classification)";
    /// A batch that arrives late must not replace a newer latest result.
    pub const UPSERT_LATEST: &str = "ON CONFLICT (host_id, plugin_pk) DO UPDATE SET \
        ts = excluded.ts, check_id = excluded.check_id, value = excluded.value, message = excluded.message, \
        result_type = excluded.result_type, classification = excluded.classification \
        WHERE excluded.ts >= latest.ts";
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
