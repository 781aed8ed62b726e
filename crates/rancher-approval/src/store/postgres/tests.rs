//! PostgreSQL-specific behaviour: migrations, the database's clock, replicas, triggers, tampering, URLs.

use chrono::TimeDelta;

use super::*;
use crate::store::tests::{at, race};
use crate::test_util::TestDatabase;
use crate::{ApproverRef, Decision, EligibilityContext, Executor, NewRequest, Policy, Principal, Store, Takeover};

fn policy() -> Policy {
    Policy::at_least(2, ["u-1", "u-2", "u-3"].map(ApproverRef::user))
}

/// An approved request (two of three approvers said yes).
async fn approved(store: &dyn Store, minute: i64) -> ApprovalRequest {
    let req = store
        .create_request(NewRequest::new("wf", Principal::new("u-req"), policy()), at(minute))
        .await
        .unwrap();
    for who in ["u-1", "u-2"] {
        store
            .decide(
                &req.id,
                &Principal::new(who),
                Decision::approve(),
                &EligibilityContext::default(),
                at(minute),
            )
            .await
            .unwrap();
    }
    store.get_request(&req.id).await.unwrap()
}

fn broken_at(result: Result<u64>) -> u64 {
    match result {
        Err(Error::AuditBroken { seq, .. }) => seq,
        other => panic!("expected a broken audit chain, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_migrate_once_and_a_newer_schema_is_refused() {
    let Some(db) = TestDatabase::create("migrations").await else {
        return;
    };
    let url = db.url().to_owned();
    let starts = (0..8).map(|_| {
        let url = url.clone();
        tokio::spawn(async move { PostgresStore::connect(&url).await })
    });
    for start in futures::future::join_all(starts).await {
        start.unwrap().unwrap();
    }
    let raw = db.raw().await;
    let version: i64 = raw
        .query_one("SELECT version FROM rancher_approval_schema", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, POSTGRES_SCHEMA_VERSION);
    // Connecting again changes nothing and keeps the data.
    let store = db.store().await;
    approved(&store, 0).await;
    drop(store);
    let store = db.store().await;
    assert_eq!(store.verify_audit().await.unwrap(), 3);

    raw.execute("UPDATE rancher_approval_schema SET version = 99", &[])
        .await
        .unwrap();
    let err = PostgresStore::connect(&url).await.unwrap_err();
    assert!(matches!(err, Error::DatabaseSchemaTooNew { found: 99, .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("schema version 99") && text.contains("upgrade rancherctl"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_clock_dates_changes_and_leases() {
    let Some(db) = TestDatabase::create("clock").await else {
        return;
    };
    let store = db.store_with(PostgresOptions::default()).await;
    assert_eq!(PostgresOptions::default().clock, Clock::Database);
    // The caller's clock is off by years; the database's is the one that counts.
    let wrong = at(0);
    let before = Utc::now();
    let req = store
        .create_request(NewRequest::new("wf", Principal::new("u-req"), Policy::none()), wrong)
        .await
        .unwrap();
    let after = Utc::now();
    assert!(
        req.created_at > before - TimeDelta::minutes(1) && req.created_at < after + TimeDelta::minutes(1),
        "{}",
        req.created_at
    );
    assert_eq!(req.expires_at, req.created_at + Policy::none().expiry());
    // A five-minute lease stays five minutes long, on the database's clock.
    let claim = store
        .claim_execution(
            &req.id,
            &Executor::new("u-exec", "x"),
            wrong + TimeDelta::minutes(5),
            wrong,
        )
        .await
        .unwrap();
    assert_eq!(claim.lease_until - claim.claimed_at, TimeDelta::minutes(5));
    assert!(claim.claimed_at >= req.created_at);
    // A take-over judged by the caller's (wrong, far later) clock is still refused: the lease holds by the database's.
    let err = store
        .take_over(
            &req.id,
            &Executor::new("u-exec", "y"),
            Takeover::LeaseExpired,
            &claim.claim_id,
            at(60 * 24 * 365 * 30),
            at(60 * 24 * 365 * 30),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::LeaseHeld { .. }), "{err}");
    store.verify_audit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_replicas_execute_once() {
    let Some(db) = TestDatabase::create("replicas").await else {
        return;
    };
    let (a, b, c) = (db.store().await, db.store().await, db.store().await);
    race(&[&a, &b, &c], 24).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_replicas_store_a_new_state_entry_once() {
    let Some(db) = TestDatabase::create("put_new").await else {
        return;
    };
    let (a, b, c) = (db.store().await, db.store().await, db.store().await);
    crate::store::tests::race_put_new(&[&a, &b, &c], 24).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_claim_many_requests_and_each_runs_once() {
    let Some(db) = TestDatabase::create("many_claims").await else {
        return;
    };
    let stores = [db.store().await, db.store().await];
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(approved(&stores[0], i).await.id);
    }
    let ids = &ids;
    let stores = &stores;
    let wins: Vec<Vec<RequestId>> = futures::future::join_all((0..16).map(|t| async move {
        let store = &stores[t % 2];
        let mut won = Vec::new();
        for id in ids {
            match store
                .claim_execution(id, &Executor::new("u-exec", format!("task-{t}")), at(100), at(30))
                .await
            {
                Ok(_) => won.push(id.clone()),
                Err(Error::AlreadyClaimed { .. }) => {}
                Err(e) => panic!("unexpected claim error: {e}"),
            }
        }
        won
    }))
    .await;
    let mut all: Vec<RequestId> = wins.into_iter().flatten().collect();
    all.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(all, expected, "every request claimed exactly once");
    assert_eq!(stores[1].verify_audit().await.unwrap(), 20 * 3 + 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_and_head_refuse_changes() {
    let Some(db) = TestDatabase::create("triggers").await else {
        return;
    };
    let store = db.store().await;
    approved(&store, 0).await;
    let raw = db.raw().await;
    for sql in [
        "UPDATE audit SET actor = 'u-mallory' WHERE seq = 1",
        "DELETE FROM audit WHERE seq = 3",
        "TRUNCATE audit",
        "UPDATE audit_head SET seq = 1",
        "DELETE FROM audit_head",
        "TRUNCATE audit_head",
    ] {
        let err = raw.batch_execute(sql).await.unwrap_err();
        let text = Error::from(err).to_string();
        assert!(
            text.contains("append-only") || text.contains("audit head"),
            "{sql}: {text}"
        );
    }
    assert_eq!(store.verify_audit().await.unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_is_detected() {
    let Some(db) = TestDatabase::create("tamper").await else {
        return;
    };
    let store = db.store().await;
    let req = approved(&store, 0).await;
    approved(&store, 1).await;
    let raw = db.raw().await;
    // Someone with database access drops the guards.
    raw.batch_execute("ALTER TABLE audit DISABLE TRIGGER USER; ALTER TABLE audit_head DISABLE TRIGGER USER")
        .await
        .unwrap();

    // An edited decision breaks the chain at that entry.
    raw.execute(
        "UPDATE audit SET detail = replace(detail, 'u-2', 'u-3') WHERE seq = 3",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(broken_at(store.verify_audit().await), 3);
    raw.execute(
        "UPDATE audit SET detail = replace(detail, 'u-3', 'u-2') WHERE seq = 3",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(store.verify_audit().await.unwrap(), 6);

    // The last entries cut off, the head moved back with them: the stored requests no longer match.
    raw.batch_execute(
        "DELETE FROM audit WHERE seq > 4; UPDATE audit_head SET seq = 4, hash = (SELECT hash FROM audit WHERE seq = 4)",
    )
    .await
    .unwrap();
    assert!(matches!(store.verify_audit().await, Err(Error::AuditBroken { .. })));

    // Inputs edited in the stored request are never executed.
    raw.execute(
        "UPDATE requests SET body = replace(body, '\"wf\"', '\"wf-evil\"') WHERE id = $1",
        &[&req.id.as_str()],
    )
    .await
    .unwrap();
    let err = store
        .claim_execution(&req.id, &Executor::new("u-exec", "x"), at(20), at(10))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Tampered { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_urls_and_unreachable_databases_are_named() {
    for (url, problem) in [
        ("mysql://u:secret@db/x", "postgres://"),
        ("postgres://u:secret@db:notaport/x", "invalid value"),
        ("postgres://u:secret@db/x?sslmode=sometimes", "sslmode"),
        ("postgres://u:secret@db/x?colour=blue", "colour"),
    ] {
        let err = PostgresStore::connect(url).await.unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::BadStoreUrl { .. }), "{url}: {text}");
        assert!(text.to_lowercase().contains(problem), "{url}: {text}");
        assert!(!text.contains("secret"), "the password leaked: {text}");
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!("postgres://u-app:secret@/approvals?host={}", dir.path().display());
    let err = PostgresStore::connect(&url).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::StoreUnreachable { .. }), "{text}");
    assert!(
        text.contains("`approvals`") && text.contains("u-app") && text.contains(&dir.path().display().to_string()),
        "{text}"
    );
    assert!(!text.contains("secret"), "{text}");
    assert_eq!(
        redact_url("postgres://app:hunter2@db.example:5432/approvals?sslmode=require&password=hunter2"),
        "postgres://app:***@db.example:5432/approvals?sslmode=require&password=***"
    );
}

#[test]
fn libpq_style_urls_parse() {
    let u = PostgresUrl::parse("postgresql://app@/approvals?host=/run/postgresql&sslmode=disable").unwrap();
    assert_eq!(
        u.config.get_hosts(),
        [tokio_postgres::config::Host::Unix("/run/postgresql".into())]
    );
    assert_eq!(u.config.get_dbname(), Some("approvals"));
    let u =
        PostgresUrl::parse("postgres://app:pw@db.example:6543/approvals?sslmode=verify-full&sslrootcert=/etc/ca.pem")
            .unwrap();
    assert_eq!(u.config.get_ssl_mode(), tokio_postgres::config::SslMode::Require);
    assert_eq!(u.config.get_ports(), [6543]);
    assert_eq!(u.root_cert.as_deref(), Some("/etc/ca.pem"));
    assert!(matches!(
        PostgresUrl::parse("postgres://app@db.example"),
        Err(Error::BadStoreUrl { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_extend_one_linear_chain() {
    let Some(db) = TestDatabase::create("linear_chain").await else {
        return;
    };
    let stores = [db.store().await, db.store().await, db.store().await];
    let stores = &stores;
    // Writers on different requests do not wait for each other's request rows, only for the audit head.
    futures::future::join_all((0..32).map(|t| async move {
        for i in 0..5 {
            let new = NewRequest::new("wf", Principal::new(format!("u-{t}")), Policy::installer());
            stores[t % 3]
                .create_request(new, at(i))
                .await
                .unwrap_or_else(|e| panic!("writer {t}: {e}"));
        }
    }))
    .await;
    let entries = stores[0].audit_entries().await.unwrap();
    assert_eq!(
        entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=160).collect::<Vec<_>>()
    );
    assert_eq!(stores[2].verify_audit().await.unwrap(), 160);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_moves_from_sqlite_to_postgres() {
    let Some(db) = TestDatabase::create("move").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sqlite = crate::open_store(&format!("sqlite:{}", dir.path().join("approvals.db").display()))
        .await
        .unwrap();
    crate::store::tests::fill(sqlite.as_ref()).await;
    let mut file = Vec::new();
    let exported = crate::export(sqlite.as_ref(), &mut file).await.unwrap();

    let postgres = crate::open_store(db.url()).await.unwrap();
    assert_eq!(
        crate::import(postgres.as_ref(), file.as_slice()).await.unwrap(),
        exported
    );
    assert_eq!(
        postgres.verify_audit().await.unwrap(),
        sqlite.verify_audit().await.unwrap()
    );
    assert_eq!(postgres.audit_head().await.unwrap(), sqlite.audit_head().await.unwrap());
    assert_eq!(
        postgres.list_requests(&Default::default()).await.unwrap(),
        sqlite.list_requests(&Default::default()).await.unwrap()
    );
    // Work goes on there, on the database's clock, extending the same chain.
    let approved = postgres
        .list_requests(&crate::RequestFilter::all().state(RequestState::Approved))
        .await
        .unwrap();
    let claim = postgres
        .claim_execution(
            &approved[0].id,
            &Executor::new("u-exec", "x"),
            Utc::now() + TimeDelta::minutes(5),
            Utc::now(),
        )
        .await
        .unwrap();
    postgres
        .record_outcome(&claim, crate::Outcome::succeeded(serde_json::json!({})), Utc::now())
        .await
        .unwrap();
    assert_eq!(
        postgres.verify_audit().await.unwrap(),
        exported.audit_entries as u64 + 2
    );
}

/// Group commit: concurrent writes share a transaction, but each is answered by its own outcome. A refused write
/// in the middle of a batch leaves no trace and does not take its neighbours down; two stores (replicas) batching
/// at once on the same requests never deadlock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_writes_are_answered_one_by_one() {
    let Some(db) = TestDatabase::create("group_commit").await else {
        return;
    };
    let (a, b) = (db.store().await, db.store().await);
    let mut reqs = Vec::new();
    for m in 0..24 {
        reqs.push(
            a.create_request(NewRequest::new("wf", Principal::new("u-req"), policy()), at(m))
                .await
                .unwrap(),
        );
    }
    let ctx = EligibilityContext::default();
    // On every request at once, through both stores: an approver's vote (accepted) and the requester's own vote
    // (refused: no self-approval).
    let votes = reqs.iter().enumerate().flat_map(|(i, r)| {
        let store = if i % 2 == 0 { &a } else { &b };
        [("u-1", true), ("u-req", false)].map(|(who, ok)| {
            let (id, ctx) = (r.id.clone(), ctx.clone());
            async move {
                (
                    ok,
                    store
                        .decide(&id, &Principal::new(who), Decision::approve(), &ctx, at(30))
                        .await,
                )
            }
        })
    });
    for (ok, result) in futures::future::join_all(votes).await {
        match (ok, result) {
            (true, Ok(out)) => assert!(out.recorded),
            (false, Err(Error::NotEligible { .. })) => {}
            (ok, other) => panic!(
                "expected {}, got {other:?}",
                if ok { "a recorded vote" } else { "NotEligible" }
            ),
        }
    }
    for r in &reqs {
        let now = a.get_request(&r.id).await.unwrap();
        assert_eq!(
            now.decisions
                .iter()
                .map(|d| d.principal.id.as_str())
                .collect::<Vec<_>>(),
            ["u-1"],
            "only the accepted vote is stored"
        );
    }
    let decided = a
        .audit_entries()
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == crate::AuditKind::Decided)
        .count();
    assert_eq!(decided, reqs.len());
    a.verify_audit().await.unwrap();
}

/// A write's statements are held back and sent together when it reads again or ends. A write that fails after
/// writing (its own error after a read sent part of it, or a duplicate found only when the rest is sent) is undone
/// alone: its requests and audit entries are gone, the others in the same batch commit, and the chain holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_fails_after_writing_is_undone_alone() {
    let Some(db) = TestDatabase::create("deferred_writes").await else {
        return;
    };
    let store = db.store().await;
    let installed = store
        .install("wf", &Principal::new("u-admin"), policy(), at(0))
        .await
        .unwrap();
    let new = || NewRequest::new("wf", Principal::new("u-req"), policy());
    let writes = (0..32).map(|i| {
        let (store, new, installed) = (&store, new(), installed.clone());
        async move {
            let outcome = store
                .write(crate::store::body(move |tx| {
                    Box::pin(async move {
                        let made = super::super::ops::create_request(tx, new, at(1)).await?;
                        match i % 4 {
                            // Succeeds.
                            0 => Ok(vec![made.id]),
                            // Reads, writes again, and succeeds: both of its requests stay.
                            3 => {
                                assert!(
                                    tx.load_request(&made.id).await?.is_some(),
                                    "a read sees the write's own changes"
                                );
                                let again = super::super::ops::create_request(
                                    tx,
                                    NewRequest::new("wf", Principal::new("u-req"), policy()),
                                    at(1),
                                )
                                .await?;
                                assert!(
                                    tx.load_request(&again.id).await?.is_some(),
                                    "a second read sees the second write"
                                );
                                Ok(vec![made.id, again.id])
                            }
                            // Reads (which sends what it wrote so far), writes again, then fails.
                            1 => {
                                assert!(
                                    tx.load_request(&made.id).await?.is_some(),
                                    "a read sees the write's own changes"
                                );
                                super::super::ops::create_request(
                                    tx,
                                    NewRequest::new("wf", Principal::new("u-req"), policy()),
                                    at(1),
                                )
                                .await?;
                                Err(Error::Postgres {
                                    problem: "the body gave up".into(),
                                })
                            }
                            // Ends well, but the installation exists: found only when its statements are sent.
                            _ => {
                                tx.save_installation(&installed).await?;
                                Ok(vec![made.id])
                            }
                        }
                    })
                }))
                .await;
            (i, outcome)
        }
    });
    let mut kept = Vec::new();
    for (i, outcome) in futures::future::join_all(writes).await {
        match (i % 4, outcome) {
            (0 | 3, Ok(ids)) => kept.extend(ids),
            (1, Err(Error::Postgres { problem })) => assert_eq!(problem, "the body gave up"),
            (2, Err(Error::AlreadyInstalled { workflow_id })) => assert_eq!(workflow_id, "wf"),
            (kind, other) => panic!("write {i} (kind {kind}): unexpected {other:?}"),
        }
    }
    let stored = store.list_requests(&RequestFilter::default()).await.unwrap();
    let mut stored: Vec<_> = stored.into_iter().map(|r| r.id).collect();
    stored.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    kept.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert_eq!(stored, kept, "only the successful writes' requests remain");
    // The installation and one creation entry per kept request; nothing of the failed writes.
    assert_eq!(store.verify_audit().await.unwrap(), 1 + kept.len() as u64);
}

/// N2 on PostgreSQL: a pending request set to `executing` by someone with the database's credentials is refused
/// at take-over (settled as failed, the refusal audited), and verification names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n2_a_request_forged_to_executing_is_refused_at_take_over() {
    let Some(db) = TestDatabase::create("n2_forged").await else {
        return;
    };
    let store = db.store().await;
    let req = store
        .create_request(NewRequest::new("wf", Principal::new("u-req"), policy()), at(0))
        .await
        .unwrap();
    let mut body: serde_json::Value = serde_json::to_value(store.get_request(&req.id).await.unwrap()).unwrap();
    body["state"] = serde_json::json!("executing");
    body["execution"] = serde_json::json!({"claim_id": "forged", "executor": "elsewhere", "host": "elsewhere", "pid": 1, "epoch": 1,
                                           "lease_until": "2020-01-01T00:00:00Z", "claimed_at": "2020-01-01T00:00:00Z"});
    let raw = db.raw().await;
    let n = raw
        .execute(
            "UPDATE requests SET state = 'executing', body = $1 WHERE id = $2",
            &[&body.to_string(), &req.id.as_str()],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    let err = store
        .take_over(
            &req.id,
            &Executor::new("u-svc", "reconciler"),
            Takeover::LeaseExpired,
            "forged",
            Utc::now() + TimeDelta::minutes(1),
            Utc::now(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Tampered { .. }), "{err}");
    assert_eq!(
        store.get_request(&req.id).await.unwrap().state,
        crate::RequestState::Failed
    );
    assert!(store.in_doubt().await.unwrap().is_empty());
    let last = store.audit_entries().await.unwrap().pop().unwrap();
    assert_eq!(last.kind, crate::AuditKind::ExecutionRefused);
    let err = store.verify_audit().await.unwrap_err().to_string();
    assert!(err.contains(req.id.as_str()) && err.contains("refused"), "{err}");
}

/// N18: without `sslmode`, the driver's default (`prefer`) let a network attacker who answers "no TLS" get a
/// plaintext session that can write the store. A remote host now requires TLS (certificate and host checked) unless
/// the URL says otherwise, and saying `disable` or `prefer` for a remote host is warned about; unix sockets and
/// loopback keep the driver's default.
#[test]
fn n18_remote_hosts_require_tls_by_default() {
    use tokio_postgres::config::SslMode;
    let mode = |url: &str| {
        let u = PostgresUrl::parse(url).unwrap();
        (u.config.get_ssl_mode(), u.warning)
    };
    assert_eq!(mode("postgres://app:pw@db.example/approvals"), (SslMode::Require, None));
    assert_eq!(
        mode("postgres://app:pw@10.0.0.7:5432/approvals"),
        (SslMode::Require, None)
    );
    assert_eq!(
        mode("postgres://app:pw@db.example/approvals?sslmode=verify-full"),
        (SslMode::Require, None)
    );
    for local in [
        "postgres://app@/approvals?host=/run/postgresql",
        "postgres://app:pw@localhost/approvals",
        "postgres://app:pw@127.0.0.1:5433/approvals",
        "postgres://app:pw@[::1]/approvals",
    ] {
        assert_eq!(mode(local), (SslMode::Prefer, None), "{local}");
    }
    assert_eq!(
        mode("postgres://app:pw@localhost/approvals?sslmode=disable"),
        (SslMode::Disable, None)
    );
    for (url, want) in [
        (
            "postgres://app:pw@db.example/approvals?sslmode=disable",
            SslMode::Disable,
        ),
        ("postgres://app:pw@db.example/approvals?sslmode=prefer", SslMode::Prefer),
    ] {
        let (got, warning) = mode(url);
        assert_eq!(got, want, "an explicit choice is kept");
        let warning = warning.unwrap_or_else(|| panic!("no warning for {url}"));
        assert!(
            warning.contains("db.example") && warning.contains("sslmode=require") && warning.contains("plaintext"),
            "{warning}"
        );
        assert!(!warning.contains("pw@"), "{warning}");
    }
    // A host list with one remote host is remote.
    assert_eq!(
        mode("postgres://app:pw@localhost,db.example/approvals").0,
        SslMode::Require
    );
}
