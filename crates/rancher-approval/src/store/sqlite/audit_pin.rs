//! Pins the audit log's stored form. Entry hashes cover the canonical JSON of each entry's detail, so the details
//! the store writes must keep their exact keys and values, or chains written by older builds stop verifying.
//!
//! `tests/fixtures/audit-chain-v1.jsonl` is a chain of every kind of entry, written through the store's real
//! operations by the build before details were typed (regenerate it only on purpose:
//! `cargo test -p rancher-approval --lib audit_pin -- --ignored`). The tests here check that it still loads and
//! verifies, and that a chain written today by the same steps holds the same details, byte for byte, once the
//! ids and hashes that are random per run are named by their order of appearance.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::Connection;
use serde_json::{json, Value};

use super::SqliteStore;
use crate::audit::{AuditEntry, AuditHead, AuditKind};
use crate::canonical::canonical_json;
use crate::grant::{BindingKind, GrantChange, NewGrant, RevokedHow, SubjectKind};
use crate::store::tests::at;
use crate::store::Takeover;
use crate::{
    ApproverRef, Decision, EligibilityContext, Executor, NewRequest, Outcome, Policy, Principal, ServerIdentity, Store,
};

/// The chain written before audit details were typed.
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/audit-chain-v1.jsonl");

fn alice() -> Principal {
    Principal::new("u-alice").with_username("alice")
}

fn bob() -> Principal {
    Principal::new("u-bob").with_username("bob")
}

fn carol() -> Principal {
    Principal::new("u-carol").with_username("carol")
}

fn a_grant(binding: &str, minutes: u64) -> NewGrant {
    NewGrant {
        kind: BindingKind::Project,
        binding: binding.into(),
        namespace: Some("c-abc-p-xyz".into()),
        scope: Some("c-abc:p-xyz".into()),
        subject_kind: SubjectKind::User,
        subject: "u-carol".into(),
        role: "project-member".into(),
        duration_secs: minutes * 60,
    }
}

/// Writes, through the store's own operations, at least one entry of every kind and the variants of each detail
/// (with and without a grant, refused at claim and at take-over, each extension note, ...).
async fn write_every_kind(path: &Path) -> Vec<AuditEntry> {
    let store = SqliteStore::open(path).unwrap();
    let ctx = EligibilityContext::default();
    let wf = "grant-project-role";
    let approvers = Policy::any_of([ApproverRef::user("u-alice")]);
    let server = ServerIdentity::new("rancher.example.com", Some("install-1".into()));
    let exec = Executor::new("u-exec", "rancherctl@build-1 pid 42")
        .at("build-1", 42)
        .identity(Some("boot-1".into()), Some("pid:[4026531836]".into()), Some(777))
        .on(server.clone());

    store.install(wf, &alice(), Policy::installer(), at(0)).await.unwrap();
    store.set_policy(wf, approvers.clone(), &alice(), at(0)).await.unwrap();

    // Created with every field, approved, claimed, finished with a new grant.
    let granted = |binding: &'static str, minute: i64, change: Option<GrantChange>| {
        let (store, approvers, server, exec, ctx) = (&store, approvers.clone(), server.clone(), exec.clone(), &ctx);
        async move {
            let req = store
                .create_request(
                    NewRequest::new(wf, bob(), approvers)
                        .inputs(
                            json!({"user": "u-carol", "role": "project-member", "token": "s3cret"}),
                            ["token"],
                        )
                        .installer(alice())
                        .targets(["c-abc:p-xyz"])
                        .target_label("c-abc:p-xyz", "Default")
                        .reason("on call this week")
                        .server(server.clone()),
                    at(minute),
                )
                .await
                .unwrap();
            store
                .decide(
                    &req.id,
                    &alice(),
                    Decision::approve()
                        .because("ok")
                        .reviewed(req.content_hash.clone())
                        .through(server),
                    ctx,
                    at(minute),
                )
                .await
                .unwrap();
            let claim = store
                .claim_execution(&req.id, &exec, at(minute + 10), at(minute))
                .await
                .unwrap();
            let change = change.unwrap_or_else(|| GrantChange::New(a_grant(binding, 60)));
            store
                .record_outcome(
                    &claim,
                    Outcome::succeeded(json!({"summary": "granted", "result": {"binding": binding}}))
                        .with_grant(Some(change)),
                    at(minute),
                )
                .await
                .unwrap();
            req
        }
    };
    let first = granted("prtb-ra-1", 1, None).await;
    let overdue = granted("prtb-ra-2", 2, None).await;
    // A global grant: no namespace, no scope (`null` in the details).
    let global = NewGrant {
        kind: BindingKind::Global,
        binding: "grb-ra-3".into(),
        namespace: None,
        scope: None,
        ..a_grant("grb-ra-3", 60)
    };
    let early = granted("grb-ra-3", 3, Some(GrantChange::New(global))).await;
    // Extensions: applied, of no grant, of another binding.
    let extend = |grant: &str, binding: &str| GrantChange::Extend {
        grant: grant.into(),
        by_secs: 1800,
        binding: Some(binding.into()),
    };
    granted("prtb-ra-1", 4, Some(extend(first.id.as_str(), "prtb-ra-1"))).await;
    granted("prtb-ra-1", 5, Some(extend("no-such-grant", "prtb-ra-1"))).await;
    granted("prtb-ra-1", 6, Some(extend(first.id.as_str(), "prtb-other"))).await;

    // Needs nobody: approved at creation; a failed execution.
    let plain = || NewRequest::new(wf, bob(), Policy::none());
    let failed = store.create_request(plain(), at(7)).await.unwrap();
    let claim = store.claim_execution(&failed.id, &exec, at(17), at(7)).await.unwrap();
    store
        .record_outcome(&claim, Outcome::failed(json!({"error": "Rancher refused"})), at(7))
        .await
        .unwrap();

    // Denied with a reason; cancelled with a reason and without.
    let denied = store
        .create_request(NewRequest::new(wf, bob(), approvers.clone()), at(8))
        .await
        .unwrap();
    store
        .decide(
            &denied.id,
            &alice(),
            Decision::deny().because("not this week"),
            &ctx,
            at(8),
        )
        .await
        .unwrap();
    for reason in [Some("no longer needed".to_string()), None] {
        let req = store
            .create_request(NewRequest::new(wf, bob(), approvers.clone()), at(9))
            .await
            .unwrap();
        store.cancel(&req.id, &bob(), reason, at(9)).await.unwrap();
    }

    // Taken over when the lease ran out, then settled by hand.
    let doubt = store.create_request(plain(), at(10)).await.unwrap();
    let lost = store.claim_execution(&doubt.id, &exec, at(11), at(10)).await.unwrap();
    let taker = Executor::new("u-svc", "reconciler");
    let taken = store
        .take_over(
            &doubt.id,
            &taker,
            Takeover::LeaseExpired,
            &lost.claim_id,
            at(40),
            at(12),
        )
        .await
        .unwrap();
    store
        .resolve_in_doubt(
            &taken,
            Outcome::succeeded(json!({"summary": "binding exists"})),
            "binding exists",
            at(13),
        )
        .await
        .unwrap();

    // Refused at claim: the stored inputs were changed after the approval.
    let edited = store
        .create_request(
            NewRequest::new(wf, bob(), approvers.clone()).inputs(json!({"user": "u-carol"}), Vec::<String>::new()),
            at(14),
        )
        .await
        .unwrap();
    store
        .decide(&edited.id, &alice(), Decision::approve(), &ctx, at(14))
        .await
        .unwrap();
    Connection::open(path)
        .unwrap()
        .execute(
            "UPDATE requests SET body = json_set(body, '$.inputs.user', 'u-dave') WHERE id = ?1",
            [edited.id.as_str()],
        )
        .unwrap();
    store
        .claim_execution(&edited.id, &exec, at(25), at(15))
        .await
        .unwrap_err();

    // Refused at take-over: a pending request set to executing in the file.
    let forged = store
        .create_request(NewRequest::new(wf, bob(), approvers.clone()), at(16))
        .await
        .unwrap();
    super::tests::forge_executing(path, forged.id.as_str());
    store
        .take_over(&forged.id, &taker, Takeover::OwnerGone, "forged", at(50), at(17))
        .await
        .unwrap_err();

    // Grants: ended early, revoked, overdue.
    store
        .end_grant_early(early.id.as_str(), &carol(), at(20))
        .await
        .unwrap();
    let c = store
        .claim_revocation(first.id.as_str(), "svc-a", at(200), at(120))
        .await
        .unwrap();
    store
        .record_revocation(&c, RevokedHow::AlreadyRemoved, "gone before us", at(120))
        .await
        .unwrap();
    let c = store
        .claim_revocation(overdue.id.as_str(), "svc-a", at(200), at(121))
        .await
        .unwrap();
    store
        .release_revocation(&c, "could not connect", at(130), at(121))
        .await
        .unwrap();

    // An extension that comes after the revocation.
    granted("prtb-ra-1", 121, Some(extend(first.id.as_str(), "prtb-ra-1"))).await;

    // A direct write, as `rancherctl api --yes` records it.
    store
        .record_direct_write(
            "u-alice",
            crate::audit::DirectWrite {
                operation: "v3.deleteToken".into(),
                method: "DELETE".into(),
                path: "/v3/tokens/token-abc".into(),
                params: [("id".to_string(), "token-abc".to_string())].into(),
                body: None,
                server: "https://rancher.example.com/".into(),
                actor_username: Some("alice".into()),
            },
            at(122),
        )
        .await
        .unwrap();

    // Expired: the last pending request, long after.
    let pending = store
        .create_request(NewRequest::new(wf, bob(), approvers), at(123))
        .await
        .unwrap();
    // Its approver is reminded while it waits (added after the first pin: spliced into the fixture before the
    // expiry, every earlier entry unchanged).
    let reminded = crate::audit::Reminded {
        escalation: false,
        approvers: vec!["u-alice".into()],
        waited_secs: 3600,
    };
    assert!(store
        .record_reminder(&pending.id, "svc-a", reminded, at(183))
        .await
        .unwrap());
    store.expire_due(at(60 * 24 * 30)).await.unwrap();

    // A binding the watcher saw made outside the product (added after the reminder's pin: appended at the end),
    // recorded once per key.
    for first in [true, false] {
        let recorded = store
            .record_access_observed(OBSERVER, OBSERVED_KEY, observed_sample(), at(60 * 24 * 30 + 1))
            .await
            .unwrap();
        assert_eq!(recorded, first);
    }

    store.audit_entries().await.unwrap()
}

const OBSERVER: &str = "rancher-access-watcher";
const OBSERVED_KEY: &str = "clusterroletemplatebindings/uid-1/created";

/// The out-of-band binding of the pinned chain.
fn observed_sample() -> crate::audit::AccessObserved {
    crate::audit::AccessObserved {
        change: crate::audit::ObservedChange::Created,
        kind: "ClusterRoleTemplateBinding".into(),
        name: "crtb-x7k2m".into(),
        namespace: Some("c-m-1".into()),
        uid: Some("uid-1".into()),
        resource_version: "4711".into(),
        subject: Some("u-bob".into()),
        subject_name: Some("Bob (bob)".into()),
        role: Some("cluster-owner".into()),
        role_name: Some("Cluster Owner".into()),
        scope: Some("c-m-1".into()),
        creator: Some("user-admin".into()),
        creator_name: Some("admin".into()),
        changed_at: Some("2026-01-31T00:00:00Z".into()),
        request: None,
        out_of_band: true,
        note: None,
        server: "https://rancher.example.com".into(),
    }
}

fn read_fixture() -> Vec<AuditEntry> {
    std::fs::read_to_string(FIXTURE)
        .unwrap_or_else(|e| panic!("{FIXTURE}: {e}"))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The canonical detail of each entry, with the values that differ between runs (request ids, claim ids, content
/// hashes, the times of day they are not) replaced by their order of first appearance, so two runs compare.
fn normalised(entries: &[AuditEntry]) -> Vec<(String, String)> {
    fn collect(v: &Value, key: Option<&str>, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => m.iter().for_each(|(k, v)| collect(v, Some(k), out)),
            Value::Array(a) => a.iter().for_each(|v| collect(v, key, out)),
            Value::String(s) if matches!(key, Some("claim_id" | "content_hash")) => out.push(s.clone()),
            _ => {}
        }
    }
    let mut random: Vec<String> = Vec::new();
    for e in entries {
        random.extend(e.request_id.clone());
        collect(&e.detail, None, &mut random);
    }
    let mut names: HashMap<String, String> = HashMap::new();
    for r in random {
        let n = names.len();
        names.entry(r).or_insert_with(|| format!("<random-{n}>"));
    }
    let mut names: Vec<(String, String)> = names.into_iter().collect();
    names.sort_by_key(|(r, _)| std::cmp::Reverse(r.len()));
    entries
        .iter()
        .map(|e| {
            let mut text = canonical_json(&e.detail);
            for (r, n) in &names {
                text = text.replace(r.as_str(), n);
            }
            (e.kind.to_string(), text)
        })
        .collect()
}

/// Writes the fixture with the current code. Run it only to pin a new stored form on purpose.
#[tokio::test]
#[ignore = "writes tests/fixtures/audit-chain-v1.jsonl"]
async fn write_the_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let entries = write_every_kind(&dir.path().join("approvals.db")).await;
    let lines: Vec<String> = entries.iter().map(|e| serde_json::to_string(e).unwrap()).collect();
    std::fs::create_dir_all(Path::new(FIXTURE).parent().unwrap()).unwrap();
    std::fs::write(FIXTURE, lines.join("\n") + "\n").unwrap();
}

#[test]
fn the_pinned_chain_holds_every_kind_and_verifies() {
    let entries = read_fixture();
    let head = entries.last().unwrap().head();
    assert_eq!(
        crate::audit::verify(&entries, Some(&head)).unwrap(),
        entries.len() as u64
    );
    for kind in AuditKind::ALL {
        assert!(
            entries.iter().any(|e| e.kind == kind),
            "the fixture has no {kind} entry"
        );
    }
}

/// The fixture's rows, stored as an older build left them, load and verify through the store.
#[tokio::test]
async fn the_pinned_chain_loads_and_verifies_in_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("approvals.db");
    let store = SqliteStore::open(&path).unwrap();
    let entries = read_fixture();
    insert_rows(&path, &entries);
    assert_eq!(store.audit_entries().await.unwrap(), entries);
    assert_eq!(store.verify_audit().await.unwrap(), entries.len() as u64);
}

/// Stores `entries` as rows of the audit table, with the head after the last.
fn insert_rows(path: &Path, entries: &[AuditEntry]) {
    let conn = Connection::open(path).unwrap();
    for e in entries {
        conn.execute(
            "INSERT INTO audit (seq, at, actor, kind, request_id, workflow_id, detail, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            rusqlite::params![
                e.seq as i64,
                crate::audit::format_time(e.at),
                e.actor,
                e.kind.as_str(),
                e.request_id,
                e.workflow_id,
                e.detail.to_string(),
                e.prev_hash,
                e.hash
            ],
        )
        .unwrap();
    }
    let head = entries.last().map_or_else(AuditHead::genesis, AuditEntry::head);
    conn.execute(
        "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?1, ?2)",
        rusqlite::params![head.seq as i64, head.hash],
    )
    .unwrap();
}

/// The same steps today write the same details, byte for byte in canonical form.
#[tokio::test]
async fn todays_details_are_byte_identical_to_the_pinned_ones() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = write_every_kind(&dir.path().join("approvals.db")).await;
    let pinned = read_fixture();
    assert_eq!(fresh.len(), pinned.len());
    for (i, (now, then)) in normalised(&fresh).into_iter().zip(normalised(&pinned)).enumerate() {
        assert_eq!(now, then, "entry {}", i + 1);
    }
    crate::audit::verify(&fresh, None).unwrap();
}

/// Every pinned detail reads as its typed variant, and writing that back gives the stored canonical bytes.
#[test]
fn every_pinned_detail_reads_typed_and_writes_back_the_same_bytes() {
    for e in read_fixture() {
        let typed = e.details();
        assert!(
            !matches!(typed, crate::AuditDetail::Other { .. }),
            "entry {} ({}) does not read typed: {}",
            e.seq,
            e.kind,
            e.detail
        );
        assert_eq!(typed.kind(), e.kind, "entry {}", e.seq);
        assert_eq!(
            canonical_json(&typed.to_value()),
            canonical_json(&e.detail),
            "entry {} ({})",
            e.seq,
            e.kind
        );
        // The stored text keeps its key order too.
        assert_eq!(typed.to_value().to_string(), e.detail.to_string(), "entry {}", e.seq);
    }
}

/// A log that holds an entry of a kind this build does not know (a newer build wrote it) loads, verifies, and
/// keeps that entry's name and detail.
#[tokio::test]
async fn an_unknown_kind_in_an_old_database_loads_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("approvals.db");
    let store = SqliteStore::open(&path).unwrap();
    let mut entries = read_fixture();
    let detail = json!({"what": "a kind from a newer build"});
    let later = crate::audit::AuditDraft {
        actor: "u-later".into(),
        request_id: None,
        workflow_id: Some("grant-project-role".into()),
        detail: crate::AuditDetail::Other {
            kind: AuditKind::from_stored("made_up_later"),
            detail: detail.clone(),
        },
    }
    .seal(&entries.last().unwrap().head(), at(60 * 24 * 31));
    entries.push(later);
    insert_rows(&path, &entries);
    let loaded = store.audit_entries().await.unwrap();
    assert_eq!(loaded, entries);
    assert_eq!(store.verify_audit().await.unwrap(), entries.len() as u64);
    let last = loaded.last().unwrap();
    assert_eq!(last.kind.as_str(), "made_up_later");
    assert_eq!(
        last.details(),
        crate::AuditDetail::Other {
            kind: AuditKind::Other("made_up_later".into()),
            detail
        }
    );
}
