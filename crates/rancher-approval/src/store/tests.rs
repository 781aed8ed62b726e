//! Behaviour every store must have, run against [`MemoryStore`], [`SqliteStore`] and [`PostgresStore`].

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;

use super::*;
use crate::error::{Error, Ineligibility};
use crate::policy::ApproverRef;
use crate::request::{Decision, ServerIdentity};

pub(crate) fn t0() -> DateTime<Utc> {
    "2025-03-01T12:00:00Z".parse().unwrap()
}

pub(crate) fn at(minutes: i64) -> DateTime<Utc> {
    t0() + TimeDelta::minutes(minutes)
}

fn alice() -> Principal {
    Principal::new("u-alice").with_username("alice")
}

fn bob() -> Principal {
    Principal::new("u-bob").with_username("bob")
}

fn carol() -> Principal {
    Principal::new("u-carol").with_username("carol")
}

fn none() -> EligibilityContext {
    EligibilityContext::default()
}

/// Claims `id` for the process `label` acting as `u-exec`, with a ten-minute lease.
async fn claim_for(store: &dyn Store, id: &RequestId, label: &str, now: DateTime<Utc>) -> Result<ExecutionClaim> {
    store
        .claim_execution(
            id,
            &crate::Executor::new("u-exec", label),
            now + TimeDelta::minutes(10),
            now,
        )
        .await
}

async fn kinds(store: &dyn Store) -> Vec<crate::AuditKind> {
    store
        .audit_entries()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

/// Runs each listed test body against a fresh memory store, a fresh SQLite store and a fresh PostgreSQL database
/// (see [`crate::test_util`]: skipped with a visible note when no PostgreSQL can be started, except under `CI`).
macro_rules! for_every_store {
    ($($name:ident),* $(,)?) => {
        mod memory_store {
            $(#[tokio::test] async fn $name() { super::$name(&crate::MemoryStore::new()).await; })*
        }
        mod sqlite_store {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() {
                let dir = tempfile::tempdir().unwrap();
                let store = crate::SqliteStore::open(dir.path().join("approvals.db")).unwrap();
                super::$name(&store).await;
            })*
        }
        mod postgres_store {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() {
                let Some(db) = crate::test_util::TestDatabase::create(stringify!($name)).await else { return };
                super::$name(&db.store().await).await;
            })*
        }
    };
}

for_every_store!(
    s9_verification_from_an_anchor,
    installer_round_trip,
    none_policy_runs_at_once,
    a_deny_ends_it,
    votes_are_idempotent_and_a_change_of_mind_denies,
    reasons_are_enforced,
    ineligible_decisions_are_refused_and_not_stored,
    expiry,
    cancel,
    in_doubt_executions_are_reconciled,
    a_fenced_executor_records_nothing,
    a_takeover_judged_on_a_stale_read_is_refused,
    requests_are_bound_to_their_server_and_content,
    the_audit_log_is_an_outbox,
    installations_and_policy_changes,
    secrets_never_reach_the_store,
    listing_and_lookup,
    pages_walk_newest_first_with_filters,
    invalid_policies_are_refused,
    racing_approvers_and_executors_execute_once,
    export_and_import_round_trip,
    grants_are_recorded_with_the_outcome,
    a_grant_is_revoked_once,
    racing_revokers_revoke_once,
    failed_revocations_back_off_and_a_lost_claim_is_taken_over,
    extensions_and_early_ends,
    grant_durations_follow_the_policy,
    service_state_round_trips_and_expires,
    a_lease_has_one_holder_at_a_time,
    a_new_state_entry_is_stored_once,
    the_audit_of_one_request_is_read_alone,
);

async fn service_state_round_trips_and_expires(store: &dyn Store) {
    store.state_put("web-session", "k1", "one", Some(at(10))).await.unwrap();
    store.state_put("web-session", "k2", "two", None).await.unwrap();
    store
        .state_put("dead-letter", "k1", "other namespace", None)
        .await
        .unwrap();
    assert_eq!(
        store.state_get("web-session", "k1", at(5)).await.unwrap().as_deref(),
        Some("one")
    );
    assert_eq!(
        store.state_get("web-session", "k1", at(10)).await.unwrap(),
        None,
        "expired at its time"
    );
    assert_eq!(store.state_get("web-session", "nope", at(5)).await.unwrap(), None);
    // A put replaces value and expiry.
    store
        .state_put("web-session", "k1", "one again", Some(at(20)))
        .await
        .unwrap();
    assert_eq!(
        store.state_get("web-session", "k1", at(15)).await.unwrap().as_deref(),
        Some("one again")
    );
    let listed = store.state_list("web-session", at(15), 10).await.unwrap();
    assert_eq!(
        listed,
        vec![
            ("k1".to_string(), "one again".to_string()),
            ("k2".to_string(), "two".to_string())
        ]
    );
    assert_eq!(
        store.state_list("web-session", at(25), 10).await.unwrap().len(),
        1,
        "the expired entry is not listed"
    );
    assert_eq!(
        store.state_list("web-session", at(15), 1).await.unwrap().len(),
        1,
        "the limit holds"
    );
    assert_eq!(store.state_purge(at(25)).await.unwrap(), 1);
    assert_eq!(store.state_purge(at(25)).await.unwrap(), 0);
    assert!(store.state_delete("web-session", "k2").await.unwrap());
    assert!(!store.state_delete("web-session", "k2").await.unwrap());
    assert_eq!(
        store.state_get("dead-letter", "k1", at(30)).await.unwrap().as_deref(),
        Some("other namespace")
    );
    // The leases' namespace is not reachable through the state methods, and nothing of it is audited.
    assert!(matches!(
        store.state_put(state::LEASES, "x", "y", None).await,
        Err(Error::InvalidState { .. })
    ));
    assert!(matches!(
        store.state_get("", "x", at(0)).await,
        Err(Error::InvalidState { .. })
    ));
    assert!(kinds(store).await.is_empty());
}

async fn a_new_state_entry_is_stored_once(store: &dyn Store) {
    assert!(store
        .state_put_new("slack-seen", "k", "first", Some(at(10)), at(0))
        .await
        .unwrap());
    assert!(
        !store
            .state_put_new("slack-seen", "k", "second", Some(at(20)), at(5))
            .await
            .unwrap(),
        "there already"
    );
    assert_eq!(
        store.state_get("slack-seen", "k", at(5)).await.unwrap().as_deref(),
        Some("first"),
        "left as it was"
    );
    assert!(
        store
            .state_put_new("slack-seen", "k", "third", None, at(10))
            .await
            .unwrap(),
        "stored again once the first expired"
    );
    assert_eq!(
        store.state_get("slack-seen", "k", at(1000)).await.unwrap().as_deref(),
        Some("third")
    );
    assert!(matches!(
        store.state_put_new(state::LEASES, "x", "y", None, at(0)).await,
        Err(Error::InvalidState { .. })
    ));
    race_put_new(&[store], 16).await;
    assert!(kinds(store).await.is_empty());
}

/// `n` callers spread over `stores` (one store, or several opened on one database as replicas are) store the
/// same new key at once: exactly one is told it stored it.
pub(crate) async fn race_put_new(stores: &[&dyn Store], n: usize) {
    let told: Vec<bool> = futures::future::join_all((0..n).map(|i| async move {
        stores[i % stores.len()]
            .state_put_new("slack-seen", "raced", &format!("replica-{i}"), Some(at(10)), at(0))
            .await
            .unwrap()
    }))
    .await;
    assert_eq!(told.iter().filter(|t| **t).count(), 1, "{told:?}");
    let kept = stores[0]
        .state_get("slack-seen", "raced", at(1))
        .await
        .unwrap()
        .unwrap();
    let winner = told.iter().position(|t| *t).unwrap();
    assert_eq!(kept, format!("replica-{winner}"), "the one told yes wrote it");
}

async fn a_lease_has_one_holder_at_a_time(store: &dyn Store) {
    assert!(store.try_lease("webhook:a", "replica-1", at(1), at(0)).await.unwrap());
    assert!(
        !store.try_lease("webhook:a", "replica-2", at(2), at(0)).await.unwrap(),
        "held by another"
    );
    assert!(
        store.try_lease("webhook:b", "replica-2", at(2), at(0)).await.unwrap(),
        "another lease is free"
    );
    assert!(
        store.try_lease("webhook:a", "replica-1", at(3), at(0)).await.unwrap(),
        "the holder renews"
    );
    assert!(
        !store.try_lease("webhook:a", "replica-2", at(4), at(2)).await.unwrap(),
        "the renewal holds"
    );
    assert!(
        store.try_lease("webhook:a", "replica-2", at(5), at(3)).await.unwrap(),
        "taken once it lapsed"
    );
    store.release_lease("webhook:a", "replica-1").await.unwrap();
    assert!(
        !store.try_lease("webhook:a", "replica-1", at(6), at(4)).await.unwrap(),
        "a lost holder cannot release another's"
    );
    store.release_lease("webhook:a", "replica-2").await.unwrap();
    assert!(
        store.try_lease("webhook:a", "replica-1", at(6), at(4)).await.unwrap(),
        "free after a release"
    );
    assert!(
        matches!(
            store.try_lease("webhook:c", "replica-1", at(4), at(4)).await,
            Err(Error::InvalidState { .. })
        ),
        "an end in the past"
    );
    assert!(
        store.state_list(state::LEASES, at(0), 10).await.is_err(),
        "leases are not state entries"
    );
}

async fn the_audit_of_one_request_is_read_alone(store: &dyn Store) {
    let inst = store
        .install("create-global-role-binding", &alice(), Policy::installer(), at(0))
        .await
        .unwrap();
    let a = store
        .create_request(NewRequest::for_installation(&inst, bob()), at(1))
        .await
        .unwrap();
    let b = store
        .create_request(NewRequest::for_installation(&inst, carol()), at(2))
        .await
        .unwrap();
    store.cancel(&a.id, &bob(), None, at(3)).await.unwrap();
    let of_a = store.audit_of_request(a.id.as_str()).await.unwrap();
    assert_eq!(
        of_a.iter().map(|e| e.kind.clone()).collect::<Vec<_>>(),
        vec![crate::AuditKind::RequestCreated, crate::AuditKind::Cancelled]
    );
    assert!(of_a.iter().all(|e| e.request_id.as_deref() == Some(a.id.as_str())));
    assert_eq!(store.audit_of_request(b.id.as_str()).await.unwrap().len(), 1);
    assert!(store.audit_of_request("req-unknown").await.unwrap().is_empty());
}

async fn installer_round_trip(store: &dyn Store) {
    let inst = store
        .install("create-global-role-binding", &alice(), Policy::installer(), at(0))
        .await
        .unwrap();
    let req = store
        .create_request(NewRequest::for_installation(&inst, bob()).targets(["u-carol"]), at(1))
        .await
        .unwrap();
    assert_eq!(req.state, RequestState::Pending);
    assert_eq!(req.installer.as_ref().unwrap().id, "u-alice");
    assert_eq!(req.expires_at, at(1) + TimeDelta::days(7));
    assert_eq!(req.policy_hash, Policy::installer().hash());

    let err = store
        .decide(&req.id, &bob(), Decision::approve(), &none(), at(2))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotEligible {
                reason: Ineligibility::NotAnApprover { .. },
                ..
            }
        ),
        "{err}"
    );
    let err = claim_for(store, &req.id, "exec-1", at(2)).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotApproved {
                state: RequestState::Pending,
                ..
            }
        ),
        "{err}"
    );

    let out = store
        .decide(&req.id, &alice(), Decision::approve().because("ok"), &none(), at(3))
        .await
        .unwrap();
    assert!(out.recorded);
    assert_eq!(out.request.state, RequestState::Approved);
    assert_eq!(out.request.decisions.len(), 1);
    assert_eq!(store.get_request(&req.id).await.unwrap(), out.request);
    let err = store
        .decide(&req.id, &alice(), Decision::deny(), &none(), at(4))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotPending {
                state: RequestState::Approved,
                ..
            }
        ),
        "{err}"
    );

    let claim = claim_for(store, &req.id, "exec-1", at(5)).await.unwrap();
    let err = claim_for(store, &req.id, "exec-2", at(5)).await.unwrap_err();
    assert!(
        matches!(err, Error::AlreadyClaimed { ref executor, .. } if executor == "exec-1"),
        "{err}"
    );
    assert_eq!(store.in_doubt().await.unwrap().len(), 1);

    let done = store
        .record_outcome(&claim, Outcome::succeeded(json!({"binding": "grb-1"})), at(6))
        .await
        .unwrap();
    assert_eq!(done.state, RequestState::Succeeded);
    let exec = done.execution.as_ref().unwrap();
    assert_eq!(exec.finished_at, Some(at(6)));
    assert_eq!(exec.outcome.as_ref().unwrap().detail, json!({"binding": "grb-1"}));
    let err = store
        .record_outcome(&claim, Outcome::failed(json!(null)), at(7))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::StaleClaim {
                state: RequestState::Succeeded,
                ..
            }
        ),
        "{err}"
    );
    let err = claim_for(store, &req.id, "exec-3", at(8)).await.unwrap_err();
    assert!(matches!(err, Error::AlreadyClaimed { .. }), "{err}");
    assert!(store.in_doubt().await.unwrap().is_empty());

    use crate::AuditKind::*;
    assert_eq!(
        kinds(store).await,
        [Installed, RequestCreated, Decided, ExecutionClaimed, ExecutionFinished]
    );
    assert_eq!(store.verify_audit().await.unwrap(), 5);
    let entries = store.audit_entries().await.unwrap();
    assert_eq!(entries[2].actor, "u-alice");
    assert_eq!(entries[2].request_id.as_deref(), Some(req.id.as_str()));
    assert_eq!(entries[2].workflow_id.as_deref(), Some("create-global-role-binding"));
    assert_eq!(entries[2].detail["state"], json!("approved"));
    assert_eq!(entries[2].detail["reason"], json!("ok"));
    assert_eq!(store.audit_head().await.unwrap(), entries[4].head());
}

async fn none_policy_runs_at_once(store: &dyn Store) {
    let req = store
        .create_request(NewRequest::new("list-users", bob(), Policy::none()), at(0))
        .await
        .unwrap();
    assert_eq!(req.state, RequestState::Approved);
    let claim = claim_for(store, &req.id, "exec", at(0)).await.unwrap();
    assert_eq!(claim.request_id, req.id);
    let err = store
        .decide(&req.id, &alice(), Decision::approve(), &none(), at(0))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotPending {
                state: RequestState::Executing,
                ..
            }
        ),
        "{err}"
    );
    let done = store
        .record_outcome(&claim, Outcome::failed(json!({"error": "boom"})), at(1))
        .await
        .unwrap();
    assert_eq!(done.state, RequestState::Failed);
}

async fn a_deny_ends_it(store: &dyn Store) {
    let policy = Policy::at_least(
        2,
        [alice(), carol(), Principal::new("u-dave")].map(|p| ApproverRef::user(p.id)),
    );
    let req = store
        .create_request(NewRequest::new("wf", bob(), policy), at(0))
        .await
        .unwrap();
    store
        .decide(&req.id, &alice(), Decision::approve(), &none(), at(1))
        .await
        .unwrap();
    let out = store
        .decide(&req.id, &carol(), Decision::deny().because("not today"), &none(), at(2))
        .await
        .unwrap();
    assert_eq!(out.request.state, RequestState::Denied);
    let err = store
        .decide(&req.id, &Principal::new("u-dave"), Decision::approve(), &none(), at(3))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotPending {
                state: RequestState::Denied,
                ..
            }
        ),
        "{err}"
    );
    let err = claim_for(store, &req.id, "exec", at(3)).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotApproved {
                state: RequestState::Denied,
                ..
            }
        ),
        "{err}"
    );
}

async fn votes_are_idempotent_and_a_change_of_mind_denies(store: &dyn Store) {
    let policy = Policy::at_least(2, ["u-alice", "u-carol"].map(ApproverRef::user));
    let req = store
        .create_request(NewRequest::new("wf", bob(), policy), at(0))
        .await
        .unwrap();
    assert!(
        store
            .decide(&req.id, &alice(), Decision::approve(), &none(), at(1))
            .await
            .unwrap()
            .recorded
    );
    let again = store
        .decide(&req.id, &alice(), Decision::approve(), &none(), at(2))
        .await
        .unwrap();
    assert!(!again.recorded);
    assert_eq!(again.request.state, RequestState::Pending);
    assert_eq!(again.request.decisions.len(), 1);
    assert_eq!(
        store.audit_entries().await.unwrap().len(),
        2,
        "a repeated vote adds no audit entry"
    );
    let changed = store
        .decide(
            &req.id,
            &alice(),
            Decision::deny().because("changed my mind"),
            &none(),
            at(3),
        )
        .await
        .unwrap();
    assert!(changed.recorded);
    assert_eq!(changed.request.state, RequestState::Denied);
    assert_eq!(changed.request.decisions.len(), 2);
}

async fn reasons_are_enforced(store: &dyn Store) {
    let policy = Policy::any_of([ApproverRef::user("u-alice")])
        .require_requester_reason(true)
        .require_reviewer_reason(true);
    let err = store
        .create_request(NewRequest::new("wf", bob(), policy.clone()), at(0))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ReasonRequired { from: "requester" }), "{err}");
    let err = store
        .create_request(NewRequest::new("wf", bob(), policy.clone()).reason("  "), at(0))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ReasonRequired { from: "requester" }), "{err}");
    assert!(store.list_requests(&RequestFilter::all()).await.unwrap().is_empty());

    let req = store
        .create_request(NewRequest::new("wf", bob(), policy).reason("INC-42"), at(0))
        .await
        .unwrap();
    assert_eq!(req.reason.as_deref(), Some("INC-42"));
    let err = store
        .decide(&req.id, &alice(), Decision::approve(), &none(), at(1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ReasonRequired { from: "reviewer" }), "{err}");
    assert!(store.get_request(&req.id).await.unwrap().decisions.is_empty());
    let out = store
        .decide(
            &req.id,
            &alice(),
            Decision::approve().because("checked"),
            &none(),
            at(1),
        )
        .await
        .unwrap();
    assert_eq!(out.request.state, RequestState::Approved);
}

async fn ineligible_decisions_are_refused_and_not_stored(store: &dyn Store) {
    // Bob asks to make himself admin; Bob is on the approver list, self-approval is even allowed.
    let policy = Policy::any_of(["u-bob", "u-alice"].map(ApproverRef::user)).allow_self_approval(true);
    let req = store
        .create_request(NewRequest::new("wf", bob(), policy).targets(["u-bob"]), at(0))
        .await
        .unwrap();
    let err = store
        .decide(&req.id, &bob(), Decision::approve(), &none(), at(1))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotEligible {
                reason: Ineligibility::TargetOfRequest,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("target"), "{err}");
    let err = store
        .decide(&req.id, &carol(), Decision::deny(), &none(), at(1))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotEligible {
                reason: Ineligibility::NotAnApprover { .. },
                ..
            }
        ),
        "{err}"
    );

    let policy = Policy::any_of(["u-bob", "u-alice"].map(ApproverRef::user));
    let req2 = store
        .create_request(NewRequest::new("wf", bob(), policy), at(0))
        .await
        .unwrap();
    let err = store
        .decide(&req2.id, &bob(), Decision::approve(), &none(), at(1))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotEligible {
                reason: Ineligibility::SelfApproval,
                ..
            }
        ),
        "{err}"
    );

    for id in [&req.id, &req2.id] {
        let r = store.get_request(id).await.unwrap();
        assert!(r.decisions.is_empty());
        assert_eq!(r.state, RequestState::Pending);
    }
    assert_eq!(store.audit_entries().await.unwrap().len(), 2);

    // With the facts resolved by the caller, the installer who requested waits for a fallback approver.
    let inst = store
        .install("wf-i", &alice(), Policy::installer(), at(0))
        .await
        .unwrap();
    let req3 = store
        .create_request(NewRequest::for_installation(&inst, alice()), at(0))
        .await
        .unwrap();
    let admins = EligibilityContext::with_fallback_approvers(["u-alice", "u-carol"]);
    let err = store
        .decide(&req3.id, &alice(), Decision::approve(), &admins, at(1))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotEligible {
                reason: Ineligibility::SelfApproval,
                ..
            }
        ),
        "{err}"
    );
    let err = store
        .decide(&req3.id, &bob(), Decision::approve(), &admins, at(1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotEligible { .. }), "{err}");
    let out = store
        .decide(&req3.id, &carol(), Decision::approve(), &admins, at(2))
        .await
        .unwrap();
    assert_eq!(out.request.state, RequestState::Approved);
    assert_eq!(out.request.decisions[0].context, admins);
}

async fn expiry(store: &dyn Store) {
    let policy = Policy::any_of([ApproverRef::user("u-alice")]).expires_after(std::time::Duration::from_secs(3600));
    let early = store
        .create_request(NewRequest::new("wf", bob(), policy.clone()), at(0))
        .await
        .unwrap();
    let late = store
        .create_request(NewRequest::new("wf", bob(), policy.clone()), at(30))
        .await
        .unwrap();
    let decided = store
        .create_request(NewRequest::new("wf", bob(), policy), at(0))
        .await
        .unwrap();
    store
        .decide(&decided.id, &alice(), Decision::approve(), &none(), at(10))
        .await
        .unwrap();
    assert_eq!(early.expires_at, at(60));

    assert!(store.expire_due(at(59)).await.unwrap().is_empty());
    assert_eq!(store.expire_due(at(60)).await.unwrap(), vec![early.id.clone()]);
    assert_eq!(store.get_request(&early.id).await.unwrap().state, RequestState::Expired);
    assert_eq!(
        store.get_request(&decided.id).await.unwrap().state,
        RequestState::Approved
    );

    // A decision arriving after the expiry records the expiry and is refused.
    let err = store
        .decide(&late.id, &alice(), Decision::approve(), &none(), at(90))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Expired { .. }), "{err}");
    let stored = store.get_request(&late.id).await.unwrap();
    assert_eq!(stored.state, RequestState::Expired);
    assert!(stored.decisions.is_empty());
    assert_eq!(stored.closed.as_ref().unwrap().by, crate::SYSTEM_ACTOR);
    let err = store
        .decide(&late.id, &alice(), Decision::approve(), &none(), at(91))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotPending {
                state: RequestState::Expired,
                ..
            }
        ),
        "{err}"
    );
    assert!(store.expire_due(at(1000)).await.unwrap().is_empty());
    let expired = kinds(store)
        .await
        .into_iter()
        .filter(|k| *k == crate::AuditKind::Expired)
        .count();
    assert_eq!(expired, 2);
    assert_eq!(store.verify_audit().await.unwrap(), 3 + 1 + 2);
}

async fn cancel(store: &dyn Store) {
    let req = store
        .create_request(NewRequest::new("wf", bob(), Policy::installer()), at(0))
        .await
        .unwrap();
    let out = store
        .cancel(&req.id, &bob(), Some("wrong user".into()), at(1))
        .await
        .unwrap();
    assert_eq!(out.state, RequestState::Cancelled);
    assert_eq!(out.closed.as_ref().unwrap().reason.as_deref(), Some("wrong user"));
    let err = store.cancel(&req.id, &bob(), None, at(2)).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotPending {
                state: RequestState::Cancelled,
                ..
            }
        ),
        "{err}"
    );
    let err = claim_for(store, &req.id, "exec", at(2)).await.unwrap_err();
    assert!(matches!(err, Error::NotApproved { .. }), "{err}");
    let entries = store.audit_entries().await.unwrap();
    assert_eq!(entries.last().unwrap().kind, crate::AuditKind::Cancelled);
    assert_eq!(entries.last().unwrap().actor, "u-bob");
}

async fn in_doubt_executions_are_reconciled(store: &dyn Store) {
    let req = store
        .create_request(NewRequest::new("wf", bob(), Policy::none()), at(0))
        .await
        .unwrap();
    let taker = crate::Executor::new("u-alice", "reconciler");
    let err = store
        .take_over(&req.id, &taker, Takeover::LeaseExpired, "", at(30), at(1))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotInDoubt {
                state: RequestState::Approved,
                ..
            }
        ),
        "{err}"
    );
    let lost = claim_for(store, &req.id, "exec-crashed", at(1)).await.unwrap();
    assert_eq!(lost.epoch, 1);
    // The executor dies here. Its lease (10 minutes) still holds: nobody may take over yet (security review
    // item 11: a reconcile racing a live executor marked an applied change as failed).
    let doubt = store.in_doubt().await.unwrap();
    assert_eq!(doubt.iter().map(|r| &r.id).collect::<Vec<_>>(), vec![&req.id]);
    let err = store
        .take_over(&req.id, &taker, Takeover::LeaseExpired, &lost.claim_id, at(30), at(5))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::LeaseHeld { .. }), "{err}");
    // Once the lease ran out, the reconciler takes over with the next epoch and settles it.
    let taken = store
        .take_over(&req.id, &taker, Takeover::LeaseExpired, &lost.claim_id, at(30), at(11))
        .await
        .unwrap();
    assert_eq!(taken.epoch, 2);
    let done = store
        .resolve_in_doubt(
            &taken,
            Outcome::succeeded(json!({"found": true})),
            "binding exists",
            at(12),
        )
        .await
        .unwrap();
    assert_eq!(done.state, RequestState::Succeeded);
    let rec = done.execution.as_ref().unwrap().reconciled.as_ref().unwrap();
    assert_eq!((rec.by.as_str(), rec.note.as_str()), ("u-alice", "binding exists"));
    assert!(store.in_doubt().await.unwrap().is_empty());
    // The lost executor coming back cannot overwrite the settled outcome.
    let err = store
        .record_outcome(&lost, Outcome::failed(json!(null)), at(13))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::StaleClaim { .. }), "{err}");
    let entries = store.audit_entries().await.unwrap();
    let kinds: Vec<_> = entries.iter().rev().take(2).map(|e| e.kind.clone()).collect();
    assert_eq!(
        kinds,
        [crate::AuditKind::Reconciled, crate::AuditKind::ExecutionTakenOver]
    );
    assert_eq!(entries.last().unwrap().detail["note"], json!("binding exists"));
    assert_eq!(store.verify_audit().await.unwrap(), entries.len() as u64);
}

/// Security review item 11: an executor whose lease was taken over (it was paused, not dead) can record
/// nothing, while a live executor renews its lease and keeps it.
async fn a_fenced_executor_records_nothing(store: &dyn Store) {
    let req = store
        .create_request(NewRequest::new("wf", bob(), Policy::none()), at(0))
        .await
        .unwrap();
    let live = claim_for(store, &req.id, "slow", at(1)).await.unwrap();
    let renewed = store.renew_lease(&live, at(40), at(9)).await.unwrap();
    let taker = crate::Executor::new("u-alice", "reconciler");
    let err = store
        .take_over(&req.id, &taker, Takeover::LeaseExpired, &live.claim_id, at(60), at(20))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::LeaseHeld { .. }), "the renewed lease holds: {err}");
    // The owner's process is known to be gone (same host, no such pid): taken over at once.
    let taken = store
        .take_over(&req.id, &taker, Takeover::OwnerGone, &live.claim_id, at(60), at(21))
        .await
        .unwrap();
    let err = store
        .record_outcome(&renewed, Outcome::succeeded(json!(null)), at(22))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::StaleClaim { .. }), "{err}");
    let err = store.renew_lease(&renewed, at(90), at(22)).await.unwrap_err();
    assert!(matches!(err, Error::StaleClaim { .. }), "{err}");
    let done = store
        .record_outcome(&taken, Outcome::succeeded(json!({"ok": 1})), at(23))
        .await
        .unwrap();
    assert_eq!(done.state, RequestState::Succeeded);
    assert_eq!(done.execution.unwrap().epoch, 2);
}

/// Two reconcilers (two service replicas) read the same dead executor's request and both judge it orphaned: only
/// the first takes it over; the second, acting on its stale read, is refused and cannot fence the first (seen when
/// a restarted replica and a running one reconciled at once).
async fn a_takeover_judged_on_a_stale_read_is_refused(store: &dyn Store) {
    let req = store
        .create_request(NewRequest::new("wf", bob(), Policy::none()), at(0))
        .await
        .unwrap();
    let dead = claim_for(store, &req.id, "crashed", at(1)).await.unwrap();
    let (a, b) = (
        crate::Executor::new("u-svc", "replica-a"),
        crate::Executor::new("u-svc", "replica-b"),
    );
    let first = store
        .take_over(&req.id, &a, Takeover::OwnerGone, &dead.claim_id, at(60), at(2))
        .await
        .unwrap();
    let err = store
        .take_over(&req.id, &b, Takeover::OwnerGone, &dead.claim_id, at(60), at(2))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::LeaseHeld { .. }), "{err}");
    let done = store
        .record_outcome(&first, Outcome::succeeded(json!({"ok": 1})), at(3))
        .await
        .unwrap();
    assert_eq!(
        (done.state, done.execution.unwrap().epoch),
        (RequestState::Succeeded, 2)
    );
}

async fn installations_and_policy_changes(store: &dyn Store) {
    assert_eq!(store.get_installation("wf").await.unwrap(), None);
    let err = store
        .set_policy("wf", Policy::none(), &alice(), at(0))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotInstalled { .. }), "{err}");
    let inst = store.install("wf", &alice(), Policy::installer(), at(0)).await.unwrap();
    store
        .install("list-users", &carol(), Policy::none(), at(0))
        .await
        .unwrap();
    let err = store.install("wf", &bob(), Policy::none(), at(1)).await.unwrap_err();
    assert!(matches!(err, Error::AlreadyInstalled { .. }), "{err}");
    assert_eq!(store.get_installation("wf").await.unwrap().unwrap(), inst);

    let old = store
        .create_request(NewRequest::for_installation(&inst, bob()), at(1))
        .await
        .unwrap();
    let new_policy = Policy::any_of([ApproverRef::user("u-carol")]);
    let changed = store
        .set_policy("wf", new_policy.clone(), &carol(), at(2))
        .await
        .unwrap();
    assert_eq!(changed.policy, new_policy);
    assert_eq!(changed.installed_at, at(0));
    assert_eq!(changed.updated_at, at(2));
    assert_eq!(changed.installer, alice());
    // Same policy again: nothing to record.
    store
        .set_policy("wf", new_policy.clone(), &carol(), at(3))
        .await
        .unwrap();

    let entries = store.audit_entries().await.unwrap();
    let last = entries.last().unwrap();
    assert_eq!(last.kind, crate::AuditKind::PolicyChanged);
    assert_eq!(last.actor, "u-carol");
    assert_eq!(last.workflow_id.as_deref(), Some("wf"));
    assert_eq!(last.detail["old_policy_hash"], json!(Policy::installer().hash()));
    assert_eq!(last.detail["new_policy_hash"], json!(new_policy.hash()));
    assert_eq!(
        entries
            .iter()
            .filter(|e| e.kind == crate::AuditKind::PolicyChanged)
            .count(),
        1
    );

    // The request made before the change keeps the policy it was made under.
    let kept = store.get_request(&old.id).await.unwrap();
    assert_eq!(kept.policy, Policy::installer());
    assert_eq!(kept.policy_hash, Policy::installer().hash());
    let err = store
        .decide(&old.id, &carol(), Decision::approve(), &none(), at(4))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotEligible { .. }), "{err}");

    let all: Vec<String> = store
        .list_installations()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.workflow_id)
        .collect();
    assert_eq!(all, ["list-users", "wf"]);
}

async fn secrets_never_reach_the_store(store: &dyn Store) {
    let inputs = json!({"user": "u-carol", "password": "hunter2", "auth": {"token": "kubeconfig-u:s3cr3t"}});
    let req = store
        .create_request(
            NewRequest::new("wf", bob(), Policy::installer()).inputs(inputs, ["password", "token"]),
            at(0),
        )
        .await
        .unwrap();
    assert_eq!(
        req.inputs,
        json!({"user": "u-carol", "password": "***", "auth": {"token": "***"}})
    );
    let stored = serde_json::to_string(&store.get_request(&req.id).await.unwrap()).unwrap();
    let audit = serde_json::to_string(&store.audit_entries().await.unwrap()).unwrap();
    for text in [stored, audit] {
        assert!(!text.contains("hunter2") && !text.contains("s3cr3t"), "{text}");
        assert!(text.contains("u-carol"));
    }
}

async fn listing_and_lookup(store: &dyn Store) {
    let a = store
        .create_request(NewRequest::new("wf-a", bob(), Policy::installer()), at(0))
        .await
        .unwrap();
    let b = store
        .create_request(NewRequest::new("wf-b", carol(), Policy::none()), at(1))
        .await
        .unwrap();
    let c = store
        .create_request(NewRequest::new("wf-a", carol(), Policy::installer()), at(2))
        .await
        .unwrap();
    let ids = |f: RequestFilter| async move {
        store
            .list_requests(&f)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect::<Vec<RequestId>>()
    };
    assert_eq!(
        ids(RequestFilter::all()).await,
        [a.id.clone(), b.id.clone(), c.id.clone()]
    );
    assert_eq!(
        ids(RequestFilter::all().state(RequestState::Pending)).await,
        [a.id.clone(), c.id.clone()]
    );
    assert_eq!(
        ids(RequestFilter::all()
            .state(RequestState::Approved)
            .state(RequestState::Pending))
        .await,
        [a.id.clone(), b.id.clone(), c.id.clone()]
    );
    assert_eq!(
        ids(RequestFilter::all().workflow("wf-a").requester("u-carol")).await,
        vec![c.id]
    );
    assert!(ids(RequestFilter::all().state(RequestState::Failed)).await.is_empty());
    let missing = RequestId::from_uuid(uuid::Uuid::nil());
    let err = store.get_request(&missing).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("rancherctl approvals list"));
    for err in [
        store
            .decide(&missing, &alice(), Decision::approve(), &none(), at(0))
            .await
            .unwrap_err(),
        store.cancel(&missing, &alice(), None, at(0)).await.unwrap_err(),
        claim_for(store, &missing, "e", at(0)).await.unwrap_err(),
    ] {
        assert!(matches!(err, Error::NotFound { .. }), "{err}");
    }
}

async fn pages_walk_newest_first_with_filters(store: &dyn Store) {
    for i in 0..7 {
        let (wf, who, policy) = if i % 2 == 0 {
            ("wf-a", bob(), Policy::installer())
        } else {
            ("wf-b", carol(), Policy::none())
        };
        store
            .create_request(NewRequest::new(wf, who, policy), at(i))
            .await
            .unwrap();
    }
    let filters = [
        RequestFilter::all(),
        RequestFilter::all().state(RequestState::Pending),
        RequestFilter::all()
            .state(RequestState::Approved)
            .state(RequestState::Pending),
        RequestFilter::all().workflow("wf-b"),
        RequestFilter::all().workflow("wf-a").requester("u-carol"),
    ];
    for f in filters {
        let mut want: Vec<RequestId> = store
            .list_requests(&f)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        want.reverse();
        let mut got = Vec::new();
        let mut before: Option<RequestId> = None;
        loop {
            let page = store.page_requests(&f, before.as_ref(), 3).await.unwrap();
            assert!(page.len() <= 3);
            let done = page.len() < 3;
            before = page.last().map(|r| r.id.clone());
            got.extend(page.into_iter().map(|r| r.id));
            if done {
                break;
            }
        }
        assert_eq!(got, want, "{f:?}");
    }
    assert!(store
        .page_requests(&RequestFilter::all(), None, 0)
        .await
        .unwrap()
        .is_empty());
    let mut counts = store.count_requests().await.unwrap();
    counts.sort_by_key(|(s, _)| s.as_str());
    assert_eq!(counts, [(RequestState::Approved, 3), (RequestState::Pending, 4)]);
}

async fn invalid_policies_are_refused(store: &dyn Store) {
    let bad = Policy::at_least(3, [ApproverRef::user("u-alice")]);
    let err = store
        .create_request(NewRequest::new("wf", bob(), bad.clone()), at(0))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidPolicy { .. }), "{err}");
    let err = store.install("wf", &alice(), bad.clone(), at(0)).await.unwrap_err();
    assert!(matches!(err, Error::InvalidPolicy { .. }), "{err}");
    store.install("wf", &alice(), Policy::none(), at(0)).await.unwrap();
    let err = store.set_policy("wf", bad, &alice(), at(0)).await.unwrap_err();
    assert!(matches!(err, Error::InvalidPolicy { .. }), "{err}");
    assert_eq!(
        store.get_installation("wf").await.unwrap().unwrap().policy,
        Policy::none()
    );
    assert_eq!(store.audit_entries().await.unwrap().len(), 1);
}

/// Many concurrent tasks (spread over `stores`) approve the same request and then all try to execute it: exactly
/// one execution happens.
pub(crate) async fn race(stores: &[&dyn Store], threads: usize) {
    let approvers: Vec<Principal> = (0..threads).map(|i| Principal::new(format!("u-{i}"))).collect();
    let policy = Policy::at_least(3, approvers.iter().map(|p| ApproverRef::user(p.id.clone())));
    let req = stores[0]
        .create_request(NewRequest::new("wf", bob(), policy), at(0))
        .await
        .unwrap();
    let id = &req.id;
    // All futures are polled together, so their store calls overlap (each store runs its transactions on its own
    // threads or connections).
    let results: Vec<(bool, Result<ExecutionClaim>)> =
        futures::future::join_all(approvers.iter().enumerate().map(|(i, p)| async move {
            let store = stores[i % stores.len()];
            let decided = match store
                .decide(id, p, Decision::approve(), &EligibilityContext::default(), at(1))
                .await
            {
                Ok(out) => out.recorded,
                Err(Error::NotPending { .. }) => false,
                Err(e) => panic!("unexpected decide error: {e:?}"),
            };
            (decided, claim_for(store, id, &format!("exec-{i}"), at(2)).await)
        }))
        .await;
    let votes = results.iter().filter(|(recorded, _)| *recorded).count();
    assert!((3..=threads).contains(&votes), "{votes} votes recorded");
    let winners: Vec<&ExecutionClaim> = results.iter().filter_map(|(_, r)| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "exactly one execution: {results:?}");
    for (_, r) in &results {
        if let Err(e) = r {
            assert!(
                matches!(e, Error::AlreadyClaimed { .. } | Error::NotApproved { .. }),
                "{e}"
            );
        }
    }
    let stored = stores[0].get_request(&req.id).await.unwrap();
    assert_eq!(stored.state, RequestState::Executing);
    assert_eq!(stored.execution.as_ref().unwrap().claim_id, winners[0].claim_id);
    // Approval stops at the threshold: later votes were refused as no longer pending.
    assert_eq!(stored.decisions.len(), 3);
    let claims = stores[0]
        .audit_entries()
        .await
        .unwrap()
        .iter()
        .filter(|e| e.kind == crate::AuditKind::ExecutionClaimed)
        .count();
    assert_eq!(claims, 1);
    for store in stores {
        assert_eq!(store.verify_audit().await.unwrap(), 1 + 3 + 1);
    }
}

async fn racing_approvers_and_executors_execute_once(store: &dyn Store) {
    race(&[store], 16).await;
}

/// Security review item 3: a vote recorded through a fake server counted toward a real request. Requests are
/// bound to their server; decisions and execution through any other are refused, and a decision names the
/// content it was made on.
async fn requests_are_bound_to_their_server_and_content(store: &dyn Store) {
    let real = ServerIdentity::new("rancher.example.com", Some("0f6c9a3e-real".into()));
    let fake = ServerIdentity::new("127.0.0.1:47444", Some("0f6c9a3e-real".into()));
    let policy = Policy::at_least(2, ["u-alice", "u-carol"].map(ApproverRef::user));
    let req = store
        .create_request(
            NewRequest::new("wf", bob(), policy)
                .server(real.clone())
                .target_label("u-dave", "dave"),
            at(0),
        )
        .await
        .unwrap();
    assert_eq!(req.content_hash, req.compute_content_hash());
    assert_eq!(req.content_hash.len(), 64);
    for found in [
        Some(fake.clone()),
        None,
        Some(ServerIdentity::new("rancher.example.com", Some("other-install".into()))),
    ] {
        let mut d = Decision::approve();
        d.server = found;
        let err = store.decide(&req.id, &alice(), d, &none(), at(1)).await.unwrap_err();
        assert!(matches!(err, Error::WrongServer { .. }), "{err}");
    }
    let err = store
        .decide(
            &req.id,
            &alice(),
            Decision::approve().through(real.clone()).reviewed("not-what-is-stored"),
            &none(),
            at(1),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ContentChanged { .. }), "{err}");
    assert!(
        store.get_request(&req.id).await.unwrap().decisions.is_empty(),
        "nothing was recorded"
    );
    store
        .decide(
            &req.id,
            &alice(),
            Decision::approve()
                .through(real.clone())
                .reviewed(req.content_hash.clone()),
            &none(),
            at(2),
        )
        .await
        .unwrap();
    let done = store
        .decide(
            &req.id,
            &carol(),
            Decision::approve().through(real.clone()),
            &none(),
            at(3),
        )
        .await
        .unwrap();
    assert_eq!(done.request.state, RequestState::Approved);
    assert!(done
        .request
        .decisions
        .iter()
        .all(|d| d.content_hash.as_deref() == Some(req.content_hash.as_str())));
    let on_fake = crate::Executor::new("u-alice", "x").on(fake);
    let err = store
        .claim_execution(&req.id, &on_fake, at(20), at(4))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::WrongServer { .. }), "{err}");
    store
        .claim_execution(&req.id, &crate::Executor::new("u-alice", "x").on(real), at(20), at(4))
        .await
        .unwrap();
    store.verify_audit().await.unwrap();
}

async fn the_audit_log_is_an_outbox(store: &dyn Store) {
    for i in 0..5 {
        store
            .create_request(NewRequest::new("wf", bob(), Policy::installer()), at(i))
            .await
            .unwrap();
    }
    let all = store.audit_after(0, 100).await.unwrap();
    assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    assert_eq!(store.audit_after(3, 1).await.unwrap()[0].seq, 4);
    assert!(store.audit_after(5, 10).await.unwrap().is_empty());
    assert_eq!(store.delivery_cursor("https://hooks.example/a").await.unwrap(), 0);
    store.set_delivery_cursor("https://hooks.example/a", 3).await.unwrap();
    store.set_delivery_cursor("https://hooks.example/a", 2).await.unwrap();
    assert_eq!(
        store.delivery_cursor("https://hooks.example/a").await.unwrap(),
        3,
        "a cursor never moves back"
    );
    assert_eq!(store.delivery_cursor("https://hooks.example/b").await.unwrap(), 0);
}

/// A store with a bit of everything: an installation and a policy change, pending, approved, executed, cancelled
/// and denied requests, a delivery cursor.
pub(crate) async fn fill(store: &dyn Store) {
    let inst = store.install("wf", &alice(), Policy::installer(), at(0)).await.unwrap();
    store
        .set_policy(
            "wf",
            Policy::at_least(1, [ApproverRef::user("u-alice")]),
            &alice(),
            at(0),
        )
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..4 {
        let new = NewRequest::for_installation(&inst, bob()).inputs(json!({"n": i, "token": "s3cret"}), ["token"]);
        ids.push(store.create_request(new, at(i)).await.unwrap().id);
    }
    store
        .decide(&ids[0], &alice(), Decision::approve(), &none(), at(5))
        .await
        .unwrap();
    store
        .decide(&ids[1], &alice(), Decision::approve(), &none(), at(5))
        .await
        .unwrap();
    let claim = claim_for(store, &ids[1], "exec", at(6)).await.unwrap();
    store
        .record_outcome(&claim, crate::Outcome::succeeded(json!({"binding": "grb-1"})), at(7))
        .await
        .unwrap();
    store
        .cancel(&ids[2], &bob(), Some("not needed".into()), at(8))
        .await
        .unwrap();
    store
        .decide(&ids[3], &alice(), Decision::deny().because("no"), &none(), at(9))
        .await
        .unwrap();
    store.set_delivery_cursor("https://hooks.example/a", 4).await.unwrap();
}

fn lines(bytes: &[u8]) -> Vec<serde_json::Value> {
    std::str::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Moving stores: everything exported from one store is imported into this (empty) one, verified, and exports
/// again unchanged; a second import, or an edited export, is refused.
async fn export_and_import_round_trip(store: &dyn Store) {
    let source = crate::MemoryStore::new();
    fill(&source).await;
    let mut exported = Vec::new();
    let summary = crate::export(&source, &mut exported).await.unwrap();
    assert_eq!(
        (
            summary.installations,
            summary.requests,
            summary.decisions,
            summary.cursors
        ),
        (1, 4, 3, 1)
    );
    assert_eq!(summary.audit_entries, source.audit_entries().await.unwrap().len());
    assert!(
        !String::from_utf8_lossy(&exported).contains("s3cret"),
        "secrets were never stored"
    );

    let imported = crate::import(store, exported.as_slice()).await.unwrap();
    assert_eq!(imported, summary);
    assert_eq!(store.verify_audit().await.unwrap(), summary.audit_entries as u64);
    let mut again = Vec::new();
    crate::export(store, &mut again).await.unwrap();
    assert_eq!(lines(&again), lines(&exported));
    assert_eq!(store.delivery_cursor("https://hooks.example/a").await.unwrap(), 4);
    // The imported store works on: the approved request executes once.
    let approved = store
        .list_requests(&RequestFilter::all().state(RequestState::Approved))
        .await
        .unwrap();
    assert_eq!(approved.len(), 1);
    claim_for(store, &approved[0].id, "exec-2", at(20)).await.unwrap();

    let err = crate::import(store, exported.as_slice()).await.unwrap_err();
    assert!(matches!(err, Error::ImportTargetNotEmpty { .. }), "{err}");

    // An export whose request was edited (inputs: the first match, in a request line) or whose audit entry was
    // edited (the deny's reason: the last match, in the audit line) is refused, and leaves nothing.
    let text = String::from_utf8(exported).unwrap();
    for (from, to, last) in [
        ("{\"n\":0", "{\"n\":7", false),
        ("\"reason\":\"no\"", "\"reason\":\"ok\"", true),
    ] {
        let at = if last { text.rfind(from) } else { text.find(from) }.unwrap();
        let edited = format!("{}{to}{}", &text[..at], &text[at + from.len()..]);
        let target = crate::MemoryStore::new();
        let err = crate::import(&target, edited.as_bytes()).await.unwrap_err();
        assert!(matches!(err, Error::AuditBroken { .. }), "{from}: {err}");
        assert!(
            target.audit_entries().await.unwrap().is_empty()
                && target.list_requests(&RequestFilter::all()).await.unwrap().is_empty()
        );
    }
    let err = crate::import(
        &crate::MemoryStore::new(),
        "{\"record\":\"audit\",\"data\":{}}\n".as_bytes(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::BadExport { line: 1, .. }), "{err}");
}

fn a_grant(minutes: u64) -> crate::grant::NewGrant {
    crate::grant::NewGrant {
        kind: crate::grant::BindingKind::Project,
        binding: "prtb-ra-1".into(),
        namespace: Some("c-abc-p-xyz".into()),
        scope: Some("c-abc:p-xyz".into()),
        subject_kind: crate::grant::SubjectKind::User,
        subject: "u-carol".into(),
        role: "project-member".into(),
        duration_secs: minutes * 60,
    }
}

/// A request by bob approved by alice, executed at `minute` with `grant` reported in its outcome.
async fn granted(store: &dyn Store, minute: i64, grant: crate::grant::GrantChange) -> ApprovalRequest {
    let req = store
        .create_request(
            NewRequest::new(
                "grant-project-role",
                bob(),
                Policy::any_of([ApproverRef::user("u-alice")]),
            ),
            at(minute),
        )
        .await
        .unwrap();
    store
        .decide(&req.id, &alice(), Decision::approve(), &none(), at(minute))
        .await
        .unwrap();
    let claim = claim_for(store, &req.id, "exec", at(minute)).await.unwrap();
    store
        .record_outcome(
            &claim,
            Outcome::succeeded(json!({})).with_grant(Some(grant)),
            at(minute),
        )
        .await
        .unwrap()
}

async fn grants_are_recorded_with_the_outcome(store: &dyn Store) {
    // A failed execution records no grant, whatever it reported.
    let req = store
        .create_request(NewRequest::new("grant-project-role", bob(), Policy::none()), at(0))
        .await
        .unwrap();
    let claim = claim_for(store, &req.id, "exec", at(0)).await.unwrap();
    store
        .record_outcome(
            &claim,
            Outcome::failed(json!({})).with_grant(Some(crate::grant::GrantChange::New(a_grant(60)))),
            at(0),
        )
        .await
        .unwrap();
    assert!(store.list_grants(&crate::GrantFilter::all()).await.unwrap().is_empty());
    assert!(matches!(
        store.get_grant(req.id.as_str()).await,
        Err(Error::GrantNotFound { .. })
    ));

    // The clock starts at execution (minute 5), not at the request (minute 3).
    let req = store
        .create_request(
            NewRequest::new(
                "grant-project-role",
                bob(),
                Policy::any_of([ApproverRef::user("u-alice")]),
            ),
            at(3),
        )
        .await
        .unwrap();
    store
        .decide(&req.id, &alice(), Decision::approve(), &none(), at(4))
        .await
        .unwrap();
    let claim = claim_for(store, &req.id, "exec", at(5)).await.unwrap();
    store
        .record_outcome(
            &claim,
            Outcome::succeeded(json!({})).with_grant(Some(crate::grant::GrantChange::New(a_grant(60)))),
            at(5),
        )
        .await
        .unwrap();
    let g = store.get_grant(req.id.as_str()).await.unwrap();
    assert_eq!((g.granted_at, g.due_at), (at(5), at(65)));
    assert_eq!(g.requested_by.id, "u-bob");
    assert_eq!(
        g.approved_by.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        ["u-alice"]
    );
    assert_eq!(g.status(at(64)), crate::GrantStatus::Active);
    assert_eq!(g.status(at(65)), crate::GrantStatus::Overdue);
    let finished = store
        .audit_entries()
        .await
        .unwrap()
        .into_iter()
        .rfind(|e| e.kind == crate::AuditKind::ExecutionFinished)
        .unwrap();
    assert_eq!(finished.detail["grant"]["binding"], json!("prtb-ra-1"));
    assert_eq!(
        store.list_grants(&crate::GrantFilter::due(at(64))).await.unwrap().len(),
        0
    );
    assert_eq!(
        store.list_grants(&crate::GrantFilter::due(at(65))).await.unwrap().len(),
        1
    );
    store.verify_audit().await.unwrap();
}

async fn a_grant_is_revoked_once(store: &dyn Store) {
    let req = granted(store, 0, crate::grant::GrantChange::New(a_grant(60))).await;
    let id = req.id.as_str();
    let early = store.claim_revocation(id, "svc-a", at(70), at(59)).await.unwrap_err();
    assert!(
        matches!(early, Error::NotRevocable { .. }) && early.to_string().contains("due at"),
        "{early}"
    );
    let claim = store.claim_revocation(id, "svc-a", at(70), at(60)).await.unwrap();
    assert!(!claim.took_over);
    let held = store.claim_revocation(id, "svc-b", at(70), at(61)).await.unwrap_err();
    assert!(held.to_string().contains("svc-a is revoking it"), "{held}");
    let g = store
        .record_revocation(&claim, crate::RevokedHow::Deleted, "", at(61))
        .await
        .unwrap();
    let r = g.revocation.clone().unwrap();
    assert_eq!(
        (r.by.as_str(), r.process.as_str(), r.how, r.at),
        ("system", "svc-a", crate::RevokedHow::Deleted, at(61))
    );
    assert_eq!(g.status(at(61)), crate::GrantStatus::Expired);
    assert!(matches!(
        store.claim_revocation(id, "svc-b", at(90), at(80)).await,
        Err(Error::GrantRevoked { .. })
    ));
    assert!(matches!(
        store
            .record_revocation(&claim, crate::RevokedHow::Deleted, "", at(62))
            .await,
        Err(Error::StaleRevocation { .. })
    ));
    let revoked: Vec<_> = store
        .audit_entries()
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == crate::AuditKind::GrantRevoked)
        .collect();
    assert_eq!(revoked.len(), 1);
    let d = &revoked[0].detail;
    assert_eq!(
        (
            d["requested_by"].clone(),
            d["approved_by"].clone(),
            d["process"].clone()
        ),
        (json!("u-bob"), json!(["u-alice"]), json!("svc-a"))
    );
    assert!(store
        .list_grants(&crate::GrantFilter::unrevoked())
        .await
        .unwrap()
        .is_empty());
    store.verify_audit().await.unwrap();
}

async fn racing_revokers_revoke_once(store: &dyn Store) {
    let req = granted(store, 0, crate::grant::GrantChange::New(a_grant(1))).await;
    let id = req.id.as_str();
    let results = futures::future::join_all((0..12).map(|i| async move {
        match store.claim_revocation(id, &format!("svc-{i}"), at(30), at(2)).await {
            Ok(c) => store
                .record_revocation(&c, crate::RevokedHow::Deleted, "", at(2))
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        }
    }))
    .await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(
            matches!(
                r,
                Error::NotRevocable { .. } | Error::GrantRevoked { .. } | Error::Conflict { .. }
            ),
            "{r}"
        );
    }
    let n = store
        .audit_entries()
        .await
        .unwrap()
        .iter()
        .filter(|e| e.kind == crate::AuditKind::GrantRevoked)
        .count();
    assert_eq!(n, 1);
}

async fn failed_revocations_back_off_and_a_lost_claim_is_taken_over(store: &dyn Store) {
    let req = granted(store, 0, crate::grant::GrantChange::New(a_grant(10))).await;
    let id = req.id.as_str();
    let c1 = store.claim_revocation(id, "svc-a", at(11), at(10)).await.unwrap();
    let g = store
        .release_revocation(&c1, "could not connect", at(12), at(10))
        .await
        .unwrap();
    assert_eq!(
        (g.failures, g.last_error.as_deref(), g.next_attempt_at),
        (1, Some("could not connect"), Some(at(12)))
    );
    assert!(store
        .claim_revocation(id, "svc-a", at(20), at(11))
        .await
        .unwrap_err()
        .to_string()
        .contains("next is due"));
    let c2 = store.claim_revocation(id, "svc-a", at(13), at(12)).await.unwrap();
    store
        .release_revocation(&c2, "still down", at(14), at(12))
        .await
        .unwrap();
    // Only the first failure is an event (overdue); the count keeps going.
    let overdue = store
        .audit_entries()
        .await
        .unwrap()
        .iter()
        .filter(|e| e.kind == crate::AuditKind::GrantOverdue)
        .count();
    assert_eq!(overdue, 1);
    // A holder that dies keeps its claim until the lease runs out; then another takes it over.
    let lost = store.claim_revocation(id, "svc-a", at(15), at(14)).await.unwrap();
    let taken = store.claim_revocation(id, "svc-b", at(30), at(15)).await.unwrap();
    assert!(taken.took_over && taken.epoch > lost.epoch);
    assert!(matches!(
        store
            .record_revocation(&lost, crate::RevokedHow::Deleted, "", at(16))
            .await,
        Err(Error::StaleRevocation { .. })
    ));
    let g = store
        .record_revocation(
            &taken,
            crate::RevokedHow::AlreadyRemoved,
            "gone after a take-over",
            at(16),
        )
        .await
        .unwrap();
    assert_eq!(g.failures, 2);
    store.verify_audit().await.unwrap();
}

async fn extensions_and_early_ends(store: &dyn Store) {
    let first = granted(store, 0, crate::grant::GrantChange::New(a_grant(60))).await;
    let id = first.id.to_string();
    // An extension naming another binding than the grant's extends nothing.
    granted(
        store,
        20,
        crate::grant::GrantChange::Extend {
            grant: id.clone(),
            by_secs: 7200,
            binding: Some("prtb-other".into()),
        },
    )
    .await;
    assert_eq!(store.get_grant(&id).await.unwrap().due_at, at(60));
    granted(
        store,
        30,
        crate::grant::GrantChange::Extend {
            grant: id.clone(),
            by_secs: 7200,
            binding: Some("prtb-ra-1".into()),
        },
    )
    .await;
    assert_eq!(store.get_grant(&id).await.unwrap().due_at, at(60 + 120));
    let ended = store.end_grant_early(&id, &carol(), at(40)).await.unwrap();
    assert_eq!(
        (ended.due_at, ended.ended_at, ended.ended_early_by.as_deref()),
        (at(60 + 120), Some(at(40)), Some("u-carol")),
        "the granted end is kept"
    );
    assert_eq!(ended.ends_at(), at(40));
    let c = store.claim_revocation(&id, "svc", at(50), at(41)).await.unwrap();
    let g = store
        .record_revocation(&c, crate::RevokedHow::Deleted, "", at(41))
        .await
        .unwrap();
    assert_eq!(g.revocation.unwrap().by, "u-carol");
    assert!(matches!(
        store.end_grant_early(&id, &carol(), at(42)).await,
        Err(Error::GrantRevoked { .. })
    ));
    // An extension that runs after the grant ended extends nothing.
    granted(
        store,
        50,
        crate::grant::GrantChange::Extend {
            grant: id.clone(),
            by_secs: 60,
            binding: Some("prtb-ra-1".into()),
        },
    )
    .await;
    assert_eq!(store.get_grant(&id).await.unwrap().extensions.len(), 1);
    let kinds = kinds(store).await;
    assert!(kinds.contains(&crate::AuditKind::GrantEndedEarly));
    store.verify_audit().await.unwrap();
}

async fn grant_durations_follow_the_policy(store: &dyn Store) {
    let p = Policy::installer()
        .max_duration(std::time::Duration::from_secs(8 * 3600))
        .require_duration(true);
    store
        .install("grant-cluster-role", &alice(), p.clone(), at(0))
        .await
        .unwrap();
    let inst = store.get_installation("grant-cluster-role").await.unwrap().unwrap();
    assert_eq!(inst.policy, p);
    let e = inst
        .policy
        .check_duration("grant-cluster-role", None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("requires a duration") && e.contains("--input duration="),
        "{e}"
    );
    let e = inst
        .policy
        .check_duration("grant-cluster-role", Some(std::time::Duration::from_secs(9 * 3600)))
        .unwrap_err()
        .to_string();
    assert!(e.contains("9h is longer than its policy allows (8h)"), "{e}");
    inst.policy
        .check_duration("grant-cluster-role", Some(std::time::Duration::from_secs(3600)))
        .unwrap();
    let bad = Policy::installer().max_duration(std::time::Duration::from_secs(5));
    assert!(matches!(
        store.set_policy("grant-cluster-role", bad, &alice(), at(1)).await,
        Err(Error::InvalidPolicy { .. })
    ));
    // Policies without the options keep the hash they had before the options existed.
    assert!(!serde_json::to_string(&Policy::installer())
        .unwrap()
        .contains("duration"));
}

/// S9: the service checks the log against the head it published, reading only what came after it.
async fn s9_verification_from_an_anchor(store: &dyn Store) {
    assert_eq!(
        store.verify_audit_from(&crate::AuditHead::genesis()).await.unwrap(),
        crate::AuditHead::genesis()
    );
    for i in 0..3 {
        store
            .create_request(NewRequest::new("wf", bob(), Policy::installer()), at(i))
            .await
            .unwrap();
    }
    let anchor = store.audit_head().await.unwrap();
    assert_eq!(store.verify_audit_from(&anchor).await.unwrap(), anchor);
    for i in 3..5 {
        store
            .create_request(NewRequest::new("wf", bob(), Policy::installer()), at(i))
            .await
            .unwrap();
    }
    let head = store.audit_head().await.unwrap();
    assert_eq!(head.seq, 5);
    assert_eq!(store.verify_audit_from(&anchor).await.unwrap(), head);
    assert_eq!(
        store.verify_audit_from(&crate::AuditHead::genesis()).await.unwrap(),
        head
    );
    // An anchor the log does not hold: rewritten history, or a log cut off (or another store) below it.
    let wrong = crate::AuditHead {
        seq: 2,
        hash: "0".repeat(64),
    };
    let err = store.verify_audit_from(&wrong).await.unwrap_err().to_string();
    assert!(err.contains("rewritten"), "{err}");
    let ahead = crate::AuditHead {
        seq: 9,
        hash: anchor.hash.clone(),
    };
    let err = store.verify_audit_from(&ahead).await.unwrap_err().to_string();
    assert!(err.contains("cut off"), "{err}");
}
