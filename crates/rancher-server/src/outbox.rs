//! The chat deliverers (Slack, Teams) on the durable outbox, as the webhooks are: each keeps a cursor in the store,
//! handles the audit entries after it in order, retries a failing call with backoff and dead-letters an entry it
//! cannot deliver (the chat service refused it [`ServerConfig::webhook_refused_attempts`] times, or it kept failing
//! for [`ServerConfig::webhook_retry_for`]), then moves on. Among replicas on one store the holder of a sink's
//! lease delivers; another takes over when the lease lapses. Each sink runs on its own, so a slow chat service
//! holds up neither the webhooks nor the other sink.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rancher_approval::AuditEntry;
use tokio::sync::watch;

use crate::app::{with_store, App};
use crate::config::ServerConfig;

/// Why handling an entry failed, and whether trying again may help.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    /// What went wrong (never a token or a URL's secret part).
    pub(crate) why: String,
    /// The receiver refused the call for good (it is counted toward dead-lettering at once).
    pub(crate) refused: bool,
}

impl Failure {
    /// A failure worth retrying (network, 5xx, rate limits).
    pub(crate) fn retry(why: impl Into<String>) -> Self {
        Failure {
            why: why.into(),
            refused: false,
        }
    }

    /// A refusal (4xx, Slack's `ok: false`).
    pub(crate) fn refused(why: impl Into<String>) -> Self {
        Failure {
            why: why.into(),
            refused: true,
        }
    }
}

/// A chat service the outbox delivers to.
pub(crate) trait Sink: Send + Sync + 'static {
    /// The store name of its cursor and lease.
    fn name(&self) -> String;
    /// How logs and dead letters name it.
    fn shown(&self) -> String;
    /// Acts on one audit entry (most entries need nothing). Must be safe to repeat: a retry after a partial
    /// success may run it again.
    fn handle<'a>(
        &'a self,
        app: &'a Arc<App>,
        entry: &'a AuditEntry,
    ) -> futures::future::BoxFuture<'a, Result<(), Failure>>;
}

/// How long a sink's lease lasts (renewed as it delivers).
const LEASE: Duration = Duration::from_secs(30);

/// Delivers to `sink` until `stop`.
pub(crate) async fn run<S: Sink>(app: Arc<App>, sink: Arc<S>, config: ServerConfig, mut stop: watch::Receiver<bool>) {
    let name = sink.name();
    let holder = format!("{}#{:016x}", config.executor, rand::random::<u64>());
    let lease = |app: Arc<App>, name: String, holder: String| async move {
        let now = chrono::Utc::now();
        let until = now + chrono::Duration::seconds(LEASE.as_secs() as i64);
        with_store(
            app.store(),
            |s| async move { s.try_lease(&name, &holder, until, now).await },
        )
        .await
        .unwrap_or(false)
    };
    let mut held = false;
    loop {
        if *stop.borrow() {
            break;
        }
        held = lease(app.clone(), name.clone(), holder.clone()).await;
        if !held {
            tokio::select! { _ = stop.changed() => break, _ = tokio::time::sleep(Duration::from_secs(1)) => continue }
        }
        let n = name.clone();
        let batch = with_store(app.store(), |s| async move {
            let cursor = s.delivery_cursor(&n).await?;
            s.audit_after(cursor, 100).await
        })
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(sink = %sink.shown(), "cannot read the outbox: {}", e.message);
            Vec::new()
        });
        if batch.is_empty() {
            tokio::select! { _ = stop.changed() => break, _ = tokio::time::sleep(Duration::from_millis(200)) => continue }
        }
        let mut renewed = Instant::now();
        for entry in batch {
            if renewed.elapsed() > LEASE / 3 {
                if !lease(app.clone(), name.clone(), holder.clone()).await {
                    break;
                }
                renewed = Instant::now();
            }
            let started = Instant::now();
            let (mut delay, mut refused) = (config.webhook_backoff, 0u32);
            let mut stopped = false;
            loop {
                match sink.handle(&app, &entry).await {
                    Ok(()) => {
                        app.metrics.webhook(true);
                        break;
                    }
                    Err(f) => {
                        app.metrics.webhook(false);
                        refused += u32::from(f.refused);
                        if refused >= config.webhook_refused_attempts.max(1)
                            || (!f.refused && started.elapsed() >= config.webhook_retry_for)
                        {
                            dead_letter(&app, &*sink, &entry, &f).await;
                            break;
                        }
                        tracing::warn!(sink = %sink.shown(), seq = entry.seq, "chat delivery failed ({}); retrying in {}ms", f.why, delay.as_millis());
                        tokio::select! {
                            _ = stop.changed() => { stopped = true; break }
                            _ = tokio::time::sleep(delay) => {}
                        }
                        delay = (delay * 2).min(config.webhook_max_backoff);
                        if !lease(app.clone(), name.clone(), holder.clone()).await {
                            stopped = true;
                            break;
                        }
                    }
                }
            }
            if stopped {
                break;
            }
            let (n, seq) = (name.clone(), entry.seq);
            if let Err(e) = with_store(app.store(), |s| async move { s.set_delivery_cursor(&n, seq).await }).await {
                tracing::warn!(sink = %sink.shown(), "cannot save the delivery cursor: {}", e.message);
            }
        }
    }
    if held {
        let _ = with_store(app.store(), |s| async move { s.release_lease(&name, &holder).await }).await;
    }
}

/// Keeps an entry given up on with the webhooks' dead letters (listed at `/api/v1/webhooks/dead-letters`).
async fn dead_letter<S: Sink>(app: &App, sink: &S, entry: &AuditEntry, f: &Failure) {
    app.metrics.webhook_dead_letter();
    tracing::warn!(sink = %sink.shown(), seq = entry.seq, "chat delivery dead-lettered ({}); delivering the next entries", f.why);
    let now = chrono::Utc::now();
    let letter = crate::wire::DeadLetter {
        webhook: sink.shown(),
        sink: sink.name(),
        seq: entry.seq,
        event: Some(entry.kind.as_str().to_string()),
        request: entry.request_id.clone(),
        why: f.why.clone(),
        status: None,
        attempts: 0,
        at: now.to_rfc3339(),
    };
    let key = format!("{}:{:020}", sink.name(), entry.seq);
    let value = serde_json::to_string(&letter).unwrap_or_default();
    let keep = now + chrono::Duration::days(30);
    let _ = with_store(app.store(), |s| async move {
        s.state_put(crate::webhooks::DEAD_LETTER_NS, &key, &value, Some(keep))
            .await
    })
    .await;
}
