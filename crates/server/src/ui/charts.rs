//! Chart data for the host page and dashboards, reduced to what a screen can show.
//!
//! The browser asks for `[from, to)` and its chart's width in pixels; the store answers
//! from raw results or rollups (whichever [`Store::series`] picks for the span), and
//! [`reduce`] keeps, per pixel-wide bucket, the minimum, maximum, mean and the worst
//! classification. So a 30-day chart is at most `width` points however many results
//! exist, and a spike inside a bucket still shows (as the min/max band).
//!
//! [`Store::series`]: prophasis_store::Store::series

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prophasis_model::{Classification, HostId, Millis};
use prophasis_store::{now_millis, Series};
use serde::{Deserialize, Serialize};

use super::reports::RangeQuery;
use super::session::SessionUser;
use super::UiError;
use crate::web::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/ui/api/hosts/{id}/series", get(series))
}

/// Narrowest and widest charts served (pixels).
pub const MIN_WIDTH: usize = 10;
pub const MAX_WIDTH: usize = 4000;

/// One input point: a raw result (min = max = mean, count 1) or a rollup.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub t: Millis,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    /// Results behind the point (weights the mean).
    pub count: i64,
    pub worst: Classification,
}

/// What the chart draws: parallel arrays, one entry per non-empty bucket.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Reduced {
    /// Bucket start, in seconds (uPlot's unit).
    pub t: Vec<f64>,
    pub min: Vec<Option<f64>>,
    pub max: Vec<Option<f64>>,
    pub mean: Vec<Option<f64>>,
    /// Worst classification in the bucket: 0 ok, 1 unknown, 2 minor, 3 major, 4 critical.
    pub worst: Vec<u8>,
    /// Results behind the chart, before reduction.
    pub results: i64,
    /// `raw`, `five_minutes` or `one_hour`.
    pub resolution: &'static str,
    /// The range asked for, in seconds: the chart spans it even where there is no data.
    pub from: f64,
    pub to: f64,
}

fn code(c: Classification) -> u8 {
    match c {
        Classification::Ok => 0,
        Classification::Unknown => 1,
        Classification::Minor => 2,
        Classification::Major => 3,
        Classification::Critical => 4,
    }
}

/// (bucket index, min, max, sum of mean×count, count with values, worst code)
type Bucket = (i64, Option<f64>, Option<f64>, f64, i64, u8);

/// Reduces time-ordered points to at most `width` buckets over `[from, to)`.
pub fn reduce(
    points: impl IntoIterator<Item = Point>,
    from: Millis,
    to: Millis,
    width: usize,
) -> Reduced {
    let width = width.clamp(MIN_WIDTH, MAX_WIDTH);
    let span = (to - from).max(1);
    let mut out = Reduced {
        from: from as f64 / 1000.0,
        to: to as f64 / 1000.0,
        ..Reduced::default()
    };
    let mut cur: Option<Bucket> = None;
    let flush = |out: &mut Reduced, b: Bucket| {
        let start = from + (b.0 as i128 * span as i128 / width as i128) as i64;
        out.t.push(start as f64 / 1000.0);
        out.min.push(b.1);
        out.max.push(b.2);
        out.mean.push((b.4 > 0).then(|| b.3 / b.4 as f64));
        out.worst.push(b.5);
    };
    for p in points {
        if p.t < from || p.t >= to {
            continue;
        }
        out.results += p.count;
        let bucket = ((p.t - from) as i128 * width as i128 / span as i128) as i64;
        if cur.is_some_and(|c| c.0 != bucket) {
            flush(&mut out, cur.take().expect("checked"));
        }
        let c = cur.get_or_insert((bucket, None, None, 0.0, 0, 0));
        if let Some(v) = p.min {
            c.1 = Some(c.1.map_or(v, |m: f64| m.min(v)));
        }
        if let Some(v) = p.max {
            c.2 = Some(c.2.map_or(v, |m: f64| m.max(v)));
        }
        if let Some(m) = p.mean {
            let n = p.count.max(1);
            c.3 += m * n as f64;
            c.4 += n;
        }
        c.5 = c.5.max(code(p.worst));
    }
    if let Some(c) = cur {
        flush(&mut out, c);
    }
    out
}

/// The store's answer as points, with its resolution's name.
pub fn points(series: Series) -> (Vec<Point>, &'static str) {
    match series {
        Series::Raw(rs) => (
            rs.into_iter()
                .map(|r| Point {
                    t: r.timestamp,
                    min: r.value,
                    max: r.value,
                    mean: r.value,
                    count: 1,
                    worst: r.classification,
                })
                .collect(),
            "raw",
        ),
        Series::FiveMinutes(rs) | Series::OneHour(rs) => {
            let name = match rs.first().map(|r| r.resolution) {
                Some(prophasis_model::Resolution::OneHour) => "one_hour",
                _ => "five_minutes",
            };
            (
                rs.into_iter()
                    .map(|r| Point {
                        t: r.bucket_start,
                        min: r.min,
                        max: r.max,
                        mean: r.avg,
                        count: r.count,
                        worst: r.worst,
                    })
                    .collect(),
                name,
            )
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct SeriesQuery {
    pub plugin: String,
    /// Pixels; a string because flattened query structs only see strings.
    pub width: Option<String>,
    #[serde(flatten)]
    pub range: RangeQuery,
}

/// Chart data of one host and plugin (JSON, see [`Reduced`]).
pub async fn chart_data(
    state: &AppState,
    host: HostId,
    plugin: &str,
    from: Millis,
    to: Millis,
    width: usize,
) -> Result<Reduced, UiError> {
    let series = state.core.store.series(host, plugin, from, to).await?;
    let (pts, resolution) = points(series);
    let mut r = reduce(pts, from, to, width);
    r.resolution = resolution;
    Ok(r)
}

async fn series(
    _user: SessionUser,
    State(state): State<AppState>,
    Path(id): Path<HostId>,
    Query(q): Query<SeriesQuery>,
) -> Result<Response, UiError> {
    let range = q.range.resolve(now_millis())?;
    let data = chart_data(
        &state,
        id,
        &q.plugin,
        range.from,
        range.to,
        q.width
            .as_deref()
            .and_then(|w| w.parse().ok())
            .unwrap_or(800),
    )
    .await?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(data)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(t: Millis, v: f64, c: Classification) -> Point {
        Point {
            t,
            min: Some(v),
            max: Some(v),
            mean: Some(v),
            count: 1,
            worst: c,
        }
    }

    #[test]
    fn a_month_of_minutes_becomes_one_point_per_pixel() {
        let minute = 60_000;
        let n = 30 * 24 * 60;
        let pts = (0..n).map(|i| {
            let c = if i == 1000 {
                Classification::Critical
            } else {
                Classification::Ok
            };
            raw(i * minute, if i == 1000 { 99.0 } else { 1.0 }, c)
        });
        let r = reduce(pts, 0, n * minute, 800);
        assert_eq!(r.t.len(), 800);
        assert_eq!(r.results, n);
        let spike = r.max.iter().position(|m| *m == Some(99.0)).unwrap();
        assert_eq!(r.worst[spike], 4, "the spike's bucket is critical");
        assert_eq!(r.min[spike], Some(1.0));
        assert_eq!(r.worst.iter().filter(|w| **w > 0).count(), 1);
    }

    #[test]
    fn means_are_weighted_and_values_outside_the_range_dropped() {
        let pts = vec![
            Point {
                t: 0,
                min: Some(0.0),
                max: Some(10.0),
                mean: Some(2.0),
                count: 3,
                worst: Classification::Ok,
            },
            Point {
                t: 1,
                min: None,
                max: None,
                mean: Some(6.0),
                count: 1,
                worst: Classification::Minor,
            },
            raw(100, 5.0, Classification::Ok),
        ];
        let r = reduce(pts, 0, 100, 10);
        assert_eq!(r.t, vec![0.0]);
        assert_eq!(r.mean, vec![Some(3.0)]);
        assert_eq!((r.min[0], r.max[0], r.worst[0]), (Some(0.0), Some(10.0), 2));
        assert_eq!(r.results, 4);
    }
}
