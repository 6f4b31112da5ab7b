//! PostgreSQL's two results tiers (migration 0007, `src/pg_tiers.rs`), looked at directly:
//! after every batch each result is exactly once in `results_recent` or in a chunk of
//! `result_chunks`, on the right side of the watermark, chunks hold their own hour sorted
//! by time; and while results wait unfolded in the recent tier, every rollup, latest and
//! raw read equals a recomputation from the raw results. Compaction is set to run every
//! few minutes of data with the cut on any minute, so chunks are rewritten (the
//! watermark's hour) and late data lands on both sides of it, many times over.

mod common;

use std::collections::BTreeMap;

use common::*;
use prophasis_model::*;
use prophasis_store::Store;
use sqlx::Connection;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;

type Model = BTreeMap<(HostId, String, Millis), CheckResult>;

struct Tiers {
    recent: i64,
    chunked: i64,
    watermark: i64,
}

/// Counts both tiers and checks the tier rule and the chunks' shape.
async fn tiers(url: &str) -> Tiers {
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    let watermark: i64 = sqlx::query_scalar(
        "SELECT CAST(value AS BIGINT) FROM prophasis_meta WHERE key = 'results_compacted_before'",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    let recent: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM results_recent")
        .fetch_one(&mut c)
        .await
        .unwrap();
    let chunked: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(cardinality(ts)), 0) AS BIGINT) FROM result_chunks",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    let split = watermark * MIN;
    let misplaced: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM results_recent WHERE ts < $1) \
         + (SELECT COUNT(*) FROM result_chunks c, unnest(c.ts) t WHERE t >= $1)",
    )
    .bind(split)
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert_eq!(
        misplaced, 0,
        "rows on the wrong side of the watermark {watermark}"
    );
    // Not empty, times strictly increasing and inside the hour, at least the fixed part of
    // each result in `data` (25 bytes).
    let bad: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM result_chunks c WHERE \
         cardinality(ts) = 0 OR octet_length(data) < 25 * cardinality(ts) \
         OR EXISTS (SELECT 1 FROM unnest(c.ts) WITH ORDINALITY AS u(t, i) \
                    WHERE u.t < c.hour * $1 OR u.t >= (c.hour + 1) * $1 \
                    OR (u.i > 1 AND u.t <= c.ts[u.i - 1]))",
    )
    .bind(HOUR)
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert_eq!(bad, 0, "malformed chunks");
    c.close().await.unwrap();
    Tiers {
        recent,
        chunked,
        watermark,
    }
}

fn raw_of(model: &Model, h: HostId, p: &str) -> Vec<CheckResult> {
    model
        .values()
        .filter(|r| r.host_id == h && r.plugin_id == p)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_results_once_across_tiers_with_deferred_folding() {
    let pg = PgDb::create().await;
    let s = Store::open(&pg.url).await.unwrap();
    s.set_compaction_minutes(4, 1);
    let mut hosts = Vec::new();
    for name in ["p1", "p2", "p3"] {
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
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut model = Model::new();
    let mut stored: Vec<CheckResult> = Vec::new();
    // Not on the hour: the first compactions cut inside an hour whose chunk is then
    // rewritten by the next one.
    let start = 1_700_000_000_000 - 1_700_000_000_000 % DAY + 17 * MIN;
    let mut watermarks = Vec::new();
    let mut late_below = 0;
    let mut recent_seen = 0;
    for minute in 0..150 {
        let mut batch = Vec::new();
        for &(h, p) in &series {
            // Host 3 reports every third minute only: its series spend longer unfolded.
            if h == hosts[2] && minute % 3 != 0 {
                continue;
            }
            let ts = start + minute * MIN + rng.below(MIN as u64) as i64;
            let value = match rng.below(8) {
                0 => None,
                _ => Some(rng.below(100) as f64),
            };
            let c = Classification::ALL[rng.below(5) as usize];
            batch.push(result(h, p, ts, value, c));
        }
        if minute % 3 == 2 {
            for _ in 0..6 {
                let (h, p) = series[rng.below(series.len() as u64) as usize];
                let ts = start
                    + (minute - 1 - rng.below(50) as i64).max(0) * MIN
                    + rng.below(MIN as u64) as i64;
                let taken = model.contains_key(&(h, p.to_string(), ts))
                    || batch
                        .iter()
                        .any(|r| (r.host_id, r.plugin_id.as_str(), r.timestamp) == (h, p, ts));
                if taken {
                    continue;
                }
                if watermarks.last().is_some_and(|w| ts < w * MIN) {
                    late_below += 1;
                }
                batch.push(result(
                    h,
                    p,
                    ts,
                    Some(rng.below(100) as f64),
                    Classification::Minor,
                ));
            }
        }
        for r in &mut batch {
            if rng.below(3) == 0 {
                r.check_id = Some(chk);
            }
        }
        s.insert_results(&batch).await.unwrap();
        for r in &batch {
            model.insert((r.host_id, r.plugin_id.clone(), r.timestamp), r.clone());
        }
        stored.extend(batch);
        let t = tiers(&pg.url).await;
        assert_eq!(
            (t.recent + t.chunked) as usize,
            model.len(),
            "minute {minute}"
        );
        if t.recent > 0 && t.chunked > 0 {
            recent_seen += 1;
        }
        if watermarks.last() != Some(&t.watermark) {
            watermarks.push(t.watermark);
        }
        if minute % 10 == 7 {
            // Some series have rows in both tiers, some (host 3) may have none folded yet.
            assert_matches_raw(&s, &stored, &series).await;
        }
    }
    assert_matches_raw(&s, &stored, &series).await;
    assert!(watermarks.len() > 30, "compactions: {}", watermarks.len());
    assert!(
        late_below > 10,
        "late results below the watermark: {late_below}"
    );
    assert!(
        recent_seen > 100,
        "both tiers held rows after {recent_seen} batches"
    );

    // The newest result of every series, and the classifications health starts from,
    // whichever tier holds it.
    let mut want: Vec<(HostId, String, Millis, Classification)> = series
        .iter()
        .map(|&(h, p)| {
            let r = raw_of(&model, h, p).pop().unwrap();
            (h, p.to_string(), r.timestamp, r.classification)
        })
        .collect();
    want.sort();
    assert_eq!(latest_classification_rows(&s).await, want);
    for &h in &hosts {
        let for_host: Vec<CheckResult> = s.latest_results_for_host(h).await.unwrap();
        let want: Vec<CheckResult> = ["a.cpu", "a.mem"]
            .iter()
            .map(|p| raw_of(&model, h, p).pop().unwrap())
            .collect();
        assert_eq!(for_host, want, "host {h}");
    }

    // Replacing a compacted result and a recent one: each still once, with the new values.
    let before = tiers(&pg.url).await;
    let raw = raw_of(&model, hosts[0], "a.mem");
    let old = raw
        .iter()
        .find(|r| r.timestamp < before.watermark * MIN)
        .unwrap();
    let again: Vec<CheckResult> = [old, raw.last().unwrap()]
        .into_iter()
        .map(|r| {
            let mut r = r.clone();
            r.value = Some(-5.0);
            r.message = "replaced".into();
            r
        })
        .collect();
    s.insert_results(&again).await.unwrap();
    for r in &again {
        model.insert((r.host_id, r.plugin_id.clone(), r.timestamp), r.clone());
    }
    let after = tiers(&pg.url).await;
    assert_eq!((after.recent + after.chunked) as usize, model.len());
    for &(h, p) in &series {
        let raw = raw_of(&model, h, p);
        assert_eq!(
            s.results_range(h, p, i64::MIN / 2, i64::MAX / 2)
                .await
                .unwrap(),
            raw
        );
        for n in [1usize, 5, 61, 500] {
            assert_eq!(
                s.last_results(h, p, n as u32).await.unwrap(),
                raw[raw.len().saturating_sub(n)..].to_vec(),
                "last {n} of host {h} plugin {p}"
            );
        }
    }

    // Deleting the check keeps its results in both tiers, without the check.
    s.delete_check(chk).await.unwrap();
    for &(h, p) in &series {
        assert!(s
            .results_range(h, p, i64::MIN / 2, i64::MAX / 2)
            .await
            .unwrap()
            .iter()
            .all(|r| r.check_id.is_none()));
    }
    let t = tiers(&pg.url).await;
    assert_eq!((t.recent + t.chunked) as usize, model.len());
    s.close().await;
}
