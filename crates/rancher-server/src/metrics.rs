//! Counters for `/metrics`, in the Prometheus text format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The service's counters. Gauges that live in the store (pending requests) are read when scraped.
#[derive(Debug, Default)]
pub struct Metrics {
    decisions_approve: AtomicU64,
    decisions_deny: AtomicU64,
    executions_succeeded: AtomicU64,
    executions_failed: AtomicU64,
    webhook_deliveries: AtomicU64,
    webhook_failures: AtomicU64,
    rancher_calls: AtomicU64,
    rancher_micros: AtomicU64,
    http_requests: AtomicU64,
    grants_revoked: AtomicU64,
    grant_revocation_failures: AtomicU64,
    connections_open: AtomicU64,
    connections_refused: AtomicU64,
    webhook_dead_letters: AtomicU64,
}

/// The grant gauges, read from the store when scraped: active and overdue grants, and how long the oldest overdue
/// one has waited (alert on it: an overdue grant is access that should have ended).
pub fn render_grants(active: u64, overdue: u64, oldest_overdue_secs: u64) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# HELP rancher_access_grants Time-bound grants not yet revoked, by status.\n# TYPE rancher_access_grants gauge");
    let _ = writeln!(
        s,
        "rancher_access_grants{{status=\"active\"}} {active}\nrancher_access_grants{{status=\"overdue\"}} {overdue}"
    );
    let _ = writeln!(
        s,
        "# HELP rancher_access_grant_overdue_seconds How long the oldest overdue grant is past its due time (0: none).\n# TYPE rancher_access_grant_overdue_seconds gauge\nrancher_access_grant_overdue_seconds {oldest_overdue_secs}"
    );
    s
}

impl Metrics {
    /// A revocation pass revoked `revoked` grants and failed `failed` attempts.
    pub fn revocations(&self, revoked: u64, failed: u64) {
        self.grants_revoked.fetch_add(revoked, Ordering::Relaxed);
        self.grant_revocation_failures.fetch_add(failed, Ordering::Relaxed);
    }

    /// A decision was recorded.
    pub fn decision(&self, approve: bool) {
        if approve {
            &self.decisions_approve
        } else {
            &self.decisions_deny
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// An execution finished.
    pub fn execution(&self, succeeded: bool) {
        if succeeded {
            &self.executions_succeeded
        } else {
            &self.executions_failed
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// A webhook delivery was acknowledged (`ok`) or failed.
    pub fn webhook(&self, ok: bool) {
        if ok {
            &self.webhook_deliveries
        } else {
            &self.webhook_failures
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// A Rancher round trip (identity check, login, execution) took `d`.
    pub fn rancher_call(&self, d: Duration) {
        self.rancher_calls.fetch_add(1, Ordering::Relaxed);
        self.rancher_micros.fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// A connection was admitted.
    pub fn connection_opened(&self) {
        self.connections_open.fetch_add(1, Ordering::Relaxed);
    }

    /// An admitted connection closed.
    pub fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Ordering::Relaxed);
    }

    /// A connection was refused over a cap.
    pub fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// A webhook event was given up on and dead-lettered.
    pub fn webhook_dead_letter(&self) {
        self.webhook_dead_letters.fetch_add(1, Ordering::Relaxed);
    }

    /// Webhook events dead-lettered by this process.
    pub fn webhook_dead_letters(&self) -> u64 {
        self.webhook_dead_letters.load(Ordering::Relaxed)
    }

    /// An HTTP request arrived.
    pub fn http_request(&self) {
        self.http_requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Webhook deliveries so far (acknowledged, failed).
    pub fn webhook_counts(&self) -> (u64, u64) {
        (
            self.webhook_deliveries.load(Ordering::Relaxed),
            self.webhook_failures.load(Ordering::Relaxed),
        )
    }

    /// The Prometheus text exposition, with the store's request counts by state.
    pub fn render(&self, requests_by_state: &[(&str, u64)]) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut s = String::new();
        let _ = writeln!(s, "# HELP rancher_access_requests Approval requests in the store, by state.\n# TYPE rancher_access_requests gauge");
        for (state, n) in requests_by_state {
            let _ = writeln!(s, "rancher_access_requests{{state=\"{state}\"}} {n}");
        }
        let pending = requests_by_state
            .iter()
            .find(|(st, _)| *st == "pending")
            .map(|(_, n)| *n)
            .unwrap_or(0);
        let _ = writeln!(s, "# HELP rancher_access_pending_requests Requests waiting for approval.\n# TYPE rancher_access_pending_requests gauge\nrancher_access_pending_requests {pending}");
        let _ = writeln!(s, "# HELP rancher_access_decisions_total Decisions recorded by this process.\n# TYPE rancher_access_decisions_total counter");
        let _ = writeln!(
            s,
            "rancher_access_decisions_total{{vote=\"approve\"}} {}",
            g(&self.decisions_approve)
        );
        let _ = writeln!(
            s,
            "rancher_access_decisions_total{{vote=\"deny\"}} {}",
            g(&self.decisions_deny)
        );
        let _ = writeln!(s, "# HELP rancher_access_executions_total Approved requests executed by this process, by outcome.\n# TYPE rancher_access_executions_total counter");
        let _ = writeln!(
            s,
            "rancher_access_executions_total{{outcome=\"succeeded\"}} {}",
            g(&self.executions_succeeded)
        );
        let _ = writeln!(
            s,
            "rancher_access_executions_total{{outcome=\"failed\"}} {}",
            g(&self.executions_failed)
        );
        let _ = writeln!(s, "# HELP rancher_access_webhook_deliveries_total Webhook posts acknowledged with 2xx.\n# TYPE rancher_access_webhook_deliveries_total counter\nrancher_access_webhook_deliveries_total {}", g(&self.webhook_deliveries));
        let _ = writeln!(s, "# HELP rancher_access_webhook_failures_total Webhook posts that failed (retried).\n# TYPE rancher_access_webhook_failures_total counter\nrancher_access_webhook_failures_total {}", g(&self.webhook_failures));
        let _ = writeln!(s, "# HELP rancher_access_webhook_dead_letters_total Webhook events given up on and dead-lettered (listed at /api/v1/webhooks/dead-letters).\n# TYPE rancher_access_webhook_dead_letters_total counter\nrancher_access_webhook_dead_letters_total {}", g(&self.webhook_dead_letters));
        let _ = writeln!(s, "# HELP rancher_access_open_connections Connections open now.\n# TYPE rancher_access_open_connections gauge\nrancher_access_open_connections {}", g(&self.connections_open));
        let _ = writeln!(s, "# HELP rancher_access_connections_refused_total Connections closed at once for being over a connection cap.\n# TYPE rancher_access_connections_refused_total counter\nrancher_access_connections_refused_total {}", g(&self.connections_refused));
        let _ = writeln!(s, "# HELP rancher_access_rancher_call_seconds Time spent in Rancher round trips (identity checks, logins, executions).\n# TYPE rancher_access_rancher_call_seconds summary");
        let _ = writeln!(
            s,
            "rancher_access_rancher_call_seconds_sum {:.6}",
            g(&self.rancher_micros) as f64 / 1e6
        );
        let _ = writeln!(
            s,
            "rancher_access_rancher_call_seconds_count {}",
            g(&self.rancher_calls)
        );
        let _ = writeln!(s, "# HELP rancher_access_grants_revoked_total Time-bound grants revoked by this process.\n# TYPE rancher_access_grants_revoked_total counter\nrancher_access_grants_revoked_total {}", g(&self.grants_revoked));
        let _ = writeln!(s, "# HELP rancher_access_grant_revocation_failures_total Revocation attempts that failed (retried with backoff).\n# TYPE rancher_access_grant_revocation_failures_total counter\nrancher_access_grant_revocation_failures_total {}", g(&self.grant_revocation_failures));
        let _ = writeln!(s, "# HELP rancher_access_http_requests_total HTTP requests received.\n# TYPE rancher_access_http_requests_total counter\nrancher_access_http_requests_total {}", g(&self.http_requests));
        s
    }
}
