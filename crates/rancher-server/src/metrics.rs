//! `/metrics`: the service's counters, gauges and latency histograms, kept with prometheus-client and written
//! in the OpenMetrics text format (which Prometheus scrapes as it is).

use std::sync::atomic::AtomicI64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The content type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Vote {
    vote: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Operation {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreCall {
    operation: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    route: String,
    method: String,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Sink {
    webhook: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct State {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrantStatus {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Observed {
    kind: &'static str,
    change: &'static str,
    attribution: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Latency buckets from 1 ms to about 33 s, doubling.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// The service's metrics. Gauges that live in the store (requests by state, grants) are set when scraped.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    decisions: Family<Vote, Counter>,
    executions: Family<Outcome, Counter>,
    webhook_deliveries: Counter,
    webhook_failures: Counter,
    webhook_dead_letters: Counter,
    webhook_queue_age: Family<Sink, Gauge<i64, AtomicI64>>,
    rancher_calls: Histograms<Operation>,
    store_calls: Histograms<StoreCall>,
    execution_latency: Histograms<Outcome>,
    http_requests: Counter,
    http_latency: Histograms<Route>,
    grants_revoked: Counter,
    grant_revocation_failures: Counter,
    connections_open: Gauge<i64, AtomicI64>,
    connections_refused: Counter,
    requests: Family<State, Gauge<i64, AtomicI64>>,
    pending: Gauge<i64, AtomicI64>,
    grants: Family<GrantStatus, Gauge<i64, AtomicI64>>,
    grant_overdue_seconds: Gauge<i64, AtomicI64>,
    access_observed: Family<Observed, Counter>,
    watch_restarts: Counter,
    breakglass_unreviewed: Gauge<i64, AtomicI64>,
}

impl Default for Metrics {
    fn default() -> Self {
        let m = Metrics {
            registry: Registry::with_prefix("rancher_access"),
            decisions: Family::default(),
            executions: Family::default(),
            webhook_deliveries: Counter::default(),
            webhook_failures: Counter::default(),
            webhook_dead_letters: Counter::default(),
            webhook_queue_age: Family::default(),
            rancher_calls: Family::new_with_constructor(latency),
            store_calls: Family::new_with_constructor(latency),
            execution_latency: Family::new_with_constructor(latency),
            http_requests: Counter::default(),
            http_latency: Family::new_with_constructor(latency),
            grants_revoked: Counter::default(),
            grant_revocation_failures: Counter::default(),
            connections_open: Gauge::default(),
            connections_refused: Counter::default(),
            requests: Family::default(),
            pending: Gauge::default(),
            grants: Family::default(),
            grant_overdue_seconds: Gauge::default(),
            access_observed: Family::default(),
            watch_restarts: Counter::default(),
            breakglass_unreviewed: Gauge::default(),
        };
        m.registered()
    }
}

impl Metrics {
    fn registered(mut self) -> Self {
        // Zero samples from the start, so a rate() has a first point and alerts see the series.
        for vote in ["approve", "deny"] {
            let _ = self.decisions.get_or_create(&Vote { vote });
        }
        for outcome in ["succeeded", "failed"] {
            let _ = self.executions.get_or_create(&Outcome { outcome });
        }
        let r = &mut self.registry;
        r.register(
            "access_changes_observed",
            "Binding changes the watcher saw in Rancher, by kind, change and attribution (request or out_of_band)",
            self.access_observed.clone(),
        );
        r.register(
            "watch_restarts",
            "Watches of Rancher that broke and were opened again (after backoff) or relisted after 410",
            self.watch_restarts.clone(),
        );
        r.register(
            "requests",
            "Approval requests in the store, by state",
            self.requests.clone(),
        );
        r.register(
            "pending_requests",
            "Requests waiting for approval",
            self.pending.clone(),
        );
        r.register(
            "decisions",
            "Decisions recorded by this process",
            self.decisions.clone(),
        );
        r.register(
            "executions",
            "Approved requests executed by this process, by outcome",
            self.executions.clone(),
        );
        r.register(
            "webhook_deliveries",
            "Webhook posts acknowledged with 2xx",
            self.webhook_deliveries.clone(),
        );
        r.register(
            "webhook_failures",
            "Webhook posts that failed (retried)",
            self.webhook_failures.clone(),
        );
        r.register(
            "webhook_dead_letters",
            "Webhook events given up on and dead-lettered (listed at /api/v1/webhooks/dead-letters)",
            self.webhook_dead_letters.clone(),
        );
        r.register(
            "webhook_queue_age_seconds",
            "How long the oldest event not yet delivered to a webhook has waited (0: none waiting), by webhook (the \
             first 12 characters of its sink name, a hash of the URL); reported by the replica holding its lease",
            self.webhook_queue_age.clone(),
        );
        r.register(
            "open_connections",
            "Connections open now",
            self.connections_open.clone(),
        );
        r.register(
            "connections_refused",
            "Connections closed at once for being over a connection cap",
            self.connections_refused.clone(),
        );
        r.register(
            "rancher_call_seconds",
            "Rancher round trips by operation id (retries included): identity checks, sign-ins, readiness, and every \
             call an execution makes",
            self.rancher_calls.clone(),
        );
        r.register(
            "store_seconds",
            "Approval store calls (each one transaction) by operation and result",
            self.store_calls.clone(),
        );
        r.register(
            "execution_seconds",
            "From an approval to the end of its execution, by outcome",
            self.execution_latency.clone(),
        );
        r.register("http_requests", "HTTP requests received", self.http_requests.clone());
        r.register(
            "http_request_seconds",
            "Time to answer an HTTP request, by route (the matched pattern), method and status class",
            self.http_latency.clone(),
        );
        r.register(
            "grants_revoked",
            "Time-bound grants revoked by this process",
            self.grants_revoked.clone(),
        );
        r.register(
            "grant_revocation_failures",
            "Revocation attempts that failed (retried with backoff)",
            self.grant_revocation_failures.clone(),
        );
        r.register(
            "grants",
            "Time-bound grants not yet revoked, by status",
            self.grants.clone(),
        );
        r.register(
            "grant_overdue_seconds",
            "How long the oldest overdue grant is past its due time (0: none); alert on it: an overdue grant is access that should have ended",
            self.grant_overdue_seconds.clone(),
        );
        r.register(
            "breakglass_unreviewed",
            "Break-glass grants whose after-the-fact review request still waits for a reviewer",
            self.breakglass_unreviewed.clone(),
        );
        self
    }

    /// Sets how many break-glass review requests wait (read at each scrape).
    pub fn breakglass_unreviewed(&self, n: u64) {
        self.breakglass_unreviewed.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// A revocation pass revoked `revoked` grants and failed `failed` attempts.
    pub fn revocations(&self, revoked: u64, failed: u64) {
        self.grants_revoked.inc_by(revoked);
        self.grant_revocation_failures.inc_by(failed);
    }

    /// The watcher recorded a binding change: `kind` (GlobalRoleBinding, ...), `change` (created, deleted), matched
    /// to a request or not.
    pub fn access_observed(&self, kind: &'static str, change: &'static str, out_of_band: bool) {
        let attribution = if out_of_band { "out_of_band" } else { "request" };
        self.access_observed
            .get_or_create(&Observed {
                kind,
                change,
                attribution,
            })
            .inc();
    }

    /// A watch of Rancher broke (or was told to relist) and is opened again.
    pub fn watch_restart(&self) {
        self.watch_restarts.inc();
    }

    /// A decision was recorded.
    pub fn decision(&self, approve: bool) {
        let vote = if approve { "approve" } else { "deny" };
        self.decisions.get_or_create(&Vote { vote }).inc();
    }

    /// An execution finished after `d` (from the approval that started it).
    pub fn execution(&self, succeeded: bool, d: Duration) {
        let outcome = if succeeded { "succeeded" } else { "failed" };
        self.executions.get_or_create(&Outcome { outcome }).inc();
        self.execution_latency
            .get_or_create(&Outcome { outcome })
            .observe(d.as_secs_f64());
    }

    /// What the service's Rancher clients report each round trip to: [`Metrics::rancher_call`] by operation id.
    pub fn call_observer(&self) -> std::sync::Arc<dyn rancher_api::CallObserver> {
        std::sync::Arc::new(RancherCalls(self.rancher_calls.clone()))
    }

    /// A store call `operation` took `d` and succeeded (`ok`) or failed.
    pub fn store_call(&self, operation: &'static str, ok: bool, d: Duration) {
        self.store_calls().observe(operation, ok, d);
    }

    /// The store call histogram as the observer of the service's store (shares the family).
    pub(crate) fn store_calls(&self) -> StoreCalls {
        StoreCalls(self.store_calls.clone())
    }

    /// A webhook delivery was acknowledged (`ok`) or failed.
    pub fn webhook(&self, ok: bool) {
        if ok {
            &self.webhook_deliveries
        } else {
            &self.webhook_failures
        }
        .inc();
    }

    /// A Rancher round trip of `operation` (an operation id) took `d`. The service's clients report here
    /// themselves through [`Metrics::call_observer`].
    pub fn rancher_call(&self, operation: &'static str, d: Duration) {
        observe_call(&self.rancher_calls, operation, d);
    }

    /// A request matched `route` (the router's pattern, never the raw path: ids stay out of the labels) and was
    /// answered with `status` after `d`.
    pub fn http_answered(&self, route: &str, method: &str, status: u16, d: Duration) {
        let status = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        let labels = Route {
            route: route.to_string(),
            method: method.to_string(),
            status,
        };
        self.http_latency.get_or_create(&labels).observe(d.as_secs_f64());
    }

    /// A connection was admitted.
    pub fn connection_opened(&self) {
        self.connections_open.inc();
    }

    /// An admitted connection closed.
    pub fn connection_closed(&self) {
        self.connections_open.dec();
    }

    /// A connection was refused over a cap.
    pub fn connection_refused(&self) {
        self.connections_refused.inc();
    }

    /// The oldest event waiting for the webhook `sink` (its store name, a hash of the URL) was written `seconds`
    /// ago (0: none waits).
    pub fn webhook_queue_age(&self, sink: &str, seconds: i64) {
        let webhook = sink.strip_prefix("webhook:").unwrap_or(sink).chars().take(12).collect();
        self.webhook_queue_age
            .get_or_create(&Sink { webhook })
            .set(seconds.max(0));
    }

    /// A webhook event was given up on and dead-lettered.
    pub fn webhook_dead_letter(&self) {
        self.webhook_dead_letters.inc();
    }

    /// Webhook events dead-lettered by this process.
    pub fn webhook_dead_letters(&self) -> u64 {
        self.webhook_dead_letters.get()
    }

    /// An HTTP request arrived.
    pub fn http_request(&self) {
        self.http_requests.inc();
    }

    /// Webhook deliveries so far (acknowledged, failed).
    pub fn webhook_counts(&self) -> (u64, u64) {
        (self.webhook_deliveries.get(), self.webhook_failures.get())
    }

    /// The exposition ([`CONTENT_TYPE`]), with the store's request counts by state and its grants: `active` and
    /// `overdue` grants, and how long the oldest overdue one has waited.
    pub fn render(&self, requests_by_state: &[(&'static str, u64)], active: u64, overdue: u64, oldest: u64) -> String {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        for (state, count) in requests_by_state {
            self.requests.get_or_create(&State { state }).set(n(*count));
        }
        let pending = requests_by_state
            .iter()
            .find(|(s, _)| *s == "pending")
            .map_or(0, |(_, c)| *c);
        self.pending.set(n(pending));
        self.grants
            .get_or_create(&GrantStatus { status: "active" })
            .set(n(active));
        self.grants
            .get_or_create(&GrantStatus { status: "overdue" })
            .set(n(overdue));
        self.grant_overdue_seconds.set(n(oldest));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String");
        out
    }
}

fn observe_call(family: &Histograms<Operation>, operation: &'static str, d: Duration) {
    family.get_or_create(&Operation { operation }).observe(d.as_secs_f64());
}

/// The store call histogram (`store_seconds`), shared with [`Metrics`]: the observer of the service's store.
#[derive(Clone)]
pub(crate) struct StoreCalls(Histograms<StoreCall>);

impl StoreCalls {
    /// A store call `operation` took `d` and succeeded (`ok`) or failed.
    fn observe(&self, operation: &'static str, ok: bool, d: Duration) {
        let result = if ok { "ok" } else { "error" };
        self.0
            .get_or_create(&StoreCall { operation, result })
            .observe(d.as_secs_f64());
    }
}

impl rancher_approval::StoreObserver for StoreCalls {
    fn observe(&self, call: &rancher_approval::StoreCall) {
        StoreCalls::observe(self, call.operation, call.ok, call.elapsed);
    }
}

/// The Rancher call histogram as a client's [`rancher_api::CallObserver`] (the family is shared, not copied).
struct RancherCalls(Histograms<Operation>);

impl rancher_api::CallObserver for RancherCalls {
    fn observe(&self, call: &rancher_api::CallRecord) {
        observe_call(&self.0, call.operation, call.elapsed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_holds_every_family_with_its_labels() {
        let m = Metrics::default();
        m.decision(true);
        m.execution(false, Duration::from_millis(700));
        m.rancher_call(rancher_api::ids::V3_USERS_GET, Duration::from_millis(12));
        m.store_call("decide", true, Duration::from_millis(3));
        m.webhook_queue_age("webhook:0123456789abcdef0123", 42);
        m.http_answered("/api/v1/requests/{id}/approve", "POST", 200, Duration::from_millis(30));
        let text = m.render(&[("pending", 2), ("approved", 1)], 3, 1, 40);
        for line in [
            "rancher_access_decisions_total{vote=\"approve\"} 1",
            "rancher_access_executions_total{outcome=\"failed\"} 1",
            "rancher_access_pending_requests 2",
            "rancher_access_requests{state=\"approved\"} 1",
            "rancher_access_grants{status=\"overdue\"} 1",
            "rancher_access_grant_overdue_seconds 40",
            "rancher_access_rancher_call_seconds_count{operation=\"v3.users.get\"} 1",
            "rancher_access_store_seconds_count{operation=\"decide\",result=\"ok\"} 1",
            "rancher_access_webhook_queue_age_seconds{webhook=\"0123456789ab\"} 42",
            "rancher_access_execution_seconds_bucket{le=\"1.024\",outcome=\"failed\"} 1",
            "rancher_access_http_request_seconds_bucket{le=\"0.032\",route=\"/api/v1/requests/{id}/approve\",method=\"POST\",status=\"2xx\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
