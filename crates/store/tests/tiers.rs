//! Both backends keep the newest minutes of results in `results_recent` and move older
//! minutes into `result_chunks`, one row per series and hour (compaction, after a batch).
//! Every reader, delete and count must see each result exactly once whichever tier holds
//! it, also while compaction moves rows between batches. The same case runs on both
//! backends (SQLite's tiers are also looked at directly here; PostgreSQL's in
//! pg_tiers.rs). Compaction is set to run every two minutes of data, so it happens dozens
//! of times here.

mod common;

use std::collections::BTreeMap;

use common::*;
use prophasis_model::*;
use prophasis_store::{Retention, Store};
use sqlx::Connection;

const MIN: i64 = 60_000;
const DAY: i64 = 24 * 60 * MIN;

/// What the store must hold: one result per (host, plugin, ms).
type Model = BTreeMap<(HostId, String, Millis), CheckResult>;

fn raw_of(model: &Model, h: HostId, p: &str) -> Vec<CheckResult> {
    model
        .values()
        .filter(|r| r.host_id == h && r.plugin_id == p)
        .cloned()
        .collect()
}

/// Reads of every series, whole and in windows (which cross the tier boundary, wherever
/// it is), and the classifier history, against the model.
async fn assert_reads(s: &Store, model: &Model, series: &[(HostId, &str)], rng: &mut Rng) {
    for &(h, p) in series {
        let raw = raw_of(model, h, p);
        assert_eq!(
            s.results_range(h, p, i64::MIN / 2, i64::MAX / 2)
                .await
                .unwrap(),
            raw,
            "all of host {h} plugin {p}"
        );
        if let (Some(first), Some(last)) = (raw.first(), raw.last()) {
            for _ in 0..4 {
                let span = (last.timestamp - first.timestamp + 1) as u64;
                let a = first.timestamp + rng.below(span) as i64;
                let b = first.timestamp + rng.below(span) as i64 + 1;
                let (from, to) = (a.min(b), a.max(b));
                let want: Vec<CheckResult> = raw
                    .iter()
                    .filter(|r| r.timestamp >= from && r.timestamp < to)
                    .cloned()
                    .collect();
                assert_eq!(
                    s.results_range(h, p, from, to).await.unwrap(),
                    want,
                    "host {h} plugin {p} [{from}, {to})"
                );
            }
        }
        for n in [1usize, 7, 40, 10_000] {
            let want = raw[raw.len().saturating_sub(n)..].to_vec();
            assert_eq!(
                s.last_results(h, p, n as u32).await.unwrap(),
                want,
                "last {n} of host {h} plugin {p}"
            );
        }
    }
    // The newest result of each series, per host and for all hosts (health at startup).
    let mut hosts: Vec<HostId> = series.iter().map(|(h, _)| *h).collect();
    hosts.dedup();
    let mut classifications = Vec::new();
    for h in hosts {
        let mut want: Vec<CheckResult> = Vec::new();
        for &(_, p) in series.iter().filter(|(sh, _)| *sh == h) {
            if let Some(r) = raw_of(model, h, p).pop() {
                classifications.push((h, p.to_string(), r.timestamp, r.classification));
                want.push(r);
            }
        }
        want.sort_by(|a, b| a.plugin_id.cmp(&b.plugin_id));
        assert_eq!(
            s.latest_results_for_host(h).await.unwrap(),
            want,
            "latest of host {h}"
        );
    }
    classifications.sort();
    assert_eq!(
        latest_classification_rows(s).await,
        classifications,
        "latest classifications"
    );
}

/// Rollups over windows that start and end inside buckets (whole buckets come back),
/// against a recomputation from the stored results: the buckets being folded at the
/// moment, in the recent tier, or long folded all count alike.
async fn assert_rollup_windows(
    s: &Store,
    stored: &[CheckResult],
    series: &[(HostId, &str)],
    rng: &mut Rng,
) {
    for &(h, p) in series {
        let mine: Vec<&CheckResult> = stored
            .iter()
            .filter(|r| r.host_id == h && r.plugin_id == p)
            .collect();
        let (Some(first), Some(last)) = (
            mine.iter().map(|r| r.timestamp).min(),
            mine.iter().map(|r| r.timestamp).max(),
        ) else {
            continue;
        };
        for resolution in Resolution::ALL {
            for _ in 0..3 {
                let span = (last - first + 1) as u64;
                let from = first + rng.below(span) as i64;
                let to = from + 1 + rng.below(span) as i64;
                let in_window: Vec<CheckResult> = mine
                    .iter()
                    .filter(|r| {
                        let b = resolution.bucket_start(r.timestamp);
                        b >= resolution.bucket_start(from) && b < to
                    })
                    .map(|r| (*r).clone())
                    .collect();
                assert_eq!(
                    s.rollups_range(h, p, resolution, from, to).await.unwrap(),
                    rollups_from_raw(&in_window, h, p, resolution),
                    "{resolution:?} rollups of host {h} plugin {p} [{from}, {to})"
                );
            }
        }
    }
}

/// Rows in each SQLite tier and the watermark, read beside the store.
struct Tiers {
    old: i64,
    recent: i64,
    watermark: i64,
}

async fn tiers(url: &str) -> Tiers {
    let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
    let old = sqlx::query_scalar("SELECT COALESCE(SUM(n), 0) FROM result_chunks")
        .fetch_one(&mut c)
        .await
        .unwrap();
    let recent = sqlx::query_scalar("SELECT COUNT(*) FROM results_recent")
        .fetch_one(&mut c)
        .await
        .unwrap();
    let watermark: String = sqlx::query_scalar(
        "SELECT value FROM prophasis_meta WHERE key = 'results_compacted_before'",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    // The tier rule itself: nothing below the watermark in the recent tier, no chunk of an
    // hour that starts at or above it.
    let misplaced: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM results_recent WHERE bucket < CAST($1 AS INTEGER)) \
         + (SELECT COUNT(*) FROM result_chunks WHERE hour * 60 >= CAST($1 AS INTEGER))",
    )
    .bind(&watermark)
    .fetch_one(&mut c)
    .await
    .unwrap();
    c.close().await.unwrap();
    assert_eq!(misplaced, 0, "rows in the wrong tier");
    Tiers {
        old,
        recent,
        watermark: watermark.parse().unwrap(),
    }
}

fn count(model: &Model, f: impl Fn(&CheckResult) -> bool) -> i64 {
    model.values().filter(|r| f(r)).count() as i64
}

/// `sqlite`: the store's SQLite URL, to look at the tiers directly (None on PostgreSQL).
async fn every_result_once_across_tiers(s: &Store, sqlite: Option<&str>) {
    s.set_compaction_minutes(3, 1);
    let mut hosts = Vec::new();
    for name in ["t1", "t2", "t3"] {
        hosts.push(s.create_host(&host(name)).await.unwrap());
    }
    for p in ["a.cpu", "a.mem"] {
        s.put_plugin(&plugin(p), &package()).await.unwrap();
    }
    let chk = s
        .create_check(&check("c", hosts.clone(), &["a.cpu", "a.mem"]))
        .await
        .unwrap();
    let series: Vec<(HostId, &str)> = hosts
        .iter()
        .flat_map(|h| [(*h, "a.cpu"), (*h, "a.mem")])
        .collect();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut model = Model::new();
    let mut stored: Vec<CheckResult> = Vec::new();
    let start = 1_700_000_000_000 - 1_700_000_000_000 % DAY;
    let mut watermarks = Vec::new();
    let mut late_below_watermark = 0;

    // As a live server writes: each batch one minute of every series (at odd ms), and now
    // and then late results from up to 40 minutes back, some of them already compacted.
    for minute in 0..90 {
        let mut batch = Vec::new();
        for &(h, p) in &series {
            let ts = start + minute * MIN + rng.below(MIN as u64) as i64;
            batch.push(result(
                h,
                p,
                ts,
                Some(rng.below(100) as f64),
                Classification::Ok,
            ));
        }
        if minute % 4 == 3 {
            for _ in 0..5 {
                let (h, p) = series[rng.below(series.len() as u64) as usize];
                let back = 1 + rng.below(40) as i64;
                let ts = start + (minute - back).max(0) * MIN + rng.below(MIN as u64) as i64;
                if model.contains_key(&(h, p.to_string(), ts))
                    || batch
                        .iter()
                        .any(|r| (r.host_id, r.plugin_id.as_str(), r.timestamp) == (h, p, ts))
                {
                    continue;
                }
                if watermarks.last().is_some_and(|w| ts < w * MIN) {
                    late_below_watermark += 1;
                }
                let c = Classification::ALL[rng.below(5) as usize];
                batch.push(result(h, p, ts, Some(rng.below(100) as f64), c));
            }
        }
        for r in &mut batch {
            if rng.below(2) == 0 {
                r.check_id = Some(chk);
            }
        }
        s.insert_results(&batch).await.unwrap();
        for r in &batch {
            model.insert((r.host_id, r.plugin_id.clone(), r.timestamp), r.clone());
        }
        stored.extend(batch);
        if let Some(url) = sqlite {
            let t = tiers(url).await;
            assert_eq!((t.old + t.recent) as usize, model.len());
            if watermarks.last() != Some(&t.watermark) {
                watermarks.push(t.watermark);
            }
        }
        if minute % 10 == 9 {
            assert_reads(s, &model, &series, &mut rng).await;
            assert_matches_raw(s, &stored, &series).await;
            assert_rollup_windows(s, &stored, &series, &mut rng).await;
        }
    }
    assert_reads(s, &model, &series, &mut rng).await;
    assert_matches_raw(s, &stored, &series).await;
    assert_rollup_windows(s, &stored, &series, &mut rng).await;
    if let Some(url) = sqlite {
        // Started at 0, then one compaction every two minutes of data.
        assert!(watermarks.len() > 20, "compactions: {watermarks:?}");
        assert!(
            late_below_watermark > 5,
            "late results below the watermark: {late_below_watermark}"
        );
        let t = tiers(url).await;
        assert!(t.old > 0 && t.recent > 0, "both tiers hold rows");
    }

    // A result given again for the same ms replaces it, wherever it is: one long compacted,
    // one still recent.
    let newest = model.keys().map(|k| k.2).max().unwrap();
    let raw = raw_of(&model, hosts[1], "a.cpu");
    let early = raw.iter().find(|r| r.timestamp >= start + 5 * MIN).unwrap();
    let again: Vec<CheckResult> = [early, raw.last().unwrap()]
        .into_iter()
        .map(|r| {
            let mut r = r.clone();
            r.value = Some(1234.0);
            r.message = "given again".into();
            r.classification = Classification::Critical;
            r
        })
        .collect();
    s.insert_results(&again).await.unwrap();
    for r in &again {
        model.insert((r.host_id, r.plugin_id.clone(), r.timestamp), r.clone());
    }
    if let Some(url) = sqlite {
        let t = tiers(url).await;
        assert_eq!((t.old + t.recent) as usize, model.len(), "no duplicate");
    }
    assert_reads(s, &model, &series, &mut rng).await;

    // Delete impact counts see both tiers.
    for &h in &hosts {
        let impact = s.host_delete_impact(h).await.unwrap();
        assert_eq!(
            impact.0["results"],
            count(&model, |r| r.host_id == h),
            "host {h}"
        );
    }
    for p in ["a.cpu", "a.mem"] {
        let impact = s.plugin_delete_impact(p).await.unwrap();
        assert_eq!(
            impact.0["results"],
            count(&model, |r| r.plugin_id == p),
            "plugin {p}"
        );
    }

    // Deleting the check keeps its results in both tiers, without the check.
    s.delete_check(chk).await.unwrap();
    for r in model.values_mut() {
        r.check_id = None;
    }
    assert_reads(s, &model, &series, &mut rng).await;

    // Retention with its raw cutoff inside the recent tier: every chunk goes, and the older
    // part of the recent tier.
    let cutoff = newest - 2 * MIN;
    s.set_retention(Retention {
        raw_days: 1,
        five_minute_days: 400,
        hourly_days: 400,
    });
    let report = s.apply_retention(cutoff + DAY).await.unwrap();
    assert_eq!(
        report.results as i64,
        count(&model, |r| r.timestamp < cutoff)
    );
    model.retain(|k, _| k.2 >= cutoff);
    assert!(!model.is_empty());
    assert_reads(s, &model, &series, &mut rng).await;
    if let Some(url) = sqlite {
        let t = tiers(url).await;
        assert_eq!((t.old, t.recent as usize), (0, model.len()));
    }

    // Deleting a plugin, then a host, takes their rows from both tiers; the rest stays.
    s.delete_plugin("a.mem").await.unwrap();
    model.retain(|k, _| k.1 != "a.mem");
    s.delete_host(hosts[0]).await.unwrap();
    model.retain(|k, _| k.0 != hosts[0]);
    let left: Vec<(HostId, &str)> = series
        .iter()
        .copied()
        .filter(|&(h, p)| p != "a.mem" && h != hosts[0])
        .collect();
    assert_reads(s, &model, &left, &mut rng).await;
    assert_eq!(
        s.plugin_delete_impact("a.cpu").await.unwrap().0["results"],
        model.len() as i64
    );
    if let Some(url) = sqlite {
        let t = tiers(url).await;
        assert_eq!((t.old + t.recent) as usize, model.len());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_every_result_once_across_tiers() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let s = Store::open(&url).await.unwrap();
    every_result_once_across_tiers(&s, Some(&url)).await;
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_every_result_once_across_tiers() {
    let pg = PgDb::create().await;
    let s = Store::open(&pg.url).await.unwrap();
    every_result_once_across_tiers(&s, None).await;
    s.close().await;
}

/// The tier watermark (a minute number) read beside the store, on either backend.
async fn watermark_of(url: &str) -> i64 {
    let sql = "SELECT value FROM prophasis_meta WHERE key = 'results_compacted_before'";
    let v: String = if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
    };
    v.parse().unwrap()
}

/// A result stamped a year ahead (an agent with a wrong clock) must not carry the
/// watermark past the present: the results that follow it stay recent, and every read
/// still sees all of them.
async fn a_result_from_the_future_leaves_the_watermark_at_now(s: &Store, url: &str) {
    s.set_compaction_minutes(3, 1);
    let h = s.create_host(&host("f")).await.unwrap();
    s.put_plugin(&plugin("a.cpu"), &package()).await.unwrap();
    let now = prophasis_store::now_millis();
    let mut model: Vec<CheckResult> = Vec::new();
    let put = async |ts: Millis, value: f64| {
        let r = result(h, "a.cpu", ts, Some(value), Classification::Ok);
        s.insert_results(std::slice::from_ref(&r)).await.unwrap();
        r
    };
    for m in (20..=30).rev() {
        model.push(put(now - m * MIN, m as f64).await);
    }
    let before = watermark_of(url).await;
    assert!(before > (now - 30 * MIN) / MIN, "compaction ran: {before}");
    let ahead = now + 365 * DAY;
    model.push(put(ahead, -1.0).await);
    for m in (1..=10).rev() {
        model.push(put(now - m * MIN, m as f64).await);
    }
    let after = watermark_of(url).await;
    let now_minute = prophasis_store::now_millis() / MIN;
    assert!(
        after < now_minute && after > (now - 10 * MIN) / MIN,
        "watermark {after} moved with the recent results but not up to now ({now_minute})"
    );
    model.sort_by_key(|r| r.timestamp);
    assert_eq!(
        s.results_range(h, "a.cpu", now - DAY, ahead + 1)
            .await
            .unwrap(),
        model
    );
    assert_eq!(
        s.latest_result(h, "a.cpu").await.unwrap().as_ref(),
        model.last()
    );
    let hours = s
        .rollups_range(h, "a.cpu", Resolution::OneHour, ahead - MIN, ahead + MIN)
        .await
        .unwrap();
    assert_eq!(
        (hours.len(), hours[0].count, hours[0].min),
        (1, 1, Some(-1.0))
    );
}

#[tokio::test]
async fn sqlite_a_result_from_the_future_leaves_the_watermark_at_now() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let s = Store::open(&url).await.unwrap();
    a_result_from_the_future_leaves_the_watermark_at_now(&s, &url).await;
    s.close().await;
}

#[tokio::test]
async fn postgres_a_result_from_the_future_leaves_the_watermark_at_now() {
    let pg = PgDb::create().await;
    let s = Store::open(&pg.url).await.unwrap();
    a_result_from_the_future_leaves_the_watermark_at_now(&s, &pg.url).await;
    s.close().await;
}
