//! Results for graphs and scripts: one host and plugin over a time range, read from the
//! rollups for long ranges (see `Store::series` and `choose_resolution`) and reduced to
//! at most `points` buckets, each with min, max and average, so an answer stays small
//! whatever the range.

use axum::extract::State;
use axum::Json;
use prophasis_model::{CheckResult, Classification, HostId, Millis, Resolution, Rollup};
use prophasis_store::{choose_resolution, now_millis};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::QueryParams;
use crate::web::auth::AuthUser;
use crate::web::error::{ApiError, CommonErrors};
use crate::web::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(results))
}

const HOUR: Millis = 3600 * 1000;
const DAY: Millis = 24 * HOUR;
/// Longest range one request may cover (the hourly rollups' default retention).
pub const MAX_RANGE: Millis = 5 * 366 * DAY;
/// Longest range of raw results one request may ask for explicitly.
pub const MAX_RAW_RANGE: Millis = 7 * DAY;
pub const DEFAULT_POINTS: u32 = 500;
pub const MAX_POINTS: u32 = 10_000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResultsQuery {
    /// The host's id.
    pub host: HostId,
    /// The plugin's id.
    pub plugin: String,
    /// Start of the range, milliseconds since the Unix epoch (default: 24 hours before `to`).
    pub from: Option<Millis>,
    /// End of the range, exclusive (default: now).
    pub to: Option<Millis>,
    /// `auto` (the default: by span and retention), `raw`, `5m` or `1h`.
    pub resolution: Option<String>,
    /// Most buckets in the answer (default 500, at most 10000).
    pub points: Option<u32>,
}

/// One bucket of the answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Point {
    /// Start of the bucket (ms).
    pub start: Millis,
    /// Over the results with a value; absent when none had one.
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub avg: Option<f64>,
    /// Results in the bucket, with or without a value.
    pub count: i64,
    /// The worst classification in the bucket.
    pub worst: Classification,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ResultsResponse {
    pub host: HostId,
    pub plugin: String,
    pub from: Millis,
    pub to: Millis,
    /// What was read: `raw`, `5m` or `1h`.
    pub resolution: String,
    /// Width of each bucket of `points` (ms).
    pub bucket: Millis,
    pub points: Vec<Point>,
}

/// One stored row as an aggregate, whether raw or a rollup.
struct Row {
    at: Millis,
    min: Option<f64>,
    max: Option<f64>,
    sum: f64,
    with_value: i64,
    count: i64,
    worst: Classification,
}

impl From<&CheckResult> for Row {
    fn from(r: &CheckResult) -> Self {
        Row {
            at: r.timestamp,
            min: r.value,
            max: r.value,
            sum: r.value.unwrap_or(0.0),
            with_value: i64::from(r.value.is_some()),
            count: 1,
            worst: r.classification,
        }
    }
}

impl From<&Rollup> for Row {
    fn from(r: &Rollup) -> Self {
        // A rollup's average is over the results that had a value; without their number
        // the count is the best weight there is.
        let with_value = if r.avg.is_some() { r.count.max(1) } else { 0 };
        Row {
            at: r.bucket_start,
            min: r.min,
            max: r.max,
            sum: r.avg.unwrap_or(0.0) * with_value as f64,
            with_value,
            count: r.count,
            worst: r.worst,
        }
    }
}

/// Merges rows into at most `points` equal buckets over `[from, to)`.
fn reduce(rows: &[Row], from: Millis, to: Millis, points: u32) -> (Millis, Vec<Point>) {
    let span = (to - from).max(1);
    let bucket = ((span + points as i64 - 1) / points as i64).max(1);
    let mut out: Vec<(Point, f64, i64)> = Vec::new();
    for r in rows {
        let start = from + (r.at.max(from) - from) / bucket * bucket;
        if out.last().is_none_or(|(p, _, _)| p.start != start) {
            out.push((
                Point {
                    start,
                    min: None,
                    max: None,
                    avg: None,
                    count: 0,
                    worst: r.worst,
                },
                0.0,
                0,
            ));
        }
        let (p, sum, n) = out.last_mut().expect("just pushed");
        p.min = match (p.min, r.min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        p.max = match (p.max, r.max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        p.count += r.count;
        p.worst = p.worst.max(r.worst);
        *sum += r.sum;
        *n += r.with_value;
    }
    let points = out
        .into_iter()
        .map(|(mut p, sum, n)| {
            p.avg = (n > 0).then(|| sum / n as f64);
            p
        })
        .collect();
    (bucket, points)
}

/// Results of one host and plugin over a time range, reduced to at most `points` buckets.
#[utoipa::path(get, path = "/api/v1/results", tag = "results",
    params(ResultsQuery),
    responses((status = 200, body = ResultsResponse), CommonErrors))]
async fn results(
    _user: AuthUser,
    State(state): State<AppState>,
    QueryParams(q): QueryParams<ResultsQuery>,
) -> Result<Json<ResultsResponse>, ApiError> {
    let to = q.to.unwrap_or_else(now_millis);
    let from = q.from.unwrap_or(to.saturating_sub(DAY));
    if from >= to {
        return Err(ApiError::invalid("from", "must be before `to`"));
    }
    if to.saturating_sub(from) > MAX_RANGE {
        return Err(ApiError::invalid(
            "from",
            "the range may span at most 5 years: ask for a shorter one",
        ));
    }
    let points = q.points.unwrap_or(DEFAULT_POINTS);
    if points == 0 || points > MAX_POINTS {
        return Err(ApiError::invalid(
            "points",
            format!("must be 1 to {MAX_POINTS}"),
        ));
    }
    let store = &state.core.store;
    store.get_host(q.host).await?;
    store.get_plugin(&q.plugin).await?;
    let resolution = match q.resolution.as_deref().unwrap_or("auto") {
        "auto" => choose_resolution(from, to, now_millis(), &store.retention()),
        "raw" => {
            if to - from > MAX_RAW_RANGE {
                return Err(ApiError::invalid(
                    "resolution",
                    "raw results may cover at most 7 days: use auto, 5m or 1h for longer ranges",
                ));
            }
            None
        }
        "5m" => Some(Resolution::FiveMinutes),
        "1h" => Some(Resolution::OneHour),
        _ => {
            return Err(ApiError::invalid(
                "resolution",
                "must be auto, raw, 5m or 1h",
            ))
        }
    };
    let rows: Vec<Row> = match resolution {
        None => store
            .results_range(q.host, &q.plugin, from, to)
            .await?
            .iter()
            .map(Row::from)
            .collect(),
        Some(r) => store
            .rollups_range(q.host, &q.plugin, r, from, to)
            .await?
            .iter()
            .map(Row::from)
            .collect(),
    };
    let (bucket, points) = reduce(&rows, from, to, points);
    Ok(Json(ResultsResponse {
        host: q.host,
        plugin: q.plugin,
        from,
        to,
        resolution: match resolution {
            None => "raw",
            Some(Resolution::FiveMinutes) => "5m",
            Some(Resolution::OneHour) => "1h",
        }
        .to_string(),
        bucket,
        points,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(at: Millis, v: Option<f64>, c: Classification) -> Row {
        Row {
            at,
            min: v,
            max: v,
            sum: v.unwrap_or(0.0),
            with_value: i64::from(v.is_some()),
            count: 1,
            worst: c,
        }
    }

    #[test]
    fn buckets_keep_min_max_avg_and_the_worst() {
        use Classification::*;
        let rows = vec![
            row(0, Some(1.0), Ok),
            row(4, Some(5.0), Major),
            row(5, None, Ok),
            row(9, Some(3.0), Ok),
            row(25, Some(7.0), Minor),
        ];
        let (bucket, pts) = reduce(&rows, 0, 30, 3);
        assert_eq!(bucket, 10);
        assert_eq!(pts.len(), 2, "an empty bucket is left out: {pts:?}");
        assert_eq!(
            (
                pts[0].start,
                pts[0].min,
                pts[0].max,
                pts[0].avg,
                pts[0].count,
                pts[0].worst
            ),
            (0, Some(1.0), Some(5.0), Some(3.0), 4, Major)
        );
        assert_eq!(
            (pts[1].start, pts[1].avg, pts[1].worst),
            (20, Some(7.0), Minor)
        );
        // Never more buckets than asked for.
        let many: Vec<Row> = (0..1000).map(|i| row(i, Some(i as f64), Ok)).collect();
        assert!(reduce(&many, 0, 1000, 7).1.len() <= 7);
    }
}
