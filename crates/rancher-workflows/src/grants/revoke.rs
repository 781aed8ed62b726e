//! Revoking due grants exactly once.
//!
//! Each due grant is claimed in the store first (a lease, like an execution claim): of several processes racing on
//! one store, one revokes it and the others skip it. The claimant reads the binding back, deletes it only if it is
//! still the one granted, and records what it found. If Rancher cannot be reached the claim is given back with a
//! retry time (exponential backoff); the grant stays overdue and visible until revoked. A claimant that dies
//! between the delete and the record leaves its claim to run out; the next one reads the server and records what
//! it finds (the binding gone, so nothing is deleted twice).

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rancher_approval::{Grant, GrantFilter, RevocationClaim, RevokedHow, Store};
use serde::Serialize;

use super::bindings;
use crate::error::{Error, Result};
use crate::exec::Exec;
use crate::session::Session;

/// How long a revocation claim holds: long enough for one read and one delete with retries.
pub const REVOKE_LEASE: Duration = Duration::from_secs(120);
/// The wait after the first failed attempt; it doubles with each further failure.
pub const BACKOFF_BASE: Duration = Duration::from_secs(30);
/// The longest wait between attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(3600);

/// How one grant's revocation went.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RevokeOutcome {
    /// Revoked and recorded (what was found is in `how`).
    Revoked {
        /// The grant.
        grant: String,
        /// What was found and done.
        how: RevokedHow,
        /// Details.
        note: String,
    },
    /// The attempt failed; it is retried from `retry_at`.
    Failed {
        /// The grant.
        grant: String,
        /// Why.
        error: String,
        /// The next attempt.
        retry_at: DateTime<Utc>,
    },
    /// Another process holds it, it is not due, or it was revoked meanwhile.
    Skipped {
        /// The grant.
        grant: String,
        /// Why.
        why: String,
    },
}

/// What one [`revoke_due`] pass did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RevokeReport {
    /// Every due grant looked at, in id order.
    pub outcomes: Vec<RevokeOutcome>,
}

impl RevokeReport {
    /// Grants revoked in this pass.
    pub fn revoked(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| matches!(o, RevokeOutcome::Revoked { .. }))
            .count()
    }

    /// Grants whose attempt failed in this pass.
    pub fn failed(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| matches!(o, RevokeOutcome::Failed { .. }))
            .count()
    }
}

fn backoff(failures: u32) -> TimeDelta {
    let secs = BACKOFF_BASE
        .as_secs()
        .saturating_mul(1u64 << failures.min(16))
        .min(BACKOFF_MAX.as_secs());
    TimeDelta::seconds(secs as i64)
}

/// How many grants one pass revokes at a time (the client's own limit on calls to Rancher still applies).
pub const REVOKE_CONCURRENCY: usize = 16;

/// Revokes every grant due at `now` that no live claim holds and whose backoff has passed, as `process` (the
/// audit log names it), [`REVOKE_CONCURRENCY`] at a time. Grants of another Rancher server than the session's are
/// left alone.
pub async fn revoke_due(
    session: &Session,
    store: &dyn Store,
    process: &str,
    now: DateTime<Utc>,
) -> Result<RevokeReport> {
    use futures::{StreamExt, TryStreamExt};
    let due: Vec<Grant> = store
        .list_grants(&GrantFilter::due(now))
        .await?
        .into_iter()
        .filter(|g| g.revocable(now))
        .collect();
    // Several at once (each grant is claimed in the store first, so replicas never revoke one twice), in order.
    let outcomes = futures::stream::iter(due)
        .map(|g| revoke_one(session, store, g, process, now))
        .buffered(REVOKE_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(RevokeReport { outcomes })
}

/// Revokes one grant now if it is due (see [`end_early`] to make it due first).
pub async fn revoke_grant(
    session: &Session,
    store: &dyn Store,
    id: &str,
    process: &str,
    now: DateTime<Utc>,
) -> Result<RevokeOutcome> {
    let g = store.get_grant(id).await?;
    revoke_one(session, store, g, process, now).await
}

/// Ends a grant before its time: only an admin, the person who asked for it or its holder may. The grant is then
/// due; revoke it with [`revoke_grant`] (or the next [`revoke_due`] pass does).
pub async fn end_early(session: &Session, store: &dyn Store, id: &str, now: DateTime<Utc>) -> Result<Grant> {
    let g = store.get_grant(id).await?;
    let me = &session.principal.id;
    if !(session.is_admin || *me == g.requested_by.id || *me == g.granted.subject) {
        return Err(Error::NotAllowed(format!(
            "only an admin, the requester ({}) or the holder may end grant {id} early",
            g.requested_by.id
        )));
    }
    let ended = store.end_grant_early(id, &session.principal, now).await?;
    cancel_extensions(store, id, &session.principal, "the grant was ended early", now).await?;
    Ok(ended)
}

/// Cancels the pending requests to extend grant `id` (each cancellation audited as made by `by`): once a grant
/// ends, an extension can only fail, so nobody is asked to approve one. Answers the ids cancelled.
pub async fn cancel_extensions(
    store: &dyn Store,
    id: &str,
    by: &rancher_approval::Principal,
    why: &str,
    now: DateTime<Utc>,
) -> Result<Vec<String>> {
    let pending = store
        .list_requests(&rancher_approval::RequestFilter::all().state(rancher_approval::RequestState::Pending))
        .await?;
    let mut cancelled = Vec::new();
    for r in pending
        .into_iter()
        .filter(|r| r.inputs.get("extends").and_then(serde_json::Value::as_str) == Some(id))
    {
        match store
            .cancel(
                &r.id,
                by,
                Some(format!("{why}: grant {id} cannot be extended any more")),
                now,
            )
            .await
        {
            Ok(_) => cancelled.push(r.id.to_string()),
            // Decided or cancelled in the meantime: nothing left to cancel.
            Err(rancher_approval::Error::NotPending { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(cancelled)
}

async fn revoke_one(
    session: &Session,
    store: &dyn Store,
    g: Grant,
    process: &str,
    now: DateTime<Utc>,
) -> Result<RevokeOutcome> {
    let skipped = |why: String| {
        Ok(RevokeOutcome::Skipped {
            grant: g.id.clone(),
            why,
        })
    };
    if let Some(server) = &g.server {
        if *server != session.server {
            return skipped(format!(
                "it was granted on {server}, not on this session's server {}",
                session.server
            ));
        }
    }
    let lease_until = now + TimeDelta::from_std(REVOKE_LEASE).unwrap_or(TimeDelta::seconds(120));
    let claim = match store.claim_revocation(&g.id, process, lease_until, now).await {
        Ok(c) => c,
        Err(
            e @ (rancher_approval::Error::NotRevocable { .. }
            | rancher_approval::Error::GrantRevoked { .. }
            | rancher_approval::Error::Conflict { .. }),
        ) => return skipped(e.to_string()),
        Err(e) => return Err(e.into()),
    };
    match on_server(session, &g, &claim).await {
        Ok((how, note)) => {
            let made = made_during_note(session, store, &g).await;
            let note = [note, made]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
            store.record_revocation(&claim, how, &note, now).await?;
            tracing::info!(grant = %g.id, how = how.as_str(), "grant revoked");
            // A grant that fell due ends its pending extensions too (recorded as the revoking session's user).
            if let Err(e) = cancel_extensions(store, &g.id, &session.principal, "the grant was revoked", now).await {
                tracing::warn!(grant = %g.id, error = %e, "could not cancel the grant's pending extensions");
            }
            Ok(RevokeOutcome::Revoked { grant: g.id, how, note })
        }
        Err(e) => {
            let retry_at = now + backoff(g.failures);
            let error = e.to_string();
            tracing::warn!(grant = %g.id, error = %error, %retry_at, "could not revoke a due grant; retrying later");
            store.release_revocation(&claim, &error, retry_at, now).await?;
            Ok(RevokeOutcome::Failed {
                grant: g.id,
                error,
                retry_at,
            })
        }
    }
}

/// What the holder's role let them do during the grant: the bindings made by or for them since it began (listed
/// always; removed when the request's policy sets `remove_bindings_made_during_grant`), in words for the
/// `grant.revoked` record. A failure to look is said, never fatal: the grant's own binding is what revocation owes.
async fn made_during_note(session: &Session, store: &dyn Store, g: &Grant) -> String {
    use super::containment;
    let w = &g.granted;
    let found = match containment::made_during(session, &w.subject, g.granted_at, &w.binding).await {
        Ok(f) => f,
        Err(e) => return format!("could not list the bindings made during the grant: {e}"),
    };
    if found.is_empty() {
        return String::new();
    }
    let remove = match g.id.parse::<rancher_approval::RequestId>() {
        Ok(id) => store
            .get_request(&id)
            .await
            .is_ok_and(|r| r.policy.options.remove_bindings_made_during_grant),
        Err(_) => false,
    };
    if !remove {
        return containment::describe(&found, false);
    }
    let mut exec = Exec::new(session, false);
    let mut failed = Vec::new();
    for b in &found {
        if let Err(e) = bindings::delete(&mut exec, b.kind, &b.namespace, &b.name).await {
            failed.push(format!("{}: {e}", b.name));
        }
    }
    let mut note = containment::describe(&found, true);
    if !failed.is_empty() {
        note.push_str(&format!("; these could not be removed: {}", failed.join("; ")));
    }
    note
}

/// Reads the binding and deletes it if it is still the one granted; says what was found.
async fn on_server(session: &Session, g: &Grant, claim: &RevocationClaim) -> Result<(RevokedHow, String)> {
    let w = &g.granted;
    let ns = w.namespace.clone().unwrap_or_default();
    let found = bindings::get(session, w.kind, &ns, &w.binding).await?;
    let gone_note = |what: &str| {
        if claim.took_over {
            format!("{what} when this claim took over from one that ran out: the earlier attempt's delete went through, or it was removed out of band")
        } else {
            format!("{what} (removed out of band)")
        }
    };
    let Some(b) = found else {
        return Ok((RevokedHow::AlreadyRemoved, gone_note("the binding was already gone")));
    };
    let subject = b.user.clone().or(b.group.clone()).unwrap_or_default();
    let scope_ok = w.scope.as_deref().is_none_or(|s| s == b.scope);
    if b.role != w.role || subject != w.subject || !scope_ok {
        return Ok((
            RevokedHow::ChangedOutOfBand,
            format!(
                "a binding named {} now grants {} the role {}, not what was granted; left alone",
                b.name,
                b.subject(),
                b.role
            ),
        ));
    }
    if b.deleting {
        return Ok((
            RevokedHow::AlreadyRemoved,
            gone_note("Rancher was already removing the binding"),
        ));
    }
    let mut exec = Exec::new(session, false);
    if bindings::delete(&mut exec, w.kind, &ns, &w.binding).await? {
        Ok((RevokedHow::Deleted, String::new()))
    } else {
        Ok((
            RevokedHow::AlreadyRemoved,
            "the binding disappeared between the read and the delete".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(0), TimeDelta::seconds(30));
        assert_eq!(backoff(1), TimeDelta::seconds(60));
        assert_eq!(backoff(3), TimeDelta::seconds(240));
        assert_eq!(backoff(20), TimeDelta::seconds(3600));
    }
}
