//! SQLite-specific behaviour: the file format, durability, several connections, tampering.

use rusqlite::Connection;
use serde_json::json;

use super::*;
use crate::store::ops;
use crate::store::tests::{at, race};
use crate::{Decision, EligibilityContext, NewRequest, Policy, Principal, Store};

fn temp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("approvals.db");
    (dir, path)
}

fn approver_policy() -> Policy {
    Policy::at_least(2, ["u-1", "u-2", "u-3"].map(crate::ApproverRef::user))
}

/// Fills a store with a few of every kind of audit entry.
async fn busy_store(path: &Path) -> SqliteStore {
    let store = SqliteStore::open(path).unwrap();
    let ctx = EligibilityContext::default();
    store
        .install("wf", &Principal::new("u-1"), approver_policy(), at(0))
        .await
        .unwrap();
    for i in 0..3 {
        let req = store
            .create_request(NewRequest::new("wf", Principal::new("u-req"), approver_policy()), at(i))
            .await
            .unwrap();
        store
            .decide(&req.id, &Principal::new("u-1"), Decision::approve(), &ctx, at(i))
            .await
            .unwrap();
        store
            .decide(&req.id, &Principal::new("u-2"), Decision::approve(), &ctx, at(i))
            .await
            .unwrap();
    }
    store
}

/// A connection with the append-only guards dropped: what someone who can write the file can do.
fn raw(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(
        "DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete;
         DROP TRIGGER IF EXISTS audit_head_forward; DROP TRIGGER IF EXISTS audit_head_no_delete;",
    )
    .unwrap();
    conn
}

async fn broken_at(store: &SqliteStore) -> u64 {
    match store.verify_audit().await {
        Err(Error::AuditBroken { seq, .. }) => seq,
        other => panic!("expected a broken audit chain, got {other:?}"),
    }
}

#[tokio::test]
async fn file_is_wal_full_sync_and_versioned() {
    let (_dir, path) = temp();
    let store = SqliteStore::open(&path).unwrap();
    {
        let conn = store.lock();
        let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
        assert_eq!(sync, 2, "FULL");
    }
    drop(store);
    let conn = Connection::open(&path).unwrap();
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let opts = SqliteOptions {
        synchronous: Synchronous::Normal,
        ..Default::default()
    };
    let store = SqliteStore::open_with(&path, opts).unwrap();
    let sync: i64 = store.lock().query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
    assert_eq!(sync, 1, "NORMAL");
    assert_eq!(store.path(), path);
}

#[tokio::test]
async fn refuses_files_that_are_not_ours() {
    let (dir, path) = temp();
    std::fs::write(
        &path,
        b"this is a profile file, not a database, and it is long enough to have a header",
    )
    .unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(err, Error::NotADatabase { .. }), "{err:?}");
    assert!(err.to_string().contains("is not an approval store database"), "{err}");

    let other = dir.path().join("other.db");
    Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE photos (id INTEGER);")
        .unwrap();
    let err = SqliteStore::open(&other).unwrap_err();
    assert!(matches!(err, Error::NotADatabase { .. }), "{err:?}");

    let newer = dir.path().join("newer.db");
    drop(SqliteStore::open(&newer).unwrap());
    Connection::open(&newer)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let err = SqliteStore::open(&newer).unwrap_err();
    assert!(
        matches!(
            err,
            Error::SchemaTooNew {
                found: 99,
                supported: SCHEMA_VERSION,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("upgrade"), "{err}");
}

#[tokio::test]
async fn everything_survives_reopening() {
    let (_dir, path) = temp();
    let (ids, head) = {
        let store = busy_store(&path).await;
        let ids: Vec<_> = store
            .list_requests(&Default::default())
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        (ids, store.audit_head().await.unwrap())
    };
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.audit_head().await.unwrap(), head);
    assert_eq!(store.verify_audit().await.unwrap(), 1 + 3 * 3);
    for id in &ids {
        let r = store.get_request(id).await.unwrap();
        assert_eq!(r.state, crate::RequestState::Approved);
        assert_eq!(r.decisions.len(), 2);
    }
    assert_eq!(
        store.get_installation("wf").await.unwrap().unwrap().policy,
        approver_policy()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_file_store_a_new_state_entry_once() {
    let (_dir, path) = temp();
    let a = SqliteStore::open(&path).unwrap();
    let b = SqliteStore::open(&path).unwrap();
    crate::store::tests::race_put_new(&[&a, &b], 16).await;
}

#[tokio::test]
async fn two_stores_on_one_file_execute_once() {
    let (_dir, path) = temp();
    let a = SqliteStore::open(&path).unwrap();
    let b = SqliteStore::open(&path).unwrap();
    race(&[&a, &b], 16).await;
    // What one connection wrote, the other sees.
    let all_a = a.list_requests(&Default::default()).await.unwrap();
    let all_b = b.list_requests(&Default::default()).await.unwrap();
    assert_eq!(all_a, all_b);
}

#[tokio::test]
async fn many_stores_on_one_file_execute_once() {
    let (_dir, path) = temp();
    let stores: Vec<SqliteStore> = (0..4).map(|_| SqliteStore::open(&path).unwrap()).collect();
    let refs: Vec<&dyn Store> = stores.iter().map(|s| s as &dyn Store).collect();
    race(&refs, 24).await;
}

#[tokio::test]
async fn a_transaction_dropped_without_commit_leaves_no_trace() {
    let (_dir, path) = temp();
    let store = busy_store(&path).await;
    let before_head = store.audit_head().await.unwrap();
    let req = store
        .create_request(
            NewRequest::new("wf", Principal::new("u-req"), approver_policy()),
            at(10),
        )
        .await
        .unwrap();
    let head = store.audit_head().await.unwrap();
    assert_ne!(head, before_head);

    // A decision is fully written inside the transaction, then the "process" fails before COMMIT.
    let id = req.id.clone();
    let result: Result<()> = store
        .write(crate::store::body(move |tx| {
            Box::pin(async move {
                ops::decide(
                    tx,
                    &id,
                    &Principal::new("u-1"),
                    Decision::approve(),
                    &EligibilityContext::default(),
                    at(11),
                )
                .await??;
                assert_eq!(
                    tx.load_request(&id).await?.unwrap().decisions.len(),
                    1,
                    "written inside the transaction"
                );
                Err(Error::InvalidPolicy {
                    reason: "simulated failure before commit".into(),
                })
            })
        }))
        .await;
    assert!(result.is_err());
    // The same with a panic in the middle of the transaction (passed on to the caller).
    let id = req.id.clone();
    let panicked = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(store.write(crate::store::body(
        move |tx| -> futures::future::BoxFuture<'_, Result<()>> {
            Box::pin(async move {
                ops::decide(
                    tx,
                    &id,
                    &Principal::new("u-2"),
                    Decision::approve(),
                    &EligibilityContext::default(),
                    at(12),
                )
                .await??;
                panic!("simulated crash mid-transaction");
            })
        },
    ))))
    .await;
    assert!(panicked.is_err());

    for store in [&store, &SqliteStore::open(&path).unwrap()] {
        assert!(store.get_request(&req.id).await.unwrap().decisions.is_empty());
        assert_eq!(store.audit_head().await.unwrap(), head);
        assert_eq!(store.verify_audit().await.unwrap(), head.seq);
    }
    // And the store keeps working.
    let out = store
        .decide(
            &req.id,
            &Principal::new("u-1"),
            Decision::approve(),
            &EligibilityContext::default(),
            at(13),
        )
        .await;
    assert!(out.unwrap().recorded);
    assert_eq!(store.verify_audit().await.unwrap(), head.seq + 1);
}

#[tokio::test]
async fn the_audit_table_refuses_updates_and_deletes() {
    let (_dir, path) = temp();
    let _store = busy_store(&path).await;
    let conn = Connection::open(&path).unwrap();
    let err = conn
        .execute("UPDATE audit SET actor = 'u-mallory' WHERE seq = 2", [])
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    let err = conn.execute("DELETE FROM audit WHERE seq = 2", []).unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
}

#[tokio::test]
async fn tampering_edit_is_detected() {
    let (_dir, path) = temp();
    let store = busy_store(&path).await;
    assert_eq!(store.verify_audit().await.unwrap(), 10);
    raw(&path)
        .execute("UPDATE audit SET actor = 'u-mallory' WHERE seq = 4", [])
        .unwrap();
    assert_eq!(broken_at(&store).await, 4);

    let (_dir, path) = temp();
    let store = busy_store(&path).await;
    let conn = raw(&path);
    conn.execute(
        "UPDATE audit SET detail = ?1 WHERE seq = 3",
        [json!({"vote": "deny"}).to_string()],
    )
    .unwrap();
    assert_eq!(broken_at(&store).await, 3);

    // Editing the content and recomputing its hash breaks the link from the next entry.
    let (_dir, path) = temp();
    let store = busy_store(&path).await;
    let mut entries = store.audit_entries().await.unwrap();
    let e = &mut entries[4];
    e.actor = "u-mallory".into();
    let forged = e.compute_hash();
    raw(&path)
        .execute(
            "UPDATE audit SET actor = 'u-mallory', hash = ?1 WHERE seq = 5",
            [forged],
        )
        .unwrap();
    assert_eq!(broken_at(&store).await, 6);

    // A garbled kind is reported as a broken entry, not a crash.
    let (_dir, path) = temp();
    let store = busy_store(&path).await;
    raw(&path)
        .execute("UPDATE audit SET kind = 'nonsense' WHERE seq = 2", [])
        .unwrap();
    assert_eq!(broken_at(&store).await, 2);
}

#[tokio::test]
async fn tampering_delete_is_detected() {
    let (_dir, path) = temp();
    let store = busy_store(&path).await;
    raw(&path).execute("DELETE FROM audit WHERE seq = 5", []).unwrap();
    assert_eq!(broken_at(&store).await, 5);

    // Deleting and renumbering the rest to close the gap breaks the chain.
    let (_dir, path) = temp();
    let store = busy_store(&path).await;
    let conn = raw(&path);
    conn.execute("DELETE FROM audit WHERE seq = 5", []).unwrap();
    for seq in 6..=10 {
        conn.execute("UPDATE audit SET seq = ?1 WHERE seq = ?2", [seq - 1, seq])
            .unwrap();
    }
    conn.execute("UPDATE audit_head SET seq = seq - 1", []).unwrap();
    assert_eq!(broken_at(&store).await, 5);
}

#[tokio::test]
async fn tampering_reorder_is_detected() {
    let (_dir, path) = temp();
    let store = busy_store(&path).await;
    let conn = raw(&path);
    // Swap the contents of entries 3 and 4, keeping the numbers in place.
    conn.execute_batch(
        "UPDATE audit SET seq = -3 WHERE seq = 3;
         UPDATE audit SET seq = 3 WHERE seq = 4;
         UPDATE audit SET seq = 4 WHERE seq = -3;",
    )
    .unwrap();
    assert_eq!(broken_at(&store).await, 3);
}

#[tokio::test]
async fn tampering_truncate_and_append_is_detected() {
    let (_dir, path) = temp();
    let store = busy_store(&path).await;
    // Cut the last three entries off, then let the store append as usual.
    raw(&path).execute("DELETE FROM audit WHERE seq > 7", []).unwrap();
    assert_eq!(
        broken_at(&store).await,
        8,
        "the cut is visible against the recorded head"
    );
    store
        .create_request(
            NewRequest::new("wf", Principal::new("u-req"), approver_policy()),
            at(50),
        )
        .await
        .unwrap();
    assert_eq!(broken_at(&store).await, 8, "appending after the cut does not hide it");

    // Rewriting the head record too makes a consistent, shorter log: only a head saved elsewhere tells.
    let (_dir, path) = temp();
    let store = busy_store(&path).await;
    let saved_head = store.audit_head().await.unwrap();
    let conn = raw(&path);
    conn.execute("DELETE FROM audit WHERE seq > 7", []).unwrap();
    let seventh = store.audit_entries().await.unwrap()[6].head();
    conn.execute(
        "UPDATE audit_head SET seq = ?1, hash = ?2",
        rusqlite::params![seventh.seq as i64, seventh.hash],
    )
    .unwrap();
    store
        .create_request(
            NewRequest::new("wf", Principal::new("u-req"), approver_policy()),
            at(50),
        )
        .await
        .unwrap();
    let err = store.verify_audit().await.unwrap_err().to_string();
    assert!(
        err.contains("no record of its creation"),
        "the third request lost its entries: {err}"
    );
    // Removing the requests whose entries were cut too leaves a consistent, shorter store: the documented limit
    // of a local file. Only a head saved elsewhere tells.
    let third = store.list_requests(&crate::RequestFilter::all()).await.unwrap()[2]
        .id
        .clone();
    conn.execute("DELETE FROM requests WHERE id = ?1", [third.as_str()])
        .unwrap();
    assert_eq!(
        store.verify_audit().await.unwrap(),
        8,
        "the documented limit of a chain without an outside anchor"
    );
    let err = crate::audit::verify(&store.audit_entries().await.unwrap(), Some(&saved_head)).unwrap_err();
    assert!(matches!(err, Error::AuditBroken { seq: 9, .. }), "{err}");
}

/// Security review item 9: a missing head row passed verification ("17 entries, head 0000..."), and the head
/// could be moved back. The head may only move forward, and a head behind the log is broken.
#[tokio::test]
async fn the_head_cannot_be_removed_or_moved_back() {
    let (_dir, path) = temp();
    let store = busy_store(&path).await;
    let conn = Connection::open(&path).unwrap();
    let e = conn.execute("DELETE FROM audit_head", []).unwrap_err().to_string();
    assert!(e.contains("cannot be removed"), "{e}");
    let e = conn
        .execute("UPDATE audit_head SET seq = 3", [])
        .unwrap_err()
        .to_string();
    assert!(e.contains("only moves forward"), "{e}");

    raw(&path).execute("DELETE FROM audit_head", []).unwrap();
    let err = store.verify_audit().await.unwrap_err().to_string();
    assert!(err.contains("recorded head is entry 0"), "{err}");

    // Wiping the log and the head while requests remain is found too.
    let (_dir, path) = temp();
    let store = busy_store(&path).await;
    raw(&path)
        .execute_batch("DELETE FROM audit; DELETE FROM audit_head;")
        .unwrap();
    let err = store.verify_audit().await.unwrap_err().to_string();
    assert!(err.contains("no record of its creation"), "{err}");
}

async fn pending_for_u1(store: &SqliteStore) -> crate::ApprovalRequest {
    store
        .create_request(
            NewRequest::new("wf", Principal::new("u-req"), approver_policy())
                .inputs(json!({"user": "carol", "role": "user"}), Vec::<String>::new()),
            at(0),
        )
        .await
        .unwrap()
}

/// Security review item 4 (A): inputs edited in the database after review ran as edited. Now a decision on
/// altered content and the execution of it are refused, the refusal is audited, and verification reports it.
#[tokio::test]
async fn inputs_edited_in_the_store_are_never_executed() {
    let (_dir, path) = temp();
    let store = SqliteStore::open(&path).unwrap();
    let ctx = EligibilityContext::default();
    let req = pending_for_u1(&store).await;
    store
        .decide(&req.id, &Principal::new("u-1"), Decision::approve(), &ctx, at(1))
        .await
        .unwrap();
    raw(&path)
        .execute(
            "UPDATE requests SET body = json_set(body, '$.inputs.user', 'dave', '$.inputs.role', 'admin')",
            [],
        )
        .unwrap();
    let err = store
        .decide(&req.id, &Principal::new("u-2"), Decision::approve(), &ctx, at(2))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Tampered { .. }), "{err}");
    assert!(store
        .verify_audit()
        .await
        .unwrap_err()
        .to_string()
        .contains("differ from the recorded ones"));

    // Edited after the last approval, before the claim: the claim refuses and says so in the log.
    let (_dir, path) = temp();
    let store = SqliteStore::open(&path).unwrap();
    let req = pending_for_u1(&store).await;
    store
        .decide(&req.id, &Principal::new("u-1"), Decision::approve(), &ctx, at(1))
        .await
        .unwrap();
    store
        .decide(&req.id, &Principal::new("u-2"), Decision::approve(), &ctx, at(2))
        .await
        .unwrap();
    raw(&path)
        .execute(
            "UPDATE requests SET body = json_set(body, '$.inputs.role', 'admin')",
            [],
        )
        .unwrap();
    let executor = crate::Executor::new("u-1", "test");
    let err = store
        .claim_execution(&req.id, &executor, at(20), at(3))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Tampered { .. }), "{err}");
    let last = store.audit_entries().await.unwrap().pop().unwrap();
    assert_eq!(last.kind, crate::AuditKind::ExecutionRefused);
    assert_eq!(
        store.get_request(&req.id).await.unwrap().state,
        crate::RequestState::Approved,
        "nothing was claimed"
    );

    // Rewriting the stored content hash as well does not help: the audit record is the reference.
    raw(&path)
        .execute(
            "UPDATE requests SET body = json_set(body, '$.content_hash', 'feed')",
            [],
        )
        .unwrap();
    let err = store
        .claim_execution(&req.id, &executor, at(20), at(4))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Tampered { .. }), "{err}");
}

/// Adds an approval by `u-2` to the stored request (not to the log), as someone with write access to the file could.
fn forge_u2_approval(path: &std::path::Path, content_hash: &str) {
    raw(path)
        .execute(
            "UPDATE requests SET body = json_insert(body, '$.decisions[#]', json(?1))",
            [
                json!({"principal": {"id": "u-2"}, "vote": "approve", "decided_at": "2025-03-01T12:01:00Z",
                    "content_hash": content_hash})
                .to_string(),
            ],
        )
        .unwrap();
}

/// Security review item 4 (B): a request set to `approved` by hand (no decisions) ran. The recorded decisions
/// are what counts.
#[tokio::test]
async fn a_request_approved_by_hand_is_never_executed() {
    let (_dir, path) = temp();
    let store = SqliteStore::open(&path).unwrap();
    let ctx = EligibilityContext::default();
    let req = pending_for_u1(&store).await;
    store
        .decide(&req.id, &Principal::new("u-1"), Decision::approve(), &ctx, at(1))
        .await
        .unwrap();
    raw(&path)
        .execute(
            "UPDATE requests SET state = 'approved', body = json_set(body, '$.state', 'approved')",
            [],
        )
        .unwrap();
    let err = store
        .claim_execution(&req.id, &crate::Executor::new("u-req", "test"), at(20), at(2))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("recorded decisions do not approve it"),
        "{err}"
    );
    let err = store.verify_audit().await.unwrap_err().to_string();
    assert!(
        err.contains("stored as approved but its audit entries lead to pending"),
        "{err}"
    );

    // Forging a decision into the stored request (not the log) changes nothing either.
    forge_u2_approval(&path, &req.content_hash);
    let err = store
        .claim_execution(&req.id, &crate::Executor::new("u-req", "test"), at(20), at(3))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("recorded decisions do not approve it"),
        "{err}"
    );
}

/// What `approvals show` and the page display of a decision (who, the vote, the reason) comes from the stored
/// request; verification compares it with the log, so an edited reason or a decision added to the stored request
/// alone is reported, not only a changed state.
#[tokio::test]
async fn stored_decisions_that_differ_from_the_log_fail_verification() {
    let (_dir, path) = temp();
    let store = SqliteStore::open(&path).unwrap();
    let ctx = EligibilityContext::default();
    let req = pending_for_u1(&store).await;
    store
        .decide(
            &req.id,
            &Principal::new("u-1"),
            Decision::approve().because("checked the ticket"),
            &ctx,
            at(1),
        )
        .await
        .unwrap();
    store.verify_audit().await.unwrap();
    raw(&path)
        .execute(
            "UPDATE requests SET body = json_set(body, '$.decisions[0].reason', 'lgtm, no ticket needed')",
            [],
        )
        .unwrap();
    let err = store.verify_audit().await.unwrap_err().to_string();
    assert!(err.contains("decision") && err.contains("u-1"), "{err}");

    let (_dir, path) = temp();
    let store = SqliteStore::open(&path).unwrap();
    let req = pending_for_u1(&store).await;
    forge_u2_approval(&path, &req.content_hash);
    let err = store.verify_audit().await.unwrap_err().to_string();
    assert!(err.contains("decision") && err.contains("u-2"), "{err}");
}

/// Sets a request to `executing` in the file, with a lease that ran out long ago and a holder on another host,
/// as anyone who can write the database could (second security review, N2).
pub(crate) fn forge_executing(path: &Path, id: &str) {
    let execution = json!({"claim_id": "forged", "executor": "elsewhere", "host": "elsewhere", "pid": 1, "epoch": 1,
                           "lease_until": "2020-01-01T00:00:00Z", "claimed_at": "2020-01-01T00:00:00Z"});
    let n = Connection::open(path)
        .unwrap()
        .execute(
            "UPDATE requests SET state = 'executing', body = json_set(body, '$.state', 'executing', '$.execution', json(?1)) WHERE id = ?2",
            rusqlite::params![execution.to_string(), id],
        )
        .unwrap();
    assert_eq!(n, 1);
}

/// N2: a pending request set to `executing` in the store was taken over by the next reconcile and run with no
/// approval. The take-over now checks it as a claim is checked, settles it as failed without handing out a claim,
/// records the refusal, and verification names the request.
#[tokio::test]
async fn n2_a_request_forged_to_executing_is_refused_at_take_over() {
    let (_dir, path) = temp();
    let store = SqliteStore::open(&path).unwrap();
    let req = pending_for_u1(&store).await;
    forge_executing(&path, req.id.as_str());
    let doubt = store.in_doubt().await.unwrap();
    assert_eq!(doubt.len(), 1);
    let taker = crate::Executor::new("u-svc", "reconciler");
    let err = store
        .take_over(&req.id, &taker, crate::Takeover::LeaseExpired, "forged", at(60), at(30))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Tampered { .. }), "{err}");
    let settled = store.get_request(&req.id).await.unwrap();
    assert_eq!(settled.state, crate::RequestState::Failed);
    assert_eq!(
        settled.execution.unwrap().outcome.unwrap().detail["refused"],
        json!(true)
    );
    assert!(
        store.in_doubt().await.unwrap().is_empty(),
        "it is not in doubt any more"
    );
    let last = store.audit_entries().await.unwrap().pop().unwrap();
    assert_eq!(
        (last.kind, last.request_id.as_deref()),
        (crate::AuditKind::ExecutionRefused, Some(req.id.as_str()))
    );
    let err = store.verify_audit().await.unwrap_err().to_string();
    assert!(err.contains(req.id.as_str()) && err.contains("refused"), "{err}");

    // Approved by the log but forged to executing without a claim: still no take-over (nothing claimed it).
    let (_dir, path) = temp();
    let store = SqliteStore::open(&path).unwrap();
    let req = pending_for_u1(&store).await;
    for who in ["u-1", "u-2"] {
        store
            .decide(
                &req.id,
                &Principal::new(who),
                Decision::approve(),
                &EligibilityContext::default(),
                at(1),
            )
            .await
            .unwrap();
    }
    forge_executing(&path, req.id.as_str());
    let err = store
        .take_over(&req.id, &taker, crate::Takeover::LeaseExpired, "forged", at(60), at(30))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("lead to approved"), "{err}");
}

/// N2: verification accepted a log in which a pending request was taken over and finished with no decision (what
/// the unchecked reconcile wrote). It now replays each request's states and names the request.
#[tokio::test]
async fn n2_verify_refuses_an_execution_without_the_decisions_its_policy_needs() {
    let (_dir, path) = temp();
    let store = SqliteStore::open(&path).unwrap();
    let req = pending_for_u1(&store).await;
    store.verify_audit().await.unwrap();
    // Well-formed entries, chained and hashed as the store writes them, and the stored request to match.
    let conn = Connection::open(&path).unwrap();
    let mut head = store.audit_head().await.unwrap();
    for (kind, detail) in [
        (
            crate::AuditKind::ExecutionTakenOver,
            json!({"claim_id": "c2", "epoch": 2, "why": "lease_expired"}),
        ),
        (
            crate::AuditKind::ExecutionFinished,
            json!({"claim_id": "c2", "epoch": 2, "status": "succeeded", "detail": {}}),
        ),
    ] {
        let e = crate::audit::AuditDraft {
            actor: "u-svc".into(),
            request_id: Some(req.id.to_string()),
            workflow_id: Some("wf".into()),
            // Forged as raw JSON: what someone writing the file could put there.
            detail: crate::AuditDetail::Other { kind, detail },
        }
        .seal(&head, at(5));
        conn.execute(
            "INSERT INTO audit (seq, at, actor, kind, request_id, workflow_id, detail, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            rusqlite::params![e.seq as i64, crate::audit::format_time(e.at), e.actor, e.kind.as_str(), e.request_id, e.workflow_id, e.detail.to_string(), e.prev_hash, e.hash],
        )
        .unwrap();
        conn.execute(
            "UPDATE audit_head SET seq = ?1, hash = ?2",
            rusqlite::params![e.seq as i64, e.hash],
        )
        .unwrap();
        head = e.head();
    }
    conn.execute(
        "UPDATE requests SET state = 'succeeded', body = json_set(body, '$.state', 'succeeded')",
        [],
    )
    .unwrap();
    let err = store.verify_audit().await.unwrap_err().to_string();
    assert!(err.contains(req.id.as_str()), "{err}");
    assert!(err.contains("follows a request in state pending"), "{err}");
}

/// S9: someone who can write the whole file rewrites history below a published head and re-chains every entry
/// after it, head included: the log is consistent again, so plain verification passes, but verification from the
/// published head (the anchor the service keeps outside the store) finds it.
#[tokio::test]
async fn s9_history_rewritten_below_an_anchor_is_found_from_it() {
    let (_dir, path) = temp();
    let store = busy_store(&path).await;
    let anchor = store.audit_head().await.unwrap();
    store.verify_audit_from(&anchor).await.unwrap();
    let mut entries = store.audit_entries().await.unwrap();
    // The installation is made to name another installer, and the chain is sealed again from there.
    let mut head = crate::AuditHead::genesis();
    for e in entries.iter_mut() {
        if e.seq == 1 {
            e.actor = "u-mallory".into();
        }
        let resealed = crate::audit::AuditDraft {
            actor: e.actor.clone(),
            request_id: e.request_id.clone(),
            workflow_id: e.workflow_id.clone(),
            detail: crate::AuditDetail::Other {
                kind: e.kind.clone(),
                detail: e.detail.clone(),
            },
        }
        .seal(&head, e.at);
        *e = resealed;
        head = e.head();
    }
    let conn = raw(&path);
    conn.execute_batch("DELETE FROM audit; DELETE FROM audit_head;")
        .unwrap();
    for e in &entries {
        conn.execute(
            "INSERT INTO audit (seq, at, actor, kind, request_id, workflow_id, detail, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            rusqlite::params![e.seq as i64, crate::audit::format_time(e.at), e.actor, e.kind.as_str(), e.request_id, e.workflow_id, e.detail.to_string(), e.prev_hash, e.hash],
        )
        .unwrap();
    }
    conn.execute(
        "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?1, ?2)",
        rusqlite::params![head.seq as i64, head.hash],
    )
    .unwrap();
    assert_eq!(
        store.verify_audit().await.unwrap(),
        anchor.seq,
        "the rewritten log is consistent in itself"
    );
    let err = store.verify_audit_from(&anchor).await.unwrap_err().to_string();
    assert!(err.contains("rewritten"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_a_store_in_use_is_a_verified_owner_only_snapshot() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, path) = temp();
    let store = busy_store(&path).await;
    // Another connection keeps writing while the backup runs.
    let writer = SqliteStore::open(&path).unwrap();
    let busy = tokio::spawn(async move {
        for i in 0..40 {
            writer
                .create_request(
                    NewRequest::new("wf", Principal::new("u-req"), approver_policy()),
                    at(100 + i),
                )
                .await
                .unwrap();
        }
    });
    let copy = dir.path().join("backup.db");
    store.backup_to(&copy).await.unwrap();
    busy.await.unwrap();
    assert_eq!(std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777, 0o600);

    let restored = SqliteStore::open(&copy).unwrap();
    let entries = restored.verify_audit().await.unwrap();
    let head = restored.audit_head().await.unwrap();
    assert_eq!(head.seq, entries, "the copy's head is its last entry");
    let live = store.audit_head().await.unwrap();
    assert!(
        head.seq >= 10 && head.seq <= live.seq,
        "a snapshot between start and end: {head:?} / {live:?}"
    );
    // The live log extends the copy: the copy's head is an entry of the live chain.
    store.verify_audit_from(&head).await.unwrap();

    // A backup never overwrites.
    let again = store.backup_to(&copy).await.unwrap_err();
    assert!(matches!(again, Error::BackupTarget { .. }), "{again}");
    assert!(again.to_string().contains("never overwrites"), "{again}");
    assert_eq!(
        SqliteStore::open(&copy).unwrap().audit_head().await.unwrap(),
        head,
        "the first backup is intact"
    );
}

/// The names pinned at filing are covered like the inputs: an approver reads "Alice Example (alice)"; a name
/// edited in the database afterwards is refused at the next decision and reported by verification. A request
/// without names hashes exactly as before names existed (no `names` key in its content).
#[tokio::test]
async fn names_edited_in_the_store_are_refused() {
    use crate::names::{NamedKind, NamedTarget, PinnedNames};
    let (_dir, path) = temp();
    let store = SqliteStore::open(&path).unwrap();
    let ctx = EligibilityContext::default();
    let plain = pending_for_u1(&store).await;
    assert!(
        plain.content().get("names").is_none(),
        "no names, no key: older hashes still verify"
    );
    let mut alice = NamedTarget::new(NamedKind::User, "u-tt2kw");
    alice.display_name = Some("Alice Example".into());
    alice.username = Some("alice".into());
    let names = PinnedNames {
        targets: vec![alice],
        look_alikes: Vec::new(),
    };
    let req = store
        .create_request(
            NewRequest::new("wf", Principal::new("u-req"), approver_policy())
                .inputs(json!({"user": "u-tt2kw", "role": "admin"}), Vec::<String>::new())
                .names(names.clone()),
            at(0),
        )
        .await
        .unwrap();
    assert_eq!(req.names, names);
    assert_eq!(store.get_request(&req.id).await.unwrap().names, names);
    assert!(req.content().get("names").is_some());
    store.verify_audit().await.unwrap();
    raw(&path)
        .execute(
            "UPDATE requests SET body = json_set(body, '$.names.targets[0].display_name', 'Mallory') WHERE body LIKE '%u-tt2kw%'",
            [],
        )
        .unwrap();
    let err = store
        .decide(&req.id, &Principal::new("u-1"), Decision::approve(), &ctx, at(1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Tampered { .. }), "{err}");
    // The request without names still decides normally.
    store
        .decide(&plain.id, &Principal::new("u-1"), Decision::approve(), &ctx, at(2))
        .await
        .unwrap();
}
