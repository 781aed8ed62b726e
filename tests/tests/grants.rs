//! Time-bound cluster and project grants against the simulator over HTTPS: names resolved as people type them,
//! deterministic bindings, grants recorded with the execution, and revocation exactly once when due (the clock is
//! injected: tests pass `now` instead of sleeping).

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use rancher_access_tests::faulty::{faulty_client, WriteFault};
use rancher_access_tests::{session, sim};
use rancher_approval::{AuditKind, GrantFilter, MemoryStore, Policy, RevokedHow, SqliteStore, Store};
use rancher_sim::{Faults, RancherVersion, SimHandle};
use rancher_workflows::grants::{revoke_due, RevokeOutcome};
use rancher_workflows::{Runner, Session, Submitted};
use serde_json::{json, Value};

async fn run(
    r: &Runner,
    s: &Session,
    wf: &str,
    inputs: Value,
) -> rancher_workflows::Result<rancher_workflows::RunOutput> {
    r.install(s, wf, Some(Policy::none())).await.ok();
    match r.submit(s, wf, inputs, None, false).await? {
        Submitted::Succeeded { result } => Ok(*result),
        other => panic!("expected a result, got {other:?}"),
    }
}

/// The user's PRTBs, without those Rancher is removing (a deleted binding lingers a moment with a deletion time).
fn prtbs_of(sim: &SimHandle, user: &str) -> Vec<Value> {
    sim.objects("projectroletemplatebindings")
        .into_iter()
        .filter(|b| b["userName"] == json!(user) && b["metadata"]["deletionTimestamp"].is_null())
        .collect()
}

/// Lets the simulator finish deletions (a deleted binding lingers 200 ms with a deletion time, as Rancher's
/// finalizer holds it; the next request after that removes it).
async fn settle(admin: &Session) {
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    rancher_workflows::grants::bindings::list(admin, rancher_approval::BindingKind::Project)
        .await
        .unwrap();
}

/// Waits (at most 3 s) until `cond` holds.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..60 {
        if cond() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{what}: still not so after 3 s");
}

fn kinds(entries: &[rancher_approval::AuditEntry], kind: AuditKind) -> Vec<rancher_approval::AuditEntry> {
    entries.iter().filter(|e| e.kind == kind).cloned().collect()
}

/// Grants dave `Read-only` in `downstream/Default` for 2h as the admin; returns the grant id.
async fn grant_bob(sim: &SimHandle, r: &Runner, admin: &Session) -> String {
    let bob = &sim.users().standard[3];
    let out = run(
        r,
        admin,
        "grant-project-role",
        json!({"project": "downstream/Default", "user": bob.username, "role": "Read-only", "duration": "2h"}),
    )
    .await
    .unwrap();
    assert_eq!(out.result["created"], json!(true), "{}", out.summary);
    let grants = r.store().list_grants(&GrantFilter::unrevoked()).await.unwrap();
    grants
        .iter()
        .find(|g| g.granted.subject == bob.id)
        .expect("the grant is recorded")
        .id
        .clone()
}

#[tokio::test]
async fn grant_then_revoke_when_due_on_rk_api_and_norman() {
    let sim = sim(RancherVersion::V2_13, 0).await;
    for norman in [false, true] {
        let mut admin = session(&sim, &sim.tokens().admin).await;
        if norman {
            // A server before 2.8 has no RK-API bindings: the workflows use norman /v3 (same simulator state).
            admin.version = rancher_api::RancherVersion::new(2, 7, 9);
        }
        let r = Runner::new(Arc::new(MemoryStore::new()), "grants-test");
        let bob = sim.users().standard[3].clone();
        let before = prtbs_of(&sim, &bob.id).len();
        let id = grant_bob(&sim, &r, &admin).await;
        let g = r.store().get_grant(&id).await.unwrap();
        assert_eq!(
            (g.granted.role.as_str(), g.granted.binding.starts_with("prtb-ra-")),
            ("read-only", true),
            "{g:?}"
        );
        assert_eq!(g.due_at - g.granted_at, TimeDelta::hours(2));
        let project = &sim.users().projects[2];
        assert_eq!(g.granted.scope.as_deref(), Some(project.as_str()));
        let ours: Vec<Value> = prtbs_of(&sim, &bob.id)
            .into_iter()
            .filter(|b| b["metadata"]["name"] == json!(g.granted.binding))
            .collect();
        assert_eq!(ours.len(), 1, "the binding exists under its fixed name");
        assert_eq!(
            ours[0]["metadata"]["namespace"],
            json!(g.granted.namespace.clone().unwrap()),
            "in the project's namespace"
        );
        // Not due yet: nothing happens.
        let early = revoke_due(
            &admin,
            r.store().as_ref(),
            "svc-test",
            Utc::now() + TimeDelta::minutes(119),
        )
        .await
        .unwrap();
        assert!(early.outcomes.is_empty(), "{early:?}");
        let done = revoke_due(&admin, r.store().as_ref(), "svc-test", g.due_at)
            .await
            .unwrap();
        assert_eq!(done.revoked(), 1, "{done:?}");
        eventually("the binding is gone", || prtbs_of(&sim, &bob.id).len() == before).await;
        let g = r.store().get_grant(&id).await.unwrap();
        let rev = g.revocation.unwrap();
        assert_eq!(
            (rev.how, rev.by.as_str(), rev.process.as_str()),
            (RevokedHow::Deleted, "system", "svc-test")
        );
        let audit = r.store().audit_entries().await.unwrap();
        let revoked = kinds(&audit, AuditKind::GrantRevoked);
        assert_eq!(revoked.len(), 1);
        assert_eq!(revoked[0].detail["requested_by"], json!(admin.principal.id));
        settle(&admin).await;
        // Idempotent: a second pass finds nothing to do.
        assert!(
            revoke_due(&admin, r.store().as_ref(), "svc-test", g.due_at + TimeDelta::hours(1))
                .await
                .unwrap()
                .outcomes
                .is_empty()
        );
        r.store().verify_audit().await.unwrap();
    }
}

#[tokio::test]
async fn names_resolve_as_typed_and_mistakes_are_refused_before_filing() {
    let sim = sim(RancherVersion::V2_13, 0).await;
    let admin = session(&sim, &sim.tokens().admin).await;
    let r = Runner::new(Arc::new(MemoryStore::new()), "grants-test");
    let carol = &sim.users().standard[2];
    let downstream = sim.users().downstream_cluster.clone();
    let out = run(
        &r,
        &admin,
        "grant-cluster-role",
        json!({"cluster": "downstream", "user": carol.username, "role": "Cluster Member"}),
    )
    .await
    .unwrap();
    assert_eq!(out.result["created"], json!(true), "{}", out.summary);
    let crtb = sim
        .objects("clusterroletemplatebindings")
        .into_iter()
        .find(|b| b["userName"] == json!(carol.id) && b["roleTemplateName"] == json!("cluster-member"))
        .unwrap();
    assert_eq!(
        crtb["metadata"]["namespace"],
        json!(downstream),
        "a CRTB lives in its cluster's namespace"
    );
    assert!(
        r.store().list_grants(&GrantFilter::all()).await.unwrap().is_empty(),
        "no duration: a permanent grant, nothing recorded"
    );
    // The same membership again, under a policy that needs no approval: the idempotent no-op, naming the binding;
    // not duplicated. (Under a policy that needs approval it is refused before filing: issue 27 #16, ux16.)
    let again = run(
        &r,
        &admin,
        "grant-cluster-role",
        json!({"cluster": downstream, "user": carol.id, "role": "cluster-member"}),
    )
    .await
    .unwrap()
    .summary;
    assert!(
        again.contains("already holds the cluster role cluster-member")
            && again.contains("crtb-")
            && again.contains("nothing created"),
        "{again}"
    );
    let n = sim
        .objects("clusterroletemplatebindings")
        .iter()
        .filter(|b| b["userName"] == json!(carol.id) && b["roleTemplateName"] == json!("cluster-member"))
        .count();
    assert_eq!(n, 1);

    let refused = |e: rancher_workflows::Error| e.to_string();
    let e = refused(
        run(
            &r,
            &admin,
            "grant-project-role",
            json!({"project": "downstream/Default", "user": carol.id, "role": "cluster-owner"}),
        )
        .await
        .unwrap_err(),
    );
    assert!(
        e.contains("is a cluster role template") && e.contains("project-member"),
        "{e}"
    );
    let e = refused(
        run(
            &r,
            &admin,
            "grant-cluster-role",
            json!({"cluster": "downstream", "user": carol.id, "role": "project-member"}),
        )
        .await
        .unwrap_err(),
    );
    assert!(
        e.contains("is a project role template") && e.contains("cluster-member"),
        "{e}"
    );
    let e = refused(
        run(
            &r,
            &admin,
            "grant-cluster-role",
            json!({"cluster": "nowhere", "user": carol.id, "role": "cluster-member"}),
        )
        .await
        .unwrap_err(),
    );
    assert!(
        e.contains("cluster `nowhere` does not exist") && e.contains("local (local)") && e.contains(&downstream),
        "{e}"
    );
    let e = refused(
        run(
            &r,
            &admin,
            "grant-project-role",
            json!({"project": "downstream/Nope", "user": carol.id, "role": "project-member"}),
        )
        .await
        .unwrap_err(),
    );
    assert!(
        e.contains("has no project `Nope`") && e.contains("Default") && e.contains("System"),
        "{e}"
    );
    let e = refused(
        run(
            &r,
            &admin,
            "grant-project-role",
            json!({"project": "Default", "user": carol.id, "role": "project-member"}),
        )
        .await
        .unwrap_err(),
    );
    assert!(e.contains("`cluster/project`"), "{e}");
    let e = refused(
        run(
            &r,
            &admin,
            "grant-project-role",
            json!({"project": "downstream/Default", "user": "nobody-here", "role": "project-member"}),
        )
        .await
        .unwrap_err(),
    );
    assert!(e.contains("user `nobody-here` does not exist"), "{e}");
    let e = refused(
        run(
            &r,
            &admin,
            "grant-project-role",
            json!({"project": "downstream/Default", "role": "project-member"}),
        )
        .await
        .unwrap_err(),
    );
    assert!(e.contains("give user=<id or username> or group="), "{e}");
    let e = refused(
        run(
            &r,
            &admin,
            "grant-project-role",
            json!({"project": "downstream/Default", "user": carol.id, "role": "project-member", "duration": "2 hours"}),
        )
        .await
        .unwrap_err(),
    );
    assert!(e.contains("duration") && e.contains("e.g. 30m, 8h, 7d"), "{e}");
    let e = refused(
        run(
            &r,
            &admin,
            "grant-project-role",
            json!({"project": "downstream/Default", "user": carol.id, "role": "project-member", "binding": "mine"}),
        )
        .await
        .unwrap_err(),
    );
    assert!(e.contains("set when the request is filed"), "{e}");
    // Nothing was filed for any of them.
    let filed = r
        .list(None)
        .await
        .unwrap()
        .into_iter()
        .filter(|q| q.workflow_id == "grant-project-role")
        .count();
    assert_eq!(filed, 0);

    // The lists show them, filtered by scope.
    let listed = run(
        &r,
        &admin,
        "list-cluster-role-bindings",
        json!({"cluster": "downstream"}),
    )
    .await
    .unwrap();
    let t = listed.table.unwrap();
    assert!(
        t.rows.iter().all(|row| row[1] == "downstream" && row[2] == downstream)
            && t.rows.iter().any(|row| row[5] == carol.id && row[6] == "carol"),
        "{t:?}"
    );
    let listed = run(&r, &admin, "list-project-role-bindings", json!({})).await.unwrap();
    assert_eq!(
        listed.result.as_array().unwrap().len(),
        sim.count("projectroletemplatebindings")
    );

    // Revoke by user and role, then nothing left to revoke.
    let gone = run(
        &r,
        &admin,
        "revoke-cluster-role",
        json!({"cluster": "downstream", "user": carol.username, "role": "Cluster Member"}),
    )
    .await
    .unwrap();
    assert!(gone.summary.starts_with("revoked crtb-"), "{}", gone.summary);
    let again = run(
        &r,
        &admin,
        "revoke-cluster-role",
        json!({"cluster": "downstream", "user": carol.username, "role": "Cluster Member"}),
    )
    .await
    .unwrap();
    assert!(again.summary.starts_with("nothing to revoke"), "{}", again.summary);
}

#[tokio::test]
async fn policy_limits_durations_and_approvers_see_them() {
    let sim = sim(RancherVersion::V2_13, 0).await;
    let admin = session(&sim, &sim.tokens().admin).await;
    let approver = session(&sim, &sim.tokens().approver).await;
    let r = Runner::new(Arc::new(MemoryStore::new()), "grants-test");
    let mut policy = Policy::installer()
        .max_duration(std::time::Duration::from_secs(8 * 3600))
        .require_duration(true);
    // A timed admin is not contained (review 2026-12b N4): this policy allows it explicitly.
    policy.options.allow_role_granting_grants = true;
    r.install(&admin, "create-global-role-binding", Some(policy.clone()))
        .await
        .unwrap();
    let bob = &sim.users().standard[1];
    let e = r
        .submit(
            &admin,
            "create-global-role-binding",
            json!({"user": bob.username, "role": "admin"}),
            None,
            false,
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("requires a duration"), "{e}");
    let e = r
        .submit(
            &admin,
            "create-global-role-binding",
            json!({"user": bob.username, "role": "admin", "duration": "9h"}),
            None,
            false,
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("9h is longer than its policy allows (8h)"), "{e}");
    let e = r.set_policy(&admin, "list-users", policy).await;
    assert!(
        e.is_err(),
        "duration options on a workflow without a duration are refused"
    );
    let Submitted::Pending { request, .. } = r
        .submit(
            &admin,
            "create-global-role-binding",
            json!({"user": bob.username, "role": "admin", "duration": "8h"}),
            None,
            false,
        )
        .await
        .unwrap()
    else {
        panic!("installer approval")
    };
    let pending = r.get(&request).await.unwrap();
    assert_eq!(pending.inputs["duration"], json!("8h"), "approvers see the duration");
    assert!(
        pending.inputs["binding"].as_str().unwrap().starts_with("grb-ra-"),
        "the binding name is fixed at submit"
    );
    r.approve(&approver, &request, None).await.unwrap();
    let g = r.store().get_grant(&request).await.unwrap();
    assert_eq!(
        g.approved_by.iter().map(|p| p.id.clone()).collect::<Vec<_>>(),
        vec![approver.principal.id.clone()]
    );
    assert!(sim.has_binding(&bob.id, "admin"));
    let done = revoke_due(&admin, r.store().as_ref(), "svc", g.due_at).await.unwrap();
    assert!(
        matches!(
            &done.outcomes[..],
            [RevokeOutcome::Revoked {
                how: RevokedHow::Deleted,
                ..
            }]
        ),
        "{done:?}"
    );
    settle(&admin).await;
    assert!(!sim.has_binding(&bob.id, "admin"), "the timed admin grant ended");
}

#[tokio::test]
async fn two_services_racing_on_one_store_revoke_once() {
    let sim = sim(RancherVersion::V2_13, 0).await;
    let admin = session(&sim, &sim.tokens().admin).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("approvals.db");
    let a: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    let b: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    let r = Runner::new(a.clone(), "svc-a");
    let mut ids = Vec::new();
    for user in &sim.users().standard {
        let out = run(
            &r,
            &admin,
            "grant-project-role",
            json!({"project": "downstream/Default", "user": user.id, "role": "read-only", "duration": "30m"}),
        )
        .await
        .unwrap();
        assert_eq!(out.result["created"], json!(true), "{}", out.summary);
        ids.push(out.grant.is_some());
    }
    let due = Utc::now() + TimeDelta::hours(1);
    let deletes_before = sim.writes("projectroletemplatebindings", "delete");
    let (ra, rb) = tokio::join!(
        revoke_due(&admin, a.as_ref(), "svc-a", due),
        revoke_due(&admin, b.as_ref(), "svc-b", due)
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.revoked() + rb.revoked(), ids.len(), "{ra:?} {rb:?}");
    assert_eq!(
        sim.writes("projectroletemplatebindings", "delete") - deletes_before,
        ids.len() as u64,
        "one delete per grant"
    );
    let revoked = kinds(&a.audit_entries().await.unwrap(), AuditKind::GrantRevoked);
    assert_eq!(revoked.len(), ids.len());
    a.verify_audit().await.unwrap();
}

#[tokio::test]
async fn a_crash_between_the_delete_and_its_record_is_settled_by_reading_the_server() {
    let sim = sim(RancherVersion::V2_13, 0).await;
    let admin = session(&sim, &sim.tokens().admin).await;
    let r = Runner::new(Arc::new(MemoryStore::new()), "grants-test");
    let id = grant_bob(&sim, &r, &admin).await;
    let g = r.store().get_grant(&id).await.unwrap();
    let due = g.due_at;
    // A process claims it, sends the delete, and dies before recording anything.
    let lost = r
        .store()
        .claim_revocation(&id, "dead-process", due + TimeDelta::minutes(2), due)
        .await
        .unwrap();
    let (kind, ns, name) = (
        g.granted.kind,
        g.granted.namespace.clone().unwrap(),
        g.granted.binding.clone(),
    );
    let mut exec = rancher_workflows::Exec::new(&admin, false);
    assert!(rancher_workflows::grants::bindings::delete(&mut exec, kind, &ns, &name)
        .await
        .unwrap());
    // While its lease holds, nobody else touches it.
    let held = revoke_due(&admin, r.store().as_ref(), "svc", due + TimeDelta::minutes(1))
        .await
        .unwrap();
    assert!(held.outcomes.is_empty(), "{held:?}");
    let deletes = sim.writes("projectroletemplatebindings", "delete");
    let settled = revoke_due(&admin, r.store().as_ref(), "svc", due + TimeDelta::minutes(3))
        .await
        .unwrap();
    match &settled.outcomes[..] {
        [RevokeOutcome::Revoked {
            how: RevokedHow::AlreadyRemoved,
            note,
            ..
        }] => assert!(note.contains("took over"), "{note}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        sim.writes("projectroletemplatebindings", "delete"),
        deletes,
        "nothing is deleted twice"
    );
    assert!(
        r.store()
            .record_revocation(&lost, RevokedHow::Deleted, "", due + TimeDelta::minutes(4))
            .await
            .is_err(),
        "the dead claim records nothing"
    );
}

#[tokio::test]
async fn a_binding_removed_or_replaced_out_of_band_is_recorded_and_nothing_else_is_touched() {
    let sim = sim(RancherVersion::V2_13, 0).await;
    let admin = session(&sim, &sim.tokens().admin).await;
    let r = Runner::new(Arc::new(MemoryStore::new()), "grants-test");
    let removed = grant_bob(&sim, &r, &admin).await;
    let g = r.store().get_grant(&removed).await.unwrap();
    let mut exec = rancher_workflows::Exec::new(&admin, false);
    rancher_workflows::grants::bindings::delete(
        &mut exec,
        g.granted.kind,
        g.granted.namespace.as_deref().unwrap(),
        &g.granted.binding,
    )
    .await
    .unwrap();
    // Replaced: the same name now grants someone else something else.
    let dave = sim.users().standard[2].clone();
    let replaced = run(
        &r,
        &admin,
        "grant-project-role",
        json!({"project": "downstream/Default", "user": dave.id, "role": "workloads-view", "duration": "1h"}),
    )
    .await
    .unwrap();
    let rg = r
        .store()
        .get_grant(
            &r.store()
                .list_grants(&GrantFilter::unrevoked())
                .await
                .unwrap()
                .iter()
                .find(|x| x.granted.subject == dave.id)
                .unwrap()
                .id,
        )
        .await
        .unwrap();
    let ns = rg.granted.namespace.clone().unwrap();
    rancher_workflows::grants::bindings::delete(&mut exec, rg.granted.kind, &ns, &rg.granted.binding)
        .await
        .unwrap();
    settle(&admin).await;
    let other = rancher_workflows::grants::bindings::NewBinding {
        kind: rg.granted.kind,
        name: rg.granted.binding.clone(),
        namespace: ns.clone(),
        scope: rg.granted.scope.clone().unwrap(),
        role: "project-member".into(),
        user: Some(sim.users().standard[0].id.clone()),
        group: None,
    };
    rancher_workflows::grants::bindings::create(&mut exec, &other)
        .await
        .unwrap();
    assert!(replaced.grant.is_some());
    let deletes = sim.writes("projectroletemplatebindings", "delete");
    let done = revoke_due(&admin, r.store().as_ref(), "svc", Utc::now() + TimeDelta::hours(3))
        .await
        .unwrap();
    assert_eq!(done.revoked(), 2, "{done:?}");
    assert_eq!(
        sim.writes("projectroletemplatebindings", "delete"),
        deletes,
        "nothing deleted"
    );
    assert_eq!(
        r.store().get_grant(&removed).await.unwrap().revocation.unwrap().how,
        RevokedHow::AlreadyRemoved
    );
    let changed = r.store().get_grant(&rg.id).await.unwrap().revocation.unwrap();
    assert_eq!(changed.how, RevokedHow::ChangedOutOfBand);
    assert!(changed.note.contains("left alone"), "{}", changed.note);
    assert!(
        sim.objects("projectroletemplatebindings")
            .iter()
            .any(|b| b["metadata"]["name"] == json!(rg.granted.binding)),
        "the replacement stays"
    );
}

#[tokio::test]
async fn rancher_down_at_due_time_is_retried_with_backoff_until_it_is_back() {
    let sim = sim(RancherVersion::V2_13, 0).await;
    let admin = session(&sim, &sim.tokens().admin).await;
    let r = Runner::new(Arc::new(MemoryStore::new()), "grants-test");
    let id = grant_bob(&sim, &r, &admin).await;
    let g = r.store().get_grant(&id).await.unwrap();
    let due = g.due_at;
    sim.set_faults(Faults {
        rate_503: 1.0,
        ..Faults::none()
    });
    let down = revoke_due(&admin, r.store().as_ref(), "svc", due).await.unwrap();
    let retry_at = match &down.outcomes[..] {
        [RevokeOutcome::Failed { retry_at, error, .. }] => {
            assert!(!error.is_empty());
            *retry_at
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(retry_at - due, TimeDelta::seconds(30));
    let g = r.store().get_grant(&id).await.unwrap();
    assert_eq!((g.failures, g.status(due)), (1, rancher_approval::GrantStatus::Overdue));
    let overdue = kinds(&r.store().audit_entries().await.unwrap(), AuditKind::GrantOverdue);
    assert_eq!(overdue.len(), 1, "overdue is an event");
    sim.set_faults(Faults::none());
    assert!(
        revoke_due(&admin, r.store().as_ref(), "svc", due + TimeDelta::seconds(10))
            .await
            .unwrap()
            .outcomes
            .is_empty(),
        "waits for its backoff"
    );
    let back = revoke_due(&admin, r.store().as_ref(), "svc", retry_at).await.unwrap();
    assert_eq!(back.revoked(), 1, "{back:?}");
    eventually("the binding is gone", || {
        prtbs_of(&sim, &sim.users().standard[3].id)
            .iter()
            .all(|b| b["metadata"]["name"] != json!(g.granted.binding))
    })
    .await;
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_finds_its_own_binding() {
    let sim = sim(RancherVersion::V2_13, 0).await;
    let (client, transport) = faulty_client(&sim, &sim.tokens().admin, &[WriteFault::LoseAnswer]);
    let admin = Session::open(client).await.unwrap();
    let r = Runner::new(Arc::new(MemoryStore::new()), "grants-test");
    let bob = &sim.users().standard[3];
    let before = prtbs_of(&sim, &bob.id).len();
    let out = run(
        &r,
        &admin,
        "grant-project-role",
        json!({"project": "downstream/Default", "user": bob.id, "role": "read-only", "duration": "1h"}),
    )
    .await
    .unwrap();
    assert!(out.summary.contains("confirmed after a lost answer"), "{}", out.summary);
    assert_eq!(prtbs_of(&sim, &bob.id).len(), before + 1, "one binding, not two");
    assert!(transport.seen().iter().any(|(_, _, f)| *f == WriteFault::LoseAnswer));
    assert_eq!(
        r.store().list_grants(&GrantFilter::unrevoked()).await.unwrap().len(),
        1,
        "recorded once"
    );
}

#[tokio::test]
async fn extend_and_end_early() {
    let sim = sim(RancherVersion::V2_13, 0).await;
    let admin = session(&sim, &sim.tokens().admin).await;
    let r = Runner::new(Arc::new(MemoryStore::new()), "grants-test");
    let id = grant_bob(&sim, &r, &admin).await;
    let g = r.store().get_grant(&id).await.unwrap();
    let req = r.get(&id).await.unwrap();
    let mut inputs = req.inputs.clone();
    inputs["extends"] = json!(id);
    inputs["duration"] = json!("1h");
    let out = run(&r, &admin, "grant-project-role", inputs).await.unwrap();
    assert!(out.summary.starts_with("extended grant"), "{}", out.summary);
    let extended = r.store().get_grant(&id).await.unwrap();
    assert_eq!(extended.due_at - g.due_at, TimeDelta::hours(1));
    let ended = rancher_workflows::grants::end_early(&admin, r.store().as_ref(), &id, Utc::now())
        .await
        .unwrap();
    let out = rancher_workflows::grants::revoke_grant(&admin, r.store().as_ref(), &id, "cli", ended.due_at)
        .await
        .unwrap();
    assert!(
        matches!(
            out,
            RevokeOutcome::Revoked {
                how: RevokedHow::Deleted,
                ..
            }
        ),
        "{out:?}"
    );
    let rev = r.store().get_grant(&id).await.unwrap().revocation.unwrap();
    assert_eq!(rev.by, admin.principal.id, "ended early by a person");
    // A standard user may not end someone else's grant.
    let other = grant_bob(&sim, &r, &admin).await;
    let alice = session(&sim, &sim.tokens().user).await;
    let e = rancher_workflows::grants::end_early(&alice, r.store().as_ref(), &other, Utc::now())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("only an admin, the requester"), "{e}");
}

/// Rancher 2.11+ reports a binding in effect in `status.summary` (rancher/rancher pkg/apis/management.cattle.io/v3/
/// authz_types.go `ClusterRoleTemplateBindingStatus`, absent on release/v2.8-v2.10; pkg/controllers/management/auth/
/// crtb_handler.go sets `Completed` only once the downstream half, pkg/controllers/managementuser/rbac/
/// crtb_handler.go, has made its RBAC objects). A grant waits for it: in effect on a connected cluster, "approved,
/// not effective" on a cluster whose agent is disconnected, and on 2.8, which reports nothing, it says so.
#[tokio::test]
async fn a_grant_waits_until_rancher_reports_the_binding_effective() {
    let new = sim(RancherVersion::V2_13, 0).await;
    let admin = session(&new, &new.tokens().admin).await;
    let r = Runner::new(Arc::new(MemoryStore::new()), "grants-test");
    let bob = &new.users().standard[3];
    let out = run(
        &r,
        &admin,
        "grant-cluster-role",
        json!({"cluster": "downstream", "user": bob.id, "role": "cluster-member"}),
    )
    .await
    .unwrap();
    assert_eq!(out.result["effective"], json!(true), "{}", out.summary);
    assert!(out.summary.starts_with("gave"), "{}", out.summary);

    assert!(new.insert_object(
        "clusters",
        json!({"metadata": {"name": "c-offline"}, "spec": {"displayName": "offline", "description": ""},
               "status": {"conditions": [{"type": "Ready", "status": "False"}]}})
    ));
    let out = run(
        &r,
        &admin,
        "grant-cluster-role",
        json!({"cluster": "c-offline", "user": bob.id, "role": "cluster-member"}),
    )
    .await
    .unwrap();
    assert_eq!(out.result["created"], json!(true), "{}", out.summary);
    assert_eq!(out.result["effective"], json!(false), "{}", out.summary);
    assert!(out.summary.starts_with("approved, not effective"), "{}", out.summary);

    let old = sim(RancherVersion::V2_8, 0).await;
    let admin = session(&old, &old.tokens().admin).await;
    let bob = &old.users().standard[3];
    let out = run(
        &r,
        &admin,
        "grant-cluster-role",
        json!({"cluster": "downstream", "user": bob.id, "role": "cluster-member"}),
    )
    .await
    .unwrap();
    assert_eq!(out.result["created"], json!(true), "{}", out.summary);
    assert_eq!(out.result["effective"], Value::Null, "{}", out.summary);
    assert!(out.summary.contains("does not report"), "{}", out.summary);
}
