//! Revocation on time: a timer armed on the next grant that falls due, so a time-bound grant ends at its due time
//! rather than at the next periodic sweep (which stays, as a safety net).
//!
//! Every replica runs the timer. The store is where it learns of changes: each pass reads the unrevoked grants,
//! so a grant made, extended or ended early on any replica re-arms every replica's timer within one
//! [`LOOKAHEAD`]. When the earliest grant is due, the timer runs the same revocation pass as the sweep; each grant's
//! revocation is claimed in the store first, so whichever replica wakes first revokes it and the others skip it.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rancher_approval::{Grant, GrantFilter};
use tokio::sync::watch;

use crate::app::{with_store, App};

/// The longest the timer sleeps before reading the store again: a grant made with less time than this to run may
/// be revoked up to this late; any other is revoked at its due time.
pub(crate) const LOOKAHEAD: Duration = Duration::from_millis(500);

/// The shortest pause after a pass, so a grant that could not be claimed (another replica holds it) is not retried
/// in a tight loop.
const AFTER_PASS: Duration = Duration::from_millis(20);

/// When the timer should next try `g`: at its end, but not before a failed attempt's backoff or another replica's
/// live claim runs out.
pub(crate) fn wake_at(g: &Grant) -> DateTime<Utc> {
    let mut at = g.ends_at();
    if let Some(t) = g.next_attempt_at {
        at = at.max(t);
    }
    if let Some(c) = &g.claim {
        at = at.max(c.lease_until);
    }
    at
}

/// The earliest [`wake_at`] among `grants` this service may revoke (those made on its Rancher server, or on no
/// recorded one); `None` when there is none.
pub(crate) fn next_wake<'a>(
    grants: impl IntoIterator<Item = &'a Grant>,
    server: &rancher_approval::ServerIdentity,
) -> Option<DateTime<Utc>> {
    grants
        .into_iter()
        .filter(|g| g.revocation.is_none() && g.server.as_ref().is_none_or(|s| s == server))
        .map(wake_at)
        .min()
}

/// Runs the timer until `stop` changes.
pub(crate) async fn timer_loop(app: Arc<App>, mut stop: watch::Receiver<bool>) {
    loop {
        let wait = match pass(&app).await {
            Ok(wait) => wait,
            Err(e) => {
                tracing::warn!(
                    "revocation timer: {e}; reading the grants again in {}ms",
                    LOOKAHEAD.as_millis()
                );
                LOOKAHEAD
            }
        };
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// One turn of the timer: revokes what is due now, then answers how long to sleep (until the next due grant, at
/// most [`LOOKAHEAD`]).
async fn pass(app: &Arc<App>) -> Result<Duration, String> {
    // While the store does not verify from the published head, nothing that writes to Rancher runs.
    if !app.integrity_ok() {
        return Ok(LOOKAHEAD);
    }
    let grants = with_store(app.store(), |s| async move {
        s.list_grants(&GrantFilter::unrevoked()).await
    })
    .await
    .map_err(|e| format!("could not read the grants: {}", e.message))?;
    let now = (app.clock)();
    let Some(next) = next_wake(&grants, &app.service.server) else {
        return Ok(LOOKAHEAD);
    };
    drop(grants);
    if next > now {
        return Ok((next - now).to_std().unwrap_or_default().min(LOOKAHEAD));
    }
    let _guard = app.inflight.enter();
    let report =
        rancher_workflows::grants::revoke_due(&app.service, app.store().as_ref(), app.runner.process_label(), now)
            .await
            .map_err(|e| format!("the revocation pass failed: {}", crate::error::chain(&e)))?;
    app.metrics.revocations(report.revoked() as u64, report.failed() as u64);
    if report.revoked() > 0 {
        tracing::debug!(revoked = report.revoked(), "revoked grants on time");
        // The head moved: publish it (as the sweep does after its pass).
        app.integrity.check(app.store()).await;
    }
    Ok(AFTER_PASS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;
    use rancher_approval::{BindingKind, NewGrant, Principal, RevocationClaim, ServerIdentity, SubjectKind};

    fn grant(now: DateTime<Utc>, due_in: i64) -> Grant {
        Grant {
            id: format!("req-{due_in}"),
            workflow_id: "grant-project-role".into(),
            granted: NewGrant {
                kind: BindingKind::Project,
                binding: "b".into(),
                namespace: Some("p-1".into()),
                scope: Some("c-1:p-1".into()),
                subject_kind: SubjectKind::User,
                subject: "u-1".into(),
                role: "read-only".into(),
                duration_secs: 60,
            },
            requested_by: Principal {
                id: "u-2".into(),
                username: None,
                display_name: None,
                groups: Vec::new(),
            },
            approved_by: Vec::new(),
            server: None,
            granted_at: now,
            due_at: now + TimeDelta::seconds(due_in),
            ended_at: None,
            extensions: Vec::new(),
            ended_early_by: None,
            claim: None,
            failures: 0,
            last_error: None,
            next_attempt_at: None,
            revocation: None,
        }
    }

    #[test]
    fn the_timer_wakes_for_the_earliest_grant_after_backoffs_and_claims() {
        let now = Utc::now();
        let here = ServerIdentity::new("rancher.example.com", None);
        let (a, mut b, mut c) = (grant(now, 30), grant(now, 10), grant(now, 20));
        assert_eq!(next_wake([&a, &b, &c], &here), Some(b.due_at));
        // A failed attempt waits for its backoff; a claim held elsewhere for its lease.
        b.next_attempt_at = Some(now + TimeDelta::seconds(100));
        assert_eq!(next_wake([&a, &b, &c], &here), Some(c.due_at));
        c.claim = Some(RevocationClaim {
            grant: c.id.clone(),
            claim_id: "x".into(),
            process: "other".into(),
            epoch: 1,
            lease_until: now + TimeDelta::seconds(35),
            took_over: false,
        });
        assert_eq!(next_wake([&a, &b, &c], &here), Some(a.due_at));
        // An early end counts; grants made on another Rancher server are not this service's to revoke.
        let mut d = grant(now, 50);
        d.ended_at = Some(now + TimeDelta::seconds(2));
        assert_eq!(next_wake([&a, &d], &here), d.ended_at);
        d.server = Some(ServerIdentity::new("other.example.com", None));
        assert_eq!(next_wake([&a, &d], &here), Some(a.due_at));
        assert_eq!(next_wake([], &here), None);
    }
}
