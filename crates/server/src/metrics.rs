//! Counters of the server's own work, read by `/metrics`, the benchmark and the tests.
//! Plain atomics: the hot path must not take a lock to count.

use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (ms) of the lateness histogram buckets; lateness is stored − slot.
pub const LATENESS_BUCKETS_MS: [u64; 11] =
    [10, 50, 100, 250, 500, 750, 1000, 2500, 5000, 10_000, 30_000];

#[derive(Debug, Default)]
pub struct Metrics {
    /// Results classified and stored.
    pub results: AtomicU64,
    /// Results that were failures to reach or use the agent.
    pub failed_runs: AtomicU64,
    pub classification_errors: AtomicU64,
    pub slots_fired: AtomicU64,
    pub slots_skipped: AtomicU64,
    pub plugin_pushes: AtomicU64,
    pub store_batches: AtomicU64,
    pub store_errors: AtomicU64,
    /// Sum of batch write times, for the average database latency.
    pub store_micros: AtomicU64,
    lateness_buckets: [AtomicU64; LATENESS_BUCKETS_MS.len() + 1],
    lateness_sum_ms: AtomicU64,
}

impl Metrics {
    pub fn observe_lateness(&self, ms: i64) {
        let ms = ms.max(0) as u64;
        let i = LATENESS_BUCKETS_MS
            .iter()
            .position(|&b| ms <= b)
            .unwrap_or(LATENESS_BUCKETS_MS.len());
        self.lateness_buckets[i].fetch_add(1, Ordering::Relaxed);
        self.lateness_sum_ms.fetch_add(ms, Ordering::Relaxed);
    }

    /// Non-cumulative counts per bucket (the last one is "over the largest bound").
    pub fn lateness_counts(&self) -> Vec<u64> {
        self.lateness_buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect()
    }

    pub fn lateness_sum_ms(&self) -> u64 {
        self.lateness_sum_ms.load(Ordering::Relaxed)
    }

    /// Smallest bucket bound under which at least `q` of the observations fall (ms), or
    /// `None` when it is above every bound or there are none.
    pub fn lateness_quantile_bound(&self, q: f64) -> Option<u64> {
        let counts = self.lateness_counts();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen as f64 >= q * total as f64 {
                return LATENESS_BUCKETS_MS.get(i).copied();
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness_quantiles_from_buckets() {
        let m = Metrics::default();
        assert_eq!(m.lateness_quantile_bound(0.99), None);
        for _ in 0..99 {
            m.observe_lateness(30);
        }
        m.observe_lateness(4000);
        assert_eq!(m.lateness_quantile_bound(0.5), Some(50));
        assert_eq!(m.lateness_quantile_bound(0.99), Some(50));
        assert_eq!(m.lateness_quantile_bound(1.0), Some(5000));
        m.observe_lateness(-5);
        assert_eq!(m.lateness_counts()[0], 1, "negative lateness counts as 0");
        m.observe_lateness(99_999);
        assert_eq!(*m.lateness_counts().last().unwrap(), 1);
    }
}
