//! `GET /metrics`: the server's own counters and the current health of every host and
//! service in the Prometheus text format, so Prometheus and Grafana users can plug
//! Prophasis in without an exporter.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use prophasis_model::Health;

use super::auth::AuthUser;
use super::AppState;
use crate::metrics::LATENESS_BUCKETS_MS;

fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
    );
}

/// Severity as a number for graphs: no_data 0, ok 1, unknown 2, degraded 3, minor 4,
/// major 5, critical 6.
fn severity(h: Health) -> usize {
    Health::ALL.iter().position(|x| *x == h).unwrap_or(0)
}

pub async fn metrics(_user: AuthUser, State(state): State<AppState>) -> impl IntoResponse {
    let m = &state.core.metrics;
    let mut out = String::with_capacity(4096);
    counter(
        &mut out,
        "prophasis_results_total",
        "Results classified and stored (checks run).",
        m.results.load(Relaxed),
    );
    counter(
        &mut out,
        "prophasis_failed_runs_total",
        "Results that were failures to reach or use the agent.",
        m.failed_runs.load(Relaxed),
    );
    counter(
        &mut out,
        "prophasis_classification_errors_total",
        "Classifier runs that failed and gave unknown.",
        m.classification_errors.load(Relaxed),
    );
    counter(
        &mut out,
        "prophasis_slots_fired_total",
        "Interval slots fired.",
        m.slots_fired.load(Relaxed),
    );
    counter(
        &mut out,
        "prophasis_slots_skipped_total",
        "Interval slots skipped for being later than the maximum lateness.",
        m.slots_skipped.load(Relaxed),
    );
    counter(
        &mut out,
        "prophasis_plugin_pushes_total",
        "Plugin packages pushed to agents.",
        m.plugin_pushes.load(Relaxed),
    );
    counter(
        &mut out,
        "prophasis_store_batches_total",
        "Result batches written.",
        m.store_batches.load(Relaxed),
    );
    counter(
        &mut out,
        "prophasis_store_errors_total",
        "Failed attempts to write a result batch.",
        m.store_errors.load(Relaxed),
    );
    let _ = writeln!(
        out,
        "# HELP prophasis_store_batch_seconds_total Time spent writing result batches.\n# TYPE prophasis_store_batch_seconds_total counter\nprophasis_store_batch_seconds_total {}",
        m.store_micros.load(Relaxed) as f64 / 1e6
    );

    let counts = m.lateness_counts();
    let _ = writeln!(out, "# HELP prophasis_lateness_seconds Time from a slot to its result being stored.\n# TYPE prophasis_lateness_seconds histogram");
    let mut cumulative = 0;
    for (i, bound) in LATENESS_BUCKETS_MS.iter().enumerate() {
        cumulative += counts[i];
        let _ = writeln!(
            out,
            "prophasis_lateness_seconds_bucket{{le=\"{}\"}} {cumulative}",
            *bound as f64 / 1000.0
        );
    }
    cumulative += counts[LATENESS_BUCKETS_MS.len()];
    let _ = writeln!(
        out,
        "prophasis_lateness_seconds_bucket{{le=\"+Inf\"}} {cumulative}"
    );
    let _ = writeln!(
        out,
        "prophasis_lateness_seconds_sum {}",
        m.lateness_sum_ms() as f64 / 1000.0
    );
    let _ = writeln!(out, "prophasis_lateness_seconds_count {cumulative}");

    let catalog = state.core.current_catalog();
    let depth = state.core.dispatch.depth().await;
    let _ = writeln!(out, "# HELP prophasis_dispatch_queue_depth Checks queued or running per host (hosts with none are left out).\n# TYPE prophasis_dispatch_queue_depth gauge");
    let mut depths: Vec<_> = depth.into_iter().collect();
    depths.sort_unstable();
    for (host, d) in depths {
        let name = catalog
            .hosts
            .get(&host)
            .map_or(String::new(), |h| label(&h.name));
        let _ = writeln!(
            out,
            "prophasis_dispatch_queue_depth{{id=\"{host}\",host=\"{name}\"}} {d}"
        );
    }
    if let Ok(counts) = state.core.store.notification_counts().await {
        let _ = writeln!(out, "# HELP prophasis_outbox_notifications Alert notifications in the outbox by delivery state (pending: waiting for an attempt; failed: every attempt failed).\n# TYPE prophasis_outbox_notifications gauge");
        for (s, n) in counts {
            let _ = writeln!(
                out,
                "prophasis_outbox_notifications{{state=\"{}\"}} {n}",
                s.as_str()
            );
        }
    }
    if let Ok(log) = state.core.store.unread_log_count().await {
        let _ = writeln!(out, "# HELP prophasis_system_log_unread Unread system log messages.\n# TYPE prophasis_system_log_unread gauge\nprophasis_system_log_unread {log}");
    }

    let health = state.core.health.read().expect("health lock");
    let _ = writeln!(out, "# HELP prophasis_host_health Current health of each host (the series with the current state is 1).\n# TYPE prophasis_host_health gauge");
    let mut hosts: Vec<_> = catalog.hosts.values().collect();
    hosts.sort_by_key(|h| h.id);
    for h in &hosts {
        let _ = writeln!(
            out,
            "prophasis_host_health{{id=\"{}\",host=\"{}\",health=\"{}\"}} 1",
            h.id,
            label(&h.name),
            health.host(h.id)
        );
    }
    let _ = writeln!(out, "# HELP prophasis_host_severity Current health of each host as a number: no_data 0, ok 1, unknown 2, degraded 3, minor 4, major 5, critical 6.\n# TYPE prophasis_host_severity gauge");
    for h in &hosts {
        let _ = writeln!(
            out,
            "prophasis_host_severity{{id=\"{}\",host=\"{}\"}} {}",
            h.id,
            label(&h.name),
            severity(health.host(h.id))
        );
    }
    let _ = writeln!(out, "# HELP prophasis_service_health Current health of each service (the series with the current state is 1).\n# TYPE prophasis_service_health gauge");
    for s in &catalog.services {
        let _ = writeln!(
            out,
            "prophasis_service_health{{id=\"{}\",service=\"{}\",health=\"{}\"}} 1",
            s.id,
            label(&s.name),
            health.service(s.id)
        );
    }
    let _ = writeln!(out, "# HELP prophasis_service_severity Current health of each service as a number (see prophasis_host_severity).\n# TYPE prophasis_service_severity gauge");
    for s in &catalog.services {
        let _ = writeln!(
            out,
            "prophasis_service_severity{{id=\"{}\",service=\"{}\"}} {}",
            s.id,
            label(&s.name),
            severity(health.service(s.id))
        );
    }
    drop(health);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_severity_is_ordered() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert!(severity(Health::Critical) > severity(Health::Major));
        assert_eq!(severity(Health::NoData), 0);
    }
}
