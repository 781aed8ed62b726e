//! Reminders and escalation: a request still pending after its policy's `remind_after_secs` (default 4 hours)
//! reminds the approvers who have not decided; after `escalate_after_secs` (when set) the fallback approvers
//! (Rancher admins other than the requester) are asked too. Each is recorded once in the audit log (the store's
//! transaction decides, so whichever replica runs the job, and however often, there is one of each), and the chat
//! deliverers send it from there, as they send everything from the outbox.

use std::sync::Arc;

use rancher_approval::audit::Reminded;
use rancher_approval::{RequestFilter, RequestState};

use crate::app::{with_store, App};

/// How long a request waits before its approvers are reminded, unless its policy says otherwise.
pub const DEFAULT_REMIND_AFTER_SECS: u64 = 4 * 3600;

/// A duration for people: `4h`, `1h 30m`, `45m`, `20s`.
pub(crate) fn human(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h {m}m"),
    }
}

/// Records the reminders and escalations that are due at the jobs' clock; answers how many were recorded.
pub(crate) async fn run(app: &Arc<App>) -> Result<usize, crate::error::ApiError> {
    let now = (app.clock)();
    let filter = RequestFilter {
        states: vec![RequestState::Pending],
        ..Default::default()
    };
    let pending = with_store(app.store(), |s| async move { s.list_requests(&filter).await }).await?;
    if pending.is_empty() {
        return Ok(0);
    }
    let admins = app.admin_ids().await;
    let mut recorded = 0;
    for req in pending {
        let waited = (now - req.created_at).num_seconds().max(0) as u64;
        let o = &req.policy.options;
        let remind = o.remind_after_secs.unwrap_or(DEFAULT_REMIND_AFTER_SECS);
        let mut due = Vec::new();
        if waited >= remind {
            due.push(Reminded {
                escalation: false,
                approvers: approver_ids(&req, &admins),
                waited_secs: waited,
            });
        }
        if o.escalate_after_secs.is_some_and(|e| waited >= e) {
            let mut fallback: Vec<String> = admins.iter().filter(|a| **a != req.requester.id).cloned().collect();
            fallback.retain(|a| !req.decisions.iter().any(|d| &d.principal.id == a));
            due.push(Reminded {
                escalation: true,
                approvers: fallback,
                waited_secs: waited,
            });
        }
        for r in due {
            let (id, actor) = (req.id.clone(), app.runner.process_label().to_string());
            let escalation = r.escalation;
            match with_store(
                app.store(),
                |s| async move { s.record_reminder(&id, &actor, r, now).await },
            )
            .await
            {
                Ok(true) => {
                    recorded += 1;
                    tracing::info!(request = %req.id, escalation, "reminded the approvers of a pending request");
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(request = %req.id, "could not record a reminder: {}", e.message),
            }
        }
    }
    Ok(recorded)
}

/// The Rancher users a policy names as approvers who may still decide on `req` (not the requester, not a target,
/// not one who decided): named users, or the installer, or (standing in) the admins. Groups cannot be listed
/// without their members' tokens: their members are reached through the channel.
pub(crate) fn approver_ids(req: &rancher_approval::ApprovalRequest, admins: &[String]) -> Vec<String> {
    let mut ids: Vec<String> = match &req.policy.rule {
        rancher_approval::Rule::None => Vec::new(),
        rancher_approval::Rule::Installer { fallback } => {
            let mut v: Vec<String> = req.installer.iter().map(|p| p.id.clone()).collect();
            if *fallback {
                v.extend(admins.iter().cloned());
            }
            v
        }
        rancher_approval::Rule::Approvers { thresholds, .. } => thresholds
            .iter()
            .flat_map(|t| t.of.iter())
            .filter_map(|r| match r {
                rancher_approval::ApproverRef::User(id) => Some(id.clone()),
                rancher_approval::ApproverRef::Group(_) => None,
            })
            .collect(),
    };
    let ctx = rancher_approval::EligibilityContext::with_fallback_approvers(admins.iter().cloned());
    ids.sort();
    ids.dedup();
    ids.retain(|id| {
        !req.decisions.iter().any(|d| &d.principal.id == id)
            && rancher_approval::check_eligibility(
                &req.policy,
                &req.facts(),
                &rancher_approval::Principal::new(id.clone()),
                &ctx,
            )
            .is_ok()
    });
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(human(4 * 3600), "4h");
        assert_eq!(human(5400), "1h 30m");
        assert_eq!(human(2700), "45m");
        assert_eq!(human(20), "20s");
    }

    #[tokio::test]
    async fn a_reminder_and_an_escalation_are_recorded_once_each_and_only_while_pending() {
        use rancher_approval::{
            ApproverRef, Decision, EligibilityContext, MemoryStore, NewRequest, Policy, Principal, Store,
        };
        let store = MemoryStore::new();
        let policy = Policy::at_least(1, [ApproverRef::user("u-1")]);
        let now = chrono::Utc::now();
        let req = store
            .create_request(NewRequest::new("wf", Principal::new("u-req"), policy), now)
            .await
            .unwrap();
        let r = |escalation| Reminded {
            escalation,
            approvers: vec!["u-1".into()],
            waited_secs: 3600,
        };
        assert!(store.record_reminder(&req.id, "job", r(false), now).await.unwrap());
        assert!(
            !store.record_reminder(&req.id, "job", r(false), now).await.unwrap(),
            "once"
        );
        assert!(store.record_reminder(&req.id, "job", r(true), now).await.unwrap());
        assert!(
            !store.record_reminder(&req.id, "job", r(true), now).await.unwrap(),
            "once"
        );
        let entries = store.audit_of_request(req.id.as_str()).await.unwrap();
        assert_eq!(
            entries
                .iter()
                .filter(|e| e.kind == rancher_approval::AuditKind::Reminded)
                .count(),
            2
        );
        store.verify_audit().await.unwrap();
        // Decided: no more reminders.
        let other = store
            .create_request(
                NewRequest::new(
                    "wf",
                    Principal::new("u-req"),
                    Policy::at_least(1, [ApproverRef::user("u-1")]),
                ),
                now,
            )
            .await
            .unwrap();
        store
            .decide(
                &other.id,
                &Principal::new("u-1"),
                Decision::approve(),
                &EligibilityContext::default(),
                now,
            )
            .await
            .unwrap();
        assert!(!store.record_reminder(&other.id, "job", r(false), now).await.unwrap());
    }
}
